/**
 * Builds the providers the sessions use: for each upstream kind the raw adapter the composition
 * root built (`src/adapters.ts`: `openai` or the simulator) behind a `Governor` (admission against
 * the upstream account's limits, fair queue, retries). Upstreams that name the same `account`
 * share one governor, because an upstream account's limits are shared by everything that uses it.
 */
import type { SchedulerLike } from 'rxjs';
import type { Config, UpstreamKind } from '../config/schema.js';
import { ParleyError } from '../protocol/codes.js';
import type { Store } from '../store/store.js';
import type { Logger } from '../telemetry/logger.js';
import { DEFAULT_MAX_QUEUE_WAIT_SECONDS, Governor, type GovernorHooks } from './governor/governor.js';
import { UpstreamError, type CallOptions, type Providers } from './provider.js';

export interface GovernedDeps {
  readonly config: Config;
  readonly store: Store;
  readonly scheduler: SchedulerLike;
  readonly logger: Logger;
  /** The raw adapters, one per kind (the composition root builds them from the configuration). */
  readonly adapters: Providers;
  readonly hooks?: (upstream: string) => GovernorHooks;
}

export interface GovernedUpstreams {
  readonly providers: Providers;
  readonly governors: ReadonlyMap<string, Governor>;
  close(): void;
}

export function createGovernedProviders(deps: GovernedDeps): GovernedUpstreams {
  const { config } = deps;
  const raw = deps.adapters;
  const governors = new Map<string, Governor>();
  const governorFor = (kind: UpstreamKind): Governor => {
    const cfg = config.upstreams[kind];
    const name = cfg.account ?? kind;
    let g = governors.get(name);
    if (!g) {
      g = new Governor({
        name,
        limits: cfg.limits,
        store: deps.store,
        scheduler: deps.scheduler,
        logger: deps.logger.child({ upstream: name }),
        ...(deps.hooks ? { hooks: deps.hooks(name) } : {}),
      });
      governors.set(name, g);
    }
    return g;
  };

  /** One governed call: queued fairly, admitted against the limits, retried. */
  function call<T>(kind: UpstreamKind, opts: CallOptions | undefined, attempt: (o: CallOptions, progress: () => void) => Promise<T>): Promise<T> {
    const ctx = opts?.context;
    const now = deps.scheduler.now();
    const governor = governorFor(kind);
    const onQueued = ctx?.onQueued;
    const queue = { name: config.upstreams[kind].account ?? kind, maxQueueWaitSeconds: config.upstreams[kind].limits.maxQueueWaitSeconds ?? DEFAULT_MAX_QUEUE_WAIT_SECONDS };
    return governor.run<T>({
      accountKey: ctx?.accountId ?? '-',
      sessionKey: ctx?.sessionId ?? '-',
      acceptedAt: ctx?.acceptedAt ?? now,
      ...(opts?.signal ? { signal: opts.signal } : {}),
      ...(onQueued ? { onQueued: (position: number) => onQueued(position, queue) } : {}),
      attempt: (signal, progress) => {
        ctx?.onStart?.();
        return attempt({ signal }, progress);
      },
    });
  }

  /**
   * One governed call whose answer streams to `deliver`: the attempt holds its lease until the
   * answer has been read, each piece moves its timeout on, and once a piece has reached the caller
   * a failure is reported instead of retried (a retry would say it all again).
   */
  function streamed<T>(kind: UpstreamKind, opts: CallOptions | undefined, run: (o: CallOptions, piece: () => void) => Promise<T>): Promise<T> {
    return call(kind, opts, async (o, progress) => {
      let delivered = false;
      try {
        return await run(o, () => {
          delivered = true;
          progress();
        });
      } catch (err) {
        if (!delivered || o.signal?.aborted || (err as { name?: unknown }).name === 'AbortError') throw err;
        const why = err instanceof Error ? err.message : String(err);
        // A 2xx-class UpstreamError is the governor's "reported, not retried".
        throw new UpstreamError(kind, `${kind} upstream failed after part of its answer was delivered: ${why}`, 200);
      }
    });
  }

  function checkBytes(kind: UpstreamKind, bytes: number): void {
    const max = config.upstreams[kind].limits.maxBytes;
    if (max !== undefined && bytes > max) {
      throw new ParleyError('audio_too_large', `the utterance is ${bytes} bytes; the ${kind} upstream accepts at most ${max}`);
    }
  }

  const providers: Providers = {
    conversation: {
      reply: (req, opts) => call('conversation', opts, (o) => raw.conversation.reply(req, o)),
      stream: (req, opts, onDelta) =>
        streamed('conversation', opts, async (o, piece) => {
          const stream = raw.conversation.stream;
          const deliver = (text: string): void => {
            piece();
            onDelta(text);
          };
          if (stream) return stream.call(raw.conversation, req, o, deliver);
          // An adapter that cannot stream (a test double): its whole reply is one delta.
          const text = await raw.conversation.reply(req, o);
          if (text.length > 0) deliver(text);
          return { text };
        }),
    },
    stt: {
      transcribe: (req, opts) => {
        checkBytes('stt', req.audio.data.length);
        return call('stt', opts, (o) => raw.stt.transcribe(req, o));
      },
    },
    pronunciation: {
      assess: (req, opts) => {
        checkBytes('pronunciation', req.audio.data.length);
        return call('pronunciation', opts, (o) => raw.pronunciation.assess(req, o));
      },
    },
    tts: {
      // One request (the turn pipeline cuts a reply into requests of at most maxChars).
      speak: (req, opts) => call('tts', opts, (o) => raw.tts.speak(req, o)),
      stream: (req, opts, sink) =>
        streamed('tts', opts, async (o, piece) => {
          const stream = raw.tts.stream;
          if (stream) {
            await stream.call(raw.tts, req, o, (chunk, rate) => {
              piece();
              return sink(chunk, rate);
            });
            return;
          }
          const whole = await raw.tts.speak(req, o);
          piece();
          await sink(whole.audio, whole.sampleRate);
        }),
    },
    translation: {
      // One request (the translation turn cuts a text over maxChars at sentence ends).
      translate: (req, opts) => call('translation', opts, (o) => raw.translation.translate(req, o)),
    },
  };

  return {
    providers,
    governors,
    close() {
      for (const g of governors.values()) g.close();
    },
  };
}
