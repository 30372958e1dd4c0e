/**
 * The Redis store, measured in one run against a throwaway `redis-server` on a free port:
 *
 *   1. decisions per second, 1 and C concurrent callers (closed loop: a caller sends its next
 *      decision when the previous one is answered), each client on its own ioredis connection:
 *        - Parley `RedisStore.consume` deciding 3 limits atomically (an account's request window,
 *          its daily audio minutes, a token bucket), keys hash-tagged `{acct_N}` over A accounts,
 *          a unique opId per decision;
 *        - the same with the window alone (1 limit), for information;
 *        - Parley `RedisStore.admit` (upstream admission: a window, a bucket and a concurrency
 *          lease on one upstream account), each followed by the `release` the governor sends when
 *          the call ends; an admission cycle is two round trips (for information);
 *        - rate-limiter-flexible `RateLimiterRedis.consume` (ioredis, one fixed-window limit), the
 *          same accounts: the target's yardstick;
 *        - rate-limiter-flexible deciding the same three limits the way its users would, a
 *          `RateLimiterUnion` of a minute, a day and a second limiter (three scripts at once, not
 *          atomic), for a like-for-like figure;
 *        - both again on ioredis clients with `enableAutoPipelining` (the same client options on
 *          both sides; the store itself does not enable it: measured slower for its decisions);
 *        - the round-trip floor: the same ioredis client calling a script that decides nothing
 *          (`return 1`), one call per "decision". No limiter that makes one script call per
 *          decision can go faster on this client and this Redis, so with 1 caller it shows how
 *          much room either library has left (latency, not work, bounds that case);
 *      every limit set high enough that nothing is refused (the allowed/refused counts are shown);
 *   2. the latency the Redis store adds to the real app (buildApp, real asyncScheduler, simulated
 *      upstream with 0 ms latency behind a governor with rate and concurrency limits), once with the
 *      memory store and once with an injected RedisStore: `ping` round trips (per-message path: no
 *      store) and `translate` round trips (account quota consume + upstream admit + release +
 *      the quota.updated peek), p50 and p99, one request in flight.
 *
 * Knobs (environment): BENCH_REDIS_SECONDS (3), BENCH_REDIS_WARMUP_SECONDS (1),
 * BENCH_REDIS_CALLERS (50), BENCH_REDIS_ACCOUNTS (1000), BENCH_REDIS_ROUNDS (2),
 * BENCH_REDIS_REQUESTS (1000 per latency figure, after 100 warm-up), BENCH_REDIS_CLIENTS (a comma
 * list of parleyConsume, rlf, rlfUnion3, rlfAp, parleyConsumeAp, parleyOne, parleyAdmit, floor; default all).
 * Runs alone with `npx tsx bench/redis.ts` (or `BENCH_ONLY=redis npm run bench`).
 */
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes, RateLimiterUnion } from 'rate-limiter-flexible';
import WebSocket from 'ws';
import { buildApp, type ParleyApp } from '../src/app.js';
import { parseConfig } from '../src/config/load.js';
import { RedisStore } from '../src/store/redis.js';
import type { LeaseSpec, LimitSpec } from '../src/limits/spec.js';
import type { Store } from '../src/store/store.js';
import { createLogger } from '../src/telemetry/logger.js';
import { BENCH_KEY, benchConfig } from './lib/config.js';
import { envNumber } from './lib/env.js';
import { machineCores, machineCpu } from './lib/machine.js';
import { killAllRedis, startBenchRedis, type BenchRedis } from './lib/redis-server.js';
import { fmt, fmtInt, pct, table, verdict } from './lib/report.js';

/** Parley's 3-limit consume / rate-limiter-flexible's 1-limit consume, decisions per second, at least. */
export const TARGET_REDIS_RATIO = 1;

export interface RedisSettings {
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly callers: number;
  readonly accounts: number;
  readonly rounds: number;
  readonly requests: number;
  /** The contestants, BENCH_REDIS_CLIENTS=a,b (default all); parleyConsume and rlf make the ratio. */
  readonly clients: DecisionClient[];
}

export function redisSettings(): RedisSettings {
  return {
    seconds: envNumber('BENCH_REDIS_SECONDS', 3),
    warmupSeconds: envNumber('BENCH_REDIS_WARMUP_SECONDS', 1),
    callers: envNumber('BENCH_REDIS_CALLERS', 50),
    accounts: envNumber('BENCH_REDIS_ACCOUNTS', 1000),
    rounds: envNumber('BENCH_REDIS_ROUNDS', 2),
    requests: envNumber('BENCH_REDIS_REQUESTS', 1000),
    clients: clientList(process.env.BENCH_REDIS_CLIENTS),
  };
}

function clientList(raw: string | undefined): DecisionClient[] {
  if (!raw) return ALL_CLIENTS;
  const picked = raw.split(',').map((c) => c.trim()) as DecisionClient[];
  for (const c of picked) if (!ALL_CLIENTS.includes(c)) throw new Error(`BENCH_REDIS_CLIENTS: unknown client ${c} (known: ${ALL_CLIENTS.join(', ')})`);
  return picked;
}

export type DecisionClient = 'parleyConsume' | 'parleyConsumeAp' | 'parleyOne' | 'parleyAdmit' | 'rlf' | 'rlfAp' | 'rlfUnion3' | 'floor';

const LABELS: Record<DecisionClient, string> = {
  parleyConsume: 'Parley consume, 3 limits',
  parleyConsumeAp: 'Parley consume, 3 limits, autopipe',
  parleyOne: 'Parley consume, 1 limit (window)',
  parleyAdmit: 'Parley admit+release, 2 limits + lease',
  rlf: 'rate-limiter-flexible, 1 limit',
  rlfAp: 'rate-limiter-flexible, 1 limit, autopipe',
  rlfUnion3: 'rate-limiter-flexible, 3 limits (Union)',
  floor: 'round-trip floor: a no-op script',
};
const ALL_CLIENTS: DecisionClient[] = ['parleyConsume', 'rlf', 'rlfUnion3', 'rlfAp', 'parleyConsumeAp', 'parleyOne', 'parleyAdmit', 'floor'];

export interface DecisionRun {
  readonly client: DecisionClient;
  readonly label: string;
  readonly callers: number;
  readonly round: number;
  readonly decisions: number;
  readonly refused: number;
  readonly errors: number;
  readonly seconds: number;
  readonly perSec: number;
  /** redis-server CPU / wall time: near 1.0 means the single-threaded Redis was the limit. */
  readonly redisCpuShare: number;
  /** redis-server CPU per decision, µs. */
  readonly redisUsPerDecision: number;
  /** This process's CPU / wall time (the client side: ioredis, the store, the limiter). */
  readonly clientCpuShare: number;
  readonly clientUsPerDecision: number;
  /** Cores busy with anything else, and stolen by the hypervisor. */
  readonly otherCores: number;
  readonly stealCores: number;
  /** Redis `used_memory` and keys at the end of the run (warm-up included), over every decision made in it. */
  readonly redisBytesPerDecision: number;
  readonly keys: number;
}

export interface LatencyFigures {
  readonly n: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
}

export interface LatencyRun {
  readonly store: 'memory' | 'redis';
  readonly ping: LatencyFigures;
  readonly translate: LatencyFigures;
  /** error events / unexpected closes seen by the client (0 in a valid run). */
  readonly anomalies: number;
}

export interface RedisPhaseResult {
  readonly settings: RedisSettings;
  readonly runs: DecisionRun[];
  /** Best round per client and caller count (interference only ever slows a run down). */
  readonly best: Record<DecisionClient, Record<'one' | 'many', number>>;
  readonly ratio: Record<'one' | 'many', number>;
  readonly latency: LatencyRun[];
  readonly addedMs: { pingP50: number; pingP99: number; translateP50: number; translateP99: number };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- 1. decisions per second ---------------------------------------------------------------------

const HIGH = 1_000_000_000;

/** The account-side decision: what a turn with audio consumes (request window + audio minutes) plus a bucket. */
function accountSpecs(acct: string): LimitSpec[] {
  return [
    { kind: 'window', key: `rpm:{${acct}}:conversation.turn`, name: 'account.conversation.turn', limit: HIGH, windowMs: 60_000 },
    { kind: 'daily', key: `audio:{${acct}}`, name: 'account.audio_minutes', limit: HIGH, cost: 0.05 },
    { kind: 'bucket', key: `msgs:{${acct}}`, name: 'account.messages', ratePerSec: HIGH, burst: HIGH },
  ];
}

/** What a Governor sends for an upstream with requestsPerMinute, requestsPerSecond and concurrency. */
const upstreamSpecs: LimitSpec[] = [
  { kind: 'window', key: 'up:{translation}:rpm', name: 'upstream.translation.rpm', limit: HIGH, windowMs: 60_250 },
  { kind: 'bucket', key: 'up:{translation}:rps', name: 'upstream.translation.rps', ratePerSec: HIGH, burst: HIGH },
];
const upstreamLeases: LeaseSpec[] = [{ key: 'up:{translation}:conc', name: 'upstream.translation.concurrency', limit: HIGH }];

interface Contestant {
  /** One decision; resolves to whether it was allowed. */
  decide(caller: number, seq: number, acct: string): Promise<boolean>;
  close(): Promise<void>;
}

async function contestant(client: DecisionClient, url: string, prefix: string): Promise<Contestant> {
  if (client === 'floor') {
    // rate-limiter-flexible's client options; one EVALSHA per decision, of a script that reads and
    // writes nothing: the cost of the round trip alone.
    const redis = new Redis(url, { enableOfflineQueue: false }) as Redis & { benchNoop(key: string): Promise<number> };
    redis.on('error', () => undefined);
    redis.defineCommand('benchNoop', { numberOfKeys: 1, lua: 'return 1' });
    await new Promise<void>((resolve, reject) => {
      redis.once('ready', resolve);
      redis.once('end', () => reject(new Error('redis connection ended')));
    });
    return {
      async decide(_caller, _seq, acct) {
        return (await redis.benchNoop(`${prefix}floor:{${acct}}`)) === 1;
      },
      async close() {
        await redis.quit();
      },
    };
  }
  if (client === 'rlf' || client === 'rlfAp' || client === 'rlfUnion3') {
    // rate-limiter-flexible's documented ioredis setup: its own connection, offline queue off; and
    // the same with the auto-pipelining the Parley store enables, for a like-for-like client.
    const redis = new Redis(url, { enableOfflineQueue: false, enableAutoPipelining: client === 'rlfAp' });
    redis.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      redis.once('ready', resolve);
      redis.once('end', () => reject(new Error('redis connection ended')));
    });
    const rlf = (name: string, duration: number): RateLimiterRedis =>
      new RateLimiterRedis({ storeClient: redis, useRedisPackage: false, keyPrefix: `${prefix}${name}`, points: HIGH, duration });
    // rlfUnion3: how a rate-limiter-flexible user decides the same three limits (a minute, a day,
    // a second: it has no token bucket), one consume each at once; not atomic: a refusal by one
    // limit does not give back what the others took.
    const limiter = client === 'rlfUnion3' ? new RateLimiterUnion(rlf('rlfm', 60), rlf('rlfd', 86_400), rlf('rlfs', 1)) : rlf('rlf', 60);
    return {
      async decide(_caller, _seq, acct) {
        try {
          await limiter.consume(acct);
          return true;
        } catch (err) {
          if (err instanceof RateLimiterRes || (client === 'rlfUnion3' && err instanceof Object && !(err instanceof Error))) return false;
          throw err;
        }
      },
      async close() {
        await redis.quit();
      },
    };
  }
  // The store's own client, or (parleyConsumeAp) an injected one with auto-pipelining, like rlfAp.
  const store =
    client === 'parleyConsumeAp'
      ? new RedisStore({ redis: new Redis(url, { enableOfflineQueue: false, enableAutoPipelining: true }), prefix })
      : new RedisStore({ url, prefix });
  await store.ready();
  const specsByAcct = new Map<string, LimitSpec[]>();
  if (client === 'parleyConsume' || client === 'parleyConsumeAp' || client === 'parleyOne') {
    return {
      async decide(caller, seq, acct) {
        let specs = specsByAcct.get(acct);
        if (!specs) specsByAcct.set(acct, (specs = client === 'parleyOne' ? accountSpecs(acct).slice(0, 1) : accountSpecs(acct)));
        return (await store.consume(specs, `turn:${caller}:${seq}`)).allowed;
      },
      close: () => store.close(),
    };
  }
  return {
    async decide(caller, seq) {
      const holder = `bench:${caller}:${seq}`;
      const d = await store.admit(upstreamSpecs, upstreamLeases, holder, 35_000, holder);
      if (d.allowed) await store.release(upstreamLeases, holder);
      return d.allowed;
    },
    close: () => store.close(),
  };
}

async function measureDecisions(client: DecisionClient, redis: BenchRedis, admin: Redis, callers: number, round: number, s: RedisSettings): Promise<DecisionRun> {
  // Every run starts on an empty Redis, so no run pays for the keys (or the memory) of another.
  await admin.flushall();
  const baseMemory = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1] ?? Number.NaN);
  const c = await contestant(client, redis.url, `bench${round}:`);
  let decisions = 0;
  let refused = 0;
  let errors = 0;
  let accountSeq = 0;
  let stop = false;
  const worker = async (caller: number): Promise<void> => {
    for (let seq = 0; !stop; seq++) {
      const acct = `acct_${accountSeq++ % s.accounts}`;
      try {
        if (!(await c.decide(caller, seq, acct))) refused++;
      } catch {
        errors++;
        await sleep(10); // a failing store must not turn the loop into a busy spin
      }
      decisions++;
    }
  };
  const workers = Array.from({ length: callers }, (_, i) => worker(i));
  try {
    await sleep(s.warmupSeconds * 1000);
    const d0 = decisions;
    const r0 = refused;
    const e0 = errors;
    const redis0 = redis.cpuUs();
    const client0 = process.cpuUsage();
    const machine0 = machineCpu();
    const t0 = performance.now();
    await sleep(s.seconds * 1000);
    const n = decisions - d0;
    const wallUs = (performance.now() - t0) * 1000;
    const redisUs = redis.cpuUs() - redis0;
    const clientCpu = process.cpuUsage(client0);
    const clientUs = clientCpu.user + clientCpu.system;
    const machine = machineCores(machine0, machineCpu());
    const usedMemory = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1] ?? Number.NaN);
    const keys = await admin.dbsize();
    const redisCpuShare = redisUs / wallUs;
    const clientCpuShare = clientUs / wallUs;
    return {
      client,
      label: LABELS[client],
      callers,
      round,
      decisions: n,
      refused: refused - r0,
      errors: errors - e0,
      seconds: wallUs / 1e6,
      perSec: n / (wallUs / 1e6),
      redisCpuShare,
      redisUsPerDecision: redisUs / n,
      clientCpuShare,
      clientUsPerDecision: clientUs / n,
      otherCores: Math.max(0, machine.busy - redisCpuShare - clientCpuShare),
      stealCores: machine.steal,
      redisBytesPerDecision: (usedMemory - baseMemory) / decisions,
      keys,
    };
  } finally {
    stop = true;
    await Promise.allSettled(workers);
    await c.close();
  }
}

export function describeDecisionRun(r: DecisionRun): string {
  return (
    `round ${r.round} ${r.label.padEnd(39)} ${String(r.callers).padStart(3)} caller(s) ${fmtInt(r.perSec).padStart(7)} decisions/s  ` +
    `redis ${fmt(r.redisUsPerDecision, 1)} µs/decision (${pct(r.redisCpuShare)} of a core), client ${fmt(r.clientUsPerDecision, 1)} µs (${pct(r.clientCpuShare)}), ` +
    `other ${pct(r.otherCores)}, Redis memory ${fmtInt(r.redisBytesPerDecision)} B/decision (${fmtInt(r.keys)} keys)` +
    (r.refused ? `  !! ${fmtInt(r.refused)} refused` : '') +
    (r.errors ? `  !! ${fmtInt(r.errors)} error(s)` : '')
  );
}

// ---- 2. latency added to the app -----------------------------------------------------------------

/** The bench plan, plus a translation upstream whose governor admits through the store (rate + lease). */
function latencyConfig(): unknown {
  return {
    ...benchConfig,
    logLevel: 'warn',
    upstreams: {
      translation: {
        provider: 'simulated',
        latencyMs: 0,
        limits: { requestsPerMinute: HIGH, requestsPerSecond: 1_000_000, burst: 1_000_000, concurrency: 10_000 },
      },
    },
  };
}

function figures(samples: number[]): LatencyFigures {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { n: sorted.length, p50Ms: at(0.5), p99Ms: at(0.99), meanMs: sorted.reduce((a, b) => a + b, 0) / sorted.length };
}

/** One WebSocket session, one request in flight: send, wait for the answer naming its id, repeat. */
class LatencyClient {
  private waiting: { id: string | undefined; type: string; resolve: () => void; reject: (e: Error) => void } | undefined;
  anomalies = 0;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const ev = JSON.parse(String(data)) as { type: string; request_id?: string; code?: string; message?: string };
      const w = this.waiting;
      if (ev.type === 'error') {
        this.anomalies++;
        if (w && (w.id === undefined || ev.request_id === w.id)) {
          this.waiting = undefined;
          w.reject(new Error(`error event ${ev.code}: ${ev.message}`));
        }
        return;
      }
      if (w && ev.type === w.type && (w.id === undefined || ev.request_id === w.id)) {
        this.waiting = undefined;
        w.resolve();
      }
    });
    ws.on('close', (code) => {
      this.waiting?.reject(new Error(`closed with ${code}`));
      this.waiting = undefined;
    });
  }

  static async open(url: string): Promise<LatencyClient> {
    const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${BENCH_KEY}` }, perMessageDeflate: false });
    const client = new LatencyClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    await client.request({ type: 'session.start', id: 'start', language: 'es' }, 'session.created', false);
    return client;
  }

  /** Round trip in ms from send to the answer. */
  request(msg: Record<string, unknown>, answer: string, byRequestId = true): Promise<number> {
    const id = String(msg.id);
    const t0 = performance.now();
    return new Promise<number>((resolve, reject) => {
      this.waiting = { id: byRequestId ? id : undefined, type: answer, resolve: () => resolve(performance.now() - t0), reject };
      this.ws.send(JSON.stringify(msg));
    });
  }

  /** Ends the session (so its state is deleted while the store is still open) and waits for the close. */
  async end(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.ws.once('close', () => resolve()));
    this.ws.send(JSON.stringify({ type: 'session.end', id: 'end' }));
    await Promise.race([closed, sleep(2000)]);
    this.ws.terminate();
    // The session forgets its state with a few store round trips after the close.
    await sleep(200);
  }
}

async function measureLatency(kind: 'memory' | 'redis', redisUrl: string, s: RedisSettings): Promise<LatencyRun> {
  const config = parseConfig(latencyConfig(), {});
  let store: Store | undefined;
  if (kind === 'redis') {
    const rs = new RedisStore({ url: redisUrl, prefix: 'latency:' });
    await rs.ready();
    store = rs;
  }
  const app: ParleyApp = await buildApp({ config, ...(store ? { store } : {}), logger: createLogger({ level: 'warn' }), defaultMetrics: false });
  const { port } = await app.listen(0, '127.0.0.1');
  const client = await LatencyClient.open(`ws://127.0.0.1:${port}/v1/realtime`);
  try {
    const warmup = 100;
    const run = async (make: (i: number) => Record<string, unknown>, answer: string): Promise<LatencyFigures> => {
      const samples: number[] = [];
      for (let i = 0; i < warmup + s.requests; i++) {
        const ms = await client.request(make(i), answer);
        if (i >= warmup) samples.push(ms);
      }
      return figures(samples);
    };
    const ping = await run((i) => ({ type: 'ping', id: `p${i}` }), 'pong');
    const translate = await run((i) => ({ type: 'translate', id: `t${i}`, text: 'Where is the station?', target_language: 'es' }), 'translation.result');
    return { store: kind, ping, translate, anomalies: client.anomalies };
  } finally {
    await client.end();
    await app.close(); // closes the injected store too
  }
}

// ---- the phase -----------------------------------------------------------------------------------

export function redisHeadline(s: RedisSettings): string {
  return (
    `Redis store: a spawned redis-server; decisions/s with 1 and ${s.callers} concurrent callers, ${s.warmupSeconds} s warm-up + ${s.seconds} s measured, ` +
    `${s.rounds} round(s), keys over ${fmtInt(s.accounts)} accounts, nothing refused; app latency over ${fmtInt(s.requests)} requests per figure`
  );
}

export async function redisPhase(s: RedisSettings = redisSettings(), say: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<RedisPhaseResult> {
  const redis = await startBenchRedis();
  const admin = new Redis(redis.url);
  admin.on('error', () => undefined);
  try {
    const runs: DecisionRun[] = [];
    const clients = s.clients;
    for (let round = 1; round <= s.rounds; round++) {
      for (const callers of [1, s.callers]) {
        // Alternate the order, so neither library always runs on a machine the other just warmed.
        const order = round % 2 === 1 ? clients : [...clients].reverse();
        for (const client of order) {
          const r = await measureDecisions(client, redis, admin, callers, round, s);
          runs.push(r);
          say(`  ${describeDecisionRun(r)}`);
        }
      }
    }
    // A client left out of the run reads NaN.
    const bestOf = (client: DecisionClient, callers: number): number => {
      const rates = runs.filter((r) => r.client === client && r.callers === callers).map((r) => r.perSec);
      return rates.length > 0 ? Math.max(...rates) : Number.NaN;
    };
    const best = Object.fromEntries(ALL_CLIENTS.map((c) => [c, { one: bestOf(c, 1), many: bestOf(c, s.callers) }])) as RedisPhaseResult['best'];
    const ratio = { one: best.parleyConsume.one / best.rlf.one, many: best.parleyConsume.many / best.rlf.many };

    await admin.flushall();
    const latency: LatencyRun[] = [];
    for (const kind of ['memory', 'redis'] as const) {
      const r = await measureLatency(kind, redis.url, s);
      latency.push(r);
      say(
        `  latency ${kind.padEnd(6)} ping p50 ${fmt(r.ping.p50Ms, 3)} ms p99 ${fmt(r.ping.p99Ms, 3)} ms; ` +
          `translate p50 ${fmt(r.translate.p50Ms, 3)} ms p99 ${fmt(r.translate.p99Ms, 3)} ms` +
          (r.anomalies ? `  !! ${r.anomalies} error event(s)` : ''),
      );
    }
    const [mem, red] = latency as [LatencyRun, LatencyRun];
    const addedMs = {
      pingP50: red.ping.p50Ms - mem.ping.p50Ms,
      pingP99: red.ping.p99Ms - mem.ping.p99Ms,
      translateP50: red.translate.p50Ms - mem.translate.p50Ms,
      translateP99: red.translate.p99Ms - mem.translate.p99Ms,
    };
    return { settings: s, runs, best, ratio, latency, addedMs };
  } finally {
    admin.disconnect();
    await redis.stop();
  }
}

/** Summary rows: [figure, Parley, rate-limiter-flexible, ratio, target, verdict]. */
export function redisRows(r: RedisPhaseResult): string[][] {
  const n = r.settings.callers;
  return [
    ['decisions/s, 1 caller (Parley: 3 limits atomically)', fmtInt(r.best.parleyConsume.one), fmtInt(r.best.rlf.one), fmt(r.ratio.one), `≥ ${TARGET_REDIS_RATIO}`, verdict(r.ratio.one, TARGET_REDIS_RATIO, 'atLeast')],
    [`decisions/s, ${n} callers (Parley: 3 limits atomically)`, fmtInt(r.best.parleyConsume.many), fmtInt(r.best.rlf.many), fmt(r.ratio.many), `≥ ${TARGET_REDIS_RATIO}`, verdict(r.ratio.many, TARGET_REDIS_RATIO, 'atLeast')],
    ['  rate-limiter-flexible deciding the same 3 limits (not atomic), 1 caller', fmtInt(r.best.parleyConsume.one), fmtInt(r.best.rlfUnion3.one), fmt(r.best.parleyConsume.one / r.best.rlfUnion3.one), '', ''],
    [`  rate-limiter-flexible deciding the same 3 limits (not atomic), ${n} callers`, fmtInt(r.best.parleyConsume.many), fmtInt(r.best.rlfUnion3.many), fmt(r.best.parleyConsume.many / r.best.rlfUnion3.many), '', ''],
    ['  both with ioredis auto-pipelining, 1 caller', fmtInt(r.best.parleyConsumeAp.one), fmtInt(r.best.rlfAp.one), fmt(r.best.parleyConsumeAp.one / r.best.rlfAp.one), '', ''],
    [`  both with ioredis auto-pipelining, ${n} callers`, fmtInt(r.best.parleyConsumeAp.many), fmtInt(r.best.rlfAp.many), fmt(r.best.parleyConsumeAp.many / r.best.rlfAp.many), '', ''],
    ['  Parley consume, 1 limit (window), 1 caller', fmtInt(r.best.parleyOne.one), '', fmt(r.best.parleyOne.one / r.best.rlf.one), '', ''],
    [`  Parley consume, 1 limit (window), ${n} callers`, fmtInt(r.best.parleyOne.many), '', fmt(r.best.parleyOne.many / r.best.rlf.many), '', ''],
    ['  upstream admit+release cycles/s, 1 caller', fmtInt(r.best.parleyAdmit.one), '', '', '', ''],
    [`  upstream admit+release cycles/s, ${n} callers`, fmtInt(r.best.parleyAdmit.many), '', '', '', ''],
  ];
}

/** Floor rows: [callers, floor decisions/s, Parley's share of it, rate-limiter-flexible's share]. */
export function floorRows(r: RedisPhaseResult): string[][] {
  return (['one', 'many'] as const).map((k) => [
    k === 'one' ? '1 caller' : `${r.settings.callers} callers`,
    fmtInt(r.best.floor[k]),
    fmt(r.best.parleyConsume[k] / r.best.floor[k]),
    fmt(r.best.rlf[k] / r.best.floor[k]),
  ]);
}

/** Latency rows: [figure, memory, redis, added]. */
export function latencyRows(r: RedisPhaseResult): string[][] {
  const [mem, red] = r.latency as [LatencyRun, LatencyRun];
  const ms = (v: number): string => `${fmt(v, 3)} ms`;
  return [
    ['ping round trip p50 (no store)', ms(mem.ping.p50Ms), ms(red.ping.p50Ms), ms(r.addedMs.pingP50)],
    ['ping round trip p99', ms(mem.ping.p99Ms), ms(red.ping.p99Ms), ms(r.addedMs.pingP99)],
    ['translate round trip p50 (quota + admission)', ms(mem.translate.p50Ms), ms(red.translate.p50Ms), ms(r.addedMs.translateP50)],
    ['translate round trip p99', ms(mem.translate.p99Ms), ms(red.translate.p99Ms), ms(r.addedMs.translateP99)],
  ];
}

export function printRedisSummary(r: RedisPhaseResult, say: (line: string) => void): void {
  say('Redis decisions (ratio = Parley / rate-limiter-flexible, best round each)');
  say(table(['', 'Parley', 'rate-limiter-flexible', 'ratio', 'target', ''], redisRows(r)));
  say('');
  if (Number.isFinite(r.best.floor.one)) {
    say('Round-trip floor: a script that decides nothing (`return 1`), one call per decision, same client; the share of it each library reaches');
    say(table(['', 'floor, calls/s', 'Parley (3 limits)', 'rate-limiter-flexible (1 limit)'], floorRows(r)));
    say('');
  }
  say('Latency the Redis store adds in the app (one request in flight, simulated upstream 0 ms)');
  say(table(['', 'memory store', 'Redis store', 'added'], latencyRows(r)));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.on('exit', killAllRedis);
  const s = redisSettings();
  console.log(redisHeadline(s));
  redisPhase(s).then(
    (r) => {
      console.log();
      printRedisSummary(r, (l) => console.log(l));
      process.exit(0);
    },
    (err: unknown) => {
      console.error('redis bench failed:', err);
      process.exit(1);
    },
  );
}
