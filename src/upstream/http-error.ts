/**
 * A non-2xx answer from an upstream HTTP API, and the `Retry-After` parsing that goes with it.
 * Adapters throw `UpstreamHttpError` for every non-2xx status so the governor can decide: 429 and
 * 503 pause the upstream account for `retryAfterMs` (CONTRACT.md §3), other 5xx are retried with
 * backoff, other 4xx are reported.
 */

import { redactText } from '../util/redact.js';

/** The longest reason an upstream error keeps: enough to say what went wrong, bounded for a hostile server. */
export const MAX_REASON_CHARS = 200;

/**
 * Text that came from an upstream (an error body, a header), made fit to show a client or a log:
 * control characters and runs of white space become one space, credentials are redacted
 * (src/util/redact.ts), and only then is it cut to `maxChars` (ending in "…"). Redacting first is
 * the point: a secret that straddles the cut would otherwise leave its first part behind (D6).
 * Adapters redact their own API key from the whole text before calling this.
 */
export function shortReason(text: string, maxChars = MAX_REASON_CHARS): string {
  // eslint-disable-next-line no-control-regex
  const clean = redactText(text.replace(/[\u0000-\u001f\u007f-\u009f\s]+/g, ' ').trim());
  if (clean.length <= maxChars) return clean;
  let cut = clean.slice(0, maxChars - 1);
  // Never end on half a surrogate pair.
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/**
 * An upstream answered with a non-2xx status. `message` is a short reason: the text given, passed
 * through {@link shortReason} (redacted, then cut to 200 characters).
 */
export class UpstreamHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** From `Retry-After` / `retry-after-ms` (see `parseRetryAfter`). */
    readonly retryAfterMs?: number,
  ) {
    super(shortReason(message));
    this.name = 'UpstreamHttpError';
  }
}

/** Headers as fetch's `Headers`, node's `IncomingHttpHeaders`, or a getter by lower-case name. */
export type HeaderSource =
  | { get(name: string): string | null }
  | Record<string, string | string[] | undefined>
  | ((name: string) => string | undefined);

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof headers === 'function') return headers(name);
  if (typeof headers.get === 'function') return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  const record = headers as Record<string, string | string[] | undefined>;
  let value = record[name];
  if (value === undefined) {
    // Plain objects may keep the sender's casing (node's IncomingHttpHeaders are lower case).
    for (const key of Object.keys(record)) {
      if (key.toLowerCase() === name) {
        value = record[key];
        break;
      }
    }
  }
  return Array.isArray(value) ? value[0] : value;
}

/** `delay-seconds` (RFC 9110 §10.2.3 allows only digits; a fraction is accepted too). */
const SECONDS = /^\s*(\d+(?:\.\d+)?)\s*$/;

/**
 * Milliseconds a 429/503 asks us to wait, or undefined when no header is usable:
 * - `retry-after-ms` (OpenAI and Azure OpenAI send it next to `Retry-After`) wins, being more precise;
 * - `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date; a date in the past gives 0.
 */
export function parseRetryAfter(headers: HeaderSource, nowMs: number): number | undefined {
  const ms = header(headers, 'retry-after-ms');
  if (ms !== undefined) {
    const m = SECONDS.exec(ms);
    if (m) return Math.ceil(Number(m[1]));
  }
  const value = header(headers, 'retry-after')?.trim();
  if (!value) return undefined;
  const s = SECONDS.exec(value);
  if (s) return Math.ceil(Number(s[1]) * 1000);
  // An HTTP-date always names a day or month; without letters Date.parse would read "-1" as a year.
  if (!/[a-z]/i.test(value)) return undefined;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil(at - nowMs));
}
