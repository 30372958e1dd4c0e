/**
 * The local gate of an upstream account whose configured limits turned out too high (a 429
 * although admission allowed the call): the rate is cut multiplicatively and recovered additively
 * (AIMD, as TCP does), one cut per "round trip" (attempts started before the last cut saw the old
 * rate). Pure: the governor owns the timers and the logging.
 */
import { TokenBucket } from '../../limits/token-bucket.js';

/** Halve on an unexpected 429, floor 0.1; +0.1 per recovery step. */
const AIMD_FLOOR = 0.1;
const AIMD_STEP = 0.1;

export class Aimd {
  private current = 1;
  private gate: TokenBucket | undefined;
  private lastDecreaseAt = -Infinity;

  /**
   * @param rate the configured rate (per second) and burst at factor 1; undefined when the
   *   account has no rate limit (then the factor scales the concurrency instead).
   */
  constructor(private readonly rate: { readonly perSec: number; readonly burst: number } | undefined) {}

  get factor(): number {
    return this.current;
  }

  /** ms until the gate lets a call through (0 when there is no gate). */
  waitMs(now: number): number {
    return this.gate ? this.gate.msUntil(1, now) : 0;
  }

  /** A call went through the gate. */
  take(now: number): void {
    this.gate?.tryTake(1, now);
  }

  /** The concurrency to use now: cut by the factor when the account has no rate to cut instead. */
  concurrency(configured: number): number {
    if (this.rate !== undefined || this.current >= 1) return configured;
    return Math.max(1, Math.floor(configured * this.current));
  }

  /** An unexpected 429 of an attempt started at `startedAt`: cuts once per round trip; returns whether it did. */
  cut(startedAt: number, now: number): boolean {
    if (startedAt < this.lastDecreaseAt) return false;
    this.lastDecreaseAt = now;
    this.setFactor(Math.max(AIMD_FLOOR, this.current / 2), now, true);
    return true;
  }

  /** One recovery step; returns whether the factor is still below 1. */
  recover(now: number): boolean {
    this.setFactor(Math.min(1, Math.round((this.current + AIMD_STEP) * 10) / 10), now, false);
    return this.current < 1;
  }

  /** Rebuilds the gate for a new factor; a cut starts it empty, a recovery keeps its tokens. */
  private setFactor(factor: number, now: number, cut: boolean): void {
    this.current = factor;
    if (this.rate === undefined) return;
    if (factor >= 1) {
      this.gate = undefined;
      return;
    }
    const burst = Math.max(1, Math.floor(this.rate.burst * factor));
    const carried = cut ? 0 : Math.min(burst, this.gate?.available(now) ?? burst);
    const gate = new TokenBucket({ ratePerSec: this.rate.perSec * factor, burst }, now);
    gate.tryTake(burst - carried, now);
    this.gate = gate;
  }
}
