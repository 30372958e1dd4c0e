/**
 * Matches what the server answered to one step against the outcomes the model allows. An answer
 * passes when one outcome explains every item of it: its own events in order (optional ones may be
 * missing), the pongs of its pings, and the end (the barrier's pong, or a close with an allowed
 * code). Items that answer requests accepted earlier (by request_id) and `quota.updated` may come
 * at any time and are allowed in any window.
 */
import type { ServerEvent } from '../../src/protocol/messages.js';
import { showEvent } from './events.js';
import { ANSWERS, idKey, REQUEST_ERRORS, type ConnState, type EventSpec, type IdRule, type Outcome } from './model.js';
import type { Item } from './raw-client.js';
import type { Closed } from './transport.js';

/** How a step's window ended. */
export type End = { readonly kind: 'barrier' } | { readonly kind: 'closed'; readonly closed: Closed } | { readonly kind: 'timeout' } | { readonly kind: 'tcp-open' };

export interface Verdict {
  readonly outcome: Outcome | undefined;
  readonly problems: string[];
}

function idMatches(rule: IdRule, got: unknown): boolean {
  if (rule.mode === 'absent') return got === undefined;
  if (rule.mode === 'equal') return got === rule.value;
  return got === undefined || got === rule.value;
}

function matches(spec: EventSpec, e: ServerEvent): boolean {
  if (e.type !== spec.type) return false;
  const rec = e as { code?: string; request_id?: unknown; close_code?: number };
  if (spec.codes && !spec.codes.includes(rec.code ?? '')) return false;
  if (!idMatches(spec.id, rec.request_id)) return false;
  if (e.type === 'error' && rec.close_code !== spec.closeCode) return false;
  return true;
}

/** Answers to a request accepted on this connection, or a refusal of it (never internal_error). */
function answersAccepted(e: ServerEvent, state: ConnState): boolean {
  const rec = e as { request_id?: string | number; code?: string; close_code?: number };
  if (rec.request_id === undefined) return false;
  const kind = state.requests.get(idKey(rec.request_id));
  if (!kind) return false;
  if (e.type === 'error') return REQUEST_ERRORS.includes(rec.code ?? '') && rec.close_code === undefined;
  return ANSWERS[kind].includes(e.type);
}

export function describeSpec(s: EventSpec): string {
  const id = s.id.mode === 'absent' ? 'no request_id' : s.id.mode === 'equal' ? `request_id ${JSON.stringify(s.id.value).slice(0, 40)}` : `request_id ${JSON.stringify(s.id.value).slice(0, 40)} or none`;
  const code = s.codes ? ` ${s.codes.join('|')}` : '';
  const close = s.type === 'error' ? (s.closeCode !== undefined ? ` close_code ${s.closeCode}` : ' no close_code') : '';
  return `${s.optional ? '(optional) ' : ''}${s.type}${code} ${id}${close}`;
}

export function describeEnd(end: End): string {
  switch (end.kind) {
    case 'barrier':
      return 'connection stayed (barrier answered)';
    case 'timeout':
      return 'no answer and no close within the step timeout';
    case 'tcp-open':
      return 'TCP still open';
    default:
      return end.closed.frame ? `close frame ${end.closed.code ?? '(no code)'}` : 'TCP closed without a close frame';
  }
}

/** Judges one outcome; returns its problems (none: it explains the answer). */
function problemsOf(o: Outcome, window: readonly Item[], end: End): string[] {
  const problems: string[] = [];
  const hadTurns = [...o.state.requests.values()].some((k) => k === 'turn' || k === 'audio-turn');
  const pongs = [...o.pongs];
  let i = 0;
  for (const item of window) {
    if (item.kind === 'audio') {
      if (!hadTurns) problems.push(`unexpected reply audio (${item.bytes} bytes)`);
      continue;
    }
    if (item.kind === 'pong') {
      const k = pongs.findIndex((p) => p.equals(item.payload));
      if (k >= 0) pongs.splice(k, 1);
      else problems.push(`unexpected pong (${item.payload.length} bytes)`);
      continue;
    }
    if (o.dropped) {
      // Cut short anywhere: each event must still be one the step could have caused.
      const e = item.parsed.event;
      if (item.parsed.problem) problems.push(`${item.parsed.problem}: ${showEvent(e, item.raw)}`);
      if (e && !o.events.some((s) => matches(s, e)) && !answersAccepted(e, o.state) && e.type !== 'quota.updated') problems.push(`unexpected ${showEvent(e)}`);
      continue;
    }
    const e = item.parsed.event;
    if (item.parsed.problem) problems.push(`${item.parsed.problem}: ${showEvent(e, item.raw)}`);
    if (!e) continue;
    let j = i;
    while (j < o.events.length && o.events[j]!.optional && !matches(o.events[j]!, e)) j++;
    if (j < o.events.length && matches(o.events[j]!, e)) {
      i = j + 1;
      continue;
    }
    if (answersAccepted(e, o.state)) continue;
    if (e.type === 'quota.updated') continue;
    problems.push(`unexpected ${showEvent(e)}`);
  }
  if (!o.dropped) {
    for (; i < o.events.length; i++) if (!o.events[i]!.optional) problems.push(`missing ${describeSpec(o.events[i]!)}`);
    for (const p of pongs) problems.push(`missing pong (${p.length} bytes)`);
  }
  const close = o.close;
  if (close) {
    if (o.dropped) {
      if (end.kind !== 'closed' || end.closed.frame) problems.push(`expected the ping flood to be dropped; ${describeEnd(end)}`);
    } else if (close.tcpOnly) {
      if (end.kind !== 'closed') problems.push(`expected the server to end the connection; ${describeEnd(end)}`);
    } else if (end.kind !== 'closed' || !end.closed.frame) {
      problems.push(`expected close ${close.codes.map((c) => c ?? '(no code)').join('|')}; ${describeEnd(end)}`);
    } else if (!close.codes.includes(end.closed.code)) {
      problems.push(`expected close ${close.codes.map((c) => c ?? '(no code)').join('|')}; got close ${end.closed.code ?? '(no code)'}`);
    }
  } else if (end.kind !== 'barrier') {
    problems.push(`expected the connection to stay; ${describeEnd(end)}`);
  }
  return problems;
}

/** The first outcome that explains the answer, or the problems of the closest one. */
export function judge(outcomes: readonly Outcome[], window: readonly Item[], end: End): Verdict {
  let best: Verdict | undefined;
  for (const o of outcomes) {
    const problems = problemsOf(o, window, end);
    if (problems.length === 0) return { outcome: o, problems };
    if (!best || problems.length < best.problems.length) best = { outcome: undefined, problems };
  }
  return best ?? { outcome: undefined, problems: ['the model allows no outcome'] };
}

/** A window's items, short and secret-free, for a failure report. */
export function showItems(items: readonly Item[], end: End): string[] {
  const out = items.slice(0, 12).map((it) => (it.kind === 'event' ? showEvent(it.parsed.event, it.raw) : it.kind === 'pong' ? `pong frame (${it.payload.length} bytes)` : `audio (${it.bytes} bytes)`));
  if (items.length > 12) out.push(`… ${items.length - 12} more`);
  out.push(describeEnd(end));
  return out;
}
