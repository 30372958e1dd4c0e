/**
 * The promises a fuzz run checks (CONTRACT §10's second promise, in the terms of issue 12 item 4)
 * and the report `npm run fuzz` prints.
 */
import { ORACLE } from './oracle.js';
import type { Probe } from './ipc.js';
import type { FuzzReport } from './runner.js';

/**
 * How far the "later" reading may sit above the "before" one and still count as back to baseline
 * (docs/operations.md "Fuzzing" has the measurements behind these).
 * - V8 heap (live objects after full, settled collections): 4 MiB. Across 20k-100k-frame runs it
 *   ended 0.1-1.6 MiB above the baseline. What a leak would add: a WebSocket case retaining its
 *   socket state (~5 KiB of heap, VERIFIED.md) or its session (~14 KiB, "Sizing") over the ~2,400
 *   WebSocket cases of a 100k run is 12-33 MiB; 4 MiB catches anything over ~1.7 KiB a case.
 * - RSS: 16 MiB. The heap bound catches retained objects; this one catches native memory
 *   (buffers, sockets) that stays. Freed memory is not all handed back to the system (glibc keeps
 *   arenas, V8 keeps pages for reuse), so RSS is noisier: it ended 10-41 MiB *below* the baseline
 *   in the same runs (the baseline follows the warm-up's large frames).
 * - Handles: TCP sockets and servers exactly as before; timers within 3 (the control learner's
 *   quota look-again and turn timers come and go with its turns).
 */
export const TOLERANCE = {
  rssBytes: 16 * 1024 * 1024,
  heapBytes: 4 * 1024 * 1024,
  timeouts: 3,
};

export interface Promise_ {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

const MiB = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;
const handles = (p: Probe): string =>
  Object.entries(p.handles)
    .sort()
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');

function handlesBack(before: Probe, later: Probe): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(later.handles)) {
    const b = before.handles[k] ?? 0;
    const allowed = k === 'Timeout' ? b + TOLERANCE.timeouts : b;
    if (v > allowed) out.push(`${k} ${v} (baseline ${b})`);
  }
  return out;
}

/** Every promise of the run, kept or broken. */
export function promises(r: FuzzReport): Promise_[] {
  const s = r.stats;
  const out: Promise_[] = [
    { name: 'frames sent', ok: s.framesSent >= r.framesTarget, detail: `${s.framesSent} of ${r.framesTarget}` },
    { name: 'no crash', ok: !r.crash, detail: r.crash ? `app exited (code ${r.crash.code}, signal ${r.crash.signal})` : '0 crashes' },
    { name: 'every answer in the oracle', ok: s.unexpected === 0, detail: `${s.unexpected} unexpected` },
    { name: 'every event matches its schema', ok: s.schemaViolations === 0, detail: `${s.schemaViolations} events break ServerEvents` },
    { name: 'no internal_error', ok: s.internalErrors === 0, detail: `${s.internalErrors} internal_error events to attackers` },
  ];
  // The fuzzer must answer the app's pings itself: a stall past a heartbeat would make its own
  // connections (and the control's) look dead and spoil every figure above.
  out.push({ name: 'fuzzer kept up', ok: r.fuzzerStallMs < r.heartbeatSeconds * 1000, detail: `longest event-loop stall ${r.fuzzerStallMs} ms, p99 ${r.fuzzerLagP99Ms} ms (heartbeat ${r.heartbeatSeconds} s)` });
  if (r.control) {
    out.push({
      name: 'control session unharmed',
      ok: r.control.failures === 0 && r.control.completed > 0,
      detail: `${r.control.completed}/${r.control.turns} turns answered in full, ${r.control.failures} failures`,
    });
  }
  if (r.slotsAfter !== undefined) out.push({ name: 'connection slots released', ok: r.slotsAfter === 0, detail: `connections_used ${r.slotsAfter} with no attack connection open` });
  if (r.readings?.later) {
    const { before, later } = r.readings;
    const rssOk = later.rss <= before.rss + TOLERANCE.rssBytes;
    const heapOk = later.heapUsed <= before.heapUsed + TOLERANCE.heapBytes;
    out.push({
      name: 'memory back to baseline',
      ok: rssOk && heapOk,
      detail: `RSS ${MiB(before.rss)} → ${MiB(later.rss)} (allowed +${MiB(TOLERANCE.rssBytes)}), heap ${MiB(before.heapUsed)} → ${MiB(later.heapUsed)} (allowed +${MiB(TOLERANCE.heapBytes)})`,
    });
    const extra = handlesBack(before, later);
    out.push({ name: 'handles back to baseline', ok: extra.length === 0 && later.connections <= before.connections, detail: extra.length ? extra.join(', ') : `${handles(later)}; ${later.connections} connection(s)` });
    out.push({ name: 'Object.prototype untouched', ok: later.prototypeExtras.length === 0, detail: later.prototypeExtras.length ? later.prototypeExtras.join(', ') : 'clean' });
  }
  out.push({ name: 'no secret in the app logs', ok: r.logs.secretLines === 0, detail: `${r.logs.secretLines} lines` });
  return out;
}

/** Columns padded to their widest cell: numbers to the right, words to the left; the last column is not padded. */
function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const numeric = rows[0]!.map((_, i) => rows.slice(1).every((r) => /^[\d.,]*( MiB)?$|^-$/.test(r[i] ?? '')));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

/** The report `npm run fuzz` prints. */
export function formatReport(r: FuzzReport): string {
  const s = r.stats;
  const lines: string[] = [];
  const steps = Object.values(s.byClass).reduce((n, c) => n + c.steps, 0);
  lines.push(`Parley fuzz report: seed ${r.seed}, ${s.framesSent} frames (target ${r.framesTarget}) in ${steps} judged steps, ${s.sessionCases} WebSocket cases, ${s.httpCases} raw HTTP/TCP cases, ${(r.durationMs / 1000).toFixed(1)} s`);
  if (r.cpuMs) lines.push(`  fuzzing phase ${(r.cpuMs.phaseMs / 1000).toFixed(1)} s: fuzzer CPU ${(r.cpuMs.fuzzer / 1000).toFixed(1)} s${r.cpuMs.app !== undefined ? `, app CPU ${(r.cpuMs.app / 1000).toFixed(1)} s` : ''} (2 cores shared with whatever else runs)`);
  lines.push(`  barrier pings (ours, not counted as frames): ${s.barrierPings}; field mutations covered: ${r.mutationCoverage.hit}/${r.mutationCoverage.of}`);
  lines.push('', 'Frames by input class:');
  const rows = [['class', 'steps', 'frames', 'unexpected', 'allowed answer']];
  for (const [cls, c] of Object.entries(s.byClass).sort()) rows.push([cls, String(c.steps), String(c.frames), String(c.unexpected), ORACLE[cls]?.answer ?? '']);
  lines.push(...table(rows).map((l) => `  ${l}`));
  lines.push('', 'Raw HTTP/TCP attacks:');
  const hrows = [['variant', 'cases', 'frames', 'unexpected', 'allowed answer']];
  for (const [v, c] of Object.entries(s.byHttp).sort()) hrows.push([v, String(c.steps), String(c.frames), String(c.unexpected), ORACLE[v]?.answer ?? '']);
  lines.push(...table(hrows).map((l) => `  ${l}`));
  lines.push(`  slowloris sockets held to the end: ${s.slowlorisHeld}, closed by the server first: ${s.slowlorisClosedByServer}`);
  lines.push('', `Close codes seen by attack connections: ${Object.entries(s.closeCodes).map(([k, v]) => `${k}×${v}`).join(', ')}`);
  lines.push(`  dropped for a ping flood (no close frame, no error event; ws maxPendingAutoPongs): ${s.pingFloodDrops}`);
  if (r.control) {
    const c = r.control;
    lines.push('', `Control session: ${c.turns} turns, ${c.completed} answered in full, ${c.failures} failures; latency p50 ${c.latencyMs.p50} ms, p95 ${c.latencyMs.p95} ms, max ${c.latencyMs.max} ms${c.closedWith !== undefined ? `; CLOSED by the server with ${c.closedWith}` : ''}`);
    for (const f of c.failureExamples) lines.push(`  - ${f}`);
  }
  if (r.readings) {
    const { before, after, later } = r.readings;
    lines.push('', 'App process (after forced, settled GC):');
    const row = (name: string, p: Probe | undefined): string[] => (p ? [name, MiB(p.rss), MiB(p.heapUsed), MiB(p.external), String(p.connections), String(p.sessions), handles(p)] : [name, '-', '-', '-', '-', '-', '-']);
    lines.push(...table([['reading', 'RSS', 'heap', 'external', 'conns', 'sessions', 'handles'], row('before', before), row('right after', after), row('later', later)]).map((l) => `  ${l}`));
  }
  if (r.slotsAfter !== undefined) lines.push(`  attackers' connections_used right after: ${r.slotsAfter}, later: ${r.slotsLater ?? '-'}`);
  if (r.foreignCloseLabels.length) lines.push(`  parley_closes_total carries ${r.foreignCloseLabels.length} close codes the server never sends (client-chosen): ${r.foreignCloseLabels.slice(0, 12).join(', ')}${r.foreignCloseLabels.length > 12 ? ', …' : ''}`);
  lines.push(`  app log lines: ${Object.entries(r.logs.byLevel).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  for (const e of r.logs.errors) lines.push(`  error line: ${e}`);
  if (r.crash) lines.push('', `CRASH: code ${r.crash.code}, signal ${r.crash.signal}`, r.crash.stderrTail);
  if (s.schemaExamples.length) lines.push('', 'Events that break their schema:', ...s.schemaExamples.map((e) => `  - ${e}`));
  if (s.findings.length) {
    lines.push('', `Unexpected answers (${s.unexpected}; first ${s.findings.length}; reproduce one with --seed ${r.seed} --case N):`);
    for (const f of s.findings) {
      lines.push(`- case ${f.caseIndex}${f.step !== undefined ? ` step ${f.step}` : ''} [${f.cls}${f.transport ? `, ${f.transport}` : ''}] input: ${f.input}`);
      for (const e of f.expected) lines.push(`    expected: ${e.slice(0, 400)}`);
      lines.push(`    got:      ${f.observed.join(' · ').slice(0, 600)}`);
      lines.push(`    problem:  ${f.problems.join('; ').slice(0, 400)}`);
    }
  }
  lines.push('', 'Promises:');
  for (const p of promises(r)) lines.push(`  ${p.ok ? 'ok  ' : 'FAIL'} ${p.name}: ${p.detail}`);
  return lines.join('\n');
}
