import { describe, expect, it } from 'vitest';
import { SlidingWindowLog } from '../../../src/limits/sliding-window.js';
import { WindowCounter, windowBucketMs } from '../../../src/limits/window-counter.js';
import { mulberry32 } from './virtual-time.js';

const MIN = 60_000;

describe('WindowCounter', () => {
  it('uses 60 buckets of whole ms, at least 1 ms', () => {
    expect(windowBucketMs(60_000)).toBe(1_000);
    expect(windowBucketMs(60_250)).toBe(1_005);
    expect(windowBucketMs(30)).toBe(1);
    const w = new WindowCounter(5, 60_250, 0);
    expect([w.bucketMs, w.span]).toEqual([1_005, 60]);
  });

  it('counts a request until its bucket has left the window, then frees it', () => {
    const w = new WindowCounter(2, MIN, 0);
    w.consume(1, 500); // bucket [0, 1 s)
    w.consume(1, 10_000);
    expect(w.used(30_000)).toBe(2);
    expect(w.msUntil(1, 30_000)).toBe(31_000); // bucket 0 stops counting at 61 s
    expect(w.msUntilEmpty(30_000)).toBe(41_000); // bucket 10 at 71 s
    expect(w.used(60_999)).toBe(2);
    expect(w.used(61_000)).toBe(1);
    expect(w.remaining(71_000)).toBe(2);
    expect(w.msUntilEmpty(71_000)).toBe(0);
  });

  it('msUntil(cost) frees enough buckets from the oldest on, and is Infinity over the limit', () => {
    const w = new WindowCounter(4, MIN, 0);
    w.consume(1, 0);
    w.consume(1, 1_000);
    w.consume(2, 2_000);
    expect(w.msUntil(1, 10_000)).toBe(51_000);
    expect(w.msUntil(2, 10_000)).toBe(52_000);
    expect(w.msUntil(3, 10_000)).toBe(53_000);
    expect(w.msUntil(5, 10_000)).toBe(Infinity);
  });

  it('forgets everything after a silence longer than the window, and keeps counting after a clock step back', () => {
    const w = new WindowCounter(3, MIN, 0);
    w.consume(3, 0);
    expect(w.used(500_000)).toBe(0);
    w.consume(1, 500_000);
    w.consume(1, 499_000); // the clock stepped back: still counted, in the newest bucket
    expect(w.used(500_500)).toBe(2);
    expect(w.msUntilEmpty(500_500)).toBe(60_500);
  });

  it('never lets more than `limit` into any window, and refuses at most about one bucket longer than an exact log', () => {
    for (const seed of [1, 2, 3, 4]) {
      const rand = mulberry32(seed);
      const limit = 1 + Math.floor(rand() * 8);
      const windowMs = [1_000, 7_000, 60_000][seed % 3]!;
      const w = new WindowCounter(limit, windowMs, 0);
      // The exact log sees only what the counter admitted: it must agree each was allowed.
      const exact = new SlidingWindowLog(limit, windowMs);
      let t = 0;
      let admitted = 0;
      let refused = 0;
      for (let i = 0; i < 3_000; i++) {
        t += Math.floor(rand() * rand() * windowMs * 0.2);
        const cost = rand() < 0.8 ? 1 : 2;
        const wait = w.msUntil(cost, t);
        const exactWait = exact.msUntil(cost, t);
        expect(wait, `seed ${seed} t ${t}`).toBeGreaterThanOrEqual(exactWait);
        // One bucket, plus what rounding the bucket to whole ms adds (0 for a minute, 20 ms for 7 s).
        if (wait !== Infinity) expect(wait - exactWait, `seed ${seed} t ${t}`).toBeLessThanOrEqual((w.span + 1) * w.bucketMs - windowMs);
        if (wait === 0) {
          w.consume(cost, t);
          exact.consume(cost, t);
          admitted++;
        } else refused++;
      }
      expect(admitted).toBeGreaterThan(100);
      expect(refused).toBeGreaterThan(100);
    }
  });
});
