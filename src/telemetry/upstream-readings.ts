/**
 * What telemetry reads of an upstream governor, declared here so telemetry stays below what it
 * measures (ARCHITECTURE.md import rules): the governor pushes events through these hooks and
 * exposes its two gauges; the composition root (src/app.ts) hands the governors over as this view.
 */

/** A governor's live figures, read when /metrics is scraped or the dashboard ticks. */
export interface UpstreamReadings {
  /** Jobs waiting for admission. */
  readonly queued: number;
  /** Attempts in flight. */
  readonly inFlight: number;
}

/** Why an attempt is retried (metrics label). */
export type RetryReason = 'rate_limited' | 'unavailable' | 'server_error' | 'network' | 'timeout';

/** Optional metrics callbacks; each is called synchronously and must not throw. */
export interface GovernorHooks {
  /** The queue depth changed (jobs waiting for admission, not counting backoffs). */
  onQueued?(depth: number): void;
  /** An attempt was admitted after waiting `waitMs` in this governor's queue. */
  onAdmitted?(waitMs: number): void;
  onRetry?(reason: RetryReason): void;
  /** The upstream answered 429 although admission allowed the call. */
  onUpstream429?(): void;
  /** An attempt ended (not counting attempts the caller cancelled). */
  onResult?(ok: boolean, latencyMs: number): void;
  /** The first byte of an attempt's answer arrived, `ms` after the attempt started (streamed answers). */
  onFirstByte?(ms: number): void;
}
