import { describe, expect, it } from 'vitest';
import { SlidingWindowLog } from '../../../src/limits/sliding-window.js';
import { mulberry32 } from './virtual-time.js';

const MIN = 60_000;

describe('SlidingWindowLog', () => {
  it('lets the limit-th request through and refuses the limit+1-th until the oldest falls out', () => {
    const log = new SlidingWindowLog(3, MIN);
    expect(log.msUntil(1, 0)).toBe(0);
    log.consume(1, 0);
    expect(log.msUntil(1, 10_000)).toBe(0);
    log.consume(1, 10_000);
    expect(log.msUntil(1, 20_000)).toBe(0);
    log.consume(1, 20_000);
    expect(log.used(30_000)).toBe(3);
    expect(log.remaining(30_000)).toBe(0);
    // The request at 0 stops counting at exactly 60_000.
    expect(log.msUntil(1, 30_000)).toBe(30_000);
    expect(log.msUntil(1, 59_999)).toBe(1);
    expect(log.msUntil(1, 60_000)).toBe(0);
  });

  it('counts a request at t in (now - windowMs, now]: it stops counting at exactly t + windowMs', () => {
    const log = new SlidingWindowLog(5, MIN);
    log.consume(1, 1_000);
    expect(log.used(1_000)).toBe(1);
    expect(log.used(60_999)).toBe(1);
    expect(log.used(61_000)).toBe(0);
    expect(log.remaining(61_000)).toBe(5);
  });

  it('slides instead of resetting on a calendar minute', () => {
    const log = new SlidingWindowLog(3, MIN);
    log.consume(1, 50_000);
    log.consume(1, 55_000);
    log.consume(1, 59_000);
    // A calendar-minute counter would be empty again at 60_000; the sliding window is still full.
    expect(log.used(61_000)).toBe(3);
    expect(log.msUntil(1, 61_000)).toBe(49_000);
    expect(log.used(110_000)).toBe(2);
    expect(log.msUntil(1, 110_000)).toBe(0);
  });

  it('msUntil(cost) waits for the cost-th oldest to fall out, and is Infinity when cost > limit', () => {
    const log = new SlidingWindowLog(4, MIN);
    log.consume(1, 0);
    log.consume(1, 1_000);
    log.consume(2, 2_000);
    expect(log.msUntil(1, 10_000)).toBe(50_000);
    expect(log.msUntil(2, 10_000)).toBe(51_000);
    expect(log.msUntil(3, 10_000)).toBe(52_000);
    expect(log.msUntil(4, 10_000)).toBe(52_000);
    expect(log.msUntil(5, 10_000)).toBe(Infinity);
  });

  it('msUntilEmpty is the time until the newest request falls out', () => {
    const log = new SlidingWindowLog(10, MIN);
    expect(log.msUntilEmpty(0)).toBe(0);
    log.consume(1, 1_000);
    log.consume(1, 7_500);
    expect(log.msUntilEmpty(10_000)).toBe(57_500);
    expect(log.msUntilEmpty(67_499)).toBe(1);
    expect(log.msUntilEmpty(67_500)).toBe(0);
  });

  it('rounds fractional-ms waits up, so waiting that long is enough', () => {
    const log = new SlidingWindowLog(1, 1_000);
    log.consume(1, 0.25);
    const ms = log.msUntil(1, 500);
    expect(ms).toBe(501);
    expect(log.msUntilEmpty(500)).toBe(501);
    expect(log.msUntil(1, 500 + ms - 1)).toBe(1);
    expect(log.msUntil(1, 500 + ms)).toBe(0);
  });

  it('a clock stepping back records at the latest time seen and frees nothing early', () => {
    const log = new SlidingWindowLog(2, MIN);
    log.consume(1, 10_000);
    log.consume(1, 5_000);
    expect(log.used(5_000)).toBe(2);
    expect(log.msUntilEmpty(5_000)).toBe(65_000);
    expect(log.used(69_999)).toBe(2);
    expect(log.used(70_000)).toBe(0);
  });

  it('limit 0 refuses everything', () => {
    const log = new SlidingWindowLog(0, MIN);
    expect(log.msUntil(1, 0)).toBe(Infinity);
    expect(log.msUntil(0, 0)).toBe(0);
    log.consume(1, 0);
    expect(log.used(0)).toBe(0);
    expect(log.remaining(0)).toBe(0);
  });

  it('over-consuming keeps the newest limit entries, which still answer "is it full" exactly', () => {
    const log = new SlidingWindowLog(3, MIN);
    log.consume(2, 0);
    log.consume(3, 10_000);
    expect(log.used(10_000)).toBe(3);
    // Full until the 10_000 entries fall out (the ones at 0 are older and would leave first).
    expect(log.msUntil(1, 60_000)).toBe(10_000);
    expect(log.used(70_000)).toBe(0);
  });

  it('matches a naive array log over a long random run (ring wrap-around)', () => {
    const rnd = mulberry32(42);
    const limit = 7;
    const windowMs = 1_000;
    const log = new SlidingWindowLog(limit, windowMs);
    let naive: number[] = [];
    let now = 0;
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      now += Math.floor(rnd() * 300);
      naive = naive.filter((t) => t + windowMs > now);
      const cost = 1 + Math.floor(rnd() * 3);
      expect(log.used(now)).toBe(naive.length);
      const wait = log.msUntil(cost, now);
      if (naive.length + cost <= limit) {
        expect(wait).toBe(0);
        log.consume(cost, now);
        for (let c = 0; c < cost; c++) naive.push(now);
        accepted++;
      } else {
        const freeing = naive[naive.length + cost - limit - 1] as number;
        expect(wait).toBe(freeing + windowMs - now);
      }
      expect(log.msUntilEmpty(now)).toBe(naive.length === 0 ? 0 : (naive[naive.length - 1] as number) + windowMs - now);
    }
    expect(accepted).toBeGreaterThan(5_000);
  });

  it('rejects a non-integer or negative limit and a non-positive window', () => {
    expect(() => new SlidingWindowLog(1.5, MIN)).toThrow(RangeError);
    expect(() => new SlidingWindowLog(-1, MIN)).toThrow(RangeError);
    expect(() => new SlidingWindowLog(1, 0)).toThrow(RangeError);
  });
});
