/**
 * The scale phase of `npm run bench` (issue 18, item 5): idle sessions of ONE account, as a real
 * app opens them (its back end holds one API key and mints a single-use token per learner; every
 * learner's socket counts against that key's and that account's connection caps), beside a bare
 * `ws` server and the stack's floor (fastify + @fastify/websocket holding sockets, nothing else)
 * holding as many sockets, in the same run:
 *
 *   (a) one replica, in-memory store, up to the open-files limit of one process;
 *   (b) several replicas on one spawned redis-server holding 100,000 sessions between them.
 *
 * These machines cap open files at 20,000 per process and the limit cannot be raised (VERIFIED.md),
 * so the phase reads the hard limit (`ulimit -Hn`), says so, and sizes (a) from it. Client sockets
 * live in holder processes (bench/clients/holder.ts, at most ~19,000 each), spread over loopback
 * source addresses 127.0.0.2, 127.0.0.3, ... so ephemeral ports do not run out.
 *
 * Per server (each replica of (b) on its own):
 *   - RSS and JS heap per session: (settled-GC reading with N open − reading before) / N, read
 *     inside the server child; and the RSS that slope projects for 100,000 sessions on one replica;
 *   - CPU at rest, % of one core over the rest window, read inside the child;
 *   - a probe session's ping round trip, p50 / p99 / max over the same window (pings sent on a timer
 *     at a steady rate); the window covers at least two lease-renewal rounds (every
 *     store.leaseSeconds / 3 = 10 s by default) and, at 30 s, one heartbeat round;
 *   - the open rate (sessions/s) and server CPU per accepted session: Parley's token path (mint over
 *     REST, connect with the token subprotocol, session.start → session.created) while filling, then,
 *     after all are closed, the API-key path refilling as many; bare `ws` and the floor: connect,
 *     one ping, its pong.
 * Replicas of (b) are filled one after the other (each with the others holding theirs), then all
 * rest together for one window, so "at rest" is 100,000 sessions of one account at once.
 *
 * Targets (printed, never enforced): with 100,000 sessions of one account, CPU at rest under 5 % of
 * a core per replica, probe p99 within 2 ms of bare `ws`'s, RSS per session at most 1.25× the
 * floor's, a memory slope that puts 100,000 sessions on one replica under 2 GB; and (issue 18, item
 * 4) server CPU per accepted session at most 1.5× the floor's, token path included.
 *
 * Cost: 17-19 minutes on the 2-core bench machine with the defaults (16.7 min and 19.2 min in two
 * runs of 2026-12-06); the fills take most of it, so a Parley that opens sessions slower makes it
 * longer (BENCH_SCALE_FILL_SECONDS bounds each fill). The report ends with the phase's own time.
 *
 * Knobs (environment):
 *   BENCH_SCALE_RUNS            which runs: single, replicas, or both (default "single,replicas")
 *   BENCH_SCALE_SINGLE_SESSIONS sessions of run (a) (default: the hard open-files limit − 200,
 *                               rounded down to 100: 19,800 here; never more than that)
 *   BENCH_SCALE_SESSIONS        sessions of run (b), all replicas together (default 100,000)
 *   BENCH_SCALE_REPLICAS        replicas of run (b) (default 6: about 16,700 each)
 *   BENCH_SCALE_REST_SECONDS    the rest window: CPU at rest and the probe (default 30; at least 25
 *                               covers two renewal rounds, the bench warns below that)
 *   BENCH_SCALE_PROBE_RATE      probe pings per second (default 20)
 *   BENCH_SCALE_CONCURRENCY     handshakes (and token mints) in flight per server while opening (default 200)
 *   BENCH_SCALE_FILL_SECONDS    a fill of one server stops starting handshakes after this long (default
 *                               300): a server that opens a few a second reports what it opened
 *   BENCH_SCALE_SOURCES         loopback source addresses 127.0.0.2 ... (default 19)
 *   BENCH_SCALE_HOLDER_SOCKETS  client sockets per holder process (default 19,000, and at most the limit − 500)
 *   BENCH_CPU_PROF=<dir>        also profile every Parley child over the rest window (node:inspector)
 *                               and print its hottest functions: where the CPU at rest goes
 *
 * Runs alone with `BENCH_ONLY=scale npm run bench`.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { PROJECT_DIR, ServerChild, type ChildOutput, type ServerKind } from './lib/child.js';
import { topSelf, type HotFunction } from './lib/profile.js';
import { anomalyCount, type Anomalies } from './lib/clients.js';
import { BENCH_KEY, type ParleyOverrides } from './lib/config.js';
import { envNumber } from './lib/env.js';
import { Holder, type OpenAuth, type OpenResult } from './lib/holders.js';
import type { CpuSnapshot, MemSnapshot } from './lib/ipc.js';
import { machineCores, machineCpu } from './lib/machine.js';
import { Probe, STALL_MS, type ProbeFigures } from './lib/probe.js';
import { startBenchRedis, type BenchRedis } from './lib/redis-server.js';
import { fmt, fmtInt, table, verdict } from './lib/report.js';

// ---- targets (printed, never enforced) ---------------------------------------------------------

export const SCALE_TARGETS = {
  /** CPU at rest per replica, share of one core, below. */
  restCpuShareBelow: 0.05,
  /** Probe p99 minus bare ws's probe p99, ms, at most. */
  probeP99OverBareMsAtMost: 2,
  /** RSS per session / the floor's, at most. */
  rssFloorRatioAtMost: 1.25,
  /** RSS of one replica holding 100,000 sessions, projected from the slope, bytes, below (2 GB). */
  projectedRssBytesBelow: 2e9,
  /** Server CPU per accepted session / the floor's, at most (issue 18, item 4). */
  openCpuFloorRatioAtMost: 1.5,
} as const;

/** The session count the projection is for (issue 18: one account, a hundred thousand learners). */
const PROJECT_SESSIONS = 100_000;
/**
 * File descriptors a server keeps for itself beside its sessions: the listening socket, epoll, IPC,
 * stdio, the Redis connections, the probe, the keep-alive sockets of token mints (16 per holder).
 */
const SERVER_FD_RESERVE = 200;
/** File descriptors a holder keeps beside its sockets (IPC, stdio, mint pool, node's own). */
const HOLDER_FD_RESERVE = 500;
/** After the fill, before reading memory: the tail of the opening traffic (quota.updated) goes by. */
const SETTLE_MS = 2000;
/**
 * How long a CPU or memory reading may take: the server answers from its event loop, which a
 * renewal round can block for seconds (issue 18 measured 5.9 s at 19,800 sessions of one key).
 */
const READING_TIMEOUT_MS = 120_000;
/** Sessions opened and closed before the "before" reading: JIT and first-use caches are not charged to N. */
const WARM_SESSIONS = 20;

// ---- settings ----------------------------------------------------------------------------------

type ScaleRun = 'single' | 'replicas';

export interface ScaleSettings {
  readonly hardLimit: number;
  readonly softLimit: number;
  readonly runs: readonly ScaleRun[];
  /** Run (a): sessions on the one replica. */
  readonly singleSessions: number;
  /** Run (b): sessions over all replicas. */
  readonly sessions: number;
  readonly replicas: number;
  readonly restSeconds: number;
  readonly probeRate: number;
  readonly concurrency: number;
  /** A fill stops starting handshakes after this long (BENCH_SCALE_FILL_SECONDS). */
  readonly fillSeconds: number;
  readonly sources: number;
  readonly holderSockets: number;
  /** BENCH_CPU_PROF: write a CPU profile of every Parley child here and print its hottest functions. */
  readonly cpuProfDir?: string;
  /** Parley's lease renewal period (store.leaseSeconds / 3; the bench uses the default 30 s lease). */
  readonly renewalSeconds: number;
  /** Notes on how the settings were derived (a clamped knob, a short window). */
  readonly notes: readonly string[];
}

function ulimit(flag: '-Hn' | '-Sn'): number {
  const out = spawnSync('sh', ['-c', `ulimit ${flag}`], { encoding: 'utf8' }).stdout.trim();
  return out === 'unlimited' ? Number.POSITIVE_INFINITY : Number(out) || 0;
}

export function scaleSettings(): ScaleSettings {
  const notes: string[] = [];
  const hardLimit = ulimit('-Hn');
  const softLimit = ulimit('-Sn');
  // Node raises its soft open-files limit to the hard one at start-up, so every child gets the hard limit.
  const perProcess = Number.isFinite(hardLimit) ? hardLimit : 1_048_576;
  const maxPerServer = Math.floor((perProcess - SERVER_FD_RESERVE) / 100) * 100;
  if (maxPerServer < 1000) throw new Error(`the open-files hard limit (ulimit -Hn) is ${hardLimit}: too low for the scale phase`);
  const rawRuns = process.env.BENCH_SCALE_RUNS?.trim();
  const runs = (rawRuns ? rawRuns.split(',').map((r) => r.trim()) : ['single', 'replicas']) as ScaleRun[];
  for (const r of runs) if (r !== 'single' && r !== 'replicas') throw new Error(`BENCH_SCALE_RUNS: unknown run "${r}" (the runs are single, replicas)`);
  let singleSessions = Math.floor(envNumber('BENCH_SCALE_SINGLE_SESSIONS', maxPerServer));
  if (singleSessions > maxPerServer) {
    notes.push(`BENCH_SCALE_SINGLE_SESSIONS ${fmtInt(singleSessions)} is above what one process can hold; using ${fmtInt(maxPerServer)}`);
    singleSessions = maxPerServer;
  }
  const sessions = Math.floor(envNumber('BENCH_SCALE_SESSIONS', 100_000));
  const replicas = Math.floor(envNumber('BENCH_SCALE_REPLICAS', 6));
  if (Math.ceil(sessions / replicas) > maxPerServer) {
    throw new Error(
      `BENCH_SCALE_SESSIONS ${sessions} over BENCH_SCALE_REPLICAS ${replicas} is ${Math.ceil(sessions / replicas)} per replica; ` +
        `one process holds at most ${maxPerServer} here (ulimit -Hn ${hardLimit}): raise BENCH_SCALE_REPLICAS to at least ${Math.ceil(sessions / maxPerServer)}`,
    );
  }
  const restSeconds = envNumber('BENCH_SCALE_REST_SECONDS', 30);
  const renewalSeconds = 30 / 3;
  if (restSeconds < 2.5 * renewalSeconds) {
    notes.push(`the rest window (${restSeconds} s) may hold fewer than two lease-renewal rounds (every ${renewalSeconds} s): the probe can miss a stall`);
  }
  const sources = Math.min(Math.floor(envNumber('BENCH_SCALE_SOURCES', 19)), 253);
  const holderSockets = Math.min(Math.floor(envNumber('BENCH_SCALE_HOLDER_SOCKETS', 19_000)), perProcess - HOLDER_FD_RESERVE);
  return {
    hardLimit,
    softLimit,
    runs,
    singleSessions,
    sessions,
    replicas,
    restSeconds,
    probeRate: envNumber('BENCH_SCALE_PROBE_RATE', 20),
    concurrency: Math.floor(envNumber('BENCH_SCALE_CONCURRENCY', 200)),
    fillSeconds: envNumber('BENCH_SCALE_FILL_SECONDS', 300),
    sources,
    holderSockets,
    ...(process.env.BENCH_CPU_PROF ? { cpuProfDir: path.resolve(process.env.BENCH_CPU_PROF) } : {}),
    renewalSeconds,
    notes,
  };
}

/** 127.0.0.2 ... 127.0.0.(n+1): Linux answers the whole of 127/8 on the loopback interface. */
function sourceAddresses(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `127.0.0.${i + 2}`);
}

// ---- results -----------------------------------------------------------------------------------

/** One fill: `count` sessions opened on one server, with at most `concurrency` in flight. */
export interface FillFigures {
  readonly auth: OpenAuth;
  readonly opened: number;
  readonly failed: number;
  readonly firstError?: string;
  /** Why it opened fewer than asked: too many failures, or BENCH_SCALE_FILL_SECONDS ran out. */
  readonly stopped?: 'failures' | 'deadline';
  readonly seconds: number;
  readonly perSecond: number;
  /** Opening speed over the first and the last tenth of the fill (does it slow down as N grows?). */
  readonly firstTenthPerSecond: number;
  readonly lastTenthPerSecond: number;
  readonly serverCpuUsPerSession: number;
  /** Server CPU / wall time over the fill: near 1 means the server was the limit. */
  readonly serverCpuShare: number;
  /** The holders' CPU / wall time (all of them together). */
  readonly holderCpuShare: number;
}

export interface RestFigures {
  readonly seconds: number;
  /** Server CPU / wall time over the window (share of one core). */
  readonly cpuShare: number;
  readonly probe: ProbeFigures;
  /** Cores busy machine-wide during the window (everything: servers, holders, Redis, neighbours). */
  readonly machineBusyCores: number;
}

export interface ServerFigures {
  readonly label: string;
  readonly kind: ServerKind;
  readonly sessions: number;
  readonly before: MemSnapshot;
  readonly after: MemSnapshot;
  readonly rssKbPerSession: number;
  /** The same without the young generation's growth (see perSession). */
  readonly rssKbPerSessionLessYoung: number;
  readonly heapKbPerSession: number;
  /** after.rss + (100,000 − N) × the RSS slope less the young generation, bytes (see perSession). */
  readonly projectedRssBytes: number;
  /** The fill: the token path on Parley, a plain socket on bare `ws` and the floor. */
  readonly fill: FillFigures;
  /** Parley: the API-key path, refilling as many after all were closed. */
  readonly keyFill?: FillFigures;
  /** Parley: memory after every session closed (the heap should be back near `before`). */
  readonly afterClose?: MemSnapshot;
  readonly rest: RestFigures;
  /** Parley: connections_used of the account (GET /v1/usage) with every session and the probes open. */
  readonly accountConnections?: number;
  /** Closes the holders did not ask for, errors events: zero in a valid run. */
  readonly anomalies: Anomalies;
  /** What the server printed (Parley logs at warn: each line is something an operator must see); still growing until the server stops. */
  readonly output: ChildOutput;
}

export interface ScaleRunResult {
  readonly run: ScaleRun;
  readonly store: 'memory' | 'redis';
  readonly sessionsPerServer: number;
  readonly bare?: ServerFigures;
  readonly floor?: ServerFigures;
  readonly parley: ServerFigures[];
  /** Redis (run b): server CPU share over the rest window and its memory with every session open. */
  readonly redis?: { readonly restCpuShare: number; readonly usedMemoryBytes: number };
  readonly errors: string[];
}

export interface ScalePhaseResult {
  readonly settings: ScaleSettings;
  readonly runs: ScaleRunResult[];
  /** Readings a server did not answer within READING_TIMEOUT_MS (their figures show n/a). */
  readonly missedReadings: readonly string[];
  /** BENCH_CPU_PROF: each Parley child's profile and hottest functions. */
  readonly profiles: readonly { label: string; file: string; top: HotFunction[] }[];
  readonly seconds: number;
}

// ---- holders -----------------------------------------------------------------------------------

/** Holder processes, started as needed and reused across servers once they hold nothing. */
class HolderPool {
  private readonly all: Holder[] = [];
  private readonly busy = new Set<Holder>();

  /** `n` holders that hold nothing, marked busy until released. */
  async take(n: number): Promise<Holder[]> {
    const picked = this.all.filter((h) => !this.busy.has(h)).slice(0, n);
    while (picked.length < n) {
      const h = await Holder.start(`holder ${this.all.length + 1}`);
      this.all.push(h);
      picked.push(h);
    }
    for (const h of picked) this.busy.add(h);
    return picked;
  }

  /** Closes every socket of these holders and makes them available again. */
  async release(holders: readonly Holder[]): Promise<void> {
    await Promise.all(holders.map((h) => h.closeAll()));
    for (const h of holders) this.busy.delete(h);
  }

  async stop(): Promise<void> {
    await Promise.all(this.all.map((h) => h.stop()));
  }
}

// ---- measuring one server ----------------------------------------------------------------------

/** Readings a server did not answer in time, by server and kind: its figures show n/a. */
const missedReadings: string[] = [];

/**
 * A CPU reading, or one of NaNs when the server does not answer within READING_TIMEOUT_MS (a
 * server stuck in a loop): the figures it feeds show n/a and the run goes on to measure the rest.
 */
async function readCpu(server: ServerChild): Promise<CpuSnapshot> {
  try {
    return await server.cpu(READING_TIMEOUT_MS);
  } catch (err) {
    missedReadings.push(`${server.label ?? server.kind}: ${err instanceof Error ? err.message : String(err)}`);
    return { type: 'cpu', id: 0, userUs: Number.NaN, systemUs: Number.NaN, atUs: Number.NaN };
  }
}

/** A settled memory reading, or one of NaNs (see readCpu). */
async function readMem(server: ServerChild, quick = false): Promise<MemSnapshot> {
  try {
    return await server.mem(READING_TIMEOUT_MS, quick);
  } catch (err) {
    missedReadings.push(`${server.label ?? server.kind}: ${err instanceof Error ? err.message : String(err)}`);
    const nan = Number.NaN;
    return { type: 'mem', id: 0, rss: nan, heapUsed: nan, external: nan, arrayBuffers: nan, gcRounds: 0, fds: nan, newSpaceBytes: nan };
  }
}

const cpuUs = (a: CpuSnapshot, b: CpuSnapshot): number => b.userUs - a.userUs + (b.systemUs - a.systemUs);

function mergeAnomalies(list: readonly Anomalies[]): Anomalies {
  const out: Anomalies = { errors: {}, closes: {}, mismatches: 0 };
  for (const a of list) {
    for (const [k, v] of Object.entries(a.errors)) out.errors[k] = (out.errors[k] ?? 0) + v;
    for (const [k, v] of Object.entries(a.closes)) out.closes[k] = (out.closes[k] ?? 0) + v;
    out.mismatches += a.mismatches;
  }
  return out;
}

/** A server under test, with where its clients connect and how. */
interface Subject {
  readonly label: string;
  readonly server: ServerChild;
  readonly wsUrl: string;
  readonly httpUrl: string;
  /** Parley: the path a fill uses ('token' first, then 'key'); bare and floor: 'none'. */
  readonly parley: boolean;
}

function subject(label: string, server: ServerChild): Subject {
  const parley = server.kind === 'parley';
  return { label, server, wsUrl: `${server.url}${server.kind === 'bare' ? '/' : '/v1/realtime'}`, httpUrl: `http://127.0.0.1:${server.port}`, parley };
}

/** Opens `count` sessions on a server through `holders` (split evenly), timing it and the server's CPU. */
async function fill(s: Subject, holders: readonly Holder[], count: number, auth: OpenAuth, settings: ScaleSettings, tag: string): Promise<FillFigures> {
  const shares = holders.map((_, i) => Math.floor(count / holders.length) + (i < count % holders.length ? 1 : 0));
  const addresses = sourceAddresses(settings.sources);
  const cpu0 = await readCpu(s.server);
  const t0 = performance.now();
  const results: OpenResult[] = await Promise.all(
    holders.map((h, i) =>
      h.open({
        wsUrl: s.wsUrl,
        httpUrl: s.httpUrl,
        auth,
        key: BENCH_KEY,
        count: shares[i]!,
        concurrency: Math.max(1, Math.ceil(settings.concurrency / holders.length)),
        localAddresses: addresses,
        learnerPrefix: `learner_${tag}_${i}_`,
        deadlineSeconds: settings.fillSeconds,
      }),
    ),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = await readCpu(s.server);
  const opened = results.reduce((n, r) => n + r.opened, 0);
  // Each holder's tenths run side by side, so their speeds add up.
  const tenth = (r: OpenResult, i: number, first: boolean): number => {
    const d = r.deciles;
    if (d.length < 10) return Number.NaN;
    return (shares[i]! / 10) / (first ? d[0]! : d[9]! - d[8]!);
  };
  return {
    auth,
    opened,
    failed: results.reduce((n, r) => n + r.failed, 0),
    ...(results.find((r) => r.firstError) ? { firstError: results.find((r) => r.firstError)!.firstError! } : {}),
    ...(results.find((r) => r.stopped) ? { stopped: results.find((r) => r.stopped)!.stopped! } : {}),
    seconds,
    perSecond: opened / seconds,
    firstTenthPerSecond: results.reduce((n, r, i) => n + tenth(r, i, true), 0),
    lastTenthPerSecond: results.reduce((n, r, i) => n + tenth(r, i, false), 0),
    serverCpuUsPerSession: cpuUs(cpu0, cpu1) / opened,
    serverCpuShare: cpuUs(cpu0, cpu1) / (cpu1.atUs - cpu0.atUs),
    holderCpuShare: results.reduce((n, r) => n + r.holderCpuUs, 0) / (seconds * 1e6),
  };
}

function describeFill(label: string, f: FillFigures): string {
  return (
    `  ${label}: ${fmtInt(f.opened)} sessions (${f.auth === 'none' ? 'plain socket' : `${f.auth} path`}) in ${fmt(f.seconds, 1)} s: ${fmtInt(f.perSecond)}/s ` +
    `(first tenth ${fmtInt(f.firstTenthPerSecond)}/s, last ${fmtInt(f.lastTenthPerSecond)}/s), ${fmtInt(f.serverCpuUsPerSession)} µs server CPU each; ` +
    `server ${fmt(f.serverCpuShare * 100, 0)}% of a core, holders ${fmt(f.holderCpuShare * 100, 0)}%` +
    (f.failed ? `  !! ${f.failed} failed (first: ${f.firstError})` : '') +
    (f.stopped ? `  !! stopped short: ${f.stopped === 'deadline' ? 'BENCH_SCALE_FILL_SECONDS ran out' : 'too many failures'}` : '')
  );
}

/** GET /v1/usage with the bench key: the account's open connections as the store counts them. */
async function accountConnections(httpUrl: string): Promise<number> {
  // NaN when it cannot be read (a stalled server, a refusal): the check it feeds is then skipped, the run goes on.
  try {
    const res = await fetch(`${httpUrl}/v1/usage`, { headers: { Authorization: `Bearer ${BENCH_KEY}` }, signal: AbortSignal.timeout(60_000) });
    if (res.status !== 200) throw new Error(`GET /v1/usage answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
    return ((await res.json()) as { connections_used: number }).connections_used;
  } catch (err) {
    missedReadings.push(`GET ${httpUrl}/v1/usage: ${err instanceof Error ? err.message : String(err)}`);
    return Number.NaN;
  }
}

/** Waits until the store has let go of the closed sessions' leases (so a refill is not refused by the cap). */
async function untilReleased(httpUrl: string, atMost: number, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = await accountConnections(httpUrl);
    if (!(n > atMost) || Date.now() > deadline) return n;
    await sleep(250);
  }
}

/**
 * The rest window over several servers at once: each server's CPU, a probe per server, the machine.
 * `before` runs right before the window opens (Redis's CPU reading).
 */
async function restWindow(subjects: readonly Subject[], probes: readonly (Probe | string)[], settings: ScaleSettings, redis?: BenchRedis): Promise<{ rest: RestFigures[]; redisCpuShare: number }> {
  // BENCH_CPU_PROF: what Parley does at rest, sampled over exactly this window (the profiler's own cost is in the CPU figure then).
  const profiled = settings.cpuProfDir ? subjects.filter((s) => s.parley) : [];
  await Promise.all(profiled.map((s) => s.server.profileStart().catch((err: unknown) => missedReadings.push(`${s.label}: profile: ${String(err)}`))));
  const cpu0 = await Promise.all(subjects.map((s) => readCpu(s.server)));
  const machine0 = machineCpu();
  const redis0 = redis?.cpuUs() ?? Number.NaN;
  const t0 = performance.now();
  for (const p of probes) if (typeof p !== 'string') p.start(settings.probeRate);
  await sleep(settings.restSeconds * 1000);
  const cpu1 = await Promise.all(subjects.map((s) => readCpu(s.server)));
  const machine = machineCores(machine0, machineCpu());
  const wallUs = (performance.now() - t0) * 1000;
  const redisCpuShare = redis ? (redis.cpuUs() - redis0) / wallUs : Number.NaN;
  for (const s of profiled) {
    const file = path.join(settings.cpuProfDir!, `scale-rest-${s.label}-${Date.now()}.cpuprofile`);
    try {
      await s.server.profileStop(file, READING_TIMEOUT_MS);
      profiles.push({ label: `${s.label} at rest`, file, top: topSelf(file, 15, PROJECT_DIR) });
    } catch (err) {
      missedReadings.push(`${s.label}: profile: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const nan = Number.NaN;
  const figures = await Promise.all(
    probes.map((p): Promise<ProbeFigures> | ProbeFigures => (typeof p === 'string' ? { n: 0, p50Ms: nan, p99Ms: nan, maxMs: nan, unanswered: 0, problems: [p], stalls: [] } : p.stop())),
  );
  return {
    rest: subjects.map((s, i) => ({
      seconds: (cpu1[i]!.atUs - cpu0[i]!.atUs) / 1e6,
      cpuShare: cpuUs(cpu0[i]!, cpu1[i]!) / (cpu1[i]!.atUs - cpu0[i]!.atUs),
      probe: figures[i]!,
      machineBusyCores: machine.busy,
    })),
    redisCpuShare,
  };
}

function describeRest(label: string, r: RestFigures): string {
  const p = r.probe;
  return (
    `  ${label}: at rest ${fmt(r.cpuShare * 100, 2)}% of a core over ${fmt(r.seconds, 1)} s; probe ${fmtInt(p.n)} pings p50 ${fmt(p.p50Ms)} / p99 ${fmt(p.p99Ms)} / max ${fmt(p.maxMs)} ms; ` +
    `machine ${fmt(r.machineBusyCores, 2)} cores busy` +
    (p.stalls.length
      ? `; ${p.stalls.length} stall(s) ≥ ${STALL_MS} ms at ${p.stalls
          .slice(0, 8)
          .map((x) => `+${fmt(x.atSeconds, 1)} s (${fmtInt(x.worstMs)} ms)`)
          .join(', ')}${p.stalls.length > 8 ? ', …' : ''}`
      : '') +
    (p.unanswered ? `  !! ${p.unanswered} ping(s) unanswered` : '') +
    (p.problems.length ? `  !! ${p.problems.slice(0, 3).join('; ')}` : '')
  );
}

/**
 * Per-session memory between two readings. `rssKb` is the whole RSS difference over N. The young
 * generation (V8's new space) is not a per-session cost: it grows to its ceiling (32 MiB here)
 * while a process allocates and shrinks back when the memory reducer finds it idle, so a server
 * that allocates at rest keeps ~30 MiB more whatever N is. `rssKbLessYoung` leaves that
 * difference out, and the projection extends from the measured point with that slope, so a fixed
 * 30 MiB is not multiplied by 100,000 / N.
 */
function perSession(before: MemSnapshot, after: MemSnapshot, n: number): { rssKb: number; rssKbLessYoung: number; heapKb: number; projected: number } {
  const rssSlope = (after.rss - before.rss) / n;
  const lessYoung = (after.rss - before.rss - (after.newSpaceBytes - before.newSpaceBytes)) / n;
  return {
    rssKb: rssSlope / 1024,
    rssKbLessYoung: lessYoung / 1024,
    heapKb: (after.heapUsed - before.heapUsed) / 1024 / n,
    projected: after.rss + (PROJECT_SESSIONS - n) * lessYoung,
  };
}

function describeMem(label: string, before: MemSnapshot, after: MemSnapshot, n: number): string {
  const m = perSession(before, after, n);
  return (
    `  ${label}: RSS ${fmt(before.rss / 2 ** 20, 1)} → ${fmt(after.rss / 2 ** 20, 1)} MiB, heap ${fmt(before.heapUsed / 2 ** 20, 1)} → ${fmt(after.heapUsed / 2 ** 20, 1)} MiB: ` +
    `${fmt(m.rssKb, 2)} KB RSS (${fmt(m.rssKbLessYoung, 2)} less the young generation, ${fmt(before.newSpaceBytes / 2 ** 20, 0)} → ${fmt(after.newSpaceBytes / 2 ** 20, 0)} MiB), ${fmt(m.heapKb, 2)} KB heap per session; 100k projected ${fmt(m.projected / 1e9, 2)} GB; open files ${fmtInt(before.fds)} → ${fmtInt(after.fds)}`
  );
}

/** The server's probe session, or why it did not open (the rest figures then show n/a for it). */
async function openProbe(s: Subject): Promise<Probe | string> {
  try {
    return await Probe.open(s.wsUrl, s.parley ? BENCH_KEY : undefined);
  } catch (err) {
    return `the probe did not open: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** Opens a few sessions through the path the fill will use, and closes them (see WARM_SESSIONS). */
async function warm(s: Subject, holder: Holder, settings: ScaleSettings): Promise<void> {
  await fill(s, [holder], WARM_SESSIONS, s.parley ? 'token' : 'none', settings, `${s.label}_warm`);
  await holder.closeAll();
  await sleep(500);
}

/**
 * One server on its own (bare `ws`, the floor, or the single Parley replica of run a): warm, read
 * memory, fill, settle, read memory, rest with a probe; Parley also closes all, reads memory again
 * and refills through the API-key path.
 */
async function measureOne(label: string, server: ServerChild, count: number, pool: HolderPool, settings: ScaleSettings, say: (line: string) => void): Promise<ServerFigures> {
  const s = subject(label, server);
  const holders = await pool.take(Math.ceil(count / settings.holderSockets));
  // Every holder this server used, released however the measurement ends (release is idempotent).
  const taken: Holder[] = [...holders];
  let probe: Probe | string | undefined;
  try {
    await warm(s, holders[0]!, settings);
    const before = await readMem(server);
    const f = await fill(s, holders, count, s.parley ? 'token' : 'none', settings, label);
    say(describeFill(label, f));
    await sleep(SETTLE_MS);
    const after = await readMem(server);
    say(describeMem(label, before, after, f.opened));
    probe = await openProbe(s);
    const used = s.parley ? await accountConnections(s.httpUrl) : undefined;
    await sleep(1000);
    const { rest } = await restWindow([s], [probe], settings);
    say(describeRest(label, rest[0]!));
    const anomalies = mergeAnomalies((await Promise.all(holders.map((h) => h.status()))).map((x) => x.anomalies));
    if (typeof probe !== 'string') probe.close();
    probe = undefined;
    await pool.release(holders);
    let keyFill: FillFigures | undefined;
    let afterClose: MemSnapshot | undefined;
    if (s.parley) {
      const left = await untilReleased(s.httpUrl, 0);
      if (left > 0) say(`  !! ${label}: ${fmtInt(left)} connection(s) still counted 60 s after every socket closed`);
      afterClose = await readMem(server, true); // the heap is the figure here: no need to wait for RSS
      say(`  ${label}: all closed: RSS ${fmt(afterClose.rss / 2 ** 20, 1)} MiB, heap ${fmt(afterClose.heapUsed / 2 ** 20, 1)} MiB (before the fill: ${fmt(before.heapUsed / 2 ** 20, 1)} MiB)`);
      const again = await pool.take(holders.length);
      taken.push(...again);
      keyFill = await fill(s, again, count, 'key', settings, `${label}_key`);
      say(describeFill(label, keyFill));
      await pool.release(again);
    }
    const m = perSession(before, after, f.opened);
    return {
      label,
      kind: server.kind,
      sessions: f.opened,
      before,
      after,
      rssKbPerSession: m.rssKb,
      rssKbPerSessionLessYoung: m.rssKbLessYoung,
      heapKbPerSession: m.heapKb,
      projectedRssBytes: m.projected,
      fill: f,
      ...(keyFill ? { keyFill } : {}),
      ...(afterClose ? { afterClose } : {}),
      rest: rest[0]!,
      ...(used !== undefined ? { accountConnections: used } : {}),
      anomalies,
      output: server.output,
    };
  } finally {
    if (probe && typeof probe !== 'string') probe.close();
    await pool.release(taken).catch(() => undefined);
  }
}

/** Starts a server child, measures it alone, stops it; a failure is recorded, not thrown. */
async function measureAlone(
  kind: ServerKind,
  label: string,
  count: number,
  overrides: ParleyOverrides | undefined,
  pool: HolderPool,
  settings: ScaleSettings,
  say: (line: string) => void,
  errors: string[],
): Promise<ServerFigures | undefined> {
  const server = await ServerChild.start(kind, {
    label,
    ...(overrides ? { env: { BENCH_PARLEY_CONFIG: JSON.stringify(overrides) } } : {}),
  });
  try {
    return await measureOne(label, server, count, pool, settings, say);
  } catch (err) {
    const msg = `${label}: ${err instanceof Error ? err.message : String(err)}`;
    errors.push(msg);
    say(`  !! ${msg}`);
    return undefined;
  } finally {
    await server.stop();
  }
}

/** CPU profiles of Parley children over the rest window (BENCH_CPU_PROF). */
const profiles: { label: string; file: string; top: HotFunction[] }[] = [];

// ---- the two runs ------------------------------------------------------------------------------

/** A cap above every session and probe of the run: the bench measures holding, not refusing. */
const capFor = (sessions: number): number => Math.max(100_000, sessions + 1000);

async function singleRun(settings: ScaleSettings, pool: HolderPool, say: (line: string) => void): Promise<ScaleRunResult> {
  const n = settings.singleSessions;
  const errors: string[] = [];
  say(`(a) one replica, in-memory store: ${fmtInt(n)} sessions of one account per server (bare ws, floor, Parley)`);
  const bare = await measureAlone('bare', 'bare', n, undefined, pool, settings, say, errors);
  const floor = await measureAlone('floor', 'floor', n, undefined, pool, settings, say, errors);
  const parley = await measureAlone('parley', 'parley', n, { maxConnections: n + 100, connectionCap: capFor(n), store: { kind: 'memory' } }, pool, settings, say, errors);
  return { run: 'single', store: 'memory', sessionsPerServer: n, ...(bare ? { bare } : {}), ...(floor ? { floor } : {}), parley: parley ? [parley] : [], errors };
}

async function replicasRun(settings: ScaleSettings, pool: HolderPool, say: (line: string) => void): Promise<ScaleRunResult> {
  const R = settings.replicas;
  const counts = Array.from({ length: R }, (_, i) => Math.floor(settings.sessions / R) + (i < settings.sessions % R ? 1 : 0));
  const perServer = counts[0]!;
  const errors: string[] = [];
  say(
    `(b) ${R} replicas on one redis-server: ${fmtInt(settings.sessions)} sessions of one account (${counts.map(fmtInt).join(', ')}); ` +
      `bare ws and the floor each alone with ${fmtInt(perServer)}`,
  );
  const bare = await measureAlone('bare', 'bare', perServer, undefined, pool, settings, say, errors);
  const floor = await measureAlone('floor', 'floor', perServer, undefined, pool, settings, say, errors);

  const redis = await startBenchRedis();
  const admin = new Redis(redis.url);
  admin.on('error', () => undefined);
  const replicas: Subject[] = [];
  const probes: (Probe | string)[] = [];
  const held: Holder[][] = [];
  const parley: ServerFigures[] = [];
  let redisFigures: ScaleRunResult['redis'];
  try {
    const overrides: ParleyOverrides = {
      maxConnections: perServer + 100,
      connectionCap: capFor(settings.sessions),
      store: { kind: 'redis', url: redis.url, expectedReplicas: R },
    };
    for (let i = 0; i < R; i++) {
      const label = `r${i + 1}`;
      replicas.push(
        subject(
          label,
          await ServerChild.start('parley', { label, env: { BENCH_PARLEY_CONFIG: JSON.stringify(overrides) } }),
        ),
      );
    }
    const warmHolder = await pool.take(1);
    for (const s of replicas) await warm(s, warmHolder[0]!, settings);
    await pool.release(warmHolder);
    // All at once: a reading spends most of its 15-30 s waiting for the memory reducer (ipc.ts).
    const before = await Promise.all(replicas.map((s) => readMem(s.server)));

    // Fill one replica after the other, the others holding theirs: the last opens at ~(R-1)/R of the account's sessions.
    const fills: FillFigures[] = [];
    for (let i = 0; i < R; i++) {
      const holders = await pool.take(Math.ceil(counts[i]! / settings.holderSockets));
      held.push(holders);
      const f = await fill(replicas[i]!, holders, counts[i]!, 'token', settings, replicas[i]!.label);
      fills.push(f);
      say(describeFill(replicas[i]!.label, f));
    }
    await sleep(SETTLE_MS);
    const after = await Promise.all(replicas.map((s) => readMem(s.server)));
    for (let i = 0; i < R; i++) say(describeMem(replicas[i]!.label, before[i]!, after[i]!, fills[i]!.opened));
    for (const s of replicas) probes.push(await openProbe(s));
    const used = await accountConnections(replicas[0]!.httpUrl);
    say(`  the store counts ${fmtInt(used)} open connections of the account (${fmtInt(fills.reduce((n, f) => n + f.opened, 0))} sessions + ${R} probes)`);
    const usedMemoryBytes = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1] ?? Number.NaN);
    await sleep(1000);
    const { rest, redisCpuShare } = await restWindow(replicas, probes, settings, redis);
    for (let i = 0; i < R; i++) say(describeRest(replicas[i]!.label, rest[i]!));
    say(`  redis-server: ${fmt(redisCpuShare * 100, 2)}% of a core over the window, used_memory ${fmt(usedMemoryBytes / 2 ** 20, 1)} MiB`);
    redisFigures = { restCpuShare: redisCpuShare, usedMemoryBytes };
    const anomalies = await Promise.all(held.map(async (hs) => mergeAnomalies((await Promise.all(hs.map((h) => h.status()))).map((x) => x.anomalies))));
    for (const p of probes) if (typeof p !== 'string') p.close();
    probes.length = 0;
    for (const hs of held) await pool.release(hs);
    held.length = 0;

    const left = await untilReleased(replicas[0]!.httpUrl, 0);
    if (left > 0) say(`  !! ${fmtInt(left)} connection(s) still counted 60 s after every socket closed`);
    const afterClose: MemSnapshot[] = [];
    for (const s of replicas) afterClose.push(await readMem(s.server, true));
    say(`  all closed: heap ${afterClose.map((m, i) => `${replicas[i]!.label} ${fmt(m.heapUsed / 2 ** 20, 1)} MiB (was ${fmt(before[i]!.heapUsed / 2 ** 20, 1)})`).join(', ')}`);
    const keyFills: FillFigures[] = [];
    for (let i = 0; i < R; i++) {
      const holders = await pool.take(Math.ceil(counts[i]! / settings.holderSockets));
      held.push(holders);
      const f = await fill(replicas[i]!, holders, counts[i]!, 'key', settings, `${replicas[i]!.label}_key`);
      keyFills.push(f);
      say(describeFill(replicas[i]!.label, f));
    }
    for (const hs of held) await pool.release(hs);
    held.length = 0;

    for (let i = 0; i < R; i++) {
      const m = perSession(before[i]!, after[i]!, fills[i]!.opened);
      parley.push({
        label: replicas[i]!.label,
        kind: 'parley',
        sessions: fills[i]!.opened,
        before: before[i]!,
        after: after[i]!,
        rssKbPerSession: m.rssKb,
        rssKbPerSessionLessYoung: m.rssKbLessYoung,
        heapKbPerSession: m.heapKb,
        projectedRssBytes: m.projected,
        fill: fills[i]!,
        keyFill: keyFills[i]!,
        afterClose: afterClose[i]!,
        rest: rest[i]!,
        accountConnections: used,
        anomalies: anomalies[i]!,
        output: replicas[i]!.server.output,
      });
    }
  } catch (err) {
    const msg = `replicas: ${err instanceof Error ? err.message : String(err)}`;
    errors.push(msg);
    say(`  !! ${msg}`);
  } finally {
    for (const p of probes) if (typeof p !== 'string') p.close();
    for (const hs of held) await pool.release(hs).catch(() => undefined);
    await Promise.all(replicas.map((s) => s.server.stop()));
    admin.disconnect();
    await redis.stop();
  }
  return {
    run: 'replicas',
    store: 'redis',
    sessionsPerServer: perServer,
    ...(bare ? { bare } : {}),
    ...(floor ? { floor } : {}),
    parley,
    ...(redisFigures ? { redis: redisFigures } : {}),
    errors,
  };
}

// ---- the phase ---------------------------------------------------------------------------------

export function scaleHeadline(s: ScaleSettings): string[] {
  const lines = [
    `Scale: idle sessions of ONE account (one API key; Parley's token path: mint over REST, connect with the token subprotocol), beside bare ws and the floor in this run`,
    `  open files: hard limit ${Number.isFinite(s.hardLimit) ? fmtInt(s.hardLimit) : 'unlimited'} per process (ulimit -Hn; soft ${Number.isFinite(s.softLimit) ? fmtInt(s.softLimit) : 'unlimited'}), ` +
      `which this bench cannot raise: one server process holds at most ${fmtInt(Math.floor((s.hardLimit - SERVER_FD_RESERVE) / 100) * 100)} sessions here; client sockets live in holder processes of ≤ ${fmtInt(s.holderSockets)} each, ` +
      `bound to ${s.sources} loopback source addresses (127.0.0.2-127.0.0.${s.sources + 1})`,
    `  rest window ${s.restSeconds} s (CPU at rest and a probe session's ping at ${s.probeRate}/s; lease renewal every ${s.renewalSeconds} s, heartbeat every 30 s); ` +
      `${s.concurrency} handshakes in flight per server while opening; Parley at LOG_LEVEL=warn, its lines shown as [label]`,
  ];
  for (const n of s.notes) lines.push(`  note: ${n}`);
  return lines;
}

export async function scalePhase(settings: ScaleSettings, say: (line: string) => void): Promise<ScalePhaseResult> {
  const started = performance.now();
  missedReadings.length = 0;
  profiles.length = 0;
  if (settings.cpuProfDir) fs.mkdirSync(settings.cpuProfDir, { recursive: true });
  const pool = new HolderPool();
  const runs: ScaleRunResult[] = [];
  try {
    if (settings.runs.includes('single')) runs.push(await singleRun(settings, pool, say));
    if (settings.runs.includes('replicas')) runs.push(await replicasRun(settings, pool, say));
  } finally {
    await pool.stop();
  }
  return { settings, runs, missedReadings: [...missedReadings], profiles: [...profiles], seconds: (performance.now() - started) / 1000 };
}

// ---- the report --------------------------------------------------------------------------------

const worst = (xs: readonly number[], pick: 'max' | 'min'): number => (xs.length ? (pick === 'max' ? Math.max(...xs) : Math.min(...xs)) : Number.NaN);
const ms = (n: number): string => fmt(n, n >= 100 ? 0 : 2);

/**
 * The scale table of one run: bare ws, the floor, Parley (one column per replica in run b, then
 * the worst replica), ratios against the floor and bare ws, the target and whether it was met.
 */
function runTable(r: ScaleRunResult): string {
  const P = r.parley;
  const cols = P.map((p) => p.label);
  const multi = P.length > 1;
  type Get = (f: ServerFigures) => number;
  const rows: string[][] = [];
  const val = (f: ServerFigures | undefined, get: Get): number => (f ? get(f) : Number.NaN);
  /**
   * A row: bare, floor, each replica, [worst], Parley/bare, Parley/floor, target, verdict.
   * `pick` says which replica is the worst; `target` judges the worst.
   */
  const row = (
    name: string,
    get: Get,
    show: (n: number) => string,
    pick: 'max' | 'min',
    target?: { text: string; judge: (worstValue: number, bare: number, floor: number) => [number, number, 'atLeast' | 'atMost'] },
    ratios = true,
  ): void => {
    const bare = val(r.bare, get);
    const floor = val(r.floor, get);
    const values = P.map(get);
    const w = worst(values, pick);
    const judged = target ? target.judge(w, bare, floor) : undefined;
    rows.push([
      name,
      show(bare),
      show(floor),
      ...values.map(show),
      ...(multi ? [show(w)] : []),
      ratios && Number.isFinite(w / bare) ? `${fmt(w / bare)}×` : '',
      ratios && Number.isFinite(w / floor) ? `${fmt(w / floor)}×` : '',
      target?.text ?? '',
      judged ? verdict(judged[0], judged[1], judged[2]) : '',
    ]);
  };
  row('sessions held', (f) => f.sessions, fmtInt, 'min', undefined, false);
  row('RSS per session, after full GC (KB)', (f) => f.rssKbPerSession, (n) => fmt(n, 2), 'max', {
    text: `≤ ${SCALE_TARGETS.rssFloorRatioAtMost}× floor`,
    judge: (w, _b, floor) => [w / floor, SCALE_TARGETS.rssFloorRatioAtMost, 'atMost'],
  });
  row('  less the young generation (KB)', (f) => f.rssKbPerSessionLessYoung, (n) => fmt(n, 2), 'max');
  row('  young generation with N sessions (MiB)', (f) => f.after.newSpaceBytes / 2 ** 20, (n) => fmt(n, 1), 'max', undefined, false);
  row('  JS heap per session (KB)', (f) => f.heapKbPerSession, (n) => fmt(n, 2), 'max');
  row('open files per session (server, /proc/self/fd)', (f) => (f.after.fds - f.before.fds) / f.sessions, (n) => fmt(n, 2), 'max', undefined, false);
  row('open files with N sessions (of ulimit -Hn)', (f) => f.after.fds, fmtInt, 'max', undefined, false);
  row('RSS at 100k sessions on one replica (GB, projected)', (f) => f.projectedRssBytes / 1e9, (n) => fmt(n, 2), 'max', {
    text: `< ${SCALE_TARGETS.projectedRssBytesBelow / 1e9} GB`,
    judge: (w) => [w, SCALE_TARGETS.projectedRssBytesBelow / 1e9, 'atMost'],
  });
  row(`CPU at rest (% of a core)`, (f) => f.rest.cpuShare * 100, (n) => fmt(n, 2), 'max', {
    text: `< ${SCALE_TARGETS.restCpuShareBelow * 100}%`,
    judge: (w) => [w, SCALE_TARGETS.restCpuShareBelow * 100, 'atMost'],
  });
  row('probe ping p50 (ms)', (f) => f.rest.probe.p50Ms, ms, 'max');
  row('probe ping p99 (ms)', (f) => f.rest.probe.p99Ms, ms, 'max', {
    text: `≤ bare + ${SCALE_TARGETS.probeP99OverBareMsAtMost} ms`,
    judge: (w, bare) => [w - bare, SCALE_TARGETS.probeP99OverBareMsAtMost, 'atMost'],
  });
  row('probe ping max (ms)', (f) => f.rest.probe.maxMs, ms, 'max');
  const fillRows = (path: string, get: (f: ServerFigures) => FillFigures | undefined): void => {
    const pick = (f: ServerFigures): FillFigures | undefined => (f.kind === 'parley' ? get(f) : f.fill);
    row(`open rate, ${path} (sessions/s)`, (f) => pick(f)?.perSecond ?? Number.NaN, fmtInt, 'min');
    row(`  last tenth of the fill (sessions/s)`, (f) => pick(f)?.lastTenthPerSecond ?? Number.NaN, fmtInt, 'min');
    row(`server CPU per accepted session, ${path} (µs)`, (f) => pick(f)?.serverCpuUsPerSession ?? Number.NaN, fmtInt, 'max', {
      text: `≤ ${SCALE_TARGETS.openCpuFloorRatioAtMost}× floor`,
      judge: (w, _b, floor) => [w / floor, SCALE_TARGETS.openCpuFloorRatioAtMost, 'atMost'],
    });
  };
  fillRows('token path', (f) => f.fill);
  fillRows('API-key path', (f) => f.keyFill);
  return table(['', 'bare ws', 'floor', ...cols, ...(multi ? ['worst'] : []), 'P/bare', 'P/floor', 'target', ''], rows);
}

/** Distinct log messages a server printed, with counts (pino lines by their `msg`). */
function outputSummary(f: ServerFigures): string[] {
  const byMsg = new Map<string, number>();
  for (const line of f.output.lines) {
    let key = line.slice(0, 120);
    try {
      const j = JSON.parse(line) as { msg?: string; level?: number };
      if (j.msg) key = `level ${j.level ?? '?'}: ${j.msg}`;
    } catch {
      /* not a pino line: keep its start */
    }
    byMsg.set(key, (byMsg.get(key) ?? 0) + 1);
  }
  return [...byMsg].map(([k, n]) => `${n}× ${k}`);
}

export function printScaleSummary(result: ScalePhaseResult, say: (line: string) => void): void {
  for (const r of result.runs) {
    const title =
      r.run === 'single'
        ? `Scale (a): one replica, in-memory store, ${fmtInt(r.sessionsPerServer)} sessions of one account per server`
        : `Scale (b): ${r.parley.length || result.settings.replicas} replicas on one redis-server, ${fmtInt(result.settings.sessions)} sessions of one account ` +
          `(Parley/bare and Parley/floor for the worst replica; bare ws and the floor each alone with ${fmtInt(r.sessionsPerServer)})`;
    say(title);
    say(runTable(r));
    say('(bare ws and the floor open one way, a plain socket and one ping: both paths\' rows show that figure for them)');
    if (r.redis) say(`redis-server at rest: ${fmt(r.redis.restCpuShare * 100, 2)}% of a core, used_memory ${fmt(r.redis.usedMemoryBytes / 2 ** 20, 1)} MiB`);
    for (const f of [r.bare, r.floor, ...r.parley]) {
      if (!f) continue;
      if (anomalyCount(f.anomalies)) say(`!! ${f.label}: ${JSON.stringify(f.anomalies)} while opening or holding (figures of that server are suspect)`);
      for (const x of [f.fill, f.keyFill]) {
        if (x?.stopped) say(`!! ${f.label}: the ${x.auth} fill stopped at ${fmtInt(x.opened)} sessions (${x.stopped === 'deadline' ? `BENCH_SCALE_FILL_SECONDS ${fmt(x.seconds, 0)} s ran out` : 'too many failures'})`);
      }
      if (f.fill.failed || (f.keyFill?.failed ?? 0)) say(`!! ${f.label}: ${f.fill.failed + (f.keyFill?.failed ?? 0)} session(s) failed to open (first: ${f.fill.firstError ?? f.keyFill?.firstError})`);
      if (f.rest.probe.unanswered || f.rest.probe.problems.length) {
        say(`!! ${f.label}: probe: ${[...(f.rest.probe.unanswered ? [`${f.rest.probe.unanswered} ping(s) unanswered 2 s after the window`] : []), ...f.rest.probe.problems].join('; ')}`);
      }
      if (f.kind === 'parley') {
        const expected = r.run === 'single' ? f.sessions + 1 : r.parley.reduce((n, p) => n + p.sessions, 0) + r.parley.length;
        if (f.accountConnections !== undefined && Number.isFinite(f.accountConnections) && f.accountConnections !== expected && (r.run === 'single' || f === r.parley[0])) {
          say(
            `!! GET /v1/usage counted ${fmtInt(f.accountConnections)} connections of the account, expected ${fmtInt(expected)}` +
              (r.store === 'redis' ? ' (a replica that has fallen back to in-process limits answers with its own count)' : ''),
          );
        }
        if (f.output.count) {
          say(`${f.label} printed ${fmtInt(f.output.count)} line(s) at LOG_LEVEL=warn:`);
          for (const l of outputSummary(f).slice(0, 10)) say(`  ${l}`);
        } else {
          say(`${f.label} printed nothing at LOG_LEVEL=warn`);
        }
      }
    }
    for (const e of r.errors) say(`!! ${e}`);
    say('');
  }
  say(
    `targets (issue 18; printed, never enforced): at 100,000 sessions of one account, CPU at rest < ${SCALE_TARGETS.restCpuShareBelow * 100}% of a core per replica, ` +
      `probe p99 ≤ bare ws's + ${SCALE_TARGETS.probeP99OverBareMsAtMost} ms, RSS per session ≤ ${SCALE_TARGETS.rssFloorRatioAtMost}× the floor's, ` +
      `100,000 sessions on one replica < 2 GB by the slope, server CPU per accepted session ≤ ${SCALE_TARGETS.openCpuFloorRatioAtMost}× the floor's; ` +
      `verdicts judge the worst replica. Bare ws and the floor rest alone; the replicas of (b) rest together with their holders and Redis on the same ${os.cpus().length}-core machine.`,
  );
  for (const m of result.missedReadings) say(`!! a reading went unanswered, its figures show n/a: ${m}`);
  for (const p of result.profiles) {
    say(`${p.label}: CPU profile over the rest window (${p.file}), top self time, % of busy samples:`);
    say(table(['function', 'where', 'self'], p.top.map((h) => [h.name, h.where, `${fmt(h.selfPct, 1)}%`])));
    say('');
  }
  say(`scale phase took ${fmt(result.seconds / 60, 1)} min`);
}
