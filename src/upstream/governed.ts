/**
 * Builds the providers the sessions use from the configuration: for each upstream kind an adapter
 * (`simulated` or `openai`) behind a `Governor` (admission against the upstream account's limits,
 * fair queue, retries). Upstreams that name the same `account` share one governor, because an
 * upstream account's limits are shared by everything that uses it.
 */
import type { SchedulerLike } from 'rxjs';
import type { Config, UpstreamConfig, UpstreamKind } from '../config/schema.js';
import { ParleyError } from '../protocol/codes.js';
import type { Store } from '../store/store.js';
import type { Logger } from '../telemetry/logger.js';
import { DEFAULT_MAX_QUEUE_WAIT_SECONDS, Governor, type GovernorHooks } from './governor/governor.js';
import { createOpenAiConversation, createOpenAiPronunciation, createOpenAiStt, createOpenAiTranslation, createOpenAiTts, type OpenAiOptions } from './openai.js';
import type { CallOptions, Providers, TtsRequest, TtsResult } from './provider.js';
import { createSimulatedProviders } from './simulated.js';
import { SimulatedLimiter, withSimulatedLimits } from './simulated-limits.js';
import { splitText } from './text-split.js';

export interface GovernedDeps {
  readonly config: Config;
  readonly store: Store;
  readonly scheduler: SchedulerLike;
  readonly logger: Logger;
  /** Adapters to use instead of the configured ones (tests). */
  readonly adapters?: Partial<Providers>;
  readonly hooks?: (upstream: string) => GovernorHooks;
}

export interface GovernedUpstreams {
  readonly providers: Providers;
  readonly governors: ReadonlyMap<string, Governor>;
  close(): void;
}

function resolveSecret(value: string | undefined): string | undefined {
  if (value === undefined || !value.startsWith('env:')) return value;
  return process.env[value.slice(4)];
}

function openAiOptions(cfg: UpstreamConfig): OpenAiOptions {
  return {
    baseUrl: cfg.baseUrl ?? '',
    ...(cfg.apiKey !== undefined ? { apiKey: resolveSecret(cfg.apiKey) } : {}),
    ...(cfg.model !== undefined ? { model: cfg.model } : {}),
    ...(cfg.voice !== undefined ? { voice: cfg.voice } : {}),
    // The governor times attempts out (and retries); the adapter's own timeout is only a backstop.
    timeoutMs: ((cfg.limits.timeoutSeconds ?? 30) + 5) * 1000,
  };
}

/** The raw adapters, one per kind, as configured. */
function adapters(config: Config): Providers {
  const u = config.upstreams;
  // One limiter per simulated upstream account, shared by the kinds that name that account.
  const limiters = new Map<string, SimulatedLimiter>();
  const sim = (kind: UpstreamKind): Providers => {
    const cfg = u[kind];
    const providers = createSimulatedProviders(cfg.latencyMs !== undefined ? { latencyMs: cfg.latencyMs } : {});
    if (!cfg.simulatedLimits) return providers;
    const account = cfg.account ?? kind;
    let limiter = limiters.get(account);
    if (!limiter) {
      limiter = new SimulatedLimiter(cfg.simulatedLimits);
      limiters.set(account, limiter);
    }
    return withSimulatedLimits(providers, limiter);
  };
  return {
    conversation: u.conversation.provider === 'openai' ? createOpenAiConversation(openAiOptions(u.conversation)) : sim('conversation').conversation,
    stt: u.stt.provider === 'openai' ? createOpenAiStt(openAiOptions(u.stt)) : sim('stt').stt,
    tts: u.tts.provider === 'openai' ? createOpenAiTts(openAiOptions(u.tts)) : sim('tts').tts,
    pronunciation: u.pronunciation.provider === 'openai' ? createOpenAiPronunciation(openAiOptions(u.pronunciation)) : sim('pronunciation').pronunciation,
    translation: u.translation.provider === 'openai' ? createOpenAiTranslation(openAiOptions(u.translation)) : sim('translation').translation,
  };
}

export function createGovernedProviders(deps: GovernedDeps): GovernedUpstreams {
  const { config } = deps;
  const raw: Providers = { ...adapters(config), ...deps.adapters };
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
