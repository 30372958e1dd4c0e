/**
 * The OpenAI-compatible adapters (CONTRACT §3, §6), one upstream HTTP attempt per call, over undici:
 *
 * | kind          | request                                                            | answer                          |
 * |---------------|--------------------------------------------------------------------|---------------------------------|
 * | conversation  | `POST /chat/completions` `{model, messages, stream: true, ...}`    | SSE deltas (or JSON), `usage`   |
 * | translation   | the same, with a system prompt asking for the translation only    | `choices[0].message.content`    |
 * | stt           | `POST /audio/transcriptions` multipart `file` (WAV), `model`, `language` | `{text}`                  |
 * | tts           | `POST /audio/speech` JSON `{model, input, voice, response_format: "pcm"}` | raw PCM16 24 kHz mono, streamed |
 * | pronunciation | `POST /pronunciation/assessments` multipart `file`, `reference_text`, `language` | `{score, words}`  |
 *
 * Retries, rate limits and queueing are not done here: that is the governor's job.
 */
import type { ConversationProvider, PronunciationProvider, Providers, SttProvider, TranslationProvider, TtsProvider } from '../provider.js';
import { OpenAiConversationProvider, OpenAiTranslationProvider } from './chat.js';
import type { OpenAiOptions } from './http.js';
import { OpenAiPronunciationProvider } from './pronunciation.js';
import { OpenAiTtsProvider } from './speech.js';
import { OpenAiSttProvider } from './transcription.js';

export { DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MODELS, DEFAULT_TIMEOUT_MS, OPENAI_PCM_SAMPLE_RATE, type OpenAiKind, type OpenAiOptions } from './http.js';
export { encodeMultipart, type Part } from './multipart.js';
export { OpenAiConversationProvider, OpenAiTranslationProvider, translationPrompt } from './chat.js';
export { OpenAiPronunciationProvider } from './pronunciation.js';
export { OpenAiTtsProvider } from './speech.js';
export { OpenAiSttProvider } from './transcription.js';

export function createOpenAiConversation(opts: OpenAiOptions): ConversationProvider {
  return new OpenAiConversationProvider(opts);
}
export function createOpenAiTranslation(opts: OpenAiOptions): TranslationProvider {
  return new OpenAiTranslationProvider(opts);
}
export function createOpenAiStt(opts: OpenAiOptions): SttProvider {
  return new OpenAiSttProvider(opts);
}
export function createOpenAiTts(opts: OpenAiOptions): TtsProvider {
  return new OpenAiTtsProvider(opts);
}
export function createOpenAiPronunciation(opts: OpenAiOptions): PronunciationProvider {
  return new OpenAiPronunciationProvider(opts);
}

/** All five adapters on one endpoint and key (each upstream kind usually has its own: use the factories above). */
export function createOpenAiAdapters(opts: OpenAiOptions): Providers {
  return {
    conversation: new OpenAiConversationProvider(opts),
    stt: new OpenAiSttProvider(opts),
    tts: new OpenAiTtsProvider(opts),
    pronunciation: new OpenAiPronunciationProvider(opts),
    translation: new OpenAiTranslationProvider(opts),
  };
}
