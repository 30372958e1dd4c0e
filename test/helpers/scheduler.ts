/**
 * Virtual time for the app's timers and limits: nothing moves until a test advances it.
 * `now()` starts at a real epoch so expires_at and daily quotas look like real dates.
 */
import { VirtualTimeScheduler } from 'rxjs';

export class ManualScheduler extends VirtualTimeScheduler {
  constructor(startMs = Date.UTC(2026, 10, 23, 12, 0, 0)) {
    super();
    this.frame = startMs;
  }

  /** Runs every action due within `ms`, in order, and leaves the clock at now + ms. */
  advanceBy(ms: number): void {
    const target = this.frame + ms;
    this.maxFrames = target;
    this.flush();
    this.frame = target;
    this.maxFrames = Infinity;
  }

  /** Actions still scheduled (timers not torn down). */
  get pending(): number {
    return this.actions.length;
  }

  /** Actions scheduled and not unsubscribed (an unsubscribed one stays in `actions` until its time comes). */
  get live(): number {
    return this.actions.filter((a) => !a.closed).length;
  }
}
