/** The documented fallback bound the chaos run holds the connection cap to (test/chaos/cap-bound.ts). */
import { describe, expect, it } from 'vitest';
import { checkCaps, shareOf } from './cap-bound.js';

describe('the documented fallback bound of the connection cap', () => {
  it('gives each replica cap ÷ expectedReplicas, rounded down, at least 1', () => {
    expect(shareOf(60, 2)).toBe(30);
    expect(shareOf(15, 2)).toBe(7);
    expect(shareOf(1, 3)).toBe(1);
    expect(shareOf(60, 1)).toBe(60);
  });

  it('lets a replica fill its share, counting what it held when Redis went away, and no more', () => {
    const c = checkCaps(60, 2, { r1: 20, r2: 20 }, { r1: 30, r2: 31 }, 61);
    expect(c.replicas).toEqual([
      { replica: 'r1', openAtStart: 20, peak: 30, bound: 30, beyondBound: 0 },
      { replica: 'r2', openAtStart: 20, peak: 31, bound: 30, beyondBound: 1 },
    ]);
    expect(c).toMatchObject({ share: 30, boundTotal: 60, peakTotal: 61, overCap: 1, kept: false });
  });

  it('a replica holding more than its share when Redis went away keeps them and admits none', () => {
    const c = checkCaps(60, 2, { r1: 45, r2: 10 }, { r1: 45, r2: 30 }, 75);
    expect(c).toMatchObject({ overCap: 15, kept: true });
  });

  it('counts a replica that held nothing at the start', () => {
    const c = checkCaps(60, 2, { r1: 40 }, { r1: 40, r2: 31 }, 71);
    expect(c.replicas[1]).toEqual({ replica: 'r2', openAtStart: 0, peak: 31, bound: 30, beyondBound: 1 });
  });
});
