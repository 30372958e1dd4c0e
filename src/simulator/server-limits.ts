/**
 * The limits of the simulator server's upstream account, enforced the way a real provider account
 * enforces them, and reported in OpenAI's `x-ratelimit-*` headers
 * (https://platform.openai.com/docs/guides/rate-limits, "Rate limits in headers"):
 *
 * - requests: `rpm` (any 60 s window, an exact log), `rps` + `burst` (a token bucket),
 *   `concurrency` (requests in flight);
 * - tokens: `tokensPerMinute`, prompt + completion tokens of the usage each chat answer reports,
 *   counted when the answer ends (as providers bill, and as count-after limiters count). A chat
 *   request is refused while the tokens counted in the last 60 s have reached the limit; one
 *   admitted below it may take the count above it, and {@link AccountLimits.tokens} records the
 *   peak, so a test can tell whether a client kept within the limit.
 *
 * Every check is made before anything is taken, so a refused request costs nothing.
 */
import { SlidingWindowLog } from '../limits/sliding-window.js';
import { TokenBucket } from '../limits/token-bucket.js';

export interface AccountLimitOptions {
  readonly rps?: number | undefined;
  readonly burst?: number | undefined;
  readonly rpm?: number | undefined;
  readonly concurrency?: number | undefined;
  readonly tokensPerMinute?: number | undefined;
}

/** Why a request is refused, and when to come back. */
export interface Refusal {
  readonly retryMs: number;
  readonly message: string;
  readonly code: string;
}

/** Tokens the account counted. */
export interface TokenCounts {
  readonly prompt: number;
  readonly completion: number;
  /** prompt + completion. */
  readonly total: number;
  /** Tokens counted in the last 60 s. */
  readonly inWindow: number;
  /** The most tokens ever counted within one 60 s window. */
  readonly peakPerMinute: number;
}

const MINUTE_MS = 60_000;

/**
 * Go's `time.Duration` text, which OpenAI's reset headers use ("1s", "6m0s", "350ms", "1m30.5s"),
 * at whole-ms precision (rounded up, so waiting that long is always enough).
 */
export function formatResetDuration(ms: number): string {
  const total = Math.max(0, Math.ceil(ms));
  if (total === 0) return '0s';
  if (total < 1000) return `${total}ms`;
  const h = Math.floor(total / 3_600_000);
  const m = Math.floor((total % 3_600_000) / MINUTE_MS);
  const s = ((total % MINUTE_MS) / 1000).toFixed(3).replace(/\.?0+$/, '');
  return `${h > 0 ? `${h}h` : ''}${h > 0 || m > 0 ? `${m}m` : ''}${s}s`;
}

/**
 * Weighted sliding-window log: `n` tokens recorded at t count while now < t + 60 s. Written here
 * rather than taken from limits/ because SlidingWindowLog counts whole requests (one slot each),
 * and a count of tokens per answer would need a slot per token.
 */
class TokenWindow {
  private readonly log: { at: number; n: number }[] = [];
  private head = 0;
  private sum = 0;

  used(now: number): number {
    while (this.head < this.log.length && this.log[this.head]!.at + MINUTE_MS <= now) this.sum -= this.log[this.head++]!.n;
    if (this.head > 1024 && this.head * 2 > this.log.length) {
      this.log.splice(0, this.head);
      this.head = 0;
    }
    return this.sum;
  }

  add(n: number, now: number): number {
    this.used(now);
    const last = this.log[this.log.length - 1];
    // Non-decreasing times even if the clock steps back, so eviction from the head stays right.
    this.log.push({ at: last && last.at > now ? last.at : now, n });
    this.sum += n;
    return this.sum;
  }

  /** ms until fewer than `limit` tokens are counted (0 if they already are). */
  msUntilBelow(limit: number, now: number): number {
    let left = this.used(now);
    for (let i = this.head; left >= limit && i < this.log.length; i++) {
      left -= this.log[i]!.n;
      if (left < limit) return Math.max(0, Math.ceil(this.log[i]!.at + MINUTE_MS - now));
    }
    return 0;
  }

  /** ms until nothing is counted. */
  msUntilEmpty(now: number): number {
    this.used(now);
    const last = this.log[this.log.length - 1];
    return this.head < this.log.length && last ? Math.max(0, Math.ceil(last.at + MINUTE_MS - now)) : 0;
  }
}

/** The limits of one simulated upstream account. */
export class AccountLimits {
  private readonly bucket: TokenBucket | undefined;
  private readonly window: SlidingWindowLog | undefined;
  private readonly tokenWindow = new TokenWindow();
  private counted = { prompt: 0, completion: 0, peakPerMinute: 0 };

  constructor(
    private readonly opts: AccountLimitOptions,
    now: number,
  ) {
    this.bucket = opts.rps !== undefined ? new TokenBucket({ ratePerSec: opts.rps, burst: opts.burst ?? Math.ceil(opts.rps) }, now) : undefined;
    this.window = opts.rpm !== undefined ? new SlidingWindowLog(opts.rpm, MINUTE_MS) : undefined;
  }

  /**
   * Checks a request against every limit (`chat`: the token limit too) and takes one request if
   * all allow it; otherwise takes nothing and says why.
   */
  admit(t: number, inFlight: number, chat: boolean, busyRetryMs: number): Refusal | undefined {
    const waitMs = Math.max(this.window?.msUntil(1, t) ?? 0, this.bucket?.msUntil(1, t) ?? 0);
    if (waitMs > 0) {
      const retryMs = Math.ceil(waitMs);
      return { retryMs, message: `Rate limit reached for requests: retry in ${retryMs} ms`, code: 'rate_limit_exceeded' };
    }
    const tpm = this.opts.tokensPerMinute;
    if (chat && tpm !== undefined) {
      const used = this.tokenWindow.used(t);
      if (used >= tpm) {
        const retryMs = Math.max(1, this.tokenWindow.msUntilBelow(tpm, t));
        return {
          retryMs,
          message: `Rate limit reached for tokens per min (TPM): Limit ${tpm}, Used ${used}. Please try again in ${formatResetDuration(retryMs)}.`,
          code: 'rate_limit_exceeded',
        };
      }
    }
    if (this.opts.concurrency !== undefined && inFlight >= this.opts.concurrency) {
      // Nothing says when a slot frees; about one answer's time is a fair guess.
      return { retryMs: busyRetryMs, message: `Too many concurrent requests (limit ${this.opts.concurrency})`, code: 'concurrency_limit_exceeded' };
    }
    this.window?.consume(1, t);
    this.bucket?.tryTake(1, t);
    return undefined;
  }

  /** Counts the usage of one chat answer, at its end. */
  countTokens(prompt: number, completion: number, t: number): void {
    this.counted.prompt += prompt;
    this.counted.completion += completion;
    const inWindow = this.tokenWindow.add(prompt + completion, t);
    if (inWindow > this.counted.peakPerMinute) this.counted.peakPerMinute = inWindow;
  }

  tokens(t: number): TokenCounts {
    const { prompt, completion, peakPerMinute } = this.counted;
    return { prompt, completion, total: prompt + completion, inWindow: this.tokenWindow.used(t), peakPerMinute };
  }

  /** Zeroes the token counters (the window keeps its state, as a real account's would). */
  resetCounts(t: number): void {
    this.counted = { prompt: 0, completion: 0, peakPerMinute: this.tokenWindow.used(t) };
  }

  /**
   * OpenAI's `x-ratelimit-*` headers for the per-minute limits: the requests of `rpm` on every
   * answer, the tokens of `tokensPerMinute` on chat answers. A reset is the time until the limit is
   * back to its initial state (OpenAI's definition): the window empty.
   */
  headers(t: number, chat: boolean): Record<string, string> {
    const out: Record<string, string> = {};
    if (this.window) {
      out['x-ratelimit-limit-requests'] = String(this.window.limit);
      out['x-ratelimit-remaining-requests'] = String(this.window.remaining(t));
      out['x-ratelimit-reset-requests'] = formatResetDuration(this.window.msUntilEmpty(t));
    }
    const tpm = this.opts.tokensPerMinute;
    if (chat && tpm !== undefined) {
      out['x-ratelimit-limit-tokens'] = String(tpm);
      out['x-ratelimit-remaining-tokens'] = String(Math.max(0, tpm - this.tokenWindow.used(t)));
      out['x-ratelimit-reset-tokens'] = formatResetDuration(this.tokenWindow.msUntilEmpty(t));
    }
    return out;
  }
}
