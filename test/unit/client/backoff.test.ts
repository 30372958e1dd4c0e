import { describe, expect, it } from 'vitest';
import { Backoff, DEFAULT_BACKOFF } from '../../../src/client/backoff.js';
import { mulberry32 } from '../limits/virtual-time.js';

const opts = { baseMs: 500, capMs: 30_000, stableMs: 5_000 };
/** A random source that returns the given values in turn. */
const seq = (...values: number[]): (() => number) => {
  let i = 0;
  return () => values[i++ % values.length] as number;
};

describe('Backoff', () => {
  it('the jitter window doubles per attempt from baseMs', () => {
    const b = new Backoff(opts, seq(0.999_999));
    const delays = Array.from({ length: 6 }, () => b.next().delayMs);
    expect(delays).toEqual([499, 999, 1999, 3999, 7999, 15_999]);
    expect(b.attempts).toBe(6);
  });

  it('is capped at capMs, even for huge attempt numbers', () => {
    const b = new Backoff(opts, seq(0.999_999));
    for (let i = 0; i < 7; i++) b.next();
    expect(b.next().delayMs).toBe(29_999);
    expect(b.ceilingMs(8)).toBe(30_000);
    expect(b.ceilingMs(5000)).toBe(30_000);
  });

  it('full jitter: delays cover [0, ceiling) and never leave it', () => {
    const rand = mulberry32(1);
    const attempt = 4; // ceiling 4000 ms
    const delays: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const b = new Backoff(opts, rand);
      for (let k = 1; k < attempt; k++) b.next();
      delays.push(b.next().delayMs);
    }
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...delays)).toBeLessThan(4000);
    // Spread over the whole window, not clustered: every 400 ms decile is hit.
    const deciles = new Set(delays.map((d) => Math.floor(d / 400)));
    expect([...deciles].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(new Backoff(opts, seq(0)).next().delayMs).toBe(0);
  });

  it('honours retry_after_ms as a floor, with a jitter below baseMs on top', () => {
    expect(new Backoff(opts, seq(0)).next({ retryAfterMs: 7_000 }).delayMs).toBe(7_000);
    expect(new Backoff(opts, seq(0.999_999)).next({ retryAfterMs: 7_000 }).delayMs).toBe(7_499);
    // A retry_after beyond the cap is still honoured: the server knows when it can take us.
    expect(new Backoff(opts, seq(0.5)).next({ retryAfterMs: 60_000 }).delayMs).toBe(60_250);
    // 0 means "no advice": plain backoff.
    expect(new Backoff(opts, seq(0.5)).next({ retryAfterMs: 0 }).delayMs).toBe(250);
  });

  it('immediate (1012) makes only the first attempt wait 0 ms', () => {
    const b = new Backoff(opts, seq(0.5));
    expect(b.next({ immediate: true })).toEqual({ attempt: 1, delayMs: 0 });
    expect(b.next({ immediate: true })).toEqual({ attempt: 2, delayMs: 500 });
  });

  it('resets the attempt counter only after a connection stayed up stableMs', () => {
    const b = new Backoff(opts, seq(0.999_999));
    b.next();
    b.next();
    b.next();
    b.opened(10_000);
    b.closed(14_999); // up 4.999 s: not stable
    expect(b.next()).toEqual({ attempt: 4, delayMs: 3999 });
    b.opened(20_000);
    b.closed(25_000); // up exactly 5 s: stable
    expect(b.next()).toEqual({ attempt: 1, delayMs: 499 });
  });

  it('a close without an open (a failed attempt) keeps counting', () => {
    const b = new Backoff(opts, seq(0));
    b.next();
    b.closed(1_000_000);
    expect(b.next().attempt).toBe(2);
  });

  it('reset() forgets every attempt; a random source outside [0, 1) counts as 0', () => {
    const b = new Backoff(opts, seq(1.5, Number.NaN));
    expect(b.next().delayMs).toBe(0);
    expect(b.next().delayMs).toBe(0);
    b.reset();
    expect(b.attempts).toBe(0);
  });

  it('refuses nonsensical options', () => {
    expect(() => new Backoff({ ...opts, baseMs: 0 }, Math.random)).toThrow(/baseMs/);
    expect(() => new Backoff({ ...opts, capMs: 100 }, Math.random)).toThrow(/capMs/);
    expect(() => new Backoff({ ...opts, stableMs: -1 }, Math.random)).toThrow(/stableMs/);
  });

  it('defaults: 500 ms base, 30 s cap, 5 s stable', () => {
    expect(DEFAULT_BACKOFF).toEqual({ baseMs: 500, capMs: 30_000, stableMs: 5_000 });
  });
});
