/**
 * Event-loop lag, always on (prom-client's own `nodejs_eventloop_lag_*` only exist with the default
 * metrics). `perf_hooks.monitorEventLoopDelay` samples the loop in libuv at `resolutionMs`; every
 * `windowMs` the histogram is read and reset, so the figures describe the last window rather than
 * the whole process life (which would hide a recent stall) and do not depend on who scrapes.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export interface LagSnapshot {
  /** Seconds; 0 before the first window has closed. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

const NS_PER_S = 1e9;

export class EventLoopLag {
  private readonly histogram: IntervalHistogram;
  private readonly timer: NodeJS.Timeout;
  private last: LagSnapshot = { p50: 0, p99: 0, max: 0 };

  constructor(opts: { resolutionMs?: number; windowMs?: number } = {}) {
    this.histogram = monitorEventLoopDelay({ resolution: opts.resolutionMs ?? 20 });
    this.histogram.enable();
    // Real time on purpose: lag is a property of the real event loop, not of the app's clock.
    this.timer = setInterval(() => this.roll(), opts.windowMs ?? 5000);
    this.timer.unref();
  }

  /** Closes the current window now (tests; the timer does it every `windowMs`). */
  roll(): LagSnapshot {
    const h = this.histogram;
    // A window with no sample (count 0) reports 0 rather than the histogram's sentinel values.
    this.last =
      h.count > 0
        ? { p50: h.percentile(50) / NS_PER_S, p99: h.percentile(99) / NS_PER_S, max: h.max / NS_PER_S }
        : { p50: 0, p99: 0, max: 0 };
    h.reset();
    return this.last;
  }

  /** The last closed window. */
  snapshot(): LagSnapshot {
    return this.last;
  }

  stop(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }
}
