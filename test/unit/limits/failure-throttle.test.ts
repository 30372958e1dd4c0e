import { describe, expect, it } from 'vitest';
import { FailureThrottle } from '../../../src/limits/failure-throttle.js';

describe('FailureThrottle', () => {
  it('lets a key try until max failures fall in the window, then refuses it until the oldest leaves', () => {
    const t = new FailureThrottle(3, 60_000);
    t.fail('a', 0);
    t.fail('a', 10_000);
    expect(t.retryAfterMs('a', 10_000)).toBe(0);
    t.fail('a', 20_000);
    expect(t.retryAfterMs('a', 20_000)).toBe(40_000); // the failure at 0 leaves at 60 s
    expect(t.retryAfterMs('a', 59_999)).toBe(1);
    expect(t.retryAfterMs('a', 60_000)).toBe(0);
  });

  it('keeps keys apart', () => {
    const t = new FailureThrottle(1, 60_000);
    t.fail('a', 0);
    expect(t.retryAfterMs('a', 1)).toBeGreaterThan(0);
    expect(t.retryAfterMs('b', 1)).toBe(0);
  });

  it('tracks at most maxKeys keys, dropping the oldest first', () => {
    const t = new FailureThrottle(1, 60_000, 2);
    t.fail('a', 0);
    t.fail('b', 1);
    t.fail('c', 2);
    expect(t.size).toBe(2);
    expect(t.retryAfterMs('a', 3)).toBe(0);
    expect(t.retryAfterMs('c', 3)).toBeGreaterThan(0);
  });

  it('sweeps keys whose window emptied', () => {
    const t = new FailureThrottle(5, 60_000);
    t.fail('a', 0);
    t.fail('b', 1);
    expect(t.size).toBe(2);
    t.fail('c', 120_000);
    expect(t.size).toBe(1);
  });
});
