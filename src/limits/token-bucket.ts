/** Configuration of a {@link TokenBucket}. */
export interface TokenBucketOptions {
  /** Refill rate in tokens per second; must be finite and > 0. */
  readonly ratePerSec: number;
  /** Capacity in tokens (also the initial fill); must be finite and >= 0. */
  readonly burst: number;
}

/**
 * Relative tolerance when comparing tokens with a cost. Refilling in several steps (a telemetry read of
 * `available()` between `msUntil()` and `tryTake()`) can round a few ulps below refilling in one step;
 * without slack, waiting exactly `msUntil()` could then fail by 1e-16 of a token. 1e-9 of the burst is
 * far below anything observable (a thousandth of a byte on a 1 MiB bucket).
 */
const SLACK = 1e-9;

/**
 * Continuous-refill token bucket; starts full. State is two numbers.
 *
 * Pure and clock-injected: every call takes `nowMs` from the caller's clock. A clock that steps backwards
 * is treated as time standing still (no tokens are added until it passes the latest reading again).
 */
export class TokenBucket {
  readonly ratePerSec: number;
  readonly burst: number;
  /** Tokens as of `lastMs`. */
  private tokens: number;
  /** Latest clock reading seen. Only ever moves forward, so a clock stepping back cannot mint tokens. */
  private lastMs: number;

  constructor(opts: TokenBucketOptions, nowMs: number) {
    const { ratePerSec, burst } = opts;
    if (!(ratePerSec > 0) || !Number.isFinite(ratePerSec)) {
      throw new RangeError(`TokenBucket: ratePerSec must be finite and > 0, got ${ratePerSec}`);
    }
    if (!(burst >= 0) || !Number.isFinite(burst)) {
      throw new RangeError(`TokenBucket: burst must be finite and >= 0, got ${burst}`);
    }
    this.ratePerSec = ratePerSec;
    this.burst = burst;
    this.tokens = burst;
    this.lastMs = nowMs;
  }

  /** A bucket with a stored state (tokens as of lastMs), e.g. one read back from Redis. */
  static restore(opts: TokenBucketOptions, tokens: number, lastMs: number): TokenBucket {
    const b = new TokenBucket(opts, lastMs);
    b.tokens = tokens;
    return b;
  }

  /** Tokens available at nowMs (refilled, capped at burst). */
  available(nowMs: number): number {
    this.refill(nowMs);
    return this.tokens;
  }

  /** Take `cost` tokens if available; returns whether it did. */
  tryTake(cost: number, nowMs: number): boolean {
    this.refill(nowMs);
    // Written so that a NaN cost is refused rather than poisoning `tokens`.
    if (!(cost <= this.burst) || !(this.tokens + this.burst * SLACK >= cost)) return false;
    const left = this.tokens - cost;
    this.tokens = left > 0 ? left : 0;
    return true;
  }

  /**
   * Milliseconds until `cost` tokens are available: 0 if now, Infinity if cost > burst, otherwise the
   * smallest whole number of ms after which `tryTake(cost, nowMs + ms)` succeeds (if nothing else takes).
   */
  msUntil(cost: number, nowMs: number): number {
    this.refill(nowMs);
    if (!(cost <= this.burst)) return Infinity;
    const slack = this.burst * SLACK;
    if (this.tokens + slack >= cost) return 0;
    // Estimate with exact arithmetic, then correct it by whole ms against the very expression refill()
    // will evaluate at nowMs + ms: float rounding can then make the wait neither too short nor 1 ms long.
    // `lastMs - nowMs` is > 0 only if the clock stepped back: the wait includes catching up with it.
    const behind = this.lastMs - nowMs;
    let ms = Math.ceil(behind + ((cost - this.tokens) * 1000) / this.ratePerSec);
    if (ms < 1) ms = 1;
    while (this.tokensAt(nowMs + ms) + slack < cost) ms++;
    while (ms > 1 && this.tokensAt(nowMs + ms - 1) + slack >= cost) ms--;
    return ms;
  }

  /** Milliseconds until the bucket is full again (0 if it is). */
  msUntilFull(nowMs: number): number {
    return this.msUntil(this.burst, nowMs);
  }

  /** Tokens at time t without mutating; the single place the refill formula lives. */
  private tokensAt(t: number): number {
    const dt = t - this.lastMs;
    if (!(dt > 0)) return this.tokens;
    const v = this.tokens + (dt * this.ratePerSec) / 1000;
    return v < this.burst ? v : this.burst;
  }

  private refill(nowMs: number): void {
    if (nowMs > this.lastMs) {
      this.tokens = this.tokensAt(nowMs);
      this.lastMs = nowMs;
    }
  }
}
