/**
 * The simulator server's routes, in the OpenAI-compatible wire format (CONTRACT §3, §6):
 *
 * - `POST /chat/completions`: the tutor's reply, or a translation when the system prompt is the
 *   adapter's translation prompt. With `"stream": true` it answers `text/event-stream` in OpenAI's
 *   exact shape: a role chunk, one `{"choices":[{"index":0,"delta":{"content":"…"}}]}` chunk per
 *   token, a chunk with `finish_reason`, a last chunk with `usage` (and `choices: []`) when
 *   `stream_options.include_usage` is true, then `data: [DONE]`
 *   (https://platform.openai.com/docs/api-reference/chat-streaming). Without it, one JSON
 *   `chat.completion` with `usage`, once its last token is due. `max_tokens` (or
 *   `max_completion_tokens`) cuts the reply, `finish_reason: "length"`.
 * - `POST /audio/speech`: `response_format: "pcm"` streams the PCM body (chunked transfer) as it is
 *   synthesized, on the TTS timing; `"wav"` answers the whole file when its last chunk is due.
 * - `POST /audio/transcriptions`, `POST /pronunciation/assessments`: multipart forms, answered
 *   after `latencyMs`.
 *
 * The simulated content needs hints the wire format lacks; they come from the system prompt
 * ("Answer in es", "Scenario: …", the adapter's translation prompt) and fall back to English.
 */
import type { IncomingMessage } from 'node:http';
import { encodeWav } from '../audio/wav.js';
import type { ChatMessage } from '../upstream/provider.js';
import { BadRequest, parseForm, parseJsonObject, parseMessages, requireFile } from './http-body.js';
import type { SimulatedProviders } from './index.js';
import { CJK } from './language.js';
import type { SimulatedTiming } from './timing.js';
import { promptTokens, tokenPieces } from './tokens.js';
import { streamTokens } from './token-stream.js';
import { translateText } from './translation.js';
import { tutorReply } from './tutor.js';

/** A whole answer: a JSON object, text or bytes. */
export interface WholeAnswer {
  readonly status: number;
  readonly body: Buffer | string | object;
  readonly contentType?: string;
}

/** Where a streamed answer writes its body. */
export interface BodyOut {
  /** Writes `chunk`; false when the socket's buffer is full and the writer should wait for {@link drain}. */
  write(chunk: Buffer | string): boolean;
  /** Resolves when the socket takes more; rejects with an AbortError if the client leaves first. */
  drain(): Promise<void>;
}

/** A 200 whose body is written over time; rejects with an AbortError when the client leaves. */
export interface StreamedAnswer {
  readonly status: 200;
  readonly contentType: string;
  stream(out: BodyOut): Promise<void>;
}

export type Answer = WholeAnswer | StreamedAnswer;

export interface RouteContext {
  readonly req: IncomingMessage;
  readonly body: Buffer;
  /** Aborts when the client closes the connection. */
  readonly signal: AbortSignal;
  /** Counts a chat answer's usage against the account, when the answer ends. */
  countTokens(prompt: number, completion: number): void;
}

export type Route = (ctx: RouteContext) => Promise<Answer>;

/** OpenAI's limit on `input` of `/audio/speech`. */
const MAX_TTS_INPUT_CHARS = 4096;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The routes, answered from `providers` on `timing` (the chat timing for chat completions). */
export function makeRoutes(providers: SimulatedProviders, timing: SimulatedTiming): Record<string, Route> {
  let seq = 0;
  return {
    '/chat/completions': async ({ req, body, signal, countTokens }) => {
      const json = parseJsonObject(req, body);
      const messages = parseMessages(json.messages);
      const stream = json.stream ?? false;
      if (typeof stream !== 'boolean') throw new BadRequest('"stream" must be a boolean');
      const includeUsage = isRecord(json.stream_options) && json.stream_options.include_usage === true;
      const maxTokens = json.max_completion_tokens ?? json.max_tokens;
      if (maxTokens !== undefined && maxTokens !== null && !(Number.isInteger(maxTokens) && (maxTokens as number) >= 1)) {
        throw new BadRequest('"max_tokens" must be an integer >= 1');
      }
      const model = typeof json.model === 'string' ? json.model : 'simulated';
      const all = tokenPieces(chatContent(messages));
      const pieces = typeof maxTokens === 'number' && all.length > maxTokens ? all.slice(0, maxTokens) : all;
      const finish = pieces.length < all.length ? 'length' : 'stop';
      const prompt = promptTokens(messages);
      const id = `chatcmpl-sim${++seq}`;
      const created = Math.floor(Date.now() / 1000);
      const usage = { prompt_tokens: prompt, completion_tokens: pieces.length, total_tokens: prompt + pieces.length };

      if (!stream) {
        // A provider bills the tokens it generated, also when the client leaves early.
        let generated = 0;
        try {
          await streamTokens(pieces, timing, signal, () => generated++);
        } finally {
          countTokens(prompt, generated);
        }
        return {
          status: 200,
          body: {
            id,
            object: 'chat.completion',
            created,
            model,
            choices: [{ index: 0, message: { role: 'assistant', content: pieces.join('') }, logprobs: null, finish_reason: finish }],
            usage,
          },
        };
      }

      const chunk = (delta: Record<string, string>, finishReason: string | null): object => ({
        id,
        object: 'chat.completion.chunk',
        created,
        model,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
        ...(includeUsage ? { usage: null } : {}),
      });
      return {
        status: 200,
        contentType: 'text/event-stream; charset=utf-8',
        async stream(out) {
          // Events are small and a chat model does not wait for its reader: no backpressure here.
          const send = (data: object | string): void => void out.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
          let sent = 0;
          try {
            await streamTokens(pieces, timing, signal, (piece) => {
              // The role chunk comes with the first token, as OpenAI sends it.
              if (sent === 0) send(chunk({ role: 'assistant', content: '' }, null));
              send(chunk({ content: piece }, null));
              sent++;
            });
            if (sent === 0) send(chunk({ role: 'assistant', content: '' }, null));
            send(chunk({}, finish));
            if (includeUsage) send({ id, object: 'chat.completion.chunk', created, model, choices: [], usage });
            send('[DONE]');
          } finally {
            countTokens(prompt, sent);
          }
        },
      };
    },

    '/audio/transcriptions': async ({ req, body, signal }) => {
      const form = parseForm(req, body);
      const file = requireFile(form);
      const language = form.get('language')?.data.toString('utf8') || 'en';
      const text = await providers.stt.transcribe({ audio: { data: file, format: 'wav', sampleRate: 0, channels: 0 }, language }, { signal });
      const format = form.get('response_format')?.data.toString('utf8') || 'json';
      if (format === 'text') return { status: 200, body: text };
      if (format === 'verbose_json') return { status: 200, body: { task: 'transcribe', language, text } };
      if (format !== 'json') throw new BadRequest(`response_format "${format}" is not supported by the simulator (json, text, verbose_json)`);
      return { status: 200, body: { text } };
    },

    '/audio/speech': async ({ req, body, signal }) => {
      const json = parseJsonObject(req, body);
      const input = json.input;
      if (typeof input !== 'string' || !input.trim()) throw new BadRequest('"input" must be a non-empty string');
      if (input.length > MAX_TTS_INPUT_CHARS) throw new BadRequest(`"input" is ${input.length} characters; the limit is ${MAX_TTS_INPUT_CHARS}`);
      const voice = typeof json.voice === 'string' ? json.voice : undefined;
      const format = json.response_format ?? 'mp3';
      if (format !== 'pcm' && format !== 'wav') throw new BadRequest(`response_format "${String(format)}" is not supported by the simulator (pcm, wav)`);
      // The wire format carries no language; a `language` field is honoured, else the script decides.
      const language = typeof json.language === 'string' ? json.language : CJK.test(input) ? 'ja' : 'en';
      const speech = { text: input, voice, language };
      if (format === 'wav') {
        // A WAV header states the data length, so the file goes out whole.
        const whole = await providers.tts.speak(speech, { signal });
        return { status: 200, body: encodeWav(whole.audio, whole.sampleRate), contentType: 'audio/wav' };
      }
      return {
        status: 200,
        contentType: 'audio/pcm',
        stream: (out) => providers.tts.stream(speech, { signal }, (audio) => (out.write(audio) ? undefined : out.drain())),
      };
    },

    '/pronunciation/assessments': async ({ req, body, signal }) => {
      const form = parseForm(req, body);
      const file = requireFile(form);
      const referenceText = form.get('reference_text')?.data.toString('utf8') ?? '';
      if (!referenceText.trim()) throw new BadRequest('"reference_text" is required');
      const language = form.get('language')?.data.toString('utf8') || 'en';
      const result = await providers.pronunciation.assess({ audio: { data: file, format: 'wav', sampleRate: 0, channels: 0 }, referenceText, language }, { signal });
      return { status: 200, body: { score: result.score, words: result.words } };
    },
  };
}

/** The translation prompt of `openai.ts` (`translationPrompt`): source (optional) and target language. */
const TRANSLATE = /^Translate the user's message(?: from (\S+))? into ([^\s.]+)\./;

const LANGUAGE_NAMES: Readonly<Record<string, string>> = {
  english: 'en', spanish: 'es', french: 'fr', german: 'de', italian: 'it', portuguese: 'pt', japanese: 'ja',
};

/** The reply language named in a system prompt ("Answer in es", "Reply in Spanish"), if any. */
function languageOf(system: string): string | undefined {
  const m = /\b(?:answer|reply|respond|speak|talk)\s+(?:only\s+)?in\s+([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*|[A-Za-z]+)\b/i.exec(system);
  if (!m) return undefined;
  const word = m[1]!;
  return LANGUAGE_NAMES[word.toLowerCase()] ?? (word.length <= 3 || /[-_]/.test(word) ? word : undefined);
}

/** What the model answers: a translation for the adapter's translation prompt, else the tutor's reply. */
function chatContent(messages: readonly ChatMessage[]): string {
  const system = messages.find((m) => m.role === 'system')?.content ?? '';
  const translation = TRANSLATE.exec(system);
  if (translation) {
    const text = [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
    return translateText({ text, sourceLanguage: translation[1], targetLanguage: translation[2]! });
  }
  const language = languageOf(system) ?? 'en';
  const scenario = /\bScenario:\s*(.+?)\.?\s*$/.exec(system)?.[1];
  const nativeLanguage = /native language is ([^\s.,]+)/i.exec(system)?.[1];
  return tutorReply({ language, nativeLanguage, scenario, messages });
}
