/**
 * The OpenAI-compatible HTTP exchange (CONTRACT §3): one upstream account's endpoint, over undici.
 * Sends one request, and either reads a bounded whole answer or hands a 2xx body to a reader as it
 * arrives (streamed chat completions, TTS audio).
 *
 * Errors: a non-2xx answer throws {@link UpstreamHttpError} (status, a short reason, `Retry-After`);
 * the governor retries 429/503 and reports the rest. A 2xx answer that is not what the wire format
 * promises (bad JSON, empty, a missing field, too large) throws a non-busy {@link UpstreamError}:
 * retrying would not help. A network failure or the adapter's own timeout also throws an
 * UpstreamError (without a status). An aborted `signal` rejects with the signal's reason (an
 * `AbortError`) and closes the connection. The API key never appears in an error.
 *
 * The timeout here is a backstop behind the governor's: it measures the gap before the first byte
 * and between later ones (a long streamed answer is not a stuck one).
 */
import { STATUS_CODES } from 'node:http';
import { Agent, request, type Dispatcher } from 'undici';
import { REDACTED } from '../../util/redact.js';
import { parseRetryAfter, shortReason, UpstreamHttpError } from '../http-error.js';
import { UpstreamError } from '../provider.js';
import { encodeMultipart, type Part } from './multipart.js';

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

/** Reads a 2xx answer's body as it arrives; `touch` tells the idle timeout the answer is moving. */
export type BodyReader<T> = (body: AsyncIterable<Buffer>, contentType: string, touch: () => void) => Promise<T>;

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export interface Body {
  readonly data: Buffer;
  readonly contentType: string;
}

/** Thrown inside the client to mark the per-attempt timeout (never escapes). */
class AttemptTimeout extends Error {}

/** One upstream account's endpoint: sends one request and reads a bounded answer. */
export class OpenAiHttp {
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

  /**
   * POSTs `payload` to `{baseUrl}{path}` and hands a 2xx answer's body to `read` as it arrives (see
   * the file comment for errors). `read` calls `touch` as bytes come, so only a gap times out.
   */
  async send<T>(path: string, payload: Buffer, contentType: string, accept: string, signal: AbortSignal | undefined, read: BodyReader<T>): Promise<T> {
    signal?.throwIfAborted();
    const ctl = new AbortController();
    const onAbort = (): void => ctl.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    // One timer, looked at when it fires: touching costs an assignment, not a re-arm per chunk.
    let lastActivity = Date.now();
    const touch = (): void => {
      lastActivity = Date.now();
    };
    let timer: NodeJS.Timeout;
    const arm = (ms: number): void => {
      timer = setTimeout(() => {
        const idle = Date.now() - lastActivity;
        if (idle >= this.timeoutMs) ctl.abort(new AttemptTimeout());
        else arm(this.timeoutMs - idle);
      }, ms);
      timer.unref();
    };
    arm(this.timeoutMs);
    let res: Dispatcher.ResponseData | undefined;
    try {
      res = await request(this.base + path, {
        method: 'POST',
        dispatcher: this.dispatcher,
        signal: ctl.signal,
        headers: { ...this.headers, 'content-type': contentType, accept },
        body: payload,
        // The idle timer above governs; these only stop undici's own defaults (300 s).
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      touch();
      const headers = res.headers;
      const header = (name: string): string | undefined => {
        const v = headers[name];
        return Array.isArray(v) ? v[0] : v;
      };
      if (res.statusCode < 200 || res.statusCode >= 300) {
        const raw = await readBody(res.body, MAX_ERROR_BODY_BYTES, true);
        // The key is taken out of the whole reason; UpstreamHttpError then redacts and cuts it (D6).
        throw new UpstreamHttpError(res.statusCode, this.redact(reasonOf(raw, res.statusCode)), parseRetryAfter(header, Date.now()));
      }
      const declared = Number(header('content-length'));
      if (declared > this.maxResponseBytes) throw this.tooLarge(res.statusCode);
      return await read(res.body as AsyncIterable<Buffer>, header('content-type') ?? '', touch);
    } catch (err) {
      if (err instanceof UpstreamHttpError || err instanceof UpstreamError) throw err;
      if (signal?.aborted) throw signal.reason;
      if (ctl.signal.reason instanceof AttemptTimeout) {
        throw new UpstreamError(this.kind, `${this.kind} upstream sent nothing for ${this.timeoutMs} ms`);
      }
      const code = (err as { code?: unknown }).code;
      const what = typeof code === 'string' ? code : (err as Error).message;
      throw new UpstreamError(this.kind, `${this.kind} upstream request failed: ${this.excerpt(String(what))}`);
    } finally {
      clearTimeout(timer!);
      signal?.removeEventListener('abort', onAbort);
      // A reader that stopped early (an error, a cancel, `[DONE]`) leaves the rest unread: close it.
      if (res && !res.body.readableEnded && !res.body.destroyed) {
        res.body.on('error', () => undefined); // undici reports the destroy as an error nobody awaits
        res.body.destroy();
      }
    }
  }

  /** POSTs and reads the whole 2xx body (bounded by maxResponseBytes). */
  post(path: string, payload: Buffer, contentType: string, accept: string, signal: AbortSignal | undefined): Promise<Body> {
    return this.send(path, payload, contentType, accept, signal, async (body, type, touch) => {
      const data = await readBody(body as Dispatcher.ResponseData['body'], this.maxResponseBytes, false, touch);
      if (!data) throw this.tooLarge(200);
      return { data, contentType: type };
    });
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

  parseJson(data: Buffer): Record<string, unknown> {
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

  tooLarge(status: number): UpstreamError {
    return new UpstreamError(this.kind, `${this.kind} upstream answer exceeds maxResponseBytes (${this.maxResponseBytes} bytes)`, status);
  }

  /** Removes the API key from text that came from the network (some servers echo it back). */
  redact(text: string): string {
    const key = this.opts.apiKey;
    return key && key.length >= 4 ? text.split(key).join(REDACTED) : text;
  }

  /**
   * Text from the network made fit for a message: the API key removed from all of it, then the
   * shared redaction and the cut ({@link shortReason}), in that order, so no part of a secret
   * survives the cut (D6).
   */
  excerpt(text: string, maxChars?: number): string {
    return shortReason(this.redact(text), maxChars);
  }
}

function positive(value: number | undefined, fallback: number, name: string, kind: string): number {
  if (value === undefined) return fallback;
  if (!(value > 0) || !Number.isFinite(value)) throw new Error(`OpenAI adapter (${kind}): ${name} must be a finite number > 0, got ${value}`);
  return value;
}

/**
 * Reads a body up to `max` bytes. Over the limit it destroys the stream at once (undici then closes
 * the connection, so nothing more is buffered) and resolves null, or, with `truncate`, what it has.
 */
async function readBody(body: Dispatcher.ResponseData['body'], max: number, truncate: boolean, touch?: () => void): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    touch?.();
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

/**
 * The reason of an error answer: the JSON error message if any, else the text, else the status
 * text. Whole: the caller removes the key, and UpstreamHttpError redacts and cuts (D6).
 */
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
  return text.trim() ? text : (STATUS_CODES[status] ?? `HTTP ${status}`);
}
