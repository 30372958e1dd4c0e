/**
 * Server events as the fuzzer sees them: every text frame parsed and checked against the
 * protocol's own schemas (`serverValidators`, src/protocol/messages.ts). An event that is not JSON,
 * has an unknown type or breaks its schema is a finding whatever input caused it.
 */
import { serverValidators, type ServerEvent, type ServerEventType } from '../../src/protocol/messages.js';

export type Received = { readonly kind: 'event'; readonly event: ServerEvent; readonly raw: string } | { readonly kind: 'audio'; readonly bytes: number };

export interface Parsed {
  readonly event?: ServerEvent;
  /** Why the frame is not a valid server event (absent when it is). */
  readonly problem?: string;
}

/** Parses one server text frame and validates it against its event schema. */
export function parseServerEvent(text: string): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { problem: 'server text frame is not JSON' };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { problem: 'server event is not a JSON object' };
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string' || !Object.prototype.hasOwnProperty.call(serverValidators, type)) {
    return { problem: `server event has an unknown type ${JSON.stringify(type)}` };
  }
  const check = serverValidators[type as ServerEventType];
  if (!check.Check(value)) {
    const first = check.Errors(value).First();
    return { event: value as ServerEvent, problem: `${type} breaks its schema${first ? ` at ${first.path || '/'}: ${first.message}` : ''}` };
  }
  return { event: value as ServerEvent };
}

/** A short, secret-free rendering of an event for a failure report. */
export function showEvent(e: ServerEvent | undefined, raw?: string): string {
  if (!e) return truncate(raw ?? '', 160);
  const copy: Record<string, unknown> = { ...e };
  // A resume token is a secret (CONTRACT §10): never printed.
  if ('resume_token' in copy) copy.resume_token = '<redacted>';
  if ('limits' in copy) copy.limits = '…';
  return truncate(JSON.stringify(copy), 200);
}

/** Cuts a string for a report, saying how long it was. */
export function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length} chars)`;
}
