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
import type { CallOptions, Providers, TtsRequest, TtsResult } from './provider.js';
import { splitText } from './text-split.js';

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
  function call<T>(kind: UpstreamKind, opts: CallOptions | undefined, attempt: (o: CallOptions) => Promise<T>): Promise<T> {
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
      attempt: (signal) => {
        ctx?.onStart?.();
        return attempt({ signal });
      },
    });
  }

  function checkBytes(kind: UpstreamKind, bytes: number): void {
    const max = config.upstreams[kind].limits.maxBytes;
    if (max !== undefined && bytes > max) {
      throw new ParleyError('audio_too_large', `the utterance is ${bytes} bytes; the ${kind} upstream accepts at most ${max}`);
    }
  }

  const ttsMaxChars = config.upstreams.tts.limits.maxChars;
  const translationMaxChars = config.upstreams.translation.limits.maxChars;

  async function* speakParts(req: TtsRequest, opts?: CallOptions): AsyncIterable<TtsResult> {
    const parts = ttsMaxChars !== undefined ? splitText(req.text, ttsMaxChars) : [req.text];
    for (const text of parts) yield await call('tts', opts, (o) => raw.tts.speak({ ...req, text }, o));
  }

  const providers: Providers = {
    conversation: { reply: (req, opts) => call('conversation', opts, (o) => raw.conversation.reply(req, o)) },
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
      async speak(req, opts) {
        const chunks: Buffer[] = [];
        let sampleRate = 24_000;
        for await (const part of speakParts(req, opts)) {
          chunks.push(part.audio);
          sampleRate = part.sampleRate;
        }
        return { audio: Buffer.concat(chunks), sampleRate };
      },
      speakParts,
    },
    translation: {
      async translate(req, opts) {
        const parts = translationMaxChars !== undefined ? splitText(req.text, translationMaxChars) : [req.text];
        const out: string[] = [];
        for (const text of parts) out.push(await call('translation', opts, (o) => raw.translation.translate({ ...req, text }, o)));
        return out.join(' ');
      },
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
