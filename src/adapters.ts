/**
 * The raw upstream adapters, one per kind, as configured: the OpenAI-compatible HTTP adapter or the
 * built-in simulator (with its own limits when `simulatedLimits` is set). Part of the composition
 * root: it is the one place the product reaches the simulator (ARCHITECTURE.md, "nothing in the
 * product imports simulator/ except the composition root"); the governors in upstream/ receive
 * these adapters and never know which kind they got.
 */
import type { Config, UpstreamConfig, UpstreamKind } from './config/schema.js';
import { createSimulatedProviders, type SimulatedProviders } from './simulator/index.js';
import { SimulatedLimiter, withSimulatedLimits } from './simulator/limits.js';
import { createOpenAiConversation, createOpenAiPronunciation, createOpenAiStt, createOpenAiTranslation, createOpenAiTts, type OpenAiOptions } from './upstream/openai/index.js';
import type { Providers } from './upstream/provider.js';

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

/** The raw adapters, one per kind, as configured (the governors go in front of them). */
export function createAdapters(config: Config): Providers {
  const u = config.upstreams;
  // One limiter per simulated upstream account, shared by the kinds that name that account.
  const limiters = new Map<string, SimulatedLimiter>();
  const sim = (kind: UpstreamKind): Providers => {
    const cfg = u[kind];
    const providers: SimulatedProviders = createSimulatedProviders({ latencyMs: cfg.latencyMs, ...cfg.simulatedTiming });
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
