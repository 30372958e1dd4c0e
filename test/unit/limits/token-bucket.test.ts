import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../../src/limits/token-bucket.js';
import { mulberry32 } from './virtual-time.js';

describe('TokenBucket', () => {
  it('starts full', () => {
    const b = new TokenBucket({ ratePerSec: 10, burst: 5 }, 1_000);
    expect(b.available(1_000)).toBe(5);
    expect(b.msUntil(5, 1_000)).toBe(0);
    expect(b.msUntilFull(1_000)).toBe(0);
  });

  it('lets exactly burst takes through at one instant and refuses the burst+1-th', () => {
    const b = new TokenBucket({ ratePerSec: 3, burst: 5 }, 0);
    for (let i = 0; i < 5; i++) expect(b.tryTake(1, 0)).toBe(true);
    expect(b.tryTake(1, 0)).toBe(false);
    expect(b.available(0)).toBe(0);
  });

  it('takes a multi-token cost only when all of it is there, and a refusal takes nothing', () => {
    const b = new TokenBucket({ ratePerSec: 10, burst: 10 }, 0);
    expect(b.tryTake(7, 0)).toBe(true);
    expect(b.tryTake(4, 0)).toBe(false);
    expect(b.available(0)).toBe(3);
    expect(b.tryTake(3, 0)).toBe(true);
    expect(b.available(0)).toBe(0);
  });

  it('refills continuously at ratePerSec and caps at burst', () => {
    const b = new TokenBucket({ ratePerSec: 10, burst: 5 }, 0);
    expect(b.tryTake(5, 0)).toBe(true);
    expect(b.available(100)).toBeCloseTo(1, 12);
    expect(b.available(250)).toBeCloseTo(2.5, 12);
    expect(b.available(500)).toBe(5);
    expect(b.available(60_000)).toBe(5);
  });

  it('msUntil gives the exact whole-ms wait for simple rates', () => {
    const b = new TokenBucket({ ratePerSec: 10, burst: 5 }, 0);
    b.tryTake(5, 0);
    expect(b.msUntil(1, 0)).toBe(100);
    expect(b.msUntil(3, 0)).toBe(300);
    expect(b.msUntil(1, 40)).toBe(60);
    expect(b.msUntilFull(0)).toBe(500);
    expect(b.msUntilFull(200)).toBe(300);
  });

  it('msUntil rounds a fractional wait up (3/s: 1 token needs 333.33 ms -> 334)', () => {
    const b = new TokenBucket({ ratePerSec: 3, burst: 3 }, 0);
    b.tryTake(3, 0);
    expect(b.msUntil(1, 0)).toBe(334);
    expect(b.tryTake(1, 333)).toBe(false);
    expect(b.tryTake(1, 334)).toBe(true);
  });

  it('cost > burst is never available: msUntil is Infinity and tryTake refuses even when full', () => {
    const b = new TokenBucket({ ratePerSec: 100, burst: 10 }, 0);
    expect(b.msUntil(11, 0)).toBe(Infinity);
    expect(b.msUntil(10.5, 1e9)).toBe(Infinity);
    expect(b.tryTake(11, 0)).toBe(false);
    expect(b.available(0)).toBe(10);
  });

  it('a cost of 0 is always available', () => {
    const b = new TokenBucket({ ratePerSec: 1, burst: 1 }, 0);
    b.tryTake(1, 0);
    expect(b.msUntil(0, 0)).toBe(0);
    expect(b.tryTake(0, 0)).toBe(true);
  });

  it('refuses a NaN cost without corrupting its state', () => {
    const b = new TokenBucket({ ratePerSec: 1, burst: 2 }, 0);
    expect(b.tryTake(Number.NaN, 0)).toBe(false);
    expect(b.msUntil(Number.NaN, 0)).toBe(Infinity);
    expect(b.available(0)).toBe(2);
  });

  describe('msUntil exactness over awkward rates', () => {
    const rates = [3, 7, 100, 1_048_576, 0.7, 1 / 3, 12_345.678];
    const starts = [0, 12_345.678, 1_700_000_000_123, 1_700_000_000_123.4567];
    const fractions = [1, 0.999, 0.5, 0.1, 1e-6];

    it('waiting exactly msUntil(cost) is always enough, and 1 ms less is never enough', () => {
      let checked = 0;
      for (const rate of rates) {
        for (const burst of [1, 5, 64, 100, 1_048_576]) {
          for (const start of starts) {
            for (const f of fractions) {
              const cost = Math.max(1, Math.round(burst * f));
              // Two identical buckets: one probes 1 ms early, the other checks the promised instant.
              const early = new TokenBucket({ ratePerSec: rate, burst }, start);
              const onTime = new TokenBucket({ ratePerSec: rate, burst }, start);
              early.tryTake(burst, start);
              onTime.tryTake(burst, start);
              const ms = onTime.msUntil(cost, start);
              expect(Number.isInteger(ms)).toBe(true);
              expect(ms).toBeGreaterThan(0);
              expect(early.tryTake(cost, start + ms - 1)).toBe(false);
              expect(onTime.tryTake(cost, start + ms)).toBe(true);
              checked++;
            }
          }
        }
      }
      expect(checked).toBe(rates.length * 5 * starts.length * fractions.length);
    });

    it('a client that always waits msUntil and then takes is never refused, and gets the configured rate', () => {
      for (const rate of [3, 7, 100, 1_048_576]) {
        for (const cost of [1, 2, 5, 1000]) {
          const burst = Math.max(cost, 10);
          const b = new TokenBucket({ ratePerSec: rate, burst }, 0);
          b.tryTake(burst, 0);
          let now = 0;
          const n = 300;
          for (let i = 0; i < n; i++) {
            now += b.msUntil(cost, now);
            expect(b.tryTake(cost, now)).toBe(true);
          }
          // n * cost tokens at `rate` per second; each wait rounds up by under 1 ms.
          const ideal = (n * cost * 1000) / rate;
          expect(now).toBeGreaterThanOrEqual(Math.floor(ideal));
          expect(now).toBeLessThanOrEqual(Math.ceil(ideal) + n);
        }
      }
    });

    it('random states and clocks (seeded): 1 ms before msUntil fails, at msUntil succeeds', () => {
      const rnd = mulberry32(7);
      const rateChoices = [3, 7, 100, 1_048_576, 0.7, 1 / 3, 12_345.678];
      const burstChoices = [5, 100, 1_048_576];
      let waits = 0;
      for (let k = 0; k < 1_000; k++) {
        const rate = rateChoices[k % rateChoices.length] as number;
        const burst = burstChoices[k % burstChoices.length] as number;
        let now = rnd() < 0.5 ? 1_700_000_000_000 + rnd() * 1e6 : rnd() * 1e5;
        const b = new TokenBucket({ ratePerSec: rate, burst }, now);
        for (let i = 0; i < 30; i++) {
          const cost = Math.max(1, Math.floor(rnd() * burst * (rnd() < 0.5 ? 0.01 : 1)));
          const ms = b.msUntil(cost, now);
          if (ms > 0) {
            expect(b.tryTake(cost, now + ms - 1)).toBe(false);
            waits++;
          }
          expect(b.tryTake(cost, now + ms)).toBe(true);
          now += ms + (rnd() < 0.3 ? rnd() * 50 : 0);
        }
      }
      expect(waits).toBeGreaterThan(20_000);
    });

    it('stays exact when available() is read between msUntil and tryTake (refill in several steps)', () => {
      for (const rate of [3, 7, 100, 1_048_576, 0.7]) {
        for (const start of starts) {
          const burst = 100;
          const b = new TokenBucket({ ratePerSec: rate, burst }, start);
          b.tryTake(burst, start);
          let now = start;
          for (let i = 0; i < 50; i++) {
            const cost = 1 + (i % 7);
            const ms = b.msUntil(cost, now);
            // Telemetry reads at awkward points in between.
            b.available(now + ms / 3);
            b.available(now + ms / 2 + 0.123);
            now += ms;
            expect(b.tryTake(cost, now)).toBe(true);
          }
        }
      }
    });
  });

  describe('clock going backwards', () => {
    it('adds no tokens, neither while behind nor when the clock catches up again', () => {
      const b = new TokenBucket({ ratePerSec: 10, burst: 5 }, 10_000);
      expect(b.tryTake(5, 10_000)).toBe(true);
      expect(b.available(5_000)).toBe(0);
      expect(b.tryTake(1, 5_000)).toBe(false);
      // Time 5_000..10_000 was already accounted for; only time after 10_000 refills.
      expect(b.available(10_000)).toBe(0);
      expect(b.available(10_100)).toBeCloseTo(1, 12);
    });

    it('msUntil counts the time to catch up with the latest clock reading', () => {
      const b = new TokenBucket({ ratePerSec: 10, burst: 5 }, 10_000);
      b.tryTake(5, 10_000);
      const ms = b.msUntil(1, 9_000);
      expect(ms).toBe(1_100);
      expect(b.tryTake(1, 9_000 + ms - 1)).toBe(false);
      expect(b.tryTake(1, 9_000 + ms)).toBe(true);
    });

    it('tokens already there can still be taken while the clock is behind', () => {
      const b = new TokenBucket({ ratePerSec: 10, burst: 5 }, 10_000);
      b.tryTake(2, 10_000);
      expect(b.msUntil(3, 9_000)).toBe(0);
      expect(b.tryTake(3, 9_000)).toBe(true);
      expect(b.tryTake(1, 9_000)).toBe(false);
    });
  });

  it('rejects a rate that is not finite and positive, and a negative burst', () => {
    expect(() => new TokenBucket({ ratePerSec: 0, burst: 1 }, 0)).toThrow(RangeError);
    expect(() => new TokenBucket({ ratePerSec: -1, burst: 1 }, 0)).toThrow(RangeError);
    expect(() => new TokenBucket({ ratePerSec: Number.POSITIVE_INFINITY, burst: 1 }, 0)).toThrow(RangeError);
    expect(() => new TokenBucket({ ratePerSec: 1, burst: -1 }, 0)).toThrow(RangeError);
    expect(() => new TokenBucket({ ratePerSec: 1, burst: Number.NaN }, 0)).toThrow(RangeError);
  });
});
