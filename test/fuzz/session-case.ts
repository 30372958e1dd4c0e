/**
 * Runs one session case: opens the connection, then for each step writes its frames, follows them
 * with a barrier (`ping` with an id of ours) and judges everything that came back before the
 * barrier's `pong` (or the close) against the model. The first unexpected answer is recorded with
 * its seed, case, step and input, and ends the case: after it the model no longer knows the
 * connection's state.
 */
import type { SessionCase, Step } from './cases.js';
import { describeSpec, judge, showItems, type End } from './judge.js';
import { newState, type Model, type Outcome } from './model.js';
import type { Item } from './raw-client.js';
import type { Stats } from './stats.js';
import { RawTransport, WsTransport, type Transport } from './transport.js';
import { Opcode } from './wire.js';

export interface CaseContext {
  readonly port: number;
  readonly seed: number;
  readonly apiKey: string;
  readonly stats: Stats;
  readonly model: Model;
  /** How long a step may take to be answered (generous: the machine may be busy). */
  readonly stepTimeoutMs: number;
  /** Prints every step and its answer (--case). */
  readonly trace?: ((line: string) => void) | undefined;
}

const isBarrier = (it: Item, id: string): boolean => it.kind === 'event' && it.parsed.event?.type === 'pong' && (it.parsed.event as { request_id?: unknown }).request_id === id;

/** The model's labels with runs of the same kind ("fragment …") folded into one. */
function fold(labels: readonly string[]): string {
  const out: string[] = [];
  let run = 0;
  for (let i = 0; i < labels.length; i++) {
    const kind = labels[i]!.replace(/\(.*?\)/g, '');
    const next = labels[i + 1]?.replace(/\(.*?\)/g, '');
    if (next === kind) {
      run++;
      continue;
    }
    out.push(run > 0 ? `${kind.trim()} ×${run + 1}` : labels[i]!);
    run = 0;
  }
  return out.join('; ');
}

function expectedOf(outcomes: readonly Outcome[]): string[] {
  return outcomes.slice(0, 3).map((o, k) => `${outcomes.length > 1 ? `(${k + 1}) ` : ''}${fold(o.label)}${o.events.length ? ` [events: ${o.events.map(describeSpec).join(', ')}]` : ''}`);
}

/**
 * Steps whose barriers may be outstanding at once. The server answers a connection's frames in
 * order, so barrier k's pong still closes step k's window however many later steps are on the
 * wire; pipelining only saves the round trips (which, on a busy machine, are most of a run).
 */
const PIPELINE = 8;

/**
 * Only well-formed data frames may be pipelined: the connection handles them strictly in order
 * (frames behind a `session.start` wait for it). Control frames, framing violations and oversized
 * frames are acted on by the WebSocket layer the moment they arrive, ahead of earlier messages
 * still being handled (a close or a 1002 would overtake the `session.created` of the step
 * before), and pings of neighbouring steps would add up toward the ping-flood bound: such a step
 * goes alone, after every earlier step is judged.
 */
function pipelinable(s: Step, maxPayloadBytes: number): boolean {
  if (s.after !== 'barrier' || s.frames.length > 1000) return false;
  let bytes = 0;
  // Whole messages only: a data frame inside another's fragments is a violation ws acts on at once.
  let open = false;
  for (const f of s.frames) {
    if (f.opcode > Opcode.binary || (f.rsv ?? 0) !== 0 || f.mask === false || f.declaredLength !== undefined) return false;
    if (f.lengthForm !== undefined && f.lengthForm !== 'minimal') return false;
    if ((f.opcode === Opcode.continuation) !== open) return false;
    open = !(f.fin ?? true);
    bytes += f.payload?.length ?? 0;
  }
  return !open && bytes <= maxPayloadBytes;
}

export async function runSessionCase(c: SessionCase, ctx: CaseContext): Promise<void> {
  const opts = { port: ctx.port, apiKey: ctx.apiKey, onItem: ctx.stats.onItem };
  const t: Transport = c.transport === 'ws' ? new WsTransport(opts) : new RawTransport(opts);
  const fail = (step: number, s: Step | undefined, expected: string[], observed: string[], problems: string[]): void => {
    ctx.stats.finding({ seed: ctx.seed, caseIndex: c.index, step, cls: s?.cls ?? 'setup.session-start', transport: c.transport, input: s?.note ?? 'upgrade', expected, observed, problems }, false);
    ctx.trace?.(`  UNEXPECTED: ${problems.join('; ')}`);
  };
  try {
    const status = await t.open();
    if (status !== 101) {
      fail(-1, undefined, ['101 Switching Protocols'], [`HTTP ${status}`], [`the upgrade of a valid client was answered ${status}`]);
      return;
    }
    ctx.stats.sessionCases++;
    let state = newState();
    let mark = 0;
    let barriers = 0;
    /** Steps on the wire, oldest first, with their barrier ids. */
    const inflight: { k: number; barrier: string | undefined }[] = [];
    let next = 0;
    const send = (k: number): void => {
      const step = c.steps[k]!;
      t.send(step.frames);
      let barrier: string | undefined;
      if (step.after === 'barrier') {
        barrier = `~b${++barriers}`;
        t.sendText(JSON.stringify({ type: 'ping', id: barrier }));
        ctx.stats.barrierPings++;
      }
      inflight.push({ k, barrier });
    };
    while (next < c.steps.length || inflight.length > 0) {
      while (next < c.steps.length && inflight.length < PIPELINE) {
        const alone = !pipelinable(c.steps[next]!, ctx.model.limits.maxPayloadBytes);
        if (alone && inflight.length > 0) break;
        send(next++);
        if (alone) break;
      }
      const { k, barrier } = inflight.shift()!;
      const step = c.steps[k]!;
      // Counted when judged: a step still on the wire when an earlier one closed the connection was never read.
      if (step.mutation !== undefined) ctx.stats.mutationsHit.add(step.mutation);
      ctx.stats.step(step.cls, step.frames.length);
      let outcomes = ctx.model.step(state, step.frames);
      ctx.trace?.(`step ${k} [${step.cls}] ${step.note}`);
      if (step.after === 'reset') {
        t.reset();
        ctx.stats.closed('reset');
        return;
      }
      let end: End;
      let window: readonly Item[];
      if (step.after === 'fin') {
        // A FIN without a close frame: whatever else, the server must let the connection go.
        outcomes = outcomes.map((o) => ({ ...o, close: o.close ?? { codes: [], tcpOnly: true } }));
        t.fin();
        const gone = await t.waitUntil(() => t.tcpEnded, ctx.stepTimeoutMs);
        end = gone ? { kind: 'closed', closed: t.closed ?? { frame: false } } : { kind: 'tcp-open' };
        window = t.items.slice(mark);
      } else {
        let at = -1;
        const found = (): boolean => {
          for (let i = Math.max(mark, 0); i < t.items.length; i++) {
            if (isBarrier(t.items[i]!, barrier!)) {
              at = i;
              return true;
            }
          }
          return false;
        };
        await t.waitUntil(found, ctx.stepTimeoutMs);
        if (at >= 0) {
          window = t.items.slice(mark, at);
          mark = at + 1;
          end = { kind: 'barrier' };
        } else if (t.closed) {
          // Whatever arrived up to the close (the close itself is only seen after the items).
          window = t.items.slice(mark);
          end = { kind: 'closed', closed: t.closed };
        } else {
          window = t.items.slice(mark);
          end = { kind: 'timeout' };
        }
      }
      const verdict = judge(outcomes, window, end);
      ctx.trace?.(`  expected: ${expectedOf(outcomes).join(' | ')}`);
      ctx.trace?.(`  observed: ${showItems(window, end).join(' · ')}`);
      if (!verdict.outcome) {
        fail(k, step, expectedOf(outcomes), showItems(window, end), verdict.problems);
        return;
      }
      state = verdict.outcome.state;
      if (verdict.outcome.dropped) ctx.stats.pingFloodDrops++;
      if (end.kind === 'closed') {
        ctx.stats.closed(end.closed.frame ? end.closed.code : 'none');
        // A close frame must be followed by the end of TCP (RFC 6455 §7.1.1: the server closes first).
        if (!(await t.waitUntil(() => t.tcpEnded, ctx.stepTimeoutMs))) {
          fail(k, step, ['TCP closed after the close handshake'], ['TCP still open'], ['the server left TCP open after the close handshake']);
        }
        return;
      }
    }
  } finally {
    t.destroy();
  }
}
