/**
 * A non-2xx answer from an upstream HTTP API, and the `Retry-After` parsing that goes with it.
 *
 * The governor (`governor.ts`) defines the same shape; the two are reconciled into one later. The
 * adapter throws this for every non-2xx status so the governor can decide: 429 and 503 are
 * retried after `retryAfterMs` (CONTRACT.md §3), anything else is reported.
 */

/** An upstream answered with a non-2xx status. `message` is a short reason (at most 200 chars). */
export class UpstreamHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'UpstreamHttpError';
  }
}

/** `delay-seconds` (RFC 9110 §10.2.3 allows only digits; a fraction is accepted too). */
const SECONDS = /^\s*(\d+(?:\.\d+)?)\s*$/;

/**
 * Milliseconds to wait before retrying, from response headers, or undefined when none is usable.
 *
 * - `retry-after-ms` (OpenAI and Azure OpenAI send it next to `Retry-After`): milliseconds, wins
 *   because it is the more precise of the two;
 * - `Retry-After` (RFC 9110 §10.2.3): `delay-seconds` or an HTTP-date; a date in the past gives 0.
 *
 * `get` reads one header by lower-case name; `nowMs` is the wall clock (`Date.now()`) for dates.
 */
export function parseRetryAfter(get: (name: string) => string | undefined, nowMs: number): number | undefined {
  const ms = get('retry-after-ms');
  if (ms !== undefined) {
    const m = SECONDS.exec(ms);
    if (m) return Math.ceil(Number(m[1]));
  }
  const value = get('retry-after')?.trim();
  if (!value) return undefined;
  const s = SECONDS.exec(value);
  if (s) return Math.ceil(Number(s[1]) * 1000);
  // An HTTP-date (IMF-fixdate, or the obsolete RFC 850 / asctime forms Date.parse also reads).
  // Reject bare numbers with a sign and the like, which Date.parse would read as a year.
  if (!/[a-z]/i.test(value)) return undefined;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil(at - nowMs));
}
