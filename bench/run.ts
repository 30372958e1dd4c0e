/**
 * `npm run bench`: Parley against a bare `ws` server and the stack's floor (fastify +
 * @fastify/websocket holding sockets, nothing else), measured in the same run on the same machine,
 * reported as ratios ("Speed is measured, not asserted"). The figures:
 *
 *   1. throughput: ping→pong messages per second, N connections × W pings in flight;
 *   2. server CPU per message over the same interval, read inside each server's own process;
 *   3. memory per idle connection (Parley: with a started session), RSS after forced GC, for bare
 *      `ws`, the floor and Parley;
 *   4. upstream utilisation: the upstream governor against a simulated rate-limited upstream, next to
 *      naive clients in the same run (bench/upstream.ts; its knobs are BENCH_UPSTREAM_*);
 *   5. the Redis store: decisions per second against rate-limiter-flexible on a spawned
 *      redis-server, and the latency the Redis store adds in the app (bench/redis.ts; its knobs are
 *      BENCH_REDIS_*);
 *   6. scale: idle sessions of one account on one replica up to the open-files limit and on several
 *      replicas sharing one redis-server (100,000 by default): memory per session, CPU at rest, a
 *      probe's ping percentiles, open rate and CPU per accepted session, beside bare `ws` and the
 *      floor (bench/scale.ts; its knobs are BENCH_SCALE_*). The longest phase: 17-19 minutes here.
 *
 * Each server runs in its own child process (bench/servers/*), the load client runs here. The
 * targets are printed next to the figures; nothing fails the run, a missed target is a finding.
 * Results also go to bench/results/latest.json.
 *
 * Knobs (environment): BENCH_CONNECTIONS (50), BENCH_WINDOW (20), BENCH_WARMUP_SECONDS (1),
 * BENCH_SECONDS (5), BENCH_ROUNDS (3), BENCH_IDLE_CONNECTIONS (5000), BENCH_CPU_PROF=<dir>
 * (profile the Parley child of the throughput phase, and those of the scale phase over its rest window, and print their hottest functions),
 * BENCH_ONLY=<phase>[,<phase>...] (run only these of throughput, memory, upstream, redis, scale;
 * e.g. `BENCH_ONLY=scale npm run bench`).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BENCH_DIR, PROJECT_DIR, ServerChild, killAllChildren, type ServerKind } from './lib/child.js';
import { anomalyCount, type Anomalies, type ClientTarget } from './lib/clients.js';
import { BENCH_KEY, benchPlan } from './lib/config.js';
import { measureMemory, measureThroughput, type MemoryResult, type ThroughputResult, type ThroughputSettings } from './lib/measure.js';
import { topSelf } from './lib/profile.js';
import { fmt, fmtInt, pct, table, verdict } from './lib/report.js';
import { TARGET_UPSTREAM_UTILISATION, upstreamHeadline, upstreamPhase, upstreamRows, upstreamSettings } from './upstream.js';
import { envNumber } from './lib/env.js';
import { killAllRedis } from './lib/redis-server.js';
import { printRedisSummary, redisHeadline, redisPhase, redisSettings, TARGET_REDIS_RATIO, type RedisPhaseResult } from './redis.js';
import { killAllHolders } from './lib/holders.js';
import { printScaleSummary, SCALE_TARGETS, scaleHeadline, scalePhase, scaleSettings, type ScalePhaseResult } from './scale.js';

// ---- targets (printed, never enforced) ---------------------------------------------------------

const TARGET_THROUGHPUT = 0.8; // parley/bare msgs/s, at least
const TARGET_CPU = 1.5; // parley/bare CPU µs per message, at most
const TARGET_MEMORY = 1.25; // parley/floor KB per idle connection, at most (issue 18: memory targets are set against the stack's floor)

/** Cores taken by other processes or steal above which a throughput run is flagged as noisy. */
const NOISY_CORES = 0.15;

// ---- settings ----------------------------------------------------------------------------------

const settings: ThroughputSettings & { rounds: number; idleConnections: number } = {
  connections: envNumber('BENCH_CONNECTIONS', 50),
  window: envNumber('BENCH_WINDOW', 20),
  warmupMs: envNumber('BENCH_WARMUP_SECONDS', 1) * 1000,
  durationMs: envNumber('BENCH_SECONDS', 5) * 1000,
  rounds: envNumber('BENCH_ROUNDS', 3),
  idleConnections: envNumber('BENCH_IDLE_CONNECTIONS', 5000),
};
const PHASES = ['throughput', 'memory', 'upstream', 'redis', 'scale'] as const;
type Phase = (typeof PHASES)[number];
function selectedPhases(): ReadonlySet<Phase> {
  const raw = process.env.BENCH_ONLY?.trim();
  if (!raw) return new Set(PHASES);
  const picked = raw.split(',').map((p) => p.trim()).filter(Boolean);
  const unknown = picked.filter((p) => !(PHASES as readonly string[]).includes(p));
  if (unknown.length) throw new Error(`BENCH_ONLY: unknown phase(s) ${unknown.join(', ')}; the phases are ${PHASES.join(', ')}`);
  return new Set(picked as Phase[]);
}
const phases = selectedPhases();
const cpuProfDir = process.env.BENCH_CPU_PROF ? path.resolve(process.env.BENCH_CPU_PROF) : undefined;

const targets: Record<ServerKind, ClientTarget> = {
  bare: { url: '', startSession: false },
  floor: { url: '', startSession: false },
  parley: { url: '', headers: { Authorization: `Bearer ${BENCH_KEY}` }, startSession: true },
};
const withUrl = (kind: ServerKind, server: ServerChild): ClientTarget => ({ ...targets[kind], url: `${server.url}${kind === 'bare' ? '/' : '/v1/realtime'}` });

// ---- cleanup: no server child outlives the run --------------------------------------------------

process.on('exit', () => {
  killAllChildren();
  killAllHolders();
  killAllRedis();
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping the server children`);
    killAllChildren();
    killAllHolders();
    killAllRedis();
    process.exit(130);
  });
}

// ---- environment -------------------------------------------------------------------------------

/** The soft open-files limit this process (and so its children) runs with. */
function openFilesLimit(): number {
  const out = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim();
  return out === 'unlimited' ? Number.POSITIVE_INFINITY : Number(out) || 0;
}

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function describeAnomalies(a: Anomalies): string {
  const parts: string[] = [];
  for (const [code, n] of Object.entries(a.errors)) parts.push(`${n} error event(s) "${code}"`);
  for (const [code, n] of Object.entries(a.closes)) parts.push(`${n} unexpected close(s) ${code}`);
  if (a.mismatches) parts.push(`${a.mismatches} sampled pong(s) with the wrong request_id`);
  return parts.join(', ');
}

// ---- phases ------------------------------------------------------------------------------------

interface RoundResult extends ThroughputResult {
  readonly round: number;
  readonly server: ServerKind;
  /** Other processes or steal took more than NOISY_CORES during it: the figures are likely low. */
  readonly noisy: boolean;
}

/** Extra rounds a server gets when every one of its rounds was noisy. */
const MAX_EXTRA_ROUNDS = 2;

async function throughputPhase(): Promise<{ rounds: RoundResult[]; profiles: Partial<Record<ServerKind, string>> }> {
  if (cpuProfDir) fs.mkdirSync(cpuProfDir, { recursive: true });
  const servers: Record<'bare' | 'parley', ServerChild> = {
    bare: await ServerChild.start('bare', { cpuProfDir }),
    parley: await ServerChild.start('parley', { cpuProfDir }),
  };
  const rounds: RoundResult[] = [];
  const runRound = async (round: number, kind: 'bare' | 'parley'): Promise<void> => {
    const r = await measureThroughput(servers[kind], withUrl(kind, servers[kind]), settings);
    const noisy = r.otherCores + r.stealCores > NOISY_CORES;
    rounds.push({ round, server: kind, noisy, ...r });
    say(
      `  round ${round} ${kind.padEnd(6)} ${fmtInt(r.msgsPerSec).padStart(9)} msgs/s  ${fmt(r.serverCpuUsPerMsg)} µs CPU/msg  ` +
        `CPU: server ${pct(r.serverCpuShare)}, client ${pct(r.clientCpuShare)}, other ${pct(r.otherCores)}, steal ${pct(r.stealCores)}` +
        (noisy ? '  (noisy)' : '') +
        (anomalyCount(r.anomalies) ? `  !! ${describeAnomalies(r.anomalies)}` : ''),
    );
  };
  try {
    for (let round = 1; round <= settings.rounds; round++) {
      // Alternate the order, so neither server always runs on a machine the other just warmed or heated.
      const order: ('bare' | 'parley')[] = round % 2 === 1 ? ['bare', 'parley'] : ['parley', 'bare'];
      for (const kind of order) await runRound(round, kind);
    }
    // A server none of whose rounds ran on a quiet machine gets a couple more chances.
    for (const kind of ['bare', 'parley'] as const) {
      for (let extra = 1; extra <= MAX_EXTRA_ROUNDS && !rounds.some((r) => r.server === kind && !r.noisy); extra++) {
        await runRound(settings.rounds + extra, kind);
      }
    }
  } finally {
    await servers.bare.stop();
    await servers.parley.stop(); // a clean exit, so --cpu-prof writes its profile
  }
  // Node names a profile CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main
  // thread (tsx's loader-hooks thread writes a nearly empty one of its own).
  const profiles: Partial<Record<ServerKind, string>> = {};
  if (cpuProfDir) {
    for (const kind of ['bare', 'parley'] as const) {
      const name = fs.readdirSync(cpuProfDir).find((f) => f.includes(`.${servers[kind].pid}.0.`) && f.endsWith('.cpuprofile'));
      if (name) profiles[kind] = path.join(cpuProfDir, name);
    }
  }
  return { rounds, profiles };
}

async function memoryPhase(count: number): Promise<Record<ServerKind, MemoryResult>> {
  const results = {} as Record<ServerKind, MemoryResult>;
  for (const kind of ['bare', 'floor', 'parley'] as const) {
    // A fresh child per server: RSS rarely shrinks, so a child that just ran the throughput phase would start inflated.
    const server = await ServerChild.start(kind);
    try {
      const r = await measureMemory(server, withUrl(kind, server), count, 1000);
      results[kind] = r;
      say(
        `  ${kind.padEnd(6)} RSS ${fmt(r.before.rss / 2 ** 20, 1)} → ${fmt(r.after.rss / 2 ** 20, 1)} MiB, heap ${fmt(r.before.heapUsed / 2 ** 20, 1)} → ${fmt(
          r.after.heapUsed / 2 ** 20,
          1,
        )} MiB, young generation ${fmt(r.before.newSpaceBytes / 2 ** 20, 1)} → ${fmt(r.after.newSpaceBytes / 2 ** 20, 1)} MiB (${fmtInt(count)} connections opened in ${fmt(r.openSeconds, 1)} s)` + (anomalyCount(r.anomalies) ? `  !! ${describeAnomalies(r.anomalies)}` : ''),
      );
    } finally {
      await server.stop();
    }
  }
  return results;
}

// ---- main --------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = Date.now();
  const fdLimit = openFilesLimit();
  const cpus = os.cpus();
  say('Parley bench: Parley vs a bare `ws` server and the stack\'s floor (fastify + @fastify/websocket), measured in this run');
  say(`date ${new Date().toISOString()}  node ${process.version}  ${os.platform()}/${os.arch()}  ${cpus.length} CPU(s) ${cpus[0]?.model.trim() ?? ''}  ulimit -n ${fdLimit}`);
  say(`load average ${os.loadavg().map((l) => fmt(l)).join(', ')} (1, 5, 15 min): other work on the machine makes every figure noisy`);
  if (phases.size < PHASES.length) say(`phases: ${[...phases].join(', ')} (BENCH_ONLY)`);
  if (phases.has('throughput')) {
    say(
      `throughput: ${settings.connections} connections × ${settings.window} pings in flight, ${settings.warmupMs / 1000} s warm-up + ${settings.durationMs / 1000} s measured, ` +
        `${settings.rounds} round(s) per server, best quiet round reported`,
    );
  }
  if (phases.has('throughput') || phases.has('memory')) {
    say(
      `Parley plan: messagesPerSecond ${benchPlan.messagesPerSecond}, messageBurst ${benchPlan.messageBurst}, messageQueue ${benchPlan.messageQueue}, ` +
        `bytesPerSecond ${benchPlan.bytesPerSecond}, byteBurst ${benchPlan.byteBurst} (all limits on, none reached)`,
    );
  }
  say();

  let rounds: RoundResult[] = [];
  let profiles: Partial<Record<ServerKind, string>> = {};
  if (phases.has('throughput')) {
    say('Throughput and CPU');
    ({ rounds, profiles } = await throughputPhase());
    say();
  }

  // File descriptors: this process holds one per client socket, the server child one per accepted socket.
  const needFds = settings.idleConnections + 500;
  let idleCount = settings.idleConnections;
  let memory: Record<ServerKind, MemoryResult> | undefined;
  let memorySkipped: string | undefined;
  if (phases.has('memory')) {
    if (fdLimit < needFds) {
      idleCount = Math.floor((fdLimit - 500) / 100) * 100;
      say(
        `!! open-files limit (ulimit -n) is ${fdLimit}; ${fmtInt(settings.idleConnections)} idle connections need about ${fmtInt(needFds)} per process. ` +
          (idleCount >= 500 ? `Measuring with ${fmtInt(idleCount)} instead; raise it with \`ulimit -n ${needFds}\` for the full figure.` : 'Skipping the memory figure; raise it with `ulimit -n ' + needFds + '`.'),
      );
    }
    if (idleCount >= 500) {
      say(`Memory: ${fmtInt(idleCount)} idle connections per server (bare ws, the floor, Parley: each with a started session), RSS after forced GC`);
      memory = await memoryPhase(idleCount);
      say();
    } else {
      memorySkipped = `ulimit -n ${fdLimit} is too low`;
    }
  }

  const upSettings = upstreamSettings();
  let upstream: Awaited<ReturnType<typeof upstreamPhase>> | undefined;
  if (phases.has('upstream')) {
    say(upstreamHeadline(upSettings));
    upstream = await upstreamPhase(upSettings, say);
    say();
  }

  const rSettings = redisSettings();
  let redis: RedisPhaseResult | undefined;
  if (phases.has('redis')) {
    say(`${redisHeadline(rSettings)}; load average ${os.loadavg().map((l) => fmt(l)).join(', ')}`);
    redis = await redisPhase(rSettings, say);
    say();
  }

  let scale: ScalePhaseResult | undefined;
  if (phases.has('scale')) {
    const sSettings = scaleSettings();
    for (const line of scaleHeadline(sSettings)) say(line);
    scale = await scalePhase(sSettings, say);
    say();
  }

  // ---- summary ----
  let throughput: { msgs: Record<'bare' | 'parley', number>; cpu: Record<'bare' | 'parley', number>; throughputRatio: number; cpuRatio: number } | undefined;
  if (rounds.length) {
    // Best round per server, among its quiet rounds when it has any: interference only ever slows a run down.
    const best = (kind: ServerKind, key: 'msgsPerSec' | 'serverCpuUsPerMsg', pick: (a: number, b: number) => number): number =>
      (rounds.some((r) => r.server === kind && !r.noisy) ? rounds.filter((r) => !r.noisy) : rounds)
        .filter((r) => r.server === kind)
        .map((r) => r[key])
        .reduce((a, b) => pick(a, b)); // not .reduce(pick): Math.max would also get the index and the array
    const msgs = { bare: best('bare', 'msgsPerSec', Math.max), parley: best('parley', 'msgsPerSec', Math.max) };
    const cpu = { bare: best('bare', 'serverCpuUsPerMsg', Math.min), parley: best('parley', 'serverCpuUsPerMsg', Math.min) };
    throughput = { msgs, cpu, throughputRatio: msgs.parley / msgs.bare, cpuRatio: cpu.parley / cpu.bare };
  }
  const memRatio = memory ? memory.parley.rssKbPerConn / memory.bare.rssKbPerConn : Number.NaN;
  const heapRatio = memory ? memory.parley.heapKbPerConn / memory.bare.heapKbPerConn : Number.NaN;
  const memFloorRatio = memory ? memory.parley.rssKbPerConn / memory.floor.rssKbPerConn : Number.NaN;
  const heapFloorRatio = memory ? memory.parley.heapKbPerConn / memory.floor.heapKbPerConn : Number.NaN;

  const rows: string[][] = [];
  if (throughput) {
    const { msgs, cpu, throughputRatio, cpuRatio } = throughput;
    rows.push(['throughput (msgs/s, ping→pong)', fmtInt(msgs.bare), '', fmtInt(msgs.parley), fmt(throughputRatio), '', `≥ ${TARGET_THROUGHPUT} bare`, verdict(throughputRatio, TARGET_THROUGHPUT, 'atLeast')]);
    rows.push(['server CPU per message (µs)', fmt(cpu.bare), '', fmt(cpu.parley), `${fmt(cpuRatio)}×`, '', `≤ ${TARGET_CPU}× bare`, verdict(cpuRatio, TARGET_CPU, 'atMost')]);
  }
  if (memory) {
    rows.push([
      'memory per idle connection (KB RSS)',
      fmt(memory.bare.rssKbPerConn, 1),
      fmt(memory.floor.rssKbPerConn, 1),
      fmt(memory.parley.rssKbPerConn, 1),
      `${fmt(memRatio)}×`,
      `${fmt(memFloorRatio)}×`,
      `≤ ${TARGET_MEMORY}× floor`,
      verdict(memFloorRatio, TARGET_MEMORY, 'atMost'),
    ]);
    const lessYoung = (k: ServerKind): number => memory!.parley.rssKbPerConnLessYoung / memory![k].rssKbPerConnLessYoung;
    rows.push([
      '  less the young generation (KB RSS)',
      fmt(memory.bare.rssKbPerConnLessYoung, 1),
      fmt(memory.floor.rssKbPerConnLessYoung, 1),
      fmt(memory.parley.rssKbPerConnLessYoung, 1),
      `${fmt(lessYoung('bare'))}×`,
      `${fmt(lessYoung('floor'))}×`,
      '',
      '',
    ]);
    rows.push([
      '  of which JS heap (KB, for reference)',
      fmt(memory.bare.heapKbPerConn, 1),
      fmt(memory.floor.heapKbPerConn, 1),
      fmt(memory.parley.heapKbPerConn, 1),
      `${fmt(heapRatio)}×`,
      `${fmt(heapFloorRatio)}×`,
      '',
      '',
    ]);
  } else if (phases.has('memory')) {
    rows.push(['memory per idle connection (KB RSS)', 'skipped', 'skipped', 'skipped', '', '', `≤ ${TARGET_MEMORY}× floor`, memorySkipped ?? '']);
  }
  if (rows.length) {
    say('Summary (ratios: Parley / bare ws, Parley / floor; the floor is fastify + @fastify/websocket holding sockets)');
    say(table(['', 'bare ws', 'floor', 'Parley', 'P/bare', 'P/floor', 'target', ''], rows));
    say();
  }
  if (memory && memory.parley.after.newSpaceBytes - memory.floor.after.newSpaceBytes > 8 * 2 ** 20) {
    say(
      `note: with ${fmtInt(idleCount)} idle connections Parley's young generation stayed at ${fmt(memory.parley.after.newSpaceBytes / 2 ** 20, 0)} MiB (the floor's: ` +
        `${fmt(memory.floor.after.newSpaceBytes / 2 ** 20, 0)} MiB): it allocates at rest, so V8's memory reducer never shrinks it; "less the young generation" leaves that fixed cost out.`,
    );
    say();
  }
  if (upstream) {
    say(`Upstream utilisation (achieved / allowed, allowed = R + B/D; upstream 429s as counted by the simulated upstream)`);
    say(table(['', 'achieved/allowed', 'ratio', '429s', 'target', ''], upstreamRows(upstream)));
    say();
  }
  if (redis) {
    printRedisSummary(redis, say);
    say();
  }
  if (scale) printScaleSummary(scale, say);

  const clientBound = rounds.filter((r) => r.clientCpuShare > 0.9 && r.serverCpuShare < 0.9);
  if (clientBound.length) {
    say(
      `note: in ${clientBound.length} throughput run(s) the load client, not the server, was the limit (client CPU > 90%, server < 90%); ` +
        'there the msgs/s ratio understates the difference and the CPU-per-message ratio is the figure to trust.',
    );
  }
  const noisy = rounds.filter((r) => r.noisy);
  if (noisy.length) {
    const allNoisy = (['bare', 'parley'] as const).filter((k) => !rounds.some((r) => r.server === k && !r.noisy));
    say(
      `note: in ${noisy.length} of ${rounds.length} throughput run(s) other processes or the hypervisor took more than ${pct(NOISY_CORES)} of a core ` +
        `("other"/"steal" above); those are left out of the summary` +
        (allNoisy.length ? `, except for ${allNoisy.join(' and ')}, which had no quiet round: rerun on a quiet machine.` : '.'),
    );
  }
  if (redis) {
    const noisyRedis = redis.runs.filter((r) => r.otherCores + r.stealCores > NOISY_CORES);
    if (noisyRedis.length) {
      say(
        `note: in ${noisyRedis.length} of ${redis.runs.length} Redis decision run(s) other processes took more than ${pct(NOISY_CORES)} of a core ("other" above); ` +
          'compare Parley and rate-limiter-flexible only within this run.',
      );
    }
    const bad = redis.runs.filter((r) => r.refused || r.errors).length + redis.latency.filter((l) => l.anomalies).length;
    if (bad) say(`!! ${bad} Redis run(s) saw refusals, errors or error events (figures of those runs are suspect)`);
  }
  const anomalous = [...rounds.map((r) => ({ what: `throughput round ${r.round} ${r.server}`, a: r.anomalies })), ...(memory ? (['bare', 'floor', 'parley'] as const).map((k) => ({ what: `memory ${k}`, a: memory![k].anomalies })) : [])].filter(
    (x) => anomalyCount(x.a) > 0,
  );
  for (const x of anomalous) say(`!! ${x.what}: ${describeAnomalies(x.a)} (figures of that run are suspect)`);

  const hot: Partial<Record<ServerKind, ReturnType<typeof topSelf>>> = {};
  for (const kind of ['bare', 'parley'] as const) {
    const file = profiles[kind];
    if (!file) continue;
    hot[kind] = topSelf(file, 12, PROJECT_DIR);
    say();
    say(`${kind} server CPU profile (${file}; whole child life, start-up included), top self time, % of busy samples:`);
    say(table(['function', 'where', 'self'], hot[kind].map((h) => [h.name, h.where, `${fmt(h.selfPct, 1)}%`])));
  }

  // ---- JSON ----
  const resultsDir = path.join(BENCH_DIR, 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  // A partial run (BENCH_ONLY) gets its own file, so it never replaces a full run's figures.
  const file = path.join(resultsDir, phases.size < PHASES.length ? `latest-${[...phases].join('-')}.json` : 'latest.json');
  const json = {
    date: new Date(started).toISOString(),
    node: process.version,
    platform: `${os.platform()}/${os.arch()}`,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim(),
    loadAverage: os.loadavg(),
    ulimitN: fdLimit,
    durationSeconds: (Date.now() - started) / 1000,
    phases: [...phases],
    settings,
    plan: benchPlan,
    targets: {
      throughputRatioAtLeast: TARGET_THROUGHPUT,
      cpuRatioAtMost: TARGET_CPU,
      memoryFloorRatioAtMost: TARGET_MEMORY,
      upstreamUtilisationAtLeast: TARGET_UPSTREAM_UTILISATION,
      upstream429s: 0,
      redisDecisionsRatioAtLeast: TARGET_REDIS_RATIO,
      scale: SCALE_TARGETS,
    },
    ...(throughput
      ? {
          throughput: { bareMsgsPerSec: throughput.msgs.bare, parleyMsgsPerSec: throughput.msgs.parley, ratio: throughput.throughputRatio },
          cpu: { bareUsPerMsg: throughput.cpu.bare, parleyUsPerMsg: throughput.cpu.parley, ratio: throughput.cpuRatio },
        }
      : {}),
    ...(phases.has('memory')
      ? {
          memory: memory
            ? {
                connections: idleCount,
                bareKbPerConn: memory.bare.rssKbPerConn,
                floorKbPerConn: memory.floor.rssKbPerConn,
                parleyKbPerConn: memory.parley.rssKbPerConn,
                ratio: memRatio,
                floorRatio: memFloorRatio,
                bareHeapKbPerConn: memory.bare.heapKbPerConn,
                floorHeapKbPerConn: memory.floor.heapKbPerConn,
                parleyHeapKbPerConn: memory.parley.heapKbPerConn,
                heapRatio,
                heapFloorRatio,
                runs: memory,
              }
            : { skipped: memorySkipped },
        }
      : {}),
    ...(upstream ? { upstream: { settings: upSettings, allowedFormula: 'R + B / D (requests/s)', steadyFormula: 'answers in [1 s, D] / (D - 1), vs R', runs: upstream } } : {}),
    ...(redis ? { redis } : {}),
    ...(scale ? { scale } : {}),
    ...(rounds.length ? { rounds } : {}),
    ...(cpuProfDir ? { profiles: { files: profiles, top: hot } } : {}),
  };
  fs.writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  say();
  say(`written ${path.relative(process.cwd(), file)}; total ${fmt((Date.now() - started) / 1000, 1)} s`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error('bench failed:', err instanceof Error ? (err.stack ?? err.message) : err);
    killAllChildren();
    killAllHolders();
    killAllRedis();
    process.exit(1);
  },
);
