/**
 * How long the simulated upstream takes (its latency profile), and how a call is cancelled. Every
 * wait here rejects at once with an AbortError when the call's signal aborts, so a cancelled turn
 * stops the simulator as it stops a real upstream (the HTTP adapter's undici request rejects the
 * same way).
 *
 * Waits are measured on `performance.now()` (fake timers in tests move it), and a stream's later
 * waits are offsets from the call's start ({@link Timeline}), so late timers do not add up.
 */

/**
 * The latency profile of a simulated upstream. Everything absent is instant (0), which is what
 * tests want; the embedded default config and `npm run upstream:sim -- --profile reference` use
 * {@link REFERENCE_TIMING}.
 */
export interface SimulatedTiming {
  /**
   * Wait before answering, in ms (default 0): the whole latency of stt, pronunciation and a
   * call without a more specific setting below; `firstTokenMs` and `firstByteMs` default to it.
   */
  readonly latencyMs?: number | undefined;
  /** Conversation and translation: ms from the call to the first token (default `latencyMs`). */
  readonly firstTokenMs?: number | undefined;
  /** Conversation and translation: tokens per second after the first (default: all at once). */
  readonly tokensPerSecond?: number | undefined;
  /** TTS: ms from the call to the first audio (default `latencyMs`). */
  readonly firstByteMs?: number | undefined;
  /**
   * TTS: audio produced this many times faster than it plays, in chunks of {@link AUDIO_CHUNK_MS}
   * (5: one second of audio every 200 ms; default: all at once).
   */
  readonly realTimeFactor?: number | undefined;
  /**
   * Source of latency jitter: when given, the first wait of each call (latency, first token, first
   * byte) is that wait × (0.75 + 0.5 × random()). Without it the waits are exact. Answers never
   * depend on it.
   */
  readonly random?: (() => number) | undefined;
}

/**
 * The reference profile of issue 13, "ordinary upstream latencies": STT 250 ms; a chat model with
 * 350 ms to first token at 40 tokens/s; TTS 150 ms to first byte at 5× real time.
 */
export const REFERENCE_TIMING = { latencyMs: 250, firstTokenMs: 350, tokensPerSecond: 40, firstByteMs: 150, realTimeFactor: 5 } as const satisfies SimulatedTiming;

/** Audio of a streamed TTS answer goes out in chunks of this many ms of sound. */
export const AUDIO_CHUNK_MS = 100;

/** The rejection of a cancelled call: `name` is 'AbortError', `cause` the signal's reason. */
export class SimulatedAbortError extends Error {
  constructor(reason?: unknown) {
    super('The operation was aborted', reason === undefined ? undefined : { cause: reason });
    this.name = 'AbortError';
  }
}

/**
 * Resolves after `ms`; rejects with a {@link SimulatedAbortError} as soon as `signal` aborts. Not
 * `node:timers/promises`' abortable setTimeout: fake timers (vi.useFakeTimers) replace only the
 * global timers, and the simulator's waits must run on virtual time in tests.
 */
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

/** Resolves with `p`, or rejects with an AbortError as soon as `signal` aborts (whichever is first). */
export function orAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(new SimulatedAbortError(signal.reason));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new SimulatedAbortError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/**
 * A stream's clock: starts when made; {@link until} waits until an offset from that start. Pacing by
 * offsets from one start (not by gaps after the previous wait) keeps a stream on schedule however
 * late each timer fires.
 */
export class Timeline {
  private readonly start = performance.now();

  /** ms since the start. */
  elapsed(): number {
    return performance.now() - this.start;
  }

  /** Resolves once `offsetMs` have passed since the start (at once if they have). */
  async until(offsetMs: number, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) throw new SimulatedAbortError(signal.reason);
    // Whole ms, in a loop: a timer may fire a little early against performance.now() (libuv's
    // cached loop time), and a fraction of a ms would round to a 1 ms timer anyway.
    for (let left = offsetMs - this.elapsed(); left > 0; left = offsetMs - this.elapsed()) {
      await sleep(Math.ceil(left), signal);
    }
  }
}

/** Waits the configured latency of one call; rejects with an AbortError if `signal` aborts first. */
export function latency(timing: SimulatedTiming, signal: AbortSignal | undefined): Promise<void> {
  return sleep(jittered(timing.latencyMs ?? 0, timing.random), signal);
}
