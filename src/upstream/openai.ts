/**
 * The OpenAI-compatible HTTP adapter (CONTRACT.md §3): one HTTP attempt per call, over undici.
 *
 * | kind          | request                                                            | answer                          |
 * |---------------|--------------------------------------------------------------------|---------------------------------|
 * | conversation  | `POST /chat/completions` JSON `{model, messages}`                  | `choices[0].message.content`    |
 * | translation   | the same, with a system prompt asking for the translation only    | `choices[0].message.content`    |
 * | stt           | `POST /audio/transcriptions` multipart `file` (WAV), `model`, `language` | `{text}`                  |
 * | tts           | `POST /audio/speech` JSON `{model, input, voice, response_format: "pcm"}` | raw PCM16 24 kHz mono    |
 * | pronunciation | `POST /pronunciation/assessments` multipart `file`, `reference_text`, `language` | `{score, words}`  |
 *
 * Errors: a non-2xx answer throws {@link UpstreamHttpError} (status, a short reason, `Retry-After`);
 * the governor retries 429/503 and reports the rest. A 2xx answer that is not what the wire format
 * promises (bad JSON, empty, a missing field, too large) throws a non-busy {@link UpstreamError}:
 * retrying would not help. A network failure or the per-attempt timeout also throws an
 * UpstreamError (without a status). An aborted `signal` rejects with the signal's reason (an
 * `AbortError`) and closes the connection. The API key never appears in an error.
 *
 * Retries, rate limits and queueing are not done here: that is the governor's job.
 */
import { randomBytes } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { Agent, request, type Dispatcher } from 'undici';
import { encodeWav } from '../audio/wav.js';
import { parseRetryAfter, UpstreamHttpError } from './http-error.js';
import {
  UpstreamError,
  type AudioInput,
  type CallOptions,
  type ConversationProvider,
  type ConversationRequest,
  type PronunciationProvider,
  type PronunciationRequest,
  type PronunciationResult,
  type Providers,
  type SttProvider,
  type SttRequest,
  type TranslationProvider,
  type TranslationRequest,
  type TtsProvider,
  type TtsRequest,
  type TtsResult,
} from './provider.js';

export interface OpenAiOptions {
  /** Base URL of the API, e.g. `https://api.openai.com/v1` (the paths above are appended). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>` when set. */
  apiKey?: string;
  /** Model name; defaults per kind (see {@link DEFAULT_MODELS}). */
  model?: string;
  /** TTS: the voice when the request names none (default `alloy`). */
  voice?: string;
  /** Whole-attempt timeout (connect, upload, answer), in ms (default 30 000). */
  timeoutMs?: number;
  /** Largest answer body read, in bytes (default 32 MiB); reading stops as soon as it is exceeded. */
  maxResponseBytes?: number;
  /** undici dispatcher to send through (default: a shared keep-alive {@link Agent}). */
  dispatcher?: Dispatcher;
}

export type OpenAiKind = 'conversation' | 'stt' | 'tts' | 'translation' | 'pronunciation';

/** Models sent when the config names none. Pronunciation sends `model` only when configured. */
export const DEFAULT_MODELS: Readonly<Record<Exclude<OpenAiKind, 'pronunciation'>, string>> = {
  conversation: 'gpt-4o-mini',
  translation: 'gpt-4o-mini',
  stt: 'whisper-1',
  tts: 'tts-1',
};

/** OpenAI's `response_format: "pcm"` is 24 kHz, 16-bit signed little-endian, mono (API reference, audio/speech). */
export const OPENAI_PCM_SAMPLE_RATE = 24000;
export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024;
const DEFAULT_VOICE = 'alloy';
/** Error bodies are read only this far: enough for a message, bounded for a hostile server. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;
const MAX_REASON_CHARS = 200;

let sharedAgent: Agent | undefined;

/**
 * The process-wide keep-alive agent: one connection pool per origin, shared by every adapter so
 * that upstreams on the same host reuse sockets. Idle sockets do not keep the process alive.
 */
function defaultDispatcher(): Agent {
  sharedAgent ??= new Agent({
    connections: 64, // per origin; the governor's concurrency limit is the real cap
    pipelining: 1, // one request at a time per socket: an abort closes only its own connection
    keepAliveTimeout: 10_000,
    keepAliveMaxTimeout: 60_000,
    connect: { timeout: 10_000 },
  });
  return sharedAgent;
}

// ---------------------------------------------------------------------------------------------
// The HTTP exchange
// ---------------------------------------------------------------------------------------------

interface Body {
  readonly data: Buffer;
  readonly contentType: string;
}

/** Thrown inside the client to mark the per-attempt timeout (never escapes). */
class AttemptTimeout extends Error {}

/** One upstream account's endpoint: sends one request and reads a bounded answer. */
class OpenAiHttp {
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  private readonly dispatcher: Dispatcher;

  constructor(
    readonly kind: OpenAiKind,
    private readonly opts: OpenAiOptions,
  ) {
    let url: URL;
    try {
      url = new URL(opts.baseUrl);
    } catch {
      throw new Error(`OpenAI adapter (${kind}): baseUrl must be an absolute http(s) URL, got "${opts.baseUrl}"`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new Error(`OpenAI adapter (${kind}): baseUrl must use http or https, got "${url.protocol}"`);
    }
    url.search = '';
    url.hash = '';
    this.base = url.href.replace(/\/+$/, '');
    this.timeoutMs = positive(opts.timeoutMs, DEFAULT_TIMEOUT_MS, 'timeoutMs', kind);
    this.maxResponseBytes = positive(opts.maxResponseBytes, DEFAULT_MAX_RESPONSE_BYTES, 'maxResponseBytes', kind);
    this.dispatcher = opts.dispatcher ?? defaultDispatcher();
    this.headers = { 'user-agent': 'parley-gateway' };
    if (opts.apiKey) this.headers.authorization = `Bearer ${opts.apiKey}`;
  }

  /** POSTs `payload` to `{baseUrl}{path}`; resolves the 2xx body or throws (see the file comment). */
  async post(path: string, payload: Buffer, contentType: string, accept: string, signal: AbortSignal | undefined): Promise<Body> {
    signal?.throwIfAborted();
    const ctl = new AbortController();
    const onAbort = (): void => ctl.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => ctl.abort(new AttemptTimeout()), this.timeoutMs);
    timer.unref();
    try {
      const res = await request(this.base + path, {
        method: 'POST',
        dispatcher: this.dispatcher,
        signal: ctl.signal,
        headers: { ...this.headers, 'content-type': contentType, accept },
        body: payload,
        // The whole-attempt timer above governs; these only stop undici's own defaults (300 s).
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      const header = (name: string): string | undefined => {
        const v = res.headers[name];
        return Array.isArray(v) ? v[0] : v;
      };
      if (res.statusCode < 200 || res.statusCode >= 300) {
        const raw = await readBody(res.body, MAX_ERROR_BODY_BYTES, true);
        throw new UpstreamHttpError(res.statusCode, this.redact(reasonOf(raw, res.statusCode)), parseRetryAfter(header, Date.now()));
      }
      const declared = Number(header('content-length'));
      if (declared > this.maxResponseBytes) {
        res.body.destroy();
        throw this.tooLarge(res.statusCode);
      }
      const data = await readBody(res.body, this.maxResponseBytes, false);
      if (!data) throw this.tooLarge(res.statusCode);
      return { data, contentType: header('content-type') ?? '' };
    } catch (err) {
      if (err instanceof UpstreamHttpError || err instanceof UpstreamError) throw err;
      if (signal?.aborted) throw signal.reason;
      if (ctl.signal.reason instanceof AttemptTimeout) {
        throw new UpstreamError(this.kind, `${this.kind} upstream gave no complete answer within ${this.timeoutMs} ms`);
      }
      const code = (err as { code?: unknown }).code;
      const what = typeof code === 'string' ? code : (err as Error).message;
      throw new UpstreamError(this.kind, `${this.kind} upstream request failed: ${this.redact(String(what)).slice(0, MAX_REASON_CHARS)}`);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** POSTs JSON and parses a JSON object answer. */
  async postJson(path: string, body: unknown, signal: AbortSignal | undefined): Promise<Record<string, unknown>> {
    const res = await this.post(path, Buffer.from(JSON.stringify(body)), 'application/json', 'application/json', signal);
    return this.parseJson(res.data);
  }

  /** POSTs multipart/form-data and parses a JSON object answer. */
  async postMultipart(path: string, parts: readonly Part[], signal: AbortSignal | undefined): Promise<Record<string, unknown>> {
    const form = encodeMultipart(parts);
    const res = await this.post(path, form.body, form.contentType, 'application/json', signal);
    return this.parseJson(res.data);
  }

  /** The configured model, or the default for this kind. */
  model(fallback: string): string {
    return this.opts.model ?? fallback;
  }

  get configuredModel(): string | undefined {
    return this.opts.model;
  }

  get defaultVoice(): string {
    return this.opts.voice ?? DEFAULT_VOICE;
  }

  /** A non-retryable failure: the upstream said 2xx but the answer breaks the wire format. */
  invalid(what: string): UpstreamError {
    return new UpstreamError(this.kind, `${this.kind} upstream sent an invalid answer: ${what}`, 200);
  }

  private parseJson(data: Buffer): Record<string, unknown> {
    if (data.length === 0) throw this.invalid('empty body');
    let json: unknown;
    try {
      json = JSON.parse(data.toString('utf8'));
    } catch {
      throw this.invalid(`body is not JSON (${data.length} bytes)`);
    }
    if (!isRecord(json)) throw this.invalid('body is not a JSON object');
    return json;
  }

  private tooLarge(status: number): UpstreamError {
    return new UpstreamError(this.kind, `${this.kind} upstream answer exceeds maxResponseBytes (${this.maxResponseBytes} bytes)`, status);
  }

  /** Removes the API key from text that came from the network (some servers echo it back). */
  private redact(text: string): string {
    const key = this.opts.apiKey;
    return key && key.length >= 4 ? text.split(key).join('[redacted]') : text;
  }
}

function positive(value: number | undefined, fallback: number, name: string, kind: string): number {
  if (value === undefined) return fallback;
  if (!(value > 0) || !Number.isFinite(value)) throw new Error(`OpenAI adapter (${kind}): ${name} must be a finite number > 0, got ${value}`);
  return value;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads a body up to `max` bytes. Over the limit it destroys the stream at once (undici then closes
 * the connection, so nothing more is buffered) and resolves null, or, with `truncate`, what it has.
 */
async function readBody(body: Dispatcher.ResponseData['body'], max: number, truncate: boolean): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (total + chunk.length > max) {
      body.destroy();
      if (!truncate) return null;
      chunks.push(chunk.subarray(0, max - total));
      total = max;
      break;
    }
    chunks.push(chunk);
    total += chunk.length;
  }
  return Buffer.concat(chunks, total);
}

/** The short reason of an error answer: the JSON error message if any, else the text, else the status text. */
function reasonOf(raw: Buffer | null, status: number): string {
  let text = raw?.toString('utf8') ?? '';
  try {
    const json: unknown = JSON.parse(text);
    if (isRecord(json)) {
      // OpenAI: {error: {message}}; others: {error: "..."}, {detail: "..."}, {message: "..."}.
      const err = json.error;
      const msg = isRecord(err) ? err.message : err ?? json.detail ?? json.message;
      if (typeof msg === 'string') text = msg;
    }
  } catch {
    // not JSON: use the text itself
  }
  // eslint-disable-next-line no-control-regex
  text = text.replace(/[\u0000-\u001f\u007f-\u009f\s]+/g, ' ').trim();
  if (!text) text = STATUS_CODES[status] ?? `HTTP ${status}`;
  if (text.length <= MAX_REASON_CHARS) return text;
  let cut = text.slice(0, MAX_REASON_CHARS - 1);
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

// ---------------------------------------------------------------------------------------------
// multipart/form-data (RFC 7578)
// ---------------------------------------------------------------------------------------------

export type Part =
  | { readonly name: string; readonly value: string }
  | { readonly name: string; readonly file: Buffer; readonly filename: string; readonly type: string };

/** Encodes form fields and files into one buffer (known length, no chunked upload). */
export function encodeMultipart(parts: readonly Part[]): { body: Buffer; contentType: string } {
  const boundary = `----parley${randomBytes(12).toString('hex')}`;
  const chunks: Buffer[] = [];
  const quote = (s: string): string => s.replace(/[\r\n"]/g, (c) => encodeURIComponent(c));
  for (const part of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${quote(part.name)}"`;
    if ('file' in part) head += `; filename="${quote(part.filename)}"\r\nContent-Type: ${part.type}`;
    chunks.push(Buffer.from(`${head}\r\n\r\n`, 'utf8'), 'file' in part ? part.file : Buffer.from(part.value, 'utf8'), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** The audio as a WAV file: PCM16 is wrapped in a header, WAV goes through as it is. */
function wavOf(audio: AudioInput, kind: OpenAiKind): Buffer {
  if (audio.format === 'wav') return audio.data;
  if (audio.format === 'pcm16') {
    try {
      return encodeWav(audio.data, audio.sampleRate, audio.channels);
    } catch (err) {
      throw new UpstreamError(kind, `invalid audio: ${(err as Error).message}`, 400);
    }
  }
  throw new UpstreamError(kind, `invalid audio: unsupported format "${String(audio.format)}"`, 400);
}

/** `en-US` → `en`: Whisper takes ISO-639-1 codes (OpenAI API reference, audio/createTranscription `language`). */
function iso639(tag: string): string {
  return tag.trim().toLowerCase().split(/[-_]/)[0] ?? tag;
}

/** `choices[0].message.content` of a chat completion, or an invalid-answer error. */
function chatContent(http: OpenAiHttp, json: Record<string, unknown>): string {
  const choices = json.choices;
  if (!Array.isArray(choices)) throw http.invalid('no "choices" array');
  const first: unknown = choices[0];
  if (!isRecord(first)) throw http.invalid('"choices" is empty');
  const message = first.message;
  if (!isRecord(message) || typeof message.content !== 'string') throw http.invalid('no "choices[0].message.content" string');
  return message.content;
}

// ---------------------------------------------------------------------------------------------
// The five adapters
// ---------------------------------------------------------------------------------------------

/** Conversation over `POST /chat/completions`. */
export class OpenAiConversationProvider implements ConversationProvider {
  private readonly http: OpenAiHttp;
  constructor(opts: OpenAiOptions) {
    this.http = new OpenAiHttp('conversation', opts);
  }

  async reply(req: ConversationRequest, opts?: CallOptions): Promise<string> {
    const messages = req.messages.map((m) => ({ role: m.role, content: m.content }));
    const json = await this.http.postJson('/chat/completions', { model: this.http.model(DEFAULT_MODELS.conversation), messages }, opts?.signal);
    return chatContent(this.http, json);
  }
}

/** The system prompt of a translation request (the simulated upstream server recognises it). */
export function translationPrompt(targetLanguage: string, sourceLanguage?: string): string {
  const from = sourceLanguage ? ` from ${sourceLanguage}` : '';
  return `Translate the user's message${from} into ${targetLanguage}. Reply with only the translation: no quotes, notes or explanations.`;
}

/** Translation over `POST /chat/completions` with a translate-only system prompt. */
export class OpenAiTranslationProvider implements TranslationProvider {
  private readonly http: OpenAiHttp;
  constructor(opts: OpenAiOptions) {
    this.http = new OpenAiHttp('translation', opts);
  }

  async translate(req: TranslationRequest, opts?: CallOptions): Promise<string> {
    const messages = [
      { role: 'system', content: translationPrompt(req.targetLanguage, req.sourceLanguage) },
      { role: 'user', content: req.text },
    ];
    const json = await this.http.postJson('/chat/completions', { model: this.http.model(DEFAULT_MODELS.translation), messages }, opts?.signal);
    return chatContent(this.http, json).trim();
  }
}

/** Speech to text over `POST /audio/transcriptions` (multipart, WAV file). */
export class OpenAiSttProvider implements SttProvider {
  private readonly http: OpenAiHttp;
  constructor(opts: OpenAiOptions) {
    this.http = new OpenAiHttp('stt', opts);
  }

  async transcribe(req: SttRequest, opts?: CallOptions): Promise<string> {
    const parts: Part[] = [
      { name: 'file', file: wavOf(req.audio, 'stt'), filename: 'audio.wav', type: 'audio/wav' },
      { name: 'model', value: this.http.model(DEFAULT_MODELS.stt) },
      { name: 'response_format', value: 'json' },
    ];
    if (req.language) parts.push({ name: 'language', value: iso639(req.language) });
    const json = await this.http.postMultipart('/audio/transcriptions', parts, opts?.signal);
    if (typeof json.text !== 'string') throw this.http.invalid('no "text" string');
    return json.text;
  }
}

/** Text to speech over `POST /audio/speech`, raw PCM16 24 kHz mono. */
export class OpenAiTtsProvider implements TtsProvider {
  private readonly http: OpenAiHttp;
  constructor(opts: OpenAiOptions) {
    this.http = new OpenAiHttp('tts', opts);
  }

  async speak(req: TtsRequest, opts?: CallOptions): Promise<TtsResult> {
    const body = { model: this.http.model(DEFAULT_MODELS.tts), input: req.text, voice: req.voice ?? this.http.defaultVoice, response_format: 'pcm' };
    const res = await this.http.post('/audio/speech', Buffer.from(JSON.stringify(body)), 'application/json', 'audio/pcm, application/octet-stream', opts?.signal);
    // A JSON or text answer with a 2xx status is a gateway or proxy page, not audio.
    if (/^(application\/json|text\/)/i.test(res.contentType)) throw this.http.invalid(`expected raw PCM audio, got "${res.contentType.slice(0, 60)}"`);
    if (res.data.length < 2) throw this.http.invalid('empty audio');
    // PCM16 is whole 2-byte samples; an odd trailing byte cannot be played.
    const audio = res.data.length % 2 ? res.data.subarray(0, res.data.length - 1) : res.data;
    return { audio, sampleRate: OPENAI_PCM_SAMPLE_RATE };
  }
}

/** Pronunciation assessment over `POST /pronunciation/assessments` (multipart). */
export class OpenAiPronunciationProvider implements PronunciationProvider {
  private readonly http: OpenAiHttp;
  constructor(opts: OpenAiOptions) {
    this.http = new OpenAiHttp('pronunciation', opts);
  }

  async assess(req: PronunciationRequest, opts?: CallOptions): Promise<PronunciationResult> {
    const parts: Part[] = [
      { name: 'file', file: wavOf(req.audio, 'pronunciation'), filename: 'audio.wav', type: 'audio/wav' },
      { name: 'reference_text', value: req.referenceText },
      { name: 'language', value: req.language },
    ];
    const model = this.http.configuredModel;
    if (model) parts.push({ name: 'model', value: model });
    const json = await this.http.postMultipart('/pronunciation/assessments', parts, opts?.signal);
    const score = json.score;
    if (typeof score !== 'number' || !Number.isFinite(score)) throw this.http.invalid('no numeric "score"');
    if (!Array.isArray(json.words)) throw this.http.invalid('no "words" array');
    const words = json.words.map((w: unknown, i) => {
      if (!isRecord(w) || typeof w.word !== 'string' || typeof w.score !== 'number' || !Number.isFinite(w.score)) {
        throw this.http.invalid(`"words[${i}]" is not {word, score}`);
      }
      return { word: w.word, score: clampScore(w.score) };
    });
    return { score: clampScore(score), words };
  }
}

function clampScore(v: number): number {
  return v < 0 ? 0 : v > 100 ? 100 : v;
}

// ---------------------------------------------------------------------------------------------
// Factories
// ---------------------------------------------------------------------------------------------

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
