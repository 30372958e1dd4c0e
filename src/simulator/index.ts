/**
 * The built-in simulated upstream: no network, no key. Everything is deterministic (the same input
 * gives the same output) and derived from the request, so a newcomer can try the whole pipeline -
 * speak, get a transcript, a tutor reply, its audio, a pronunciation score, a translation - offline.
 * Demo and test scaffolding, not product logic (ARCHITECTURE.md): only the composition root, tests,
 * the bench and the standalone server (`npm run upstream:sim`) use it.
 *
 * - conversation (`conversation.ts`, `tutor.ts`): a friendly tutor in the session language,
 *   streamed token by token with usage (`tokens.ts`, `token-stream.ts`).
 * - stt (`stt.ts`): a plausible learner sentence whose length fits the speech in the audio.
 * - tts (`tts.ts`): `synthesizeSpeech` at 24 kHz, streamed in 100 ms chunks.
 * - pronunciation (`pronunciation.ts`): per-word and overall scores from the audio's energy and timing.
 * - translation (`translation.ts`): a small phrase book and word list.
 *
 * Their timing is a latency profile (`timing.ts`): instant unless configured.
 */
import type { Providers } from '../upstream/provider.js';
import { SimulatedConversationProvider } from './conversation.js';
import { SimulatedPronunciationProvider } from './pronunciation.js';
import { SimulatedSttProvider } from './stt.js';
import type { SimulatedTiming } from './timing.js';
import { SimulatedTranslationProvider } from './translation.js';
import { SimulatedTtsProvider } from './tts.js';

export { SIMULATED_LANGUAGES, type SimulatedLanguage } from './language.js';
export { AUDIO_CHUNK_MS, REFERENCE_TIMING, SimulatedAbortError, type SimulatedTiming } from './timing.js';
export { SIMULATED_TTS_SAMPLE_RATE } from './tts.js';
export { SimulatedConversationProvider, SimulatedPronunciationProvider, SimulatedSttProvider, SimulatedTranslationProvider, SimulatedTtsProvider };

/** Options of the simulated providers: their timing. */
export type SimulatedOptions = SimulatedTiming;

/** The five simulated providers, with their concrete types. */
export interface SimulatedProviders extends Providers {
  readonly conversation: SimulatedConversationProvider;
  readonly stt: SimulatedSttProvider;
  readonly tts: SimulatedTtsProvider;
  readonly pronunciation: SimulatedPronunciationProvider;
  readonly translation: SimulatedTranslationProvider;
}

/** The five simulated providers, sharing the timing settings. */
export function createSimulatedProviders(opts: SimulatedOptions = {}): SimulatedProviders {
  return {
    conversation: new SimulatedConversationProvider(opts),
    stt: new SimulatedSttProvider(opts),
    tts: new SimulatedTtsProvider(opts),
    pronunciation: new SimulatedPronunciationProvider(opts),
    translation: new SimulatedTranslationProvider(opts),
  };
}
