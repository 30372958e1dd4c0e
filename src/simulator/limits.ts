/**
 * Makes the in-process simulated provider behave like a real provider account: it enforces its
 * own limits (rate + burst, a 60 s window, concurrency) and answers a call over them with a 429
 * carrying Retry-After, exactly as the HTTP adapter would report one. The governor in front of it
 * should then never see a 429 when it is configured with the same (or lower) limits.
 */
import { SlidingWindowLog } from '../limits/sliding-window.js';
import { TokenBucket } from '../limits/token-bucket.js';
import { UpstreamHttpError } from '../upstream/http-error.js';
import type { CallOptions, Providers } from '../upstream/provider.js';

export interface SimulatedLimits {
  readonly requestsPerSecond?: number | undefined;
  readonly burst?: number | undefined;
  readonly requestsPerMinute?: number | undefined;
  readonly concurrency?: number | undefined;
}

export interface LimitCounters {
  calls: number;
  rejected429: number;
  inFlight: number;
  maxInFlight: number;
}

/** A gate shared by every call of one simulated upstream account. */
export class SimulatedLimiter {
  readonly counters: LimitCounters = { calls: 0, rejected429: 0, inFlight: 0, maxInFlight: 0 };
  private readonly bucket: TokenBucket | undefined;
  private readonly window: SlidingWindowLog | undefined;

  constructor(
    private readonly limits: SimulatedLimits,
    private readonly now: () => number = Date.now,
  ) {
    const rps = limits.requestsPerSecond;
    this.bucket = rps !== undefined ? new TokenBucket({ ratePerSec: rps, burst: limits.burst ?? Math.max(1, Math.ceil(rps)) }, now()) : undefined;
    this.window = limits.requestsPerMinute !== undefined ? new SlidingWindowLog(limits.requestsPerMinute, 60_000) : undefined;
  }

  /** Runs `fn` if the limits allow it now, else throws a 429 with the wait. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const t = this.now();
    this.counters.calls++;
    const waitMs = Math.max(this.bucket?.msUntil(1, t) ?? 0, this.window?.msUntil(1, t) ?? 0);
    const busy = this.limits.concurrency !== undefined && this.counters.inFlight >= this.limits.concurrency;
    if (waitMs > 0 || busy) {
      this.counters.rejected429++;
      const retryMs = waitMs > 0 ? Math.ceil(waitMs) : 100;
      throw new UpstreamHttpError(429, busy ? 'too many concurrent requests (simulated)' : 'rate limit reached (simulated)', retryMs);
    }
    this.bucket?.tryTake(1, t);
    this.window?.consume(1, t);
    this.counters.inFlight++;
    this.counters.maxInFlight = Math.max(this.counters.maxInFlight, this.counters.inFlight);
    try {
      return await fn();
    } finally {
      this.counters.inFlight--;
    }
  }
}

/**
 * Wraps every method of `providers` with one limiter (one upstream account). A stream holds its
 * concurrency slot until its last delta or chunk, as a real upstream's connection does.
 */
export function withSimulatedLimits(providers: Providers, limiter: SimulatedLimiter): Providers {
  const g = <A, R>(fn: (req: A, opts?: CallOptions) => Promise<R>) => (req: A, opts?: CallOptions) => limiter.run(() => fn(req, opts));
  const { conversation, tts } = providers;
  return {
    conversation: {
      reply: g(conversation.reply.bind(conversation)),
      ...(conversation.stream ? { stream: (req, opts, onDelta) => limiter.run(() => conversation.stream!(req, opts, onDelta)) } : {}),
    },
    stt: { transcribe: g(providers.stt.transcribe.bind(providers.stt)) },
    tts: {
      speak: g(tts.speak.bind(tts)),
      ...(tts.stream ? { stream: (req, opts, sink) => limiter.run(() => tts.stream!(req, opts, sink)) } : {}),
    },
    pronunciation: { assess: g(providers.pronunciation.assess.bind(providers.pronunciation)) },
    translation: { translate: g(providers.translation.translate.bind(providers.translation)) },
  };
}
