/**
 * Client-side pacing (src/client/pacing.ts) against the gateway's own per-connection pipeline:
 * the frames the pacer releases, at the times it releases them, are fed through the server's
 * `throttleByBucket` byte and message stages (src/limits/throttle.ts) on a virtual clock, exactly
 * as src/edge/connection.ts wires them. A paced upload must never overflow them (no 4029).
 */
import { VirtualTimeScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { Pacer, PacingBucket, pacingLimits, type PacingLimits } from '../../../src/client/pacing.js';
import { throttleByBucket } from '../../../src/limits/throttle.js';
import { TokenBucket } from '../../../src/limits/token-bucket.js';
import { fromTimes, mulberry32, record } from '../limits/virtual-time.js';

interface Frame {
  readonly bytes: number;
  readonly seq: number;
}

interface Plan extends PacingLimits {
  readonly messageQueue: number;
}

/** The contract's standard plan (CONTRACT.md §2). */
const STANDARD: Plan = { messagesPerSecond: 100, messageBurst: 100, messageQueue: 100, bytesPerSecond: 1_048_576, byteBurst: 1_048_576, maxFrameBytes: 262_144 };
/** A plan tighter than real-time 16 kHz speech (32,000 B/s would need 40 ms frames at 25 frames/s). */
const TIGHT: Plan = { messagesPerSecond: 20, messageBurst: 5, messageQueue: 5, bytesPerSecond: 24_000, byteBurst: 16_000, maxFrameBytes: 8_000 };

const SIXTY_SECONDS_PCM16_16K = 60 * 16_000 * 2;
/** The `session.start` frame that went out before the limits were known. */
const START_BYTES = 64;

interface Run {
  /** [send time, frame] in the order the client sent them. */
  readonly sent: { t: number; frame: Frame }[];
  readonly endMs: number;
}

/**
 * Hands `total` bytes to the pacer at t=0 in chunks of `pacer.chunkBytes` (as sendAudio does),
 * then wakes whenever `waitMs` says, late by `lateness()` ms (timers fire late, never early).
 */
function runClient(plan: Plan, total: number, opts: { margin?: number; maxChunkBytes?: number; lateness?: () => number; extra?: Frame[] } = {}): Run {
  const pacer = new Pacer<Frame>({ margin: opts.margin ?? 0.1, maxChunkBytes: opts.maxChunkBytes ?? 32_768 });
  let now = 0;
  pacer.configure(plan, now, { frames: 1, bytes: START_BYTES });
  let seq = 0;
  for (let off = 0; off < total; off += pacer.chunkBytes) {
    const bytes = Math.min(pacer.chunkBytes, total - off);
    pacer.enqueue({ bytes, seq: seq++ }, bytes);
  }
  for (const f of opts.extra ?? []) pacer.enqueue({ ...f, seq: seq++ }, f.bytes);
  const sent: { t: number; frame: Frame }[] = [];
  for (let guard = 0; guard < 1_000_000; guard++) {
    for (const frame of pacer.take(now)) sent.push({ t: now, frame });
    const wait = pacer.waitMs(now);
    if (wait === undefined) break;
    now += wait + (opts.lateness?.() ?? 0);
  }
  expect(pacer.size).toBe(0);
  return { sent, endMs: now };
}

interface ServerOutcome {
  readonly error: unknown;
  readonly delivered: Frame[];
  /** Frames that had to wait in the server's byte or message stage. */
  readonly waited: number;
}

/**
 * The gateway's pipeline for one connection (src/edge/connection.ts): byte bucket then message
 * bucket, each queueing up to byteBurst bytes / messageQueue frames, on a virtual clock. The
 * `session.start` frame arrives first at t=0.
 */
function runServer(plan: Plan, arrivals: { t: number; frame: Frame }[]): ServerOutcome {
  const scheduler = new VirtualTimeScheduler();
  const start: Frame = { bytes: START_BYTES, seq: -1 };
  const times = [0, ...arrivals.map((a) => a.t)];
  const frames = [start, ...arrivals.map((a) => a.frame)];
  let waited = 0;
  const out$ = fromTimes(times, frames, scheduler).pipe(
    throttleByBucket<Frame>({
      bucket: new TokenBucket({ ratePerSec: plan.bytesPerSecond, burst: plan.byteBurst }, 0),
      cost: (f) => f.bytes,
      maxQueuedCost: plan.byteBurst,
      scheduler,
      overflowError: (retryAfterMs) => ({ code: 'byte_rate', retryAfterMs }),
      onDelay: () => waited++,
    }),
    throttleByBucket<Frame>({
      bucket: new TokenBucket({ ratePerSec: plan.messagesPerSecond, burst: plan.messageBurst }, 0),
      cost: () => 1,
      maxQueuedCost: plan.messageQueue,
      scheduler,
      overflowError: (retryAfterMs) => ({ code: 'message_rate', retryAfterMs }),
      onDelay: () => waited++,
    }),
  );
  const { rec } = record(out$, scheduler);
  scheduler.flush();
  return { error: rec.error?.err ?? null, delivered: rec.values.map((v) => v.v).filter((f) => f.seq >= 0), waited };
}

const sum = (frames: Frame[]): number => frames.reduce((n, f) => n + f.bytes, 0);

describe('Pacer against the gateway pipeline', () => {
  it.each([
    ['standard', STANDARD],
    ['tight', TIGHT],
  ])('a 60 s recording (1,920,000 bytes) handed over at once never makes the %s plan wait or overflow', (_name, plan) => {
    const run = runClient(plan, SIXTY_SECONDS_PCM16_16K);
    const server = runServer(plan, run.sent);
    expect(server.error).toBeNull();
    expect(server.waited).toBe(0);
    expect(sum(server.delivered)).toBe(SIXTY_SECONDS_PCM16_16K);
    expect(server.delivered.map((f) => f.seq)).toEqual(run.sent.map((s) => s.frame.seq));
    expect(Math.max(...run.sent.map((s) => s.frame.bytes))).toBeLessThanOrEqual(plan.maxFrameBytes);
  });

  it('paces at 90 % of the byte rate: the tight plan takes the time its byte bucket needs, no more', () => {
    const run = runClient(TIGHT, SIXTY_SECONDS_PCM16_16K);
    // (total + start - 0.9 burst) / (0.9 rate), whole ms per wake.
    const ideal = ((SIXTY_SECONDS_PCM16_16K + START_BYTES - 0.9 * TIGHT.byteBurst) / (0.9 * TIGHT.bytesPerSecond)) * 1000;
    expect(run.endMs).toBeGreaterThanOrEqual(Math.floor(ideal));
    expect(run.endMs).toBeLessThanOrEqual(Math.ceil(ideal) + run.sent.length);
  });

  it('timers that fire late (0-50 ms, seeded) still never make the server wait', () => {
    const rand = mulberry32(7);
    const run = runClient(TIGHT, SIXTY_SECONDS_PCM16_16K, { lateness: () => Math.floor(rand() * 50) });
    const server = runServer(TIGHT, run.sent);
    expect(server.error).toBeNull();
    expect(server.waited).toBe(0);
    expect(sum(server.delivered)).toBe(SIXTY_SECONDS_PCM16_16K);
  });

  it('network jitter (0-800 ms per frame, in order) makes the server queue some frames but never overflow', () => {
    // The tight plan's server is full (16,000 B) while the client paces at 21,600 B/s: a stall of D
    // seconds then a bunch makes it wait once 21,600 D > 16,000. Its 5-frame message queue is what
    // overflows first, from about 1.2 s of jitter (measured over 20 seeds); 0.8 s stays clear.
    const rand = mulberry32(42);
    const run = runClient(TIGHT, SIXTY_SECONDS_PCM16_16K);
    let last = 0;
    const arrivals = run.sent.map((s) => {
      last = Math.max(last, s.t + Math.floor(rand() * 800));
      return { t: last, frame: s.frame };
    });
    const server = runServer(TIGHT, arrivals);
    expect(server.error).toBeNull();
    expect(server.waited).toBeGreaterThan(0); // the jitter did bunch frames: the check is not vacuous
    expect(sum(server.delivered)).toBe(SIXTY_SECONDS_PCM16_16K);
  });

  it('the same recording unpaced overflows the tight plan (4029): the simulation can fail', () => {
    const sent = [];
    for (let off = 0, seq = 0; off < SIXTY_SECONDS_PCM16_16K; off += 8000) sent.push({ t: 0, frame: { bytes: 8000, seq: seq++ } });
    expect(runServer(TIGHT, sent).error).toMatchObject({ code: 'byte_rate' });
  });

  it('with margin 0 the client runs exactly at the server limits and the server still never waits', () => {
    const run = runClient(TIGHT, 200_000, { margin: 0 });
    const server = runServer(TIGHT, run.sent);
    expect(server.error).toBeNull();
    expect(server.waited).toBe(0);
    expect(sum(server.delivered)).toBe(200_000);
  });

  it('small frames are limited by the message bucket, not the byte bucket', () => {
    const plan: Plan = { ...TIGHT, bytesPerSecond: 1_000_000, byteBurst: 1_000_000, maxFrameBytes: 262_144 };
    const run = runClient(plan, 200 * 320, { maxChunkBytes: 320 });
    expect(run.sent).toHaveLength(200);
    // 200 frames + session.start at 18 frames/s after a burst of 4.5: about 11 s.
    expect(run.endMs).toBeGreaterThanOrEqual(10_800);
    const server = runServer(plan, run.sent);
    expect(server.error).toBeNull();
    expect(server.waited).toBe(0);
  });

  it('a text frame larger than the client burst waits for a full bucket, then goes; the server accepts it at once', () => {
    const plan: Plan = { ...TIGHT, byteBurst: 10_000, maxFrameBytes: 10_000 };
    const run = runClient(plan, 20_000, { extra: [{ bytes: 9_800, seq: 0 }] });
    const big = run.sent.find((s) => s.frame.bytes === 9_800)!;
    expect(big).toBeDefined();
    const server = runServer(plan, run.sent);
    expect(server.error).toBeNull();
    expect(server.waited).toBe(0);
    expect(server.delivered.at(-1)!.bytes).toBe(9_800);
  });
});

describe('Pacer unit behaviour', () => {
  it('releases nothing until configured, then frames in order', () => {
    const p = new Pacer<string>();
    p.enqueue('a', 10);
    p.enqueue('b', 10);
    expect(p.configured).toBe(false);
    expect(p.take(0)).toEqual([]);
    expect(p.waitMs(0)).toBeUndefined();
    p.configure(STANDARD, 0);
    expect(p.take(0)).toEqual(['a', 'b']);
    expect(p.waitMs(0)).toBeUndefined();
    expect(p.size).toBe(0);
    expect(p.waitingBytes).toBe(0);
  });

  it('chunkBytes is even and at most max_frame_bytes, the option and the client byte capacity', () => {
    const p = new Pacer<string>({ margin: 0.1, maxChunkBytes: 32_768 });
    expect(p.chunkBytes).toBe(32_768);
    p.configure({ ...STANDARD, maxFrameBytes: 4_001 }, 0);
    expect(p.chunkBytes).toBe(4_000);
    p.configure({ ...STANDARD, byteBurst: 3_000 }, 0);
    expect(p.chunkBytes).toBe(2_700);
  });

  it('charges what went out before the limits were known (session.start)', () => {
    const p = new Pacer<string>({ margin: 0, maxChunkBytes: 1000 });
    p.configure({ ...TIGHT, messageBurst: 2 }, 0, { frames: 1, bytes: 100 });
    p.enqueue('a', 1);
    p.enqueue('b', 1);
    expect(p.take(0)).toEqual(['a']);
    expect(p.waitMs(0)).toBe(50); // 1 message at 20/s
  });

  it('a frame left waiting keeps everything behind it waiting (order before throughput)', () => {
    const p = new Pacer<string>({ margin: 0, maxChunkBytes: 1000 });
    p.configure({ ...TIGHT, byteBurst: 1000, bytesPerSecond: 1000 }, 0);
    p.enqueue('big', 900);
    p.enqueue('huge', 1000);
    p.enqueue('tiny', 1);
    expect(p.take(0)).toEqual(['big']);
    expect(p.waitMs(0)).toBe(900); // 'huge' needs a full bucket; 'tiny' may not overtake it
    expect(p.take(899)).toEqual([]);
    expect(p.take(900)).toEqual(['huge']);
    expect(p.waitMs(900)).toBe(1);
    expect(p.take(901)).toEqual(['tiny']);
  });

  it('unshift puts frames back in front, rechunk cuts oversized frames, remove and clear empty the queue', () => {
    const p = new Pacer<{ name: string; bytes: number }>();
    p.enqueue({ name: 'later', bytes: 10 }, 10);
    p.unshift([
      { value: { name: 'first', bytes: 5 }, bytes: 5 },
      { value: { name: 'big', bytes: 25 }, bytes: 25 },
    ]);
    expect(p.waitingBytes).toBe(40);
    p.rechunk(10, (v, max) => {
      const out = [];
      for (let off = 0; off < v.bytes; off += max) {
        const bytes = Math.min(max, v.bytes - off);
        out.push({ value: { name: `${v.name}@${off}`, bytes }, bytes });
      }
      return out;
    });
    expect(p.remove((v) => v.name === 'later').map((v) => v.name)).toEqual(['later']);
    expect(p.clear().map((v) => v.name)).toEqual(['first', 'big@0', 'big@10', 'big@20']);
    expect(p.size).toBe(0);
    expect(p.waitingBytes).toBe(0);
  });

  it('refuses a margin outside [0, 0.9] and a chunk size below 2', () => {
    expect(() => new Pacer({ margin: 0.95, maxChunkBytes: 100 })).toThrow(/margin/);
    expect(() => new Pacer({ margin: -0.1, maxChunkBytes: 100 })).toThrow(/margin/);
    expect(() => new Pacer({ margin: 0.1, maxChunkBytes: 1 })).toThrow(/maxChunkBytes/);
  });

  it('pacingLimits reads session.created.limits', () => {
    expect(
      pacingLimits({
        messages_per_second: 100,
        message_burst: 50,
        message_queue: 100,
        bytes_per_second: 64_000,
        byte_burst: 32_000,
        max_frame_bytes: 16_000,
        max_session_seconds: 1800,
        idle_timeout_seconds: 120,
        resume_window_seconds: 60,
        max_utterance_bytes: 1e6,
        max_text_chars: 2000,
        audio: { format: 'pcm16', sample_rate: 16000 },
      }),
    ).toEqual({ messagesPerSecond: 100, messageBurst: 50, bytesPerSecond: 64_000, byteBurst: 32_000, maxFrameBytes: 16_000 });
  });
});

describe('PacingBucket', () => {
  it('msUntil is the whole-ms wait after which the cost can be taken', () => {
    const b = new PacingBucket(1000, 500, 0);
    b.charge(500, 0);
    expect(b.msUntil(100, 0)).toBe(100);
    expect(b.canTake(100, 99)).toBe(false);
    expect(b.canTake(100, 100)).toBe(true);
  });

  it('a cost above capacity needs a full bucket and leaves a debt that is refilled first', () => {
    const b = new PacingBucket(100, 50, 0);
    expect(b.canTake(80, 0)).toBe(true);
    b.charge(80, 0);
    expect(b.available(0)).toBe(-30);
    expect(b.msUntil(1, 0)).toBe(310);
    expect(b.msUntil(80, 0)).toBe(800);
  });

  it('never refills backwards and caps at capacity', () => {
    const b = new PacingBucket(10, 5, 1000);
    b.charge(5, 1000);
    expect(b.available(500)).toBe(0);
    expect(b.available(1_000_000)).toBe(5);
  });

  it('rejects bad rates and capacities', () => {
    expect(() => new PacingBucket(0, 5, 0)).toThrow(RangeError);
    expect(() => new PacingBucket(5, 0, 0)).toThrow(RangeError);
    expect(() => new PacingBucket(Infinity, 5, 0)).toThrow(RangeError);
  });
});
