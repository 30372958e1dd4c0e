/**
 * The chaos run's report: plain-text tables on stdout (and the same figures as JSON on request),
 * then the verdict. The run fails (exit 1) on a broken promise: a lost turn, a connection cap
 * beyond the documented fallback bound, a replica that never became ready again, a
 * `connections_used` that never came back to the truth, a replica that crashed.
 */
import { cpus } from 'node:os';
import { table } from '../../bench/lib/report.js';
import { DOCUMENTED_RULE } from './cap-bound.js';
import type { PhaseStats } from './ledger.js';
import type { ReplicaProcess } from './replica.js';
import type { CapProbeOutcome, ChaosResult } from './scenario.js';
import type { UsageConvergence } from './watch.js';

const secs = (ms: number | undefined, digits = 1): string => (ms === undefined ? 'never' : (ms / 1000).toFixed(digits));
const codes = (m: Record<string, number>): string =>
  Object.entries(m)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ') || '-';

function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function phaseSeconds(p: PhaseStats): string {
  return secs((p.endedAt ?? Date.now()) - p.startedAt, 0);
}

function usageCell(u: UsageConvergence | undefined): string {
  if (!u) return '-';
  return u.ms === undefined ? `never (reads ${u.lastUsed ?? 'no answer'}, open ${u.lastTruth})` : `${secs(u.ms)} s`;
}

function capRows(label: string, c: CapProbeOutcome): string[][] {
  return c.check.replicas.map((r) => [
    label,
    r.replica,
    String(r.openAtStart),
    String(c.probe.admitted[r.replica] ?? 0),
    String(r.peak),
    String(r.bound),
    r.beyondBound > 0 ? `+${r.beyondBound} BEYOND` : 'kept',
    codes(c.probe.refused[r.replica] ?? {}),
  ]);
}

/** Warn-or-worse lines of a replica within [from, to), grouped by message. */
function warnings(r: ReplicaProcess, from: number, to: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of r.lines) {
    if (l.at < from || l.at >= to) continue;
    const key = `${l.level >= 50 ? 'ERROR ' : l.level === 0 ? 'TEXT ' : ''}${l.msg.slice(0, 120)}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

export function formatReport(result: ChaosResult, replicas: readonly ReplicaProcess[], commandLine: string, verbose: boolean): string {
  const o = result.options;
  const out: string[] = [];
  const phases = result.ledger.phases.filter((p) => p.name !== 'start-up' || p.turns > 0);
  out.push('', `Parley chaos run: ${commandLine}`);
  out.push(
    `${o.sessions} learners (ParleyClient, one turn.text about every second) through HAProxy to ${replicas.length} replicas on one redis-server;` +
      ` cap ${o.cap} connections per account, store.expectedReplicas ${replicas.length}, store.leaseSeconds ${o.leaseSeconds};` +
      ` each fault held ${o.secondsPerPhase} s, then ${o.secondsPerPhase} s steady; ${o.drops} learner socket(s) cut per Redis fault; run took ${secs(result.endedAt - result.startedAt, 0)} s.`,
  );
  const load = (l: readonly number[]): string => l.map((x) => x.toFixed(1)).join(' / ');
  out.push(`Machine: ${cpus().length} cores, load average (1/5/15 min) ${load(result.loadAtStart)} at the start, ${load(result.loadAtEnd)} at the end.`);
  out.push(`Warm-up: every learner had a session open ${secs(result.warmupOpenMs)} s after the first started (learners start over 2 s).`);

  out.push('', 'Turns (each in the last phase it was in flight in; p50/p99: ms from asking to reply.audio.end)');
  out.push(
    table(
      ['phase', 's', 'turns', 'answered', 'errors (request_id)', 'lost', 'sessions started', 'sessions lost', 'double answers', 'p50 ms', 'p99 ms'],
      phases.map((p) => [
        p.name,
        phaseSeconds(p),
        String(p.turns),
        String(p.answered),
        codes(p.turnErrors),
        String(p.lost.length),
        String(p.sessionsStarted),
        codes(p.sessionsLost),
        String(p.duplicates),
        String(percentile(p.latencies, 0.5) ?? '-'),
        String(percentile(p.latencies, 0.99) ?? '-'),
      ]),
    ),
  );

  out.push('', 'Client-visible errors and closes (by the phase they arrived in)');
  out.push(
    table(
      ['phase', 'error events by code', 'learner closes by code', 'token mints failed'],
      phases.map((p) => [p.name, codes(p.serverErrors), codes(p.closes), codes(p.tokenFailures)]),
    ),
  );

  out.push('', 'Readiness (/readyz polled every 100 ms on each replica) and event-loop lag, by phase');
  const readyRows: string[][] = [];
  for (const h of result.health) {
    if (!phases.some((p) => p.name === h.phase)) continue;
    const f = result.faults.find((x) => x.name === h.phase);
    readyRows.push([
      h.phase,
      h.replica + (f?.victim === h.replica ? ' (killed)' : ''),
      f?.detectMs[h.replica] === undefined ? '-' : secs(f.detectMs[h.replica], 2),
      secs(h.readiness.notReadyMs),
      String(h.readiness.episodes503),
      secs(h.readiness.unreachableMs),
      f && h.replica in f.readyAgainMs ? secs(f.readyAgainMs[h.replica], 2) : '-',
      h.lagMaxMs === undefined ? '-' : String(Math.round(h.lagMaxMs)),
      result.launcherLagMs[h.phase] === undefined ? '-' : String(Math.round(result.launcherLagMs[h.phase]!)),
    ]);
  }
  out.push(table(['phase', 'replica', '503 after s', '503 for s', '503 spells', 'no answer for s', 'ready again after s', 'max lag ms', 'launcher lag ms'], readyRows));
  out.push('("503 after": from the fault; "ready again after": from Redis back, or from the killed replica\'s restart; lag: the largest event-loop delay.)');

  out.push('', `Connection cap (${o.cap}) under the probe; documented fallback bound: ${DOCUMENTED_RULE}`);
  const degraded = result.baseline.degradedDuringProbe;
  const warmLabel = degraded.length === 0 ? 'warm-up (Redis healthy)' : `warm-up (${degraded.join(', ')} on fallback)`;
  const capTable: string[][] = [...capRows(warmLabel, result.baseline.caps)];
  for (const f of result.faults) if (f.caps) capTable.push(...capRows(f.name, f.caps));
  out.push(table(['phase', 'replica', 'open at start', 'probe admitted', 'peak', 'bound', 'vs bound', 'probe refused'], capTable));
  out.push('(With Redis healthy and every replica ready the bound is the cap itself, across replicas: see the totals.)');
  const totals = [[warmLabel, result.baseline.caps, degraded.length === 0] as const, ...result.faults.filter((f) => f.caps).map((f) => [f.name, f.caps!, false] as const)];
  out.push(
    table(
      ['phase', 'peak held (all replicas)', 'cap', 'over cap', 'bound (all replicas)'],
      totals.map(([name, c, exact]) => [name, String(c.check.peakTotal), String(c.check.cap), String(c.check.overCap), exact ? String(c.check.cap) : String(c.check.boundTotal)]),
    ),
  );

  out.push('', 'connections_used (GET /v1/usage) against the connections the clients hold');
  const usageRows: string[][] = [
    ['warm-up', usageCell(result.baseline.usage), usageCell(result.baseline.usageAfterRelease)],
    ...result.faults.map((f) => [f.name + (f.victim ? ` (from the kill of ${f.victim})` : ' (from Redis back)'), usageCell(f.usage), usageCell(f.usageAfterRelease)]),
    ['end (every client closed)', usageCell(result.usageAtEnd), '-'],
  ];
  out.push(table(['when', 'true again after', 'after the probe closed'], usageRows));

  out.push('', 'Resumes');
  const within = (ms: number | undefined, what: string): string => (ms === undefined ? `not all ${what} within the wait` : `all ${what} after ${secs(ms)} s`);
  const resumeRows = result.faults.map((f) => [
    f.name,
    f.drops.learners.length ? `${f.drops.learners.length} cut (learners ${f.drops.learners.join(', ')}); ${within(f.drops.reopenedMs, 'open again')}` : '-',
    f.victim ? `learners on ${f.victim}: ${within(f.allOpenAgainMs, 'open again')} (from the kill)` : '-',
    secs(f.steadyAgainMs),
  ]);
  out.push(table(['fault', 'network drops during the fault', 'replica kill', 'every learner open, s after recovery'], resumeRows));

  const lost = phases.flatMap((p) => p.lost);
  if (lost.length > 0) {
    out.push('', `Lost turns (${lost.length}; first 30)`);
    out.push(
      table(
        ['phase', 'learner', 'request id', 'reason', 'left the client', 'asked at'],
        lost.slice(0, 30).map((l) => [l.phase, String(l.learner), l.requestId ?? '-', l.reason, l.sent ? 'yes' : 'no', new Date(l.at).toISOString().slice(11, 23)]),
      ),
    );
    out.push('What each of these learners went through (seconds.ms of the minute):');
    for (const l of lost.slice(0, 30)) out.push(`  ${l.requestId ?? `learner ${l.learner}`}: ${l.history || '(no history)'}`);
  }

  out.push('', 'Replica warnings and errors (LOG_LEVEL warn), by phase');
  const warnRows: string[][] = [];
  for (const p of phases) {
    for (const r of replicas) {
      for (const [msg, n] of Object.entries(warnings(r, p.startedAt, p.endedAt ?? Date.now() + 1)).sort((a, b) => b[1] - a[1])) {
        warnRows.push([p.name, r.name, String(n), msg]);
      }
    }
  }
  out.push(warnRows.length ? table(['phase', 'replica', 'lines', 'message'], warnRows) : '(none)');
  if (verbose) {
    for (const r of replicas) {
      out.push('', `--- ${r.name}: ${r.linesSeen} warn+ lines${r.linesSeen > r.lines.length ? ` (first ${r.lines.length} kept)` : ''}`);
      for (const l of r.lines) out.push(l.raw);
    }
  }

  if (result.findings.length > 0) {
    out.push('', 'Findings (no documented promise broken)');
    for (const f of result.findings) out.push(`  - ${f}`);
  }
  out.push('');
  if (result.problems.length === 0) out.push('VERDICT: PASS (no lost turn, caps within the documented bound, every replica ready again, connections_used true again)');
  else {
    out.push(`VERDICT: FAIL (${result.problems.length} broken promise(s))`);
    for (const p of result.problems) out.push(`  - ${p}`);
  }
  out.push('');
  return out.join('\n');
}

/** The result as plain JSON (for --json). */
export function reportJson(result: ChaosResult, replicas: readonly ReplicaProcess[]): unknown {
  return {
    options: result.options,
    loadAtStart: result.loadAtStart,
    loadAtEnd: result.loadAtEnd,
    startedAt: new Date(result.startedAt).toISOString(),
    seconds: (result.endedAt - result.startedAt) / 1000,
    phases: result.ledger.phases.map((p) => ({ ...p, latencies: undefined, p50Ms: percentile(p.latencies, 0.5), p99Ms: percentile(p.latencies, 0.99) })),
    baseline: result.baseline,
    faults: result.faults,
    usageAtEnd: result.usageAtEnd,
    replicaWarnings: Object.fromEntries(replicas.map((r) => [r.name, warnings(r, 0, Number.MAX_SAFE_INTEGER)])),
    health: result.health,
    launcherLagMs: result.launcherLagMs,
    findings: result.findings,
    problems: result.problems,
    pass: result.problems.length === 0,
  };
}
