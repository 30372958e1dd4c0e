/**
 * What the governor does with a failed attempt (CONTRACT §3): which failures are retried, for what
 * reason, after how long.
 */
import type { RetryReason } from '../../telemetry/upstream-readings.js';
import { UpstreamHttpError } from '../http-error.js';
import { UpstreamError } from '../provider.js';
import { isAbort } from './attempt.js';

/** Backoff without Retry-After: full jitter over 1 s doubling, capped at 30 s (CONTRACT §3). */
const BACKOFF_BASE_MS = 1_000;
const BACKOFF_CAP_MS = 30_000;

/** The wait before retry number `retry` (1-based), full jitter: uniform in [0, min(cap, base × 2^(retry−1))). */
export function backoffMs(retry: number, random: () => number): number {
  return Math.floor(random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (retry - 1)));
}

/**
 * The HTTP error an adapter threw, recognised by shape as well as class: an adapter module may
 * declare its own `UpstreamHttpError` with the same fields (name 'UpstreamHttpError', numeric status).
 */
export function asHttpError(err: unknown): UpstreamHttpError | undefined {
  if (err instanceof UpstreamHttpError) return err;
  if (err instanceof Error && err.name === 'UpstreamHttpError' && typeof (err as { status?: unknown }).status === 'number') {
    return err as UpstreamHttpError;
  }
  return undefined;
}

export function describe(err: unknown): string {
  const httpError = asHttpError(err);
  if (httpError) return `HTTP ${httpError.status}: ${httpError.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** A failed attempt's fate. */
export type Verdict =
  | { readonly retry: true; readonly reason: RetryReason; readonly status?: number; readonly retryAfterMs?: number; readonly unexpected429: boolean }
  | { readonly retry: false; readonly error: unknown };

/**
 * 429 and 5xx are retried (429 and 503 with their account-wide `Retry-After`); other HTTP errors
 * are reported; an abort the caller did not ask for is passed on; an adapter's verdict on a 2xx it
 * could not use (or a stream that failed after part of it was delivered) is reported, since asking
 * again would not help; anything else is a network-level failure and is retried.
 */
export function classify(err: unknown, upstream: string): Verdict {
  const httpError = asHttpError(err);
  if (httpError) {
    const { status } = httpError;
    if (status === 429 || status >= 500) {
      const reason: RetryReason = status === 429 ? 'rate_limited' : status === 503 ? 'unavailable' : 'server_error';
      // Only 429 and 503 carry an account-wide Retry-After (CONTRACT §3).
      const retryAfterMs = status === 429 || status === 503 ? httpError.retryAfterMs : undefined;
      return { retry: true, reason, status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}), unexpected429: status === 429 };
    }
    return { retry: false, error: new UpstreamError(upstream, `HTTP ${status}: ${httpError.message}`, status) };
  }
  if (isAbort(err)) return { retry: false, error: err };
  if (err instanceof UpstreamError && err.status !== undefined && err.status < 300) {
    return { retry: false, error: new UpstreamError(upstream, err.message, err.status) };
  }
  return { retry: true, reason: 'network', unexpected429: false };
}
