/**
 * The chaos run's phases: warm-up under steady load (ending with a cap probe while Redis is
 * healthy), then each fault in turn, held for a stated time, recovered, and followed by steady
 * load again; then the end, where the load stops and every turn still open is given its chance to
 * be answered. Waits are conditions wherever one exists (a replica's /readyz, the learners'
 * sessions, `connections_used`); the fixed waits are the stated hold and steady times.
 */
import { loadavg } from 'node:os';
import { checkCaps, type CapCheck } from './cap-bound.js';
import type { Cluster } from './cluster.js';
import { CHAOS_KEY } from './config.js';
import { Fleet, type Marked } from './learners.js';
import { Ledger } from './ledger.js';
import { Occupancy } from './occupancy.js';
import type { ChaosOptions, FaultName } from './options.js';
import { CapProbe, type ProbeResult } from './probe.js';
import { LagMonitor, ReadyMonitor, timeUntil, waitUsageTrue, type ReadinessSpan, type UsageConvergence } from './watch.js';

/** How long a replica may take to be ready again after a fault ends before the run calls it a failure. */
const READY_AGAIN_TIMEOUT_MS = 60_000;
/**
 * How long every learner may take to have a session open again after a fault's recovery. The
 * SDK's backoff is capped at 30 s, so a learner that kept failing during the fault may wait that
 * long for its next attempt.
 */
const STEADY_TIMEOUT_MS = 45_000;

export interface CapProbeOutcome {
  readonly probe: ProbeResult;
  readonly check: CapCheck;
}

export interface BaselineResult {
  readonly caps: CapProbeOutcome;
  /** Replicas whose /readyz left 200 during the probe (they decided on their fallback, so the fallback bound applies). */
  readonly degradedDuringProbe: readonly string[];
  readonly usage: UsageConvergence;
  readonly usageAfterRelease: UsageConvergence;
}

export interface FaultResult {
  readonly name: FaultName;
  readonly holdMs: number;
  /** Per replica: ms from the fault until its /readyz said 503 (Redis faults). */
  readonly detectMs: Record<string, number | undefined>;
  /** Per replica: ms from the fault's end (Redis back, or the killed replica restarted) until /readyz 200. */
  readonly readyAgainMs: Record<string, number | undefined>;
  /** Redis faults: the cap probe during the outage against the documented bound. */
  readonly caps: CapProbeOutcome | undefined;
  /** Learners whose sockets were cut during the fault, and the ms until all had a session open again. */
  readonly drops: { readonly learners: readonly number[]; readonly reopenedMs: number | undefined };
  /** replica-kill: the replica killed, and ms until every learner that was on it had a session open again. */
  readonly victim: string | undefined;
  readonly allOpenAgainMs: number | undefined;
  /** Ms from the fault's end until every learner had a session open (the steady state the next phase starts from). */
  readonly steadyAgainMs: number | undefined;
  /** connections_used against the clients' count, from the fault's end (replica-kill: from the kill). */
  readonly usage: UsageConvergence;
  /** Redis faults: the same after the probe's connections closed. */
  readonly usageAfterRelease: UsageConvergence | undefined;
  /** Broken promises seen in this phase. */
  readonly problems: string[];
}

/** One replica over one phase: readiness and event-loop lag. */
export interface PhaseHealth {
  readonly phase: string;
  readonly replica: string;
  readonly readiness: ReadinessSpan;
  /** Largest event-loop lag the replica reported, ms. */
  readonly lagMaxMs: number | undefined;
}

export interface ChaosResult {
  readonly options: ChaosOptions;
  /** os.loadavg() (1, 5, 15 min) at the start and at the end: the figures depend on how busy the machine was. */
  readonly loadAtStart: readonly number[];
  readonly loadAtEnd: readonly number[];
  readonly startedAt: number;
  readonly endedAt: number;
  readonly ledger: Ledger;
  readonly warmupOpenMs: number | undefined;
  readonly baseline: BaselineResult;
  readonly faults: readonly FaultResult[];
  /** connections_used after every client closed (should reach 0). */
  readonly usageAtEnd: UsageConvergence;
  readonly health: readonly PhaseHealth[];
  /** The launcher's own largest event-loop lag per phase, ms (its clients and watchers run there). */
  readonly launcherLagMs: Record<string, number | undefined>;
  /** Broken promises: the run fails on any. */
  readonly problems: string[];
  /** Things worth knowing that break no documented promise. */
  readonly findings: string[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runScenario(cluster: Cluster, opts: ChaosOptions, say: (line: string) => void): Promise<ChaosResult> {
  const startedAt = Date.now();
  const loadAtStart = loadavg();
  const ledger = new Ledger();
  const occupancy = new Occupancy();
  const monitor = new ReadyMonitor(cluster.replicas.map((r) => ({ name: r.name, url: r.url })));
  const lag = new LagMonitor(cluster.replicas.map((r) => ({ name: r.name, url: r.url })));
  const fleet = new Fleet({ entryUrl: cluster.entryUrl, apiKey: CHAOS_KEY, sessions: opts.sessions, lostAfterMs: opts.lostAfterSeconds * 1000, ledger, occupancy });
  const probe = new CapProbe(CHAOS_KEY, occupancy);
  const holdMs = opts.secondsPerPhase * 1000;
  const leaseMs = opts.leaseSeconds * 1000;
  const usageTimeoutMs = leaseMs + 15_000;
  const problems: string[] = [];
  const findings: string[] = [];
  const targets = cluster.replicas.map((r) => ({ name: r.name, url: r.url }));
  // A reading counts only from a replica whose /readyz said 200 throughout the request (on its
  // fallback a replica counts only its own connections). Without HAProxy the first replica answers.
  const answeredReady = (replica: string | undefined, from: number, to: number): boolean => {
    const name = replica ?? (cluster.haproxy ? undefined : cluster.replicas[0]!.name);
    if (name === undefined || monitor.latest(name) !== 200) return false;
    const span = monitor.span(name, from, to);
    return span.notReadyMs === 0 && span.unreachableMs === 0;
  };
  const usage = (timeoutMs: number): Promise<UsageConvergence> => waitUsageTrue(cluster.entryUrl, CHAOS_KEY, occupancy, timeoutMs, answeredReady);

  const probeCaps = async (): Promise<CapProbeOutcome> => {
    occupancy.resetPeaks();
    const openAtStart = occupancy.snapshot();
    const result = await probe.fill(targets, opts.cap + 5);
    const peaks = Object.fromEntries(cluster.replicas.map((r) => [r.name, occupancy.peak(r.name)]));
    return { probe: result, check: checkCaps(opts.cap, cluster.replicas.length, openAtStart, peaks, occupancy.peakTotal) };
  };

  // ---- warm-up ----------------------------------------------------------------------------------
  ledger.begin('warm-up');
  say(`warm-up: ${opts.sessions} learners through ${cluster.haproxy ? 'HAProxy' : 'the first replica'}, ${opts.warmupSeconds} s`);
  const warmStart = Date.now();
  await fleet.start();
  const allOpen = await timeUntil(() => fleet.openCount === opts.sessions, 30_000);
  const warmupOpenMs = allOpen === undefined ? undefined : Date.now() - warmStart;
  if (warmupOpenMs === undefined) problems.push(`warm-up: only ${fleet.openCount} of ${opts.sessions} learners had a session open after 30 s`);
  await sleep(Math.max(0, warmStart + opts.warmupSeconds * 1000 - Date.now()));

  say('warm-up: cap probe with Redis healthy');
  await timeUntil(() => cluster.replicas.every((r) => monitor.latest(r.name) === 200), 30_000);
  const probeFrom = Date.now();
  const baselineCaps = await probeCaps();
  const degradedDuringProbe = cluster.replicas
    .filter((r) => {
      const span = monitor.span(r.name, probeFrom, Date.now());
      return span.notReadyMs > 0 || span.unreachableMs > 0;
    })
    .map((r) => r.name);
  if (degradedDuringProbe.length === 0) {
    if (baselineCaps.check.overCap > 0) problems.push(`warm-up: the account held ${baselineCaps.check.peakTotal} connections with Redis healthy, over its cap of ${opts.cap}`);
  } else {
    // A replica that took itself for cut off from Redis decided on its fallback: its bound applies.
    findings.push(`warm-up: the cap probe with Redis healthy met ${degradedDuringProbe.join(' and ')} on the fallback (a spurious store outage), so it was held to the fallback bound: peak ${baselineCaps.check.peakTotal} against the cap of ${opts.cap}`);
    if (!baselineCaps.check.kept) problems.push(`warm-up: connection cap beyond the documented fallback bound while ${degradedDuringProbe.join(' and ')} was on its fallback`);
  }
  // Lease-bounded like the faults: slots released by a replica on its fallback stay in Redis until they expire.
  const baselineUsage = await usage(usageTimeoutMs);
  await probe.release();
  const baselineRelease = await usage(usageTimeoutMs);
  for (const [u, when] of [[baselineUsage, 'with the probe open'], [baselineRelease, 'after the probe closed']] as const) {
    if (u.ms === undefined) problems.push(`warm-up: connections_used (${u.lastUsed ?? 'no answer'}) never matched the ${u.lastTruth} connections open ${when}, with Redis healthy`);
  }
  const baseline: BaselineResult = { caps: baselineCaps, degradedDuringProbe, usage: baselineUsage, usageAfterRelease: baselineRelease };

  // ---- faults -----------------------------------------------------------------------------------
  const faults: FaultResult[] = [];
  let dropFrom = 0;
  for (const name of opts.faults) {
    ledger.begin(name);
    const t0 = Date.now();
    const phaseProblems: string[] = [];
    const detectMs: Record<string, number | undefined> = {};
    const readyAgainMs: Record<string, number | undefined> = {};
    let caps: CapProbeOutcome | undefined;
    let dropped: Marked | undefined;
    let reopenedMs: number | undefined;
    let victim: string | undefined;
    let allOpenAgainMs: number | undefined;
    let faultUsage: UsageConvergence;
    let usageAfterRelease: UsageConvergence | undefined;

    if (name === 'redis-kill' || name === 'redis-pause') {
      say(`${name}: ${name === 'redis-kill' ? 'SIGKILL redis-server' : 'SIGSTOP redis-server'}, held ${opts.secondsPerPhase} s`);
      if (name === 'redis-kill') await cluster.redis.kill();
      else cluster.redis.pause();
      // The fallback is in force on a replica once its /readyz says so.
      await Promise.all(
        cluster.replicas.map(async (r) => {
          detectMs[r.name] = await timeUntil(() => monitor.latest(r.name) === 503, holdMs, 20);
          if (detectMs[r.name] === undefined) phaseProblems.push(`${name}: ${r.name} never answered /readyz 503 while Redis was ${name === 'redis-kill' ? 'down' : 'hung'}`);
        }),
      );
      // Learners whose network drops now resume during the outage.
      dropped = fleet.drop(opts.drops, dropFrom);
      dropFrom += opts.drops;
      // Measured from the drops; bounded by what is left of the hold (at least 5 s), then the probe runs anyway.
      const dropsAt = Date.now();
      const cut = dropped;
      reopenedMs = await timeUntil(() => cut.allReopened, Math.max(5000, t0 + holdMs / 2 - dropsAt));
      caps = await probeCaps();
      if (!caps.check.kept) {
        const over = caps.check.replicas.filter((r) => r.beyondBound > 0).map((r) => `${r.replica} held ${r.peak} (bound ${r.bound})`);
        phaseProblems.push(`${name}: connection cap beyond the documented fallback bound: ${over.join(', ')}`);
      }
      await sleep(Math.max(0, t0 + holdMs - Date.now()));
      say(`${name}: ${name === 'redis-kill' ? 'restarting redis-server (empty) on the same port' : 'SIGCONT redis-server'}`);
      if (name === 'redis-kill') await cluster.redis.restart();
      else cluster.redis.resume();
      const [readyAgain, u] = await Promise.all([
        Promise.all(cluster.replicas.map(async (r) => [r.name, await timeUntil(() => monitor.latest(r.name) === 200, READY_AGAIN_TIMEOUT_MS, 20)] as const)),
        usage(usageTimeoutMs),
      ]);
      for (const [r, ms] of readyAgain) readyAgainMs[r] = ms;
      faultUsage = u;
      await probe.release();
      usageAfterRelease = await usage(usageTimeoutMs);
    } else {
      // The replica holding the most learners, so the most sessions must resume elsewhere.
      const target = [...cluster.replicas].sort((a, b) => occupancy.count(b.name) - occupancy.count(a.name))[0]!;
      victim = target.name;
      say(`replica-kill: SIGKILL ${victim} (${occupancy.count(victim)} learners on it), restarted after ${opts.secondsPerPhase} s`);
      const onVictim = fleet.on(victim);
      // Its slots stay in Redis until their lease expires (docs/operations.md "Leases"): measured from the kill.
      const usageP = usage(usageTimeoutMs);
      await target.kill();
      const killedAt = Date.now();
      allOpenAgainMs = await timeUntil(() => onVictim.allReopened, Math.max(holdMs, opts.lostAfterSeconds * 1000 + 5000));
      await sleep(Math.max(0, killedAt + holdMs - Date.now()));
      say(`replica-kill: restarting ${victim}`);
      const restartAt = Date.now();
      try {
        await target.start();
        const ms = await timeUntil(() => monitor.latest(target.name) === 200, READY_AGAIN_TIMEOUT_MS, 20);
        readyAgainMs[target.name] = ms === undefined ? undefined : Date.now() - restartAt;
      } catch (err) {
        readyAgainMs[target.name] = undefined;
        phaseProblems.push(`replica-kill: ${victim} did not start again: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
      }
      faultUsage = await usageP;
    }

    for (const [r, ms] of Object.entries(readyAgainMs)) {
      if (ms === undefined) phaseProblems.push(`${name}: ${r} was not ready again within ${READY_AGAIN_TIMEOUT_MS / 1000} s`);
    }
    if (faultUsage.ms === undefined) {
      phaseProblems.push(`${name}: connections_used (${faultUsage.lastUsed ?? 'no answer'}) did not match the ${faultUsage.lastTruth} connections open within ${usageTimeoutMs / 1000} s`);
    }
    if (usageAfterRelease && usageAfterRelease.ms === undefined) {
      phaseProblems.push(`${name}: after the probe closed, connections_used (${usageAfterRelease.lastUsed ?? 'no answer'}) did not match the ${usageAfterRelease.lastTruth} connections open within ${usageTimeoutMs / 1000} s`);
    }
    // The next phase starts from a steady state: every learner with a session open.
    const steadyAgainMs = await timeUntil(() => fleet.openCount === opts.sessions, STEADY_TIMEOUT_MS);
    if (steadyAgainMs === undefined) phaseProblems.push(`${name}: ${opts.sessions - fleet.openCount} learner(s) still without an open session ${STEADY_TIMEOUT_MS / 1000} s after the recovery`);
    say(`${name}: recovered; steady load for ${opts.secondsPerPhase} s`);
    await sleep(holdMs);
    faults.push({
      name,
      holdMs,
      detectMs,
      readyAgainMs,
      caps,
      drops: { learners: dropped?.indexes ?? [], reopenedMs },
      victim,
      allOpenAgainMs,
      steadyAgainMs,
      usage: faultUsage,
      usageAfterRelease,
      problems: phaseProblems,
    });
    problems.push(...phaseProblems);
  }

  // ---- end --------------------------------------------------------------------------------------
  ledger.begin('end');
  say(`end: load stopped; waiting up to ${opts.lostAfterSeconds + 5} s for the turns in flight`);
  await fleet.stop(opts.lostAfterSeconds * 1000 + 5000);
  const usageAtEnd = await usage(usageTimeoutMs);
  if (usageAtEnd.ms === undefined) problems.push(`end: connections_used stayed ${usageAtEnd.lastUsed ?? 'unanswered'} with every client closed`);
  ledger.finish();
  const health: PhaseHealth[] = [];
  const launcherLagMs: Record<string, number | undefined> = {};
  for (const p of ledger.phases) {
    const end = p.endedAt ?? Date.now();
    launcherLagMs[p.name] = lag.launcherMaxMs(p.startedAt, end);
    for (const r of cluster.replicas) {
      const readiness = monitor.span(r.name, p.startedAt, end);
      const lagMaxMs = lag.replicaMaxMs(r.name, p.startedAt, end);
      health.push({ phase: p.name, replica: r.name, readiness, lagMaxMs });
      // Redis was up in these phases (and in a Redis fault, a second 503 spell came after it was back).
      const redisFault = p.name === 'redis-kill' || p.name === 'redis-pause';
      const spurious = redisFault ? readiness.episodes503 - 1 : readiness.episodes503;
      if (spurious > 0) {
        findings.push(
          `${p.name}: ${r.name} declared the store unreachable ${spurious} time(s) while Redis was answering` +
            ` (its largest event-loop lag in the phase: ${lagMaxMs === undefined ? 'n/a' : `${Math.round(lagMaxMs)} ms`}; store.commandTimeoutMs is 500)`,
        );
      }
    }
  }
  await Promise.all([monitor.stop(), lag.stop()]);

  const lost = ledger.phases.reduce((a, p) => a + p.lost.length, 0);
  if (lost > 0) problems.unshift(`${lost} lost turn(s): a request that got neither an answer nor an error`);
  for (const r of cluster.replicas) for (const c of r.crashes) problems.push(`${r.name} ${c}`);
  return { options: opts, loadAtStart, loadAtEnd: loadavg(), startedAt, endedAt: Date.now(), ledger, warmupOpenMs, baseline, faults, usageAtEnd, health, launcherLagMs, problems, findings };
}
