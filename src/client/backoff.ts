/**
 * Reconnect backoff: exponential with full jitter (AWS Architecture Blog, "Exponential Backoff
 * and Jitter", 2015), honouring the server's `retry_after_ms`, with the attempt counter reset only
 * after a connection stayed up `stableMs`. Pure: the caller passes the clock readings and the
 * random source, so tests drive both.
 */

export interface BackoffOptions {
  /** First step in ms: attempt n waits a uniform random time in [0, min(capMs, baseMs * 2^(n-1))). */
  readonly baseMs: number;
  readonly capMs: number;
  /** A connection open at least this long resets the attempt counter when it closes. */
  readonly stableMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, capMs: 30_000, stableMs: 5_000 };

export interface BackoffStep {
  /** 1 for the first attempt after a stable connection. */
  readonly attempt: number;
  readonly delayMs: number;
}

export class Backoff {
  private failures = 0;
  private openedAtMs: number | undefined;

  constructor(
    private readonly opts: BackoffOptions,
    private readonly random: () => number,
  ) {
    if (!(opts.baseMs > 0) || !(opts.capMs >= opts.baseMs) || !(opts.stableMs >= 0)) {
      throw new RangeError(`Backoff: need baseMs > 0, capMs >= baseMs, stableMs >= 0; got ${JSON.stringify(opts)}`);
    }
  }

  /** Consecutive attempts since the last stable connection. */
  get attempts(): number {
    return this.failures;
  }

  /** A connection (with a session) is up. */
  opened(nowMs: number): void {
    this.openedAtMs = nowMs;
  }

  /** The connection closed; a connection that was up `stableMs` or longer forgets earlier attempts. */
  closed(nowMs: number): void {
    if (this.openedAtMs !== undefined && nowMs - this.openedAtMs >= this.opts.stableMs) this.failures = 0;
    this.openedAtMs = undefined;
  }

  /** The upper bound of the jitter window for attempt n (1-based). */
  ceilingMs(attempt: number): number {
    // 2^(n-1) overflows to Infinity for huge n, which min() then caps.
    return Math.min(this.opts.capMs, this.opts.baseMs * 2 ** (attempt - 1));
  }

  /**
   * The next attempt and its delay. `retryAfterMs` (from the server's last `error`) is a floor:
   * the delay is that plus a jitter below `baseMs`, so clients told the same time do not return
   * in lockstep. `immediate` (close 1012: resume at once) makes the first attempt wait 0 ms;
   * later attempts back off as usual.
   */
  next(opts: { retryAfterMs?: number | undefined; immediate?: boolean } = {}): BackoffStep {
    this.failures += 1;
    const attempt = this.failures;
    const r = this.random();
    const u = r >= 0 && r < 1 ? r : 0;
    let delayMs: number;
    if (opts.retryAfterMs !== undefined && opts.retryAfterMs > 0) delayMs = opts.retryAfterMs + Math.floor(u * this.opts.baseMs);
    else if (opts.immediate && attempt === 1) delayMs = 0;
    else delayMs = Math.floor(u * this.ceilingMs(attempt));
    return { attempt, delayMs };
  }

  /** Forgets every attempt (a new session, or a deliberate connect()). */
  reset(): void {
    this.failures = 0;
    this.openedAtMs = undefined;
  }
}
