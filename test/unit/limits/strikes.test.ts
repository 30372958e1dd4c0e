import { describe, expect, it } from 'vitest';
import { StrikeCounter } from '../../../src/limits/strikes.js';

describe('StrikeCounter (more than 10 invalid messages within 60 s)', () => {
  it('10 strikes within 60 s do not trip; the 11th does', () => {
    const s = new StrikeCounter(10, 60_000);
    for (let i = 0; i < 10; i++) expect(s.strike(i * 5_000)).toBe(false);
    expect(s.count(45_000)).toBe(10);
    expect(s.strike(59_999)).toBe(true);
    expect(s.count(59_999)).toBe(11);
  });

  it('11 strikes at the same instant trip on the 11th', () => {
    const s = new StrikeCounter(10, 60_000);
    const tripped: boolean[] = [];
    for (let i = 0; i < 11; i++) tripped.push(s.strike(0));
    expect(tripped.indexOf(true)).toBe(10);
  });

  it('strikes older than 60 s fall out and no longer count', () => {
    const s = new StrikeCounter(10, 60_000);
    for (let i = 0; i < 10; i++) s.strike(i * 1_000); // 0 .. 9_000
    // At 60_000 the strike at 0 has just fallen out: 9 remain, this one makes 10.
    expect(s.strike(60_000)).toBe(false);
    expect(s.count(60_000)).toBe(10);
    // At 60_500 nothing more fell out: this is the 11th within the window.
    expect(s.strike(60_500)).toBe(true);
    expect(s.count(200_000)).toBe(0);
    expect(s.strike(200_000)).toBe(false);
  });

  it('keeps reporting a trip while more than max remain within the window', () => {
    const s = new StrikeCounter(2, 1_000);
    expect(s.strike(0)).toBe(false);
    expect(s.strike(100)).toBe(false);
    expect(s.strike(200)).toBe(true);
    expect(s.strike(300)).toBe(true);
    // (100, 1_100]: strikes at 200, 300, 1_100.
    expect(s.strike(1_100)).toBe(true);
    // (1_250, 2_250]: only this one.
    expect(s.strike(2_250)).toBe(false);
  });
});
