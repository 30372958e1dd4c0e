/**
 * How long the simulated upstream takes, and how a call is cancelled. Every wait here rejects at
 * once with an AbortError when the call's signal aborts, so a cancelled turn stops the simulator as
 * it stops a real upstream (the HTTP adapter's undici request rejects the same way).
 */

/** The latency settings of a simulated upstream. */
export interface SimulatedTiming {
  /** Added latency per call in ms (default 0). */
  readonly latencyMs?: number | undefined;
  /**
   * Source of latency jitter: when given, each call waits `latencyMs * (0.75 + 0.5 * random())`.
   * Without it the wait is exactly `latencyMs`. Answers never depend on it.
   */
  readonly random?: (() => number) | undefined;
}

/** The rejection of a cancelled call: `name` is 'AbortError', `cause` the signal's reason. */
export class SimulatedAbortError extends Error {
  constructor(reason?: unknown) {
    super('The operation was aborted', reason === undefined ? undefined : { cause: reason });
    this.name = 'AbortError';
  }
}

/** Resolves after `ms`; rejects with a {@link SimulatedAbortError} as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.reject(new SimulatedAbortError(signal.reason));
  if (!(ms > 0)) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new SimulatedAbortError(signal?.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) reject(new SimulatedAbortError(signal.reason));
      else resolve();
    }, ms);
    timer.unref?.();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** `ms`, jittered by `random` when given (±25 %). */
export function jittered(ms: number, random: (() => number) | undefined): number {
  const base = Math.max(0, ms);
  return random && base > 0 ? base * (0.75 + 0.5 * random()) : base;
}

/** Waits the configured latency of one call; rejects with an AbortError if `signal` aborts first. */
export function latency(timing: SimulatedTiming, signal: AbortSignal | undefined): Promise<void> {
  return sleep(jittered(timing.latencyMs ?? 0, timing.random), signal);
}
