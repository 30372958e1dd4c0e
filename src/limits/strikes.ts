import { SlidingWindowLog } from './sliding-window.js';

/**
 * Counts strikes (e.g. invalid messages) in a sliding window and reports when more than `max` fall
 * within it: "more than 10 invalid messages within 60 s close the connection".
 */
export class StrikeCounter {
  /**
   * Room for max + 1 strikes: the log keeps the newest ones, which is exact for "more than max in the
   * window" (an older strike can only be inside the window if the max + 1 newer ones are too).
   */
  private readonly log: SlidingWindowLog;

  constructor(
    readonly max: number,
    windowMs: number,
  ) {
    this.log = new SlidingWindowLog(max + 1, windowMs);
  }

  /** Record one strike at nowMs; returns true when more than `max` strikes fall within the window (i.e. the (max+1)-th). */
  strike(nowMs: number): boolean {
    this.log.consume(1, nowMs);
    return this.log.used(nowMs) > this.max;
  }

  /** Strikes within the window at nowMs (capped at max + 1). */
  count(nowMs: number): number {
    return this.log.used(nowMs);
  }
}
