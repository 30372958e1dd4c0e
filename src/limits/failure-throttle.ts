/**
 * Failures counted per key (a client address) in a sliding window: once `max` fall within
 * `windowMs`, that key is refused until the oldest of them leaves the window, whatever it presents
 * (CONTRACT §4, failed authentication). Refused attempts are not failures, so a blocked address is
 * let in again on time. Memory is bounded: at most `maxKeys` addresses are tracked (the oldest
 * dropped first) and keys with nothing left in their window are swept as the clock moves.
 */
import { SlidingWindowLog } from './sliding-window.js';

export class FailureThrottle {
  private readonly logs = new Map<string, SlidingWindowLog>();
  private lastSweep = 0;

  constructor(
    readonly max: number,
    readonly windowMs: number,
    private readonly maxKeys = 100_000,
  ) {}

  /** 0 when `key` may try now, else ms until it may. */
  retryAfterMs(key: string, nowMs: number): number {
    const log = this.logs.get(key);
    return log === undefined ? 0 : log.msUntil(1, nowMs);
  }

  /** Records one failure of `key` at `nowMs`. */
  fail(key: string, nowMs: number): void {
    this.sweep(nowMs);
    let log = this.logs.get(key);
    if (log === undefined) {
      if (this.logs.size >= this.maxKeys) {
        const oldest = this.logs.keys().next();
        if (!oldest.done) this.logs.delete(oldest.value);
      }
      log = new SlidingWindowLog(this.max, this.windowMs);
      this.logs.set(key, log);
    }
    log.consume(1, nowMs);
  }

  /** Addresses tracked now (for tests and metrics). */
  get size(): number {
    return this.logs.size;
  }

  /** Drops keys whose window emptied, at most once per window (amortised over the failures). */
  private sweep(nowMs: number): void {
    if (nowMs - this.lastSweep < this.windowMs) return;
    this.lastSweep = nowMs;
    for (const [key, log] of this.logs) if (log.used(nowMs) === 0) this.logs.delete(key);
  }
}
