import { VirtualTimeScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { UpstreamLimits } from '../../../../src/config/schema.js';
import { MemoryStore } from '../../../../src/store/memory.js';
import { createLogger } from '../../../../src/telemetry/logger.js';
import { Governor, UpstreamHttpError, parseRetryAfter, type GovernorHooks, type UpstreamJob } from '../../../../src/upstream/governor/governor.js';
import { UpstreamError } from '../../../../src/upstream/provider.js';

/** Virtual epoch: scheduler.now() starts here. */
const T0 = 1_700_000_000_000;
const CONC_KEY = 'up:{stt}:conc';

/** Lets every pending promise callback run (no real time passes). */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** A VirtualTimeScheduler whose clock starts at T0, advanced step by step with microtasks flushed in between. */
function virtualClock() {
  const vts = new VirtualTimeScheduler();
  vts.frame = T0;
  /** Runs every timer due up to `t` (relative to T0), settling promises after each instant. */
  const advanceTo = async (t: number): Promise<void> => {
    const target = T0 + t;
    await settle();
    for (;;) {
      const next = vts.actions[0];
      if (!next || next.delay > target) break;
      vts.maxFrames = next.delay;
      vts.flush();
      await settle();
    }
    vts.frame = target;
    await settle();
  };
  return { vts, advanceTo, advance: (ms: number) => advanceTo(vts.now() - T0 + ms), at: () => vts.now() - T0 };
}

type Outcome = { ok: true; value?: string } | { ok: false; error: unknown } | { hang: true };

/**
 * A fake upstream: counts attempts in flight and records their start times (relative to T0).
 * `plan(n, label, k)` decides the outcome of attempt n (0-based, over all jobs), the k-th of its
 * label; `latencyMs` is its duration.
 */
class FakeUpstream {
  inFlight = 0;
  maxInFlight = 0;
  readonly starts: { t: number; label: string }[] = [];
  readonly signals: AbortSignal[] = [];

  constructor(
    private readonly clock: ReturnType<typeof virtualClock>,
    private readonly latencyMs: number,
    private readonly plan: (n: number, label: string, k: number) => Outcome = () => ({ ok: true }),
  ) {}

  attempt(label: string): (signal: AbortSignal) => Promise<string> {
    return (signal) => {
      const n = this.starts.length;
      this.starts.push({ t: this.clock.at(), label });
      this.signals.push(signal);
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      const outcome = this.plan(n, label, this.starts.filter((s) => s.label === label).length - 1);
      return new Promise<string>((resolve, reject) => {
        let done = false;
        const end = (): boolean => {
          if (done) return false;
          done = true;
          this.inFlight--;
          return true;
        };
        const timer =
          'hang' in outcome
            ? undefined
            : this.clock.vts.schedule(() => {
                if (!end()) return;
                if (outcome.ok) resolve(outcome.value ?? label);
                else reject(outcome.error);
              }, this.latencyMs);
        signal.addEventListener('abort', () => {
          timer?.unsubscribe();
          if (end()) reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
        });
      });
    };
  }

  startTimes(label?: string): number[] {
    return this.starts.filter((s) => label === undefined || s.label === label).map((s) => s.t);
  }
}

interface Harness {
  clock: ReturnType<typeof virtualClock>;
  store: MemoryStore;
  gov: Governor;
  logs: Record<string, unknown>[];
}

function harness(limits: UpstreamLimits, opts: { random?: () => number; hooks?: GovernorHooks; store?: MemoryStore; clock?: ReturnType<typeof virtualClock> } = {}): Harness {
  const clock = opts.clock ?? virtualClock();
  const store = opts.store ?? new MemoryStore({ now: () => clock.vts.now() });
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger({ level: 'warn', destination: { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) } });
  const gov = new Governor({ name: 'stt', limits, store, scheduler: clock.vts, logger, random: opts.random ?? (() => 0), hooks: opts.hooks ?? {} });
  return { clock, store, gov, logs };
}

/** Settled state of a promise, with the virtual time it settled at. */
function track<T>(p: Promise<T>, clock: ReturnType<typeof virtualClock>) {
  const s: { done: boolean; value?: T; error?: unknown; at?: number } = { done: false };
  p.then(
    (value) => Object.assign(s, { done: true, value, at: clock.at() }),
    (error: unknown) => Object.assign(s, { done: true, error, at: clock.at() }),
  );
  return s;
}

function job<T>(clock: ReturnType<typeof virtualClock>, attempt: (signal: AbortSignal, progress: () => void) => Promise<T>, extra: Partial<UpstreamJob<T>> = {}): UpstreamJob<T> {
  return { accountKey: 'acct', sessionKey: 's1', acceptedAt: clock.vts.now(), attempt, ...extra };
}

const http = (status: number, message = 'nope', retryAfterMs?: number): Outcome => ({ ok: false, error: new UpstreamHttpError(status, message, retryAfterMs) });

describe('Governor: admission', () => {
  it('runs 20 jobs through rps 5 burst 5 concurrency 2 at exact start times, never more than 2 in flight', async () => {
    const { clock, gov, store } = harness({ requestsPerSecond: 5, burst: 5, concurrency: 2, maxQueueWaitSeconds: 60 });
    const up = new FakeUpstream(clock, 300);
    const results = Array.from({ length: 20 }, (_, i) => track(gov.run(job(clock, up.attempt(`j${i}`))), clock));
    await clock.advanceTo(10_000);
    // Concurrency binds first (two every 300 ms while the bucket drains), then the 5/s refill does.
    // The bucket holds burst - 1 = 4: one token of the upstream's burst stays in reserve for jitter.
    expect(up.startTimes()).toEqual([0, 0, 300, 300, 600, 600, 900, 900, 1200, 1200, 1500, 1600, 1800, 2000, 2200, 2400, 2600, 2800, 3000, 3200]);
    expect(up.starts.map((s) => s.label)).toEqual(Array.from({ length: 20 }, (_, i) => `j${i}`));
    expect(up.maxInFlight).toBe(2);
    // Never past the rate: any 1 s span holds at most burst + 5 starts.
    const t = up.startTimes();
    for (const from of t) expect(t.filter((x) => x >= from && x < from + 1000).length).toBeLessThanOrEqual(10);
    expect(results.every((r) => r.done && r.error === undefined)).toBe(true);
    expect(results.map((r) => r.value)).toEqual(Array.from({ length: 20 }, (_, i) => `j${i}`));
    expect(await store.countLeases(CONC_KEY)).toBe(0);
    expect(gov.inFlight).toBe(0);
    expect(gov.queued).toBe(0);
  });

  it('requestsPerMinute 3: the 4th job starts when the 1st one\'s bucket has left the 60.25 s window (60 s + the 250 ms jitter reserve)', async () => {
    const { clock, gov } = harness({ requestsPerMinute: 3, maxQueueWaitSeconds: 120 });
    const up = new FakeUpstream(clock, 10);
    const results = Array.from({ length: 4 }, (_, i) => track(gov.run(job(clock, up.attempt(`j${i}`))), clock));
    await clock.advanceTo(59_999);
    expect(up.startTimes()).toEqual([0, 0, 0]);
    await clock.advanceTo(61_000);
    // The window counts in 1,005 ms buckets; T0 is 560 ms into one, which stops counting 60,745 ms later
    // (an exact log would have said 60,250: at most one bucket more careful).
    expect(up.startTimes()).toEqual([0, 0, 0, 60_745]);
    expect(results[3]?.at).toBe(60_755);
  });

  it('two governors sharing one store (two replicas) never exceed the shared concurrency together', async () => {
    const clock = virtualClock();
    const store = new MemoryStore({ now: () => clock.vts.now() });
    const a = harness({ concurrency: 2, maxQueueWaitSeconds: 60 }, { clock, store });
    const b = harness({ concurrency: 2, maxQueueWaitSeconds: 60 }, { clock, store });
    const up = new FakeUpstream(clock, 100);
    const results = [
      ...Array.from({ length: 6 }, (_, i) => track(a.gov.run(job(clock, up.attempt(`a${i}`))), clock)),
      ...Array.from({ length: 6 }, (_, i) => track(b.gov.run(job(clock, up.attempt(`b${i}`))), clock)),
    ];
    await clock.advanceTo(5_000);
    expect(up.maxInFlight).toBe(2);
    expect(results.every((r) => r.done && r.error === undefined)).toBe(true);
    expect(await store.countLeases(CONC_KEY)).toBe(0);
  });

  it('releases the concurrency lease after success and after a non-retried error', async () => {
    const { clock, gov, store } = harness({ concurrency: 1 });
    const up = new FakeUpstream(clock, 50, (n) => (n === 0 ? { ok: true } : http(400)));
    const ok = track(gov.run(job(clock, up.attempt('ok'))), clock);
    const bad = track(gov.run(job(clock, up.attempt('bad'))), clock);
    await clock.advanceTo(25);
    expect(await store.countLeases(CONC_KEY)).toBe(1);
    await clock.advanceTo(1_000);
    expect(ok.value).toBe('ok');
    expect(bad.error).toBeInstanceOf(UpstreamError);
    expect(await store.countLeases(CONC_KEY)).toBe(0);
  });
});

describe('Governor: fairness and positions', () => {
  it('a session that enqueued 10 jobs cannot starve one that enqueued 1 after it', async () => {
    const { clock, gov } = harness({ concurrency: 1, maxQueueWaitSeconds: 60 });
    const up = new FakeUpstream(clock, 100);
    for (let i = 0; i < 10; i++) void gov.run(job(clock, up.attempt(`A${i}`), { sessionKey: 'A' }));
    void gov.run(job(clock, up.attempt('B0'), { sessionKey: 'B' }));
    await clock.advanceTo(5_000);
    const order = up.starts.map((s) => s.label);
    expect(order.indexOf('B0')).toBeLessThanOrEqual(1);
    expect(order).toEqual(['A0', 'B0', 'A1', 'A2', 'A3', 'A4', 'A5', 'A6', 'A7', 'A8', 'A9']);
  });

  it('an account with many sessions gets one turn per round against another account', async () => {
    const { clock, gov } = harness({ concurrency: 1, maxQueueWaitSeconds: 60 });
    const up = new FakeUpstream(clock, 100);
    for (let s = 0; s < 5; s++) for (let i = 0; i < 2; i++) void gov.run(job(clock, up.attempt(`X${s}.${i}`), { accountKey: 'X', sessionKey: `x${s}` }));
    void gov.run(job(clock, up.attempt('Y0'), { accountKey: 'Y', sessionKey: 'y' }));
    void gov.run(job(clock, up.attempt('Y1'), { accountKey: 'Y', sessionKey: 'y' }));
    await clock.advanceTo(5_000);
    expect(up.starts.map((s) => s.label).slice(0, 5)).toEqual(['X0.0', 'Y0', 'X1.0', 'Y1', 'X2.0']);
  });

  it('reports the position when a job first waits and each time it improves, never for a job that did not wait', async () => {
    const { clock, gov } = harness({ concurrency: 1, maxQueueWaitSeconds: 60 });
    const up = new FakeUpstream(clock, 100);
    const seen: Record<string, number[]> = { j0: [], j1: [], j2: [], j3: [] };
    for (const label of ['j0', 'j1', 'j2', 'j3']) {
      void gov.run(job(clock, up.attempt(label), { onQueued: (p) => seen[label]?.push(p) }));
    }
    await clock.advanceTo(1_000);
    expect(up.startTimes()).toEqual([0, 100, 200, 300]);
    expect(seen).toEqual({ j0: [], j1: [1], j2: [2, 1], j3: [3, 2, 1] });
  });

  it('reports queue depth and admission wait through the hooks', async () => {
    const depths: number[] = [];
    const waits: number[] = [];
    const results: boolean[] = [];
    const { clock, gov } = harness(
      { concurrency: 1 },
      { hooks: { onQueued: (d) => depths.push(d), onAdmitted: (w) => waits.push(w), onResult: (ok) => results.push(ok) } },
    );
    const up = new FakeUpstream(clock, 100);
    void gov.run(job(clock, up.attempt('a')));
    void gov.run(job(clock, up.attempt('b')));
    await clock.advanceTo(1_000);
    expect(depths).toEqual([1, 2, 1, 0]);
    expect(waits).toEqual([0, 100]);
    expect(results).toEqual([true, true]);
  });
});

describe('Governor: queue deadline', () => {
  it('rejects a job still queued maxQueueWaitSeconds after acceptedAt with a busy UpstreamError, at exactly that time', async () => {
    const { clock, gov } = harness({ requestsPerMinute: 1, maxQueueWaitSeconds: 5 });
    const up = new FakeUpstream(clock, 10);
    const first = track(gov.run(job(clock, up.attempt('first'))), clock);
    const late = track(gov.run(job(clock, up.attempt('late'))), clock);
    // Accepted 2 s before it reached the governor (behind its session's earlier request).
    const earlier = track(gov.run(job(clock, up.attempt('earlier'), { sessionKey: 's2', acceptedAt: T0 - 2_000 })), clock);
    await clock.advanceTo(2_999);
    expect(earlier.done).toBe(false);
    await clock.advanceTo(3_000);
    expect(earlier.at).toBe(3_000);
    await clock.advanceTo(4_999);
    expect(late.done).toBe(false);
    await clock.advanceTo(10_000);
    expect(first.value).toBe('first');
    expect(late.at).toBe(5_000);
    const err = late.error as UpstreamError;
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.busy).toBe(true);
    expect(err.upstream).toBe('stt');
    expect(err.status).toBeUndefined();
    expect(err.message).toBe('queued longer than maxQueueWaitSeconds (5 s)');
    expect(up.startTimes()).toEqual([0]);
    expect(gov.queued).toBe(0);
  });

  it('uses one timer for all deadlines, not one per job', async () => {
    const { clock, gov } = harness({ requestsPerMinute: 1, maxQueueWaitSeconds: 5 });
    const up = new FakeUpstream(clock, 10);
    const results = Array.from({ length: 50 }, (_, i) => track(gov.run(job(clock, up.attempt(`j${i}`), { acceptedAt: T0 + i })), clock));
    await clock.advanceTo(20);
    // The first attempt's result has come back; left: the deadline timer and the rate-limit wake-up.
    expect(clock.vts.actions.length).toBeLessThanOrEqual(2);
    await clock.advanceTo(10_000);
    expect(results.slice(1).map((r) => r.at)).toEqual(Array.from({ length: 49 }, (_, i) => 5_001 + i));
  });
});

describe('Governor: cancellation', () => {
  it('drops a job aborted while queued: never attempted, rejected with an AbortError', async () => {
    const { clock, gov } = harness({ concurrency: 1 });
    const up = new FakeUpstream(clock, 1_000);
    void gov.run(job(clock, up.attempt('busy')));
    const ac = new AbortController();
    const aborted = track(gov.run(job(clock, up.attempt('aborted'), { signal: ac.signal })), clock);
    await clock.advanceTo(50);
    expect(gov.queued).toBe(1);
    ac.abort();
    await clock.advanceTo(5_000);
    expect((aborted.error as Error).name).toBe('AbortError');
    expect(aborted.at).toBe(50);
    expect(up.starts.map((s) => s.label)).toEqual(['busy']);
    expect(gov.queued).toBe(0);
  });

  it('refuses a job whose signal is already aborted without queueing it', async () => {
    const { clock, gov } = harness({});
    const up = new FakeUpstream(clock, 10);
    const ac = new AbortController();
    ac.abort();
    await expect(gov.run(job(clock, up.attempt('x'), { signal: ac.signal }))).rejects.toMatchObject({ name: 'AbortError' });
    await clock.advanceTo(100);
    expect(up.starts).toEqual([]);
  });

  it('aborts an in-flight attempt: the upstream sees the abort and the lease is released', async () => {
    const { clock, gov, store } = harness({ concurrency: 2 });
    const up = new FakeUpstream(clock, 10_000);
    const ac = new AbortController();
    const r = track(gov.run(job(clock, up.attempt('x'), { signal: ac.signal })), clock);
    await clock.advanceTo(100);
    expect(gov.inFlight).toBe(1);
    expect(await store.countLeases(CONC_KEY)).toBe(1);
    ac.abort();
    await clock.advanceTo(101);
    expect((r.error as Error).name).toBe('AbortError');
    expect(up.signals[0]?.aborted).toBe(true);
    expect(up.inFlight).toBe(0);
    expect(gov.inFlight).toBe(0);
    expect(await store.countLeases(CONC_KEY)).toBe(0);
  });

  it('a job aborted while the store decides its admission hands the slot to the next job', async () => {
    const { clock, gov, store } = harness({ concurrency: 1, requestsPerSecond: 10 });
    const up = new FakeUpstream(clock, 100);
    const ac = new AbortController();
    const a = track(gov.run(job(clock, up.attempt('a'), { signal: ac.signal })), clock);
    const b = track(gov.run(job(clock, up.attempt('b'), { sessionKey: 's2' })), clock);
    ac.abort(); // the admission for the head is still in flight
    await clock.advanceTo(1_000);
    expect((a.error as Error).name).toBe('AbortError');
    expect(up.starts.map((s) => `${s.label}@${s.t}`)).toEqual(['b@0']);
    expect(b.value).toBe('b');
    expect(await store.countLeases(CONC_KEY)).toBe(0);
  });

  it('drops a job aborted during its backoff', async () => {
    const { clock, gov } = harness({}, { random: () => 1 });
    const up = new FakeUpstream(clock, 10, () => http(500));
    const ac = new AbortController();
    const r = track(gov.run(job(clock, up.attempt('x'), { signal: ac.signal })), clock);
    await clock.advanceTo(500);
    ac.abort();
    await clock.advanceTo(5_000);
    expect((r.error as Error).name).toBe('AbortError');
    expect(up.startTimes()).toEqual([0]);
  });

  it('close() rejects queued jobs, aborts attempts in flight, releases leases and leaves no timer', async () => {
    const { clock, gov, store } = harness({ concurrency: 1, requestsPerSecond: 1 });
    const up = new FakeUpstream(clock, 10_000);
    const a = track(gov.run(job(clock, up.attempt('a'))), clock);
    const b = track(gov.run(job(clock, up.attempt('b'))), clock);
    await clock.advanceTo(100);
    gov.close();
    await clock.advanceTo(101);
    expect(a.error).toBeInstanceOf(UpstreamError);
    expect(b.error).toBeInstanceOf(UpstreamError);
    expect(up.signals[0]?.aborted).toBe(true);
    expect(await store.countLeases(CONC_KEY)).toBe(0);
    expect(clock.vts.actions.length).toBe(0);
    await expect(gov.run(job(clock, up.attempt('c')))).rejects.toBeInstanceOf(UpstreamError);
  });
});

describe('Governor: retries', () => {
  it('Retry-After pauses the whole upstream account: no attempt for any job until it passes, then the job is retried first', async () => {
    const retries: string[] = [];
    const { clock, gov, store } = harness(
      { requestsPerSecond: 100, burst: 100, concurrency: 5, maxQueueWaitSeconds: 60 },
      { hooks: { onRetry: (r) => retries.push(r) } },
    );
    const up = new FakeUpstream(clock, 100, (n) => (n === 0 ? http(429, 'slow down', 2_000) : { ok: true }));
    const a = track(gov.run(job(clock, up.attempt('A'))), clock);
    await clock.advanceTo(500);
    const b = track(gov.run(job(clock, up.attempt('B'), { sessionKey: 's2' })), clock);
    await clock.advanceTo(1_000);
    const c = track(gov.run(job(clock, up.attempt('C'), { sessionKey: 's3' })), clock);
    expect(gov.stats().pausedUntil).toBe(T0 + 2_100);
    await clock.advanceTo(2_099);
    expect(up.starts.map((s) => `${s.label}@${s.t}`)).toEqual(['A@0']);
    await clock.advanceTo(5_000);
    expect(up.starts.map((s) => `${s.label}@${s.t}`)).toEqual(['A@0', 'A@2100', 'B@2100', 'C@2100']);
    expect(a.value).toBe('A');
    expect(a.at).toBe(2_200);
    expect(b.value).toBe('B');
    expect(c.value).toBe('C');
    expect(retries).toEqual(['rate_limited']);
    expect(gov.stats().pausedUntil).toBeUndefined();
    expect(await store.countLeases(CONC_KEY)).toBe(0);
  });

  it('a 503 with Retry-After pauses the account too', async () => {
    const { clock, gov } = harness({ concurrency: 1 });
    const up = new FakeUpstream(clock, 10, (n) => (n === 0 ? http(503, 'maintenance', 1_500) : { ok: true }));
    const a = track(gov.run(job(clock, up.attempt('A'))), clock);
    await clock.advanceTo(5_000);
    expect(up.startTimes()).toEqual([0, 1_510]);
    expect(a.value).toBe('A');
  });

  it('without Retry-After backs off per job with full jitter (1 s doubling) while other sessions keep going', async () => {
    const retries: string[] = [];
    const { clock, gov } = harness({ concurrency: 1, maxQueueWaitSeconds: 60 }, { random: () => 1, hooks: { onRetry: (r) => retries.push(r) } });
    const up = new FakeUpstream(clock, 10, (_n, label, k) => (label === 'A' && k < 3 ? http(500, 'oops') : { ok: true }));
    const a = track(gov.run(job(clock, up.attempt('A'), { sessionKey: 'A' })), clock);
    const b = track(gov.run(job(clock, up.attempt('B'), { sessionKey: 'B' })), clock);
    await clock.advanceTo(20_000);
    // A fails at 10, B runs during A's 1000 ms backoff; then 2000 ms, 4000 ms.
    expect(up.starts.map((s) => `${s.label}@${s.t}`)).toEqual(['A@0', 'B@10', 'A@1010', 'A@3020', 'A@7030']);
    expect(b.at).toBe(20);
    expect(a.value).toBe('A');
    expect(retries).toEqual(['server_error', 'server_error', 'server_error']);
  });

  it('jitter scales the backoff by random() and caps it at 30 s', async () => {
    const { clock, gov } = harness({ maxRetries: 7, maxQueueWaitSeconds: 60 }, { random: () => 0.5 });
    const up = new FakeUpstream(clock, 0, () => ({ ok: false, error: new TypeError('fetch failed') }));
    const r = track(gov.run(job(clock, up.attempt('x'))), clock);
    await clock.advanceTo(200_000);
    const t = up.startTimes();
    expect(t.slice(1).map((x, i) => x - (t[i] as number))).toEqual([500, 1_000, 2_000, 4_000, 8_000, 15_000, 15_000]);
    expect(r.error).toBeInstanceOf(UpstreamError);
    expect((r.error as UpstreamError).message).toBe('failed after 7 retries: fetch failed');
  });

  it('does not retry a 400: rejects with UpstreamError "HTTP 400: …" carrying the status', async () => {
    const { clock, gov } = harness({});
    const up = new FakeUpstream(clock, 10, () => http(400, 'bad audio'));
    const r = track(gov.run(job(clock, up.attempt('x'))), clock);
    await clock.advanceTo(60_000);
    expect(up.starts).toHaveLength(1);
    const err = r.error as UpstreamError;
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.message).toBe('HTTP 400: bad audio');
    expect(err.status).toBe(400);
    expect(err.busy).toBe(false);
    expect(err.upstream).toBe('stt');
  });

  it('recognises an UpstreamHttpError declared by another module by its shape', async () => {
    class ForeignHttpError extends Error {
      constructor(readonly status: number, message: string, readonly retryAfterMs?: number) {
        super(message);
        this.name = 'UpstreamHttpError';
      }
    }
    const { clock, gov } = harness({});
    const up = new FakeUpstream(clock, 10, (_n, _l, k) => ({ ok: false, error: k === 0 ? new ForeignHttpError(503, 'busy', 700) : new ForeignHttpError(404, 'no model') }));
    const r = track(gov.run(job(clock, up.attempt('x'))), clock);
    await clock.advanceTo(5_000);
    expect(up.startTimes()).toEqual([0, 710]);
    expect((r.error as UpstreamError).message).toBe('HTTP 404: no model');
    expect((r.error as UpstreamError).status).toBe(404);
  });

  it('retries network failures, including an UpstreamError the adapter threw for one', async () => {
    const retries: string[] = [];
    const { clock, gov } = harness({}, { hooks: { onRetry: (r) => retries.push(r) } });
    const up = new FakeUpstream(clock, 10, (_n, _l, k) =>
      k === 0 ? { ok: false, error: new UpstreamError('stt', 'stt upstream request failed: ECONNRESET') } : { ok: true },
    );
    const r = track(gov.run(job(clock, up.attempt('x'))), clock);
    await clock.advanceTo(5_000);
    expect(r.value).toBe('x');
    expect(up.startTimes()).toEqual([0, 10]);
    expect(retries).toEqual(['network']);
  });

  it('gives up after maxRetries retries with the last status', async () => {
    const { clock, gov, store } = harness({ maxRetries: 2, concurrency: 3 }, { random: () => 1 });
    const up = new FakeUpstream(clock, 10, () => http(503, 'overloaded'));
    const r = track(gov.run(job(clock, up.attempt('x'))), clock);
    await clock.advanceTo(60_000);
    expect(up.startTimes()).toEqual([0, 1_010, 3_020]);
    const err = r.error as UpstreamError;
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.message).toBe('failed after 2 retries: HTTP 503: overloaded');
    expect(err.status).toBe(503);
    expect(err.busy).toBe(false);
    expect(r.at).toBe(3_030);
    expect(await store.countLeases(CONC_KEY)).toBe(0);
  });

  it('aborts an attempt after timeoutSeconds and retries it', async () => {
    const retries: string[] = [];
    const { clock, gov, store } = harness({ timeoutSeconds: 1, concurrency: 1 }, { hooks: { onRetry: (r) => retries.push(r) } });
    const up = new FakeUpstream(clock, 100, (n) => (n === 0 ? { hang: true } : { ok: true }));
    const r = track(gov.run(job(clock, up.attempt('x'))), clock);
    await clock.advanceTo(999);
    expect(up.signals[0]?.aborted).toBe(false);
    await clock.advanceTo(1_000);
    expect(up.signals[0]?.aborted).toBe(true);
    await clock.advanceTo(5_000);
    expect(up.startTimes()).toEqual([0, 1_000]);
    expect(r.value).toBe('x');
    expect(retries).toEqual(['timeout']);
    expect(await store.countLeases(CONC_KEY)).toBe(0);
  });

  it('fails with "failed after N retries: timed out" when every attempt times out', async () => {
    const { clock, gov } = harness({ timeoutSeconds: 1, maxRetries: 1 });
    const up = new FakeUpstream(clock, 0, () => ({ hang: true }));
    const r = track(gov.run(job(clock, up.attempt('x'))), clock);
    await clock.advanceTo(5_000);
    expect(up.startTimes()).toEqual([0, 1_000]);
    expect((r.error as UpstreamError).message).toBe('failed after 1 retries: timed out after 1 s');
    expect(r.at).toBe(2_000);
  });
});

describe('Governor: streamed answers', () => {
  it('times a streaming attempt by its gaps: it holds its lease while bytes keep coming, and times out one timeout after the last', async () => {
    const firstBytes: number[] = [];
    const { clock, gov, store } = harness({ timeoutSeconds: 1, concurrency: 1, maxRetries: 0 }, { hooks: { onFirstByte: (ms) => firstBytes.push(ms) } });
    let progress!: () => void;
    let signal!: AbortSignal;
    const r = track(
      gov.run(
        job(clock, (s, p) => {
          signal = s;
          progress = p;
          return new Promise<string>((_, reject) => s.addEventListener('abort', () => reject(s.reason)));
        }),
      ),
      clock,
    );
    await clock.advanceTo(300);
    progress(); // first byte after 300 ms
    for (let t = 1_000; t <= 5_000; t += 700) {
      await clock.advanceTo(t);
      progress();
    }
    expect(clock.at()).toBe(4_500);
    // Bytes every 700 ms up to 4,500 ms with a 1 s timeout: still running, still holding its slot.
    expect(signal.aborted).toBe(false);
    expect(await store.countLeases(CONC_KEY)).toBe(1);
    expect(firstBytes).toEqual([300]);
    await clock.advanceTo(5_499); // the last byte came at 4,500
    expect(signal.aborted).toBe(false);
    await clock.advanceTo(5_500);
    expect(signal.aborted).toBe(true);
    expect((r.error as UpstreamError).message).toContain('timed out after 1 s');
    expect(await store.countLeases(CONC_KEY)).toBe(0);
  });
});

describe('Governor: AIMD', () => {
  it('halves the effective rate on an unexpected 429, once for attempts that saw the same rate, and gates admission locally', async () => {
    const upstream429s: number[] = [];
    const { clock, gov } = harness(
      { requestsPerSecond: 10, burst: 10, maxQueueWaitSeconds: 60 },
      { hooks: { onUpstream429: () => upstream429s.push(clock.at()) } },
    );
    const up = new FakeUpstream(clock, 10, (_n, _label, k) => (k === 0 ? http(429, 'too many') : { ok: true }));
    expect(gov.stats().effectiveRateFactor).toBe(1);
    const a = track(gov.run(job(clock, up.attempt('a'))), clock);
    const b = track(gov.run(job(clock, up.attempt('b'), { sessionKey: 's2' })), clock);
    await clock.advanceTo(10);
    // Both went out at 0 and got a 429 at 10: one cut, not two.
    expect(upstream429s).toEqual([10, 10]);
    expect(gov.stats().effectiveRateFactor).toBe(0.5);
    // The local gate (5/s, burst 5) starts empty: the retries (0 ms backoff) get a token each 200 ms,
    // the last one put back first.
    await clock.advanceTo(1_000);
    expect(up.starts.map((s) => `${s.label}@${s.t}`)).toEqual(['a@0', 'b@0', 'b@210', 'a@410']);
    expect(a.value).toBe('a');
    expect(b.value).toBe('b');
    // +0.1 per 10 s without a 429, back to 1; then no timer is left.
    await clock.advanceTo(10_009);
    expect(gov.stats().effectiveRateFactor).toBe(0.5);
    await clock.advanceTo(10_010);
    expect(gov.stats().effectiveRateFactor).toBe(0.6);
    await clock.advanceTo(50_010);
    expect(gov.stats().effectiveRateFactor).toBe(1);
    expect(clock.vts.actions.length).toBe(0);
  });

  it('cuts again on a 429 to an attempt sent after the cut, down to 0.1, and warns only once naming the upstream', async () => {
    const { clock, gov, logs } = harness({ requestsPerMinute: 600, maxRetries: 10, maxQueueWaitSeconds: 600 });
    const up = new FakeUpstream(clock, 10, (_n, _label, k) => (k < 5 ? http(429, 'too many') : { ok: true }));
    const factors: number[] = [];
    const r = track(gov.run(job(clock, up.attempt('a'))), clock);
    for (let i = 0; i < 5; i++) {
      const before = up.starts.length;
      while (up.starts.length === before) await clock.advance(1);
      await clock.advance(10);
      factors.push(gov.stats().effectiveRateFactor);
    }
    expect(factors).toEqual([0.5, 0.25, 0.125, 0.1, 0.1]);
    await clock.advanceTo(120_000);
    expect(r.value).toBe('a');
    const warnings = logs.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.upstream).toBe('stt');
    expect(String(warnings[0]?.msg)).toMatch(/"stt".*configured limits exceed the real ones/);
  });

  it('with only a concurrency limit, an unexpected 429 lowers the local concurrency', async () => {
    const { clock, gov } = harness({ concurrency: 4, maxQueueWaitSeconds: 60 });
    const up = new FakeUpstream(clock, 100, (n) => (n === 0 ? http(429, 'too many concurrent requests') : { ok: true }));
    void gov.run(job(clock, up.attempt('first')));
    await clock.advanceTo(100);
    expect(gov.stats().effectiveRateFactor).toBe(0.5);
    for (let i = 0; i < 6; i++) void gov.run(job(clock, up.attempt(`j${i}`), { sessionKey: `s${i}` }));
    await clock.advanceTo(2_000);
    expect(up.maxInFlight).toBe(2);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');

  it('reads delay-seconds', () => {
    expect(parseRetryAfter({ 'retry-after': '2' }, now)).toBe(2_000);
    expect(parseRetryAfter({ 'retry-after': '0' }, now)).toBe(0);
    expect(parseRetryAfter({ 'retry-after': '1.5' }, now)).toBe(1_500);
  });

  it('reads an HTTP-date relative to now, and a past date as 0', () => {
    expect(parseRetryAfter({ 'retry-after': 'Wed, 21 Oct 2015 07:28:05 GMT' }, now)).toBe(5_000);
    expect(parseRetryAfter({ 'retry-after': 'Wed, 21 Oct 2015 07:27:00 GMT' }, now)).toBe(0);
  });

  it('prefers retry-after-ms', () => {
    expect(parseRetryAfter({ 'retry-after-ms': '250', 'retry-after': '2' }, now)).toBe(250);
    expect(parseRetryAfter({ 'retry-after-ms': '12.2' }, now)).toBe(13);
  });

  it('reads a fetch Headers object and any header casing', () => {
    expect(parseRetryAfter(new Headers({ 'Retry-After': '3' }), now)).toBe(3_000);
    expect(parseRetryAfter(new Headers({ 'Retry-After-Ms': '40' }), now)).toBe(40);
    expect(parseRetryAfter({ 'Retry-After': '4' }, now)).toBe(4_000);
    expect(parseRetryAfter({ 'retry-after': ['6', '7'] }, now)).toBe(6_000);
  });

  it('gives undefined when absent or unparseable', () => {
    expect(parseRetryAfter({}, now)).toBeUndefined();
    expect(parseRetryAfter(new Headers(), now)).toBeUndefined();
    expect(parseRetryAfter({ 'retry-after': 'soon' }, now)).toBeUndefined();
    expect(parseRetryAfter({ 'retry-after': '-1' }, now)).toBeUndefined();
  });
});
