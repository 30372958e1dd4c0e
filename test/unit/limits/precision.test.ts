// End-to-end precision of throttleByBucket + TokenBucket under simulated traffic, in virtual time.
import { VirtualTimeScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { throttleByBucket } from '../../../src/limits/throttle.js';
import { TokenBucket } from '../../../src/limits/token-bucket.js';
import { Overflow, fromTimes, mulberry32, record } from './virtual-time.js';

interface Traffic {
  /** Average send rate, in values per second. */
  readonly perSec: number;
  readonly seconds: number;
  /** Ordinary clumps hold 1..maxClump values. */
  readonly maxClump: number;
  /** Occasionally a clump this big (the full burst) follows an idle gap of at least `idleMs`. */
  readonly burstClump: number;
  readonly burstChance: number;
  readonly idleMs: number;
  /** Network delay added to each clump, uniform in [0, jitterMs). */
  readonly jitterMs: number;
}

/**
 * Arrival times of a client that averages `perSec` but sends in clumps. Value n is "due" at n / perSec;
 * a clump goes out once its last value is due, plus network jitter (and, for a full-burst clump, after
 * an idle gap). Values are only ever delayed against the even pace, never sent early, so the client
 * really does average perSec and never gets ahead of it.
 */
function clumpyArrivals(seed: number, tr: Traffic): { times: number[]; burstClumps: number } {
  const rnd = mulberry32(seed);
  const times: number[] = [];
  const due = (n: number): number => (n * 1000) / tr.perSec;
  let n = 0;
  let prev = 0;
  let burstClumps = 0;
  for (;;) {
    const isBurst = rnd() < tr.burstChance;
    const k = isBurst ? tr.burstClump : 1 + Math.floor(rnd() * tr.maxClump);
    const last = n + k - 1;
    if (due(last) >= tr.seconds * 1000) break;
    let at = Math.ceil(due(last) + rnd() * tr.jitterMs);
    if (isBurst) {
      at = Math.max(at, prev + tr.idleMs);
      burstClumps++;
    }
    at = Math.max(at, prev);
    for (let i = 0; i < k; i++) times.push(at);
    prev = at;
    n += k;
  }
  return { times, burstClumps };
}

function run(
  times: readonly number[],
  cost: number,
  bucket: { ratePerSec: number; burst: number; maxQueuedCost: number },
): {
  rec: ReturnType<typeof record<number>>['rec'];
  delays: number[];
} {
  const vts = new VirtualTimeScheduler();
  const values = times.map((_, i) => i);
  const delays: number[] = [];
  const throttled = fromTimes(times, values, vts).pipe(
    throttleByBucket<number>({
      bucket: new TokenBucket({ ratePerSec: bucket.ratePerSec, burst: bucket.burst }, vts.now()),
      cost: () => cost,
      maxQueuedCost: bucket.maxQueuedCost,
      scheduler: vts,
      overflowError: (ms) => new Overflow(ms),
      onDelay: (ms) => delays.push(ms),
    }),
  );
  const { rec } = record(throttled, vts);
  vts.flush();
  return { rec, delays };
}

function expectAllInOrder(rec: { values: { v: number }[] }, n: number): void {
  expect(rec.values.length).toBe(n);
  expect(rec.values.every((x, i) => x.v === i)).toBe(true);
}

const MESSAGES = { ratePerSec: 100, burst: 100, maxQueuedCost: 100 }; // the defaults
const MIB = 1_048_576;
const FRAME = 64 * 1024;
const BYTES = { ratePerSec: MIB, burst: MIB, maxQueuedCost: MIB };

describe('throttle precision (defaults: 100 msg/s, burst 100, queue 100)', () => {
  it('a jittery client averaging 95 % of the rate for 30 s is never errored and every message is emitted in order', () => {
    const { times, burstClumps } = clumpyArrivals(0x5eed, {
      perSec: 95,
      seconds: 30,
      maxClump: 20,
      burstClump: 100,
      burstChance: 0.04,
      idleMs: 1_000,
      jitterMs: 40,
    });
    // The scenario is what it claims: ~95/s over 30 s, with several full-burst clumps.
    expect(times.length).toBeGreaterThanOrEqual(2_840);
    expect(times.length).toBeLessThanOrEqual(2_850);
    expect(burstClumps).toBeGreaterThanOrEqual(3);

    const { rec, delays } = run(times, 1, MESSAGES);
    expect(rec.error).toBeNull();
    expectAllInOrder(rec, times.length);
    expect(rec.completedAt).not.toBeNull();
    // It was throttled, not merely passed through: some messages waited, none for long.
    expect(delays.length).toBeGreaterThan(0);
    expect(Math.max(...delays)).toBeLessThanOrEqual(1_000);
  });

  it('a client sending every 5 ms (2x the rate) is errored at 1995 ms with retryAfterMs 1005', () => {
    const times = Array.from({ length: 2_000 }, (_, i) => i * 5);
    const { rec } = run(times, 1, MESSAGES);
    // Messages 0..198 pass on tokens (100 + 0.5 refilled per 5 ms), then one is served every 10 ms from
    // 1000 ms. At 1995, 400 have arrived (one at t = 0) and 299 were served: 101 wait > 100.
    expect(rec.error?.t).toBe(1_995);
    expect(rec.values.length).toBe(299);
    expectAllInOrder(rec, 299);
    // 101 waiting, 0.5 tokens in the bucket: 100.5 tokens at 100/s.
    expect(rec.error?.err).toEqual(new Overflow(1_005));
  });
});

describe('throttle precision (bytes: 1 MiB/s, burst 1 MiB, 1 MiB waiting, 64 KiB frames)', () => {
  it('frames averaging 0.95 MiB/s in jittery clumps for 30 s are never errored and all emitted in order', () => {
    const { times, burstClumps } = clumpyArrivals(0xb17e5, {
      perSec: (0.95 * MIB) / FRAME, // 15.2 frames/s
      seconds: 30,
      maxClump: 4,
      burstClump: MIB / FRAME, // 16 frames: the whole byte burst
      burstChance: 0.08,
      idleMs: 1_000,
      jitterMs: 40,
    });
    expect(times.length).toBeGreaterThanOrEqual(450);
    expect(times.length).toBeLessThanOrEqual(456);
    expect(burstClumps).toBeGreaterThanOrEqual(3);

    const { rec, delays } = run(times, FRAME, BYTES);
    expect(rec.error).toBeNull();
    expectAllInOrder(rec, times.length);
    expect(delays.length).toBeGreaterThan(0);
  });

  it('frames at 2 MiB/s (every 31.25 ms) are errored at 1937.5 ms with retryAfterMs 1000', () => {
    const times = Array.from({ length: 320 }, (_, i) => i * 31.25);
    const { rec } = run(times, FRAME, BYTES);
    // Frames 0..30 pass on tokens; from then on one frame is paid for every 62.5 ms. Drains are
    // scheduled in whole ms (msUntil rounds up), so from fractional arrival times each runs 0.75 ms
    // after its frame's tokens are complete (1000.75, 1062.75, ...; the leftover 0.75 ms of tokens
    // carries over, so the rate is not lost). The drain due at 1937.5 runs at 1937.75, after frame 62
    // arrived at 1937.5: 63 arrived, 46 served, 17 frames (1088 KiB) would wait > 1 MiB.
    expect(rec.error?.t).toBe(1_937.5);
    expectAllInOrder(rec, 46);
    // 17 frames waiting and exactly one frame of tokens in the bucket (61.75 + 0.75 ms of refill):
    // 16 frames = 1 MiB at 1 MiB/s.
    expect(rec.error?.err).toEqual(new Overflow(1_000));
  });
});
