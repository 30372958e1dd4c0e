/**
 * Upstream utilisation: N sessions saturate a simulated upstream (in this process) that allows
 * R requests/s with a burst of B and C in flight, answering after `latencyMs`. Measured in the same
 * run, each on a fresh simulated server (fresh limiter state and counters):
 *
 *   - Parley: one `Governor` with the same limits over a `MemoryStore`, N sessions each calling
 *     `governor.run(translate)` back to back;
 *   - Parley with a margin: the same, but the governor's rate set to `margin` × R (default 0.95), the
 *     usual practice when the client's clock and the upstream's see the same requests at slightly
 *     different times (network jitter: with both buckets drained, a request admitted on time can
 *     arrive a few ms early and get a 429);
 *   - naive, retry-on-429: N workers calling the upstream directly, and on a 429 sleeping the
 *     Retry-After the answer gave (the exact `retry-after-ms`, which favours the naive client) and retrying;
 *   - naive, sliding window: the same plus a client-side window of R requests per 1 s, sleeping
 *     until the oldest request leaves the window (no concurrency limit, as in the seeds).
 *
 * Achieved = answers completed within the D seconds / D. Allowed = R + B / D: the token bucket
 * starts full, so B requests pass at once on top of R per second. Steady state leaves out the
 * first second (answers completed in [1 s, D] / (D − 1)) and compares with R alone.
 * Target for Parley: achieved/allowed ≥ 0.95 with no upstream 429.
 *
 * Knobs (environment): BENCH_UPSTREAM_RPS (20), BENCH_UPSTREAM_BURST (20), BENCH_UPSTREAM_CONCURRENCY (4),
 * BENCH_UPSTREAM_LATENCY_MS (50), BENCH_UPSTREAM_SESSIONS (20), BENCH_UPSTREAM_SECONDS (5),
 * BENCH_UPSTREAM_MARGIN (0.95).
 * Runs alone with `npx tsx bench/upstream.ts`.
 */
import { setMaxListeners } from 'node:events';
import { pathToFileURL } from 'node:url';
import { asyncScheduler } from 'rxjs';
import { MemoryStore } from '../src/store/memory.js';
import { createLogger } from '../src/telemetry/logger.js';
import { Governor, UpstreamHttpError } from '../src/upstream/governor/governor.js';
import { createOpenAiTranslation } from '../src/upstream/openai/index.js';
import { startSimUpstream } from '../src/simulator/server.js';
import { fmt, table, verdict } from './lib/report.js';
import { envNumber } from './lib/env.js';

export const TARGET_UPSTREAM_UTILISATION = 0.95;

export interface UpstreamSettings {
  readonly rps: number;
  readonly burst: number;
  readonly concurrency: number;
  readonly latencyMs: number;
  readonly sessions: number;
  readonly seconds: number;
  /** parleyMargin: the governor is configured with requestsPerSecond = margin × R. */
  readonly margin: number;
}

export type UpstreamClient = 'parley' | 'parleyMargin' | 'naiveRetry' | 'naiveWindow';

export interface UpstreamRun {
  readonly client: UpstreamClient;
  readonly label: string;
  /** Answers completed within the run. */
  readonly answers: number;
  readonly achievedPerSec: number;
  /** R + B / D. */
  readonly allowedPerSec: number;
  readonly ratio: number;
  /** Answers completed in [1 s, D] per second, and that over R. */
  readonly steadyPerSec: number;
  readonly steadyRatio: number;
  /** What the simulated upstream counted. */
  readonly upstreamRequests: number;
  readonly upstream429s: number;
  readonly maxInFlight: number;
  /** Calls that failed other than by a 429 the client retried (Parley: errors other than the end-of-run abort). */
  readonly failures: number;
}

export function upstreamSettings(): UpstreamSettings {
  return {
    rps: envNumber('BENCH_UPSTREAM_RPS', 20),
    burst: envNumber('BENCH_UPSTREAM_BURST', 20),
    concurrency: envNumber('BENCH_UPSTREAM_CONCURRENCY', 4),
    latencyMs: envNumber('BENCH_UPSTREAM_LATENCY_MS', 50),
    sessions: envNumber('BENCH_UPSTREAM_SESSIONS', 20),
    seconds: envNumber('BENCH_UPSTREAM_SECONDS', 5),
    margin: envNumber('BENCH_UPSTREAM_MARGIN', 0.95),
  };
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });

const LABELS: Record<UpstreamClient, string> = {
  parley: 'Parley governor',
  parleyMargin: 'Parley, rate × margin',
  naiveRetry: 'naive retry-on-429',
  naiveWindow: 'naive 1 s sliding window',
};

/** One client against a fresh simulated upstream for `s.seconds`. */
async function runClient(client: UpstreamClient, s: UpstreamSettings): Promise<UpstreamRun> {
  const sim = await startSimUpstream({ rps: s.rps, burst: s.burst, concurrency: s.concurrency, latencyMs: s.latencyMs });
  const translation = createOpenAiTranslation({ baseUrl: sim.url });
  const stop = new AbortController();
  setMaxListeners(s.sessions * 4, stop.signal); // every queued job and attempt listens to it
  const durationMs = s.seconds * 1000;
  const completions: number[] = []; // ms since start
  let failures = 0;
  let governor: Governor | undefined;
  const call = (signal: AbortSignal): Promise<string> => translation.translate({ text: 'hello', targetLanguage: 'es' }, { signal });

  const start = performance.now();
  const elapsed = (): number => performance.now() - start;
  const answered = (): void => {
    const t = elapsed();
    if (t <= durationMs) completions.push(t);
  };

  let worker: (i: number) => Promise<void>;
  if (client === 'parley' || client === 'parleyMargin') {
    const g = new Governor({
      name: 'bench',
      limits: { requestsPerSecond: client === 'parley' ? s.rps : s.rps * s.margin, burst: s.burst, concurrency: s.concurrency },
      store: new MemoryStore(),
      scheduler: asyncScheduler,
      logger: createLogger({ level: 'silent' }),
    });
    governor = g;
    worker = async (i) => {
      while (!stop.signal.aborted) {
        try {
          await g.run({ accountKey: 'bench', sessionKey: `s${i}`, acceptedAt: asyncScheduler.now(), signal: stop.signal, attempt: call });
          answered();
        } catch (err) {
          if (!stop.signal.aborted) failures++;
        }
      }
    };
  } else {
    // The seeds' pattern: a 429 sleeps its Retry-After and retries; anything else counts as a failure.
    const sent: number[] = []; // naiveWindow: send times within the last second, oldest first
    const windowMs = 1000;
    worker = async () => {
      while (!stop.signal.aborted) {
        if (client === 'naiveWindow') {
          for (;;) {
            const now = elapsed();
            while (sent.length && sent[0]! <= now - windowMs) sent.shift();
            if (sent.length < s.rps) break;
            await sleep(sent[0]! + windowMs - now, stop.signal);
            if (stop.signal.aborted) return;
          }
          sent.push(elapsed());
        }
        try {
          await call(stop.signal);
          answered();
        } catch (err) {
          if (stop.signal.aborted) return;
          if (err instanceof UpstreamHttpError && err.status === 429) await sleep(err.retryAfterMs ?? 1000, stop.signal);
          else failures++;
        }
      }
    };
  }

  const workers = Array.from({ length: s.sessions }, (_, i) => worker(i));
  await sleep(durationMs, new AbortController().signal);
  stop.abort(new Error('bench run over'));
  await Promise.allSettled(workers);
  governor?.close();
  const stats = sim.stats();
  await sim.close();

  const allowedPerSec = s.rps + s.burst / s.seconds;
  const achievedPerSec = completions.length / s.seconds;
  const steadyPerSec = s.seconds > 1 ? completions.filter((t) => t >= 1000).length / (s.seconds - 1) : Number.NaN;
  return {
    client,
    label: client === 'parleyMargin' ? `Parley, rate ${s.margin} × R` : LABELS[client],
    answers: completions.length,
    achievedPerSec,
    allowedPerSec,
    ratio: achievedPerSec / allowedPerSec,
    steadyPerSec,
    steadyRatio: steadyPerSec / s.rps,
    upstreamRequests: stats.requests,
    upstream429s: stats.rejected429,
    maxInFlight: stats.maxInFlight,
    failures,
  };
}

export function describeUpstreamRun(r: UpstreamRun): string {
  return (
    `upstream: ${r.label.padEnd(24)} achieved ${fmt(r.achievedPerSec, 1)}/s of allowed ${fmt(r.allowedPerSec, 1)}/s (${fmt(r.ratio)}), ` +
    `steady ${fmt(r.steadyPerSec, 1)}/s of ${fmt(r.steadyPerSec / r.steadyRatio, 0)}/s (${fmt(r.steadyRatio)}), ` +
    `429s: ${r.upstream429s} of ${r.upstreamRequests} requests, max in flight ${r.maxInFlight}` +
    (r.failures ? `, ${r.failures} other failure(s)` : '')
  );
}

/** Runs Parley and the naive clients one after the other, printing a line per run. */
export async function upstreamPhase(s: UpstreamSettings = upstreamSettings(), say: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<UpstreamRun[]> {
  const runs: UpstreamRun[] = [];
  // The margin variant (a client-side safety margin on top of the governor) runs only when asked
  // for with BENCH_UPSTREAM_MARGIN: the governor keeps its own jitter reserve.
  const clients: UpstreamClient[] = process.env.BENCH_UPSTREAM_MARGIN ? ['parley', 'parleyMargin', 'naiveRetry', 'naiveWindow'] : ['parley', 'naiveRetry', 'naiveWindow'];
  for (const client of clients) {
    const r = await runClient(client, s);
    runs.push(r);
    say(`  ${describeUpstreamRun(r)}`);
  }
  return runs;
}

export function upstreamHeadline(s: UpstreamSettings): string {
  return (
    `Upstream utilisation: ${s.sessions} sessions vs a simulated upstream of ${s.rps} req/s, burst ${s.burst}, concurrency ${s.concurrency}, ` +
    `${s.latencyMs} ms latency, ${s.seconds} s per client; allowed = R + B/D = ${fmt(s.rps + s.burst / s.seconds, 1)}/s, steady state (after 1 s) vs R`
  );
}

/** Summary rows: [figure, value, target, verdict]. */
export function upstreamRows(runs: readonly UpstreamRun[]): string[][] {
  return runs.map((r) => {
    const target = r.client === 'parley' || r.client === 'parleyMargin' ? `≥ ${TARGET_UPSTREAM_UTILISATION}, 0 × 429` : '';
    const ok = verdict(r.ratio, TARGET_UPSTREAM_UTILISATION, 'atLeast') === 'met' && r.upstream429s === 0 ? 'met' : 'MISSED';
    return [`upstream utilisation, ${r.label}`, `${fmt(r.achievedPerSec, 1)}/${fmt(r.allowedPerSec, 1)} req/s`, fmt(r.ratio), `${r.upstream429s} × 429`, target, r.client === 'parley' || r.client === 'parleyMargin' ? ok : ''];
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const s = upstreamSettings();
  console.log(upstreamHeadline(s));
  upstreamPhase(s).then(
    (runs) => {
      console.log();
      console.log(table(['', 'achieved/allowed', 'ratio', '429s', 'target', ''], upstreamRows(runs)));
      process.exit(0);
    },
    (err: unknown) => {
      console.error('upstream bench failed:', err);
      process.exit(1);
    },
  );
}
