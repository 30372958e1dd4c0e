/**
 * A simulated upstream HTTP server speaking the OpenAI-compatible wire format (CONTRACT.md §3),
 * with answers from the built-in simulated providers (`simulated.ts`). It enforces its own limits
 * the way a real provider account does, and counts what it saw, so the gateway's upstream governor
 * can be exercised and measured end to end without a network or a key:
 *
 * - `rpm`: at most that many requests in any 60 s window;
 * - `rps` + `burst`: a token bucket (`burst` defaults to `rps` rounded up);
 * - `concurrency`: requests in flight;
 * - over any of them: `429` with `Retry-After` (whole seconds, rounded up, at least 1),
 *   `retry-after-ms` (exact) and `{"error": {"message", "type": "rate_limit", "code"}}`;
 * - `apiKey`: a missing or wrong `Authorization: Bearer` gets `401`;
 * - `failRate`: that fraction of admitted requests fails with `503` and `Retry-After: 1`;
 * - `latencyMs`: added to every answer (the slot stays taken meanwhile).
 *
 * `GET /stats` answers the counters ({@link SimUpstreamStats}), `POST /stats/reset` zeroes them
 * (the limiters keep their state, as a real account's would). Routes answer with or without a
 * `/v1` prefix. The simulated content needs hints the wire format lacks; they come from the system
 * prompt ("Answer in es", "Scenario: …", the adapter's translation prompt) and fall back to English.
 *
 * Run it standalone with `npm run upstream:sim -- --port 9000 --rps 5 --concurrency 2`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SlidingWindowLog } from '../limits/sliding-window.js';
import { TokenBucket } from '../limits/token-bucket.js';
import { encodeWav } from '../audio/wav.js';
import { UpstreamError, type ChatMessage, type Providers } from './provider.js';
import { createSimulatedProviders } from './simulated.js';

export interface SimUpstreamOptions {
  /** TCP port (0 or absent: any free port). */
  port?: number;
  /** Interface to bind (default 127.0.0.1). */
  host?: string;
  /** Token bucket refill, requests per second. */
  rps?: number;
  /** Token bucket capacity (default: `rps` rounded up). */
  burst?: number;
  /** Requests in any 60 s window. */
  rpm?: number;
  /** Requests in flight. */
  concurrency?: number;
  /** Added latency per answered request, in ms (default 0). */
  latencyMs?: number;
  /** When set, requests must carry `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Fraction (0..1) of admitted requests answered with 503 (default 0). */
  failRate?: number;
  /** Source of randomness for `failRate` (default Math.random). */
  random?: () => number;
  /** Monotonic clock in ms for the limiters (default performance.now). */
  now?: () => number;
  /** Largest request body, in bytes (default 32 MiB); larger gets 413. */
  maxBodyBytes?: number;
}

export interface SimUpstreamStats {
  /** API requests received (stats routes and unknown paths excluded). */
  requests: number;
  /** Answered with 2xx. */
  ok: number;
  /** Refused with 429 (rate, burst, rpm or concurrency). */
  rejected429: number;
  /** Refused with 401. */
  unauthorized: number;
  /** Failed on purpose with 503 (`failRate`). */
  failed: number;
  /** Answered with another 4xx/5xx (bad body, bad audio, too large). */
  errors: number;
  /** The client closed the connection before the answer was sent. */
  aborted: number;
  inFlight: number;
  maxInFlight: number;
}

export interface SimUpstream {
  /** Base URL for the adapter's `baseUrl`, e.g. `http://127.0.0.1:9000/v1`. */
  readonly url: string;
  readonly port: number;
  stats(): SimUpstreamStats;
  close(): Promise<void>;
}

const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024;
/** OpenAI's limit on `input` of `/audio/speech`. */
const MAX_TTS_INPUT_CHARS = 4096;

type Route = (req: IncomingMessage, body: Buffer, signal: AbortSignal) => Promise<Answer>;
interface Answer {
  readonly status: number;
  readonly body: Buffer | string | object;
  readonly contentType?: string;
}

/** A client-side problem with the request: answered with 400 `invalid_request_error`. */
class BadRequest extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** Starts the simulated upstream; resolves once it listens. */
export async function startSimUpstream(opts: SimUpstreamOptions = {}): Promise<SimUpstream> {
  const o = validate(opts);
  const now = opts.now ?? (() => performance.now());
  const random = opts.random ?? Math.random;
  const providers = createSimulatedProviders({ latencyMs: o.latencyMs });
  const bucket = o.rps !== undefined ? new TokenBucket({ ratePerSec: o.rps, burst: o.burst ?? Math.ceil(o.rps) }, now()) : undefined;
  const window = o.rpm !== undefined ? new SlidingWindowLog(o.rpm, 60_000) : undefined;
  const routes = makeRoutes(providers);

  const counters: SimUpstreamStats = { requests: 0, ok: 0, rejected429: 0, unauthorized: 0, failed: 0, errors: 0, aborted: 0, inFlight: 0, maxInFlight: 0 };
  const stats = (): SimUpstreamStats => ({ ...counters });

  const send = (res: ServerResponse, answer: Answer, headers: Record<string, string> = {}): void => {
    if (res.destroyed || res.writableEnded) return;
    const isBuffer = Buffer.isBuffer(answer.body);
    const payload = isBuffer ? (answer.body as Buffer) : Buffer.from(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
    res.writeHead(answer.status, {
      ...headers,
      'content-type': answer.contentType ?? (isBuffer ? 'application/octet-stream' : typeof answer.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json'),
      'content-length': String(payload.length),
    });
    res.end(payload);
  };
  const error = (status: number, message: string, type: string, code: string | null = null): Answer => ({
    status,
    body: { error: { message, type, param: null, code } },
  });

  const rateHeaders = (t: number): Record<string, string> =>
    window ? { 'x-ratelimit-limit-requests': String(window.limit), 'x-ratelimit-remaining-requests': String(window.remaining(t)) } : {};

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!.replace(/^\/v1(?=\/)/, '');
    if (path === '/stats' && req.method === 'GET') return send(res, { status: 200, body: stats() });
    if (path === '/stats/reset' && req.method === 'POST') {
      Object.assign(counters, { requests: 0, ok: 0, rejected429: 0, unauthorized: 0, failed: 0, errors: 0, aborted: 0, maxInFlight: counters.inFlight });
      return send(res, { status: 200, body: stats() });
    }
    const route = routes[path];
    if (!route) return send(res, error(404, `Unknown route ${req.method ?? ''} ${path}`, 'invalid_request_error', 'unknown_url'));
    if (req.method !== 'POST') return send(res, error(405, `${path} accepts POST only`, 'invalid_request_error', 'method_not_allowed'), { allow: 'POST' });

    counters.requests++;
    if (o.apiKey !== undefined && req.headers.authorization !== `Bearer ${o.apiKey}`) {
      counters.unauthorized++;
      const why = req.headers.authorization ? 'Incorrect API key provided' : 'Missing bearer authentication in header';
      return send(res, error(401, why, 'invalid_request_error', 'invalid_api_key'));
    }

    // Limits: check every one, then take from all, so a refused request costs nothing.
    const t = now();
    const waitMs = Math.max(window?.msUntil(1, t) ?? 0, bucket?.msUntil(1, t) ?? 0);
    const busy = o.concurrency !== undefined && counters.inFlight >= o.concurrency;
    if (waitMs > 0 || busy) {
      counters.rejected429++;
      // Busy: nothing says when a slot frees; about one answer's time is a fair guess.
      const retryMs = waitMs > 0 ? Math.ceil(waitMs) : Math.max(100, o.latencyMs);
      const [message, code] = waitMs > 0
        ? [`Rate limit reached for requests: retry in ${retryMs} ms`, 'rate_limit_exceeded']
        : [`Too many concurrent requests (limit ${o.concurrency})`, 'concurrency_limit_exceeded'];
      return send(res, error(429, message, 'rate_limit', code), {
        ...rateHeaders(t),
        'retry-after': String(Math.max(1, Math.ceil(retryMs / 1000))),
        'retry-after-ms': String(retryMs),
      });
    }
    window?.consume(1, t);
    bucket?.tryTake(1, t);

    if (o.failRate > 0 && random() < o.failRate) {
      counters.failed++;
      return send(res, error(503, 'The server is overloaded (simulated failure)', 'server_error', 'overloaded'), { 'retry-after': '1' });
    }

    counters.inFlight++;
    if (counters.inFlight > counters.maxInFlight) counters.maxInFlight = counters.inFlight;
    const ctl = new AbortController();
    res.once('close', () => {
      counters.inFlight--;
      if (!res.writableEnded) {
        counters.aborted++;
        ctl.abort(new Error('client closed the connection'));
      }
    });

    // The client is gone: the 'close' above may fire after the body read fails, so check the socket too.
    const gone = (): boolean => ctl.signal.aborted || !res.socket || res.socket.destroyed;
    let answer: Answer;
    try {
      const body = await readBody(req, o.maxBodyBytes);
      answer = await route(req, body, ctl.signal);
    } catch (err) {
      if (gone()) return;
      if (err instanceof BadRequest) answer = error(err.status, err.message, 'invalid_request_error');
      else if (err instanceof UpstreamError && err.status !== undefined && err.status < 500) answer = error(err.status, err.message, 'invalid_request_error');
      else answer = error(500, `internal error: ${(err as Error).message}`, 'server_error');
    }
    if (gone()) return;
    if (answer.status >= 200 && answer.status < 300) counters.ok++;
    else counters.errors++;
    send(res, answer, rateHeaders(now()));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      counters.errors++;
      if (!res.headersSent) send(res, error(500, `internal error: ${(err as Error).message}`, 'server_error'));
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 10_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port, address } = server.address() as AddressInfo;
  const shown = address === '0.0.0.0' || address === '::' ? '127.0.0.1' : address.includes(':') ? `[${address}]` : address;

  return {
    url: `http://${shown}:${port}/v1`,
    port,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

interface Resolved {
  port: number;
  host: string;
  rps: number | undefined;
  burst: number | undefined;
  rpm: number | undefined;
  concurrency: number | undefined;
  latencyMs: number;
  apiKey: string | undefined;
  failRate: number;
  maxBodyBytes: number;
}

/** Checks the options, naming the bad one. */
function validate(opts: SimUpstreamOptions): Resolved {
  const check = (name: string, v: number | undefined, ok: (n: number) => boolean, want: string): number | undefined => {
    if (v !== undefined && !ok(v)) throw new RangeError(`startSimUpstream: ${name} must be ${want}, got ${v}`);
    return v;
  };
  const posInt = (n: number): boolean => Number.isInteger(n) && n >= 1;
  const port = check('port', opts.port, (n) => Number.isInteger(n) && n >= 0 && n <= 65535, 'an integer 0-65535') ?? 0;
  const rps = check('rps', opts.rps, (n) => n > 0 && Number.isFinite(n), 'a finite number > 0');
  const burst = check('burst', opts.burst, posInt, 'an integer >= 1');
  if (burst !== undefined && rps === undefined) throw new RangeError('startSimUpstream: burst needs rps');
  return {
    port,
    host: opts.host ?? '127.0.0.1',
    rps,
    burst,
    rpm: check('rpm', opts.rpm, posInt, 'an integer >= 1'),
    concurrency: check('concurrency', opts.concurrency, posInt, 'an integer >= 1'),
    latencyMs: check('latencyMs', opts.latencyMs, (n) => n >= 0 && Number.isFinite(n), 'a finite number >= 0') ?? 0,
    apiKey: opts.apiKey,
    failRate: check('failRate', opts.failRate, (n) => n >= 0 && n <= 1, 'between 0 and 1') ?? 0,
    maxBodyBytes: check('maxBodyBytes', opts.maxBodyBytes, posInt, 'an integer >= 1') ?? DEFAULT_MAX_BODY_BYTES,
  };
}

/** Reads the request body, refusing more than `max` bytes with 413. */
async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > max) throw new BadRequest(`Request body of ${declared} bytes exceeds ${max} bytes`, 413);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > max) throw new BadRequest(`Request body exceeds ${max} bytes`, 413);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

function makeRoutes(p: Providers): Record<string, Route> {
  let seq = 0;
  return {
    '/chat/completions': async (req, body, signal) => {
      const json = parseJsonObject(req, body);
      const messages = parseMessages(json.messages);
      const system = messages.find((m) => m.role === 'system')?.content ?? '';
      const model = typeof json.model === 'string' ? json.model : 'simulated';
      const translation = TRANSLATE.exec(system);
      let content: string;
      if (translation) {
        const text = [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
        content = await p.translation.translate({ text, sourceLanguage: translation[1], targetLanguage: translation[2]! }, { signal });
      } else {
        const language = languageOf(system) ?? 'en';
        const scenario = /\bScenario:\s*(.+?)\.?\s*$/.exec(system)?.[1];
        const nativeLanguage = /native language is ([^\s.,]+)/i.exec(system)?.[1];
        content = await p.conversation.reply({ language, nativeLanguage, scenario, messages }, { signal });
      }
      const promptTokens = Math.ceil(messages.reduce((n, m) => n + m.content.length, 0) / 4);
      const completionTokens = Math.ceil(content.length / 4);
      return {
        status: 200,
        body: {
          id: `chatcmpl-sim${++seq}`,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model,
          choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
          usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
        },
      };
    },

    '/audio/transcriptions': async (req, body, signal) => {
      const form = parseForm(req, body);
      const file = requireFile(form);
      const language = form.get('language')?.data.toString('utf8') || 'en';
      const text = await p.stt.transcribe({ audio: { data: file, format: 'wav', sampleRate: 0, channels: 0 }, language }, { signal });
      const format = form.get('response_format')?.data.toString('utf8') || 'json';
      if (format === 'text') return { status: 200, body: text };
      if (format === 'verbose_json') return { status: 200, body: { task: 'transcribe', language, text } };
      if (format !== 'json') throw new BadRequest(`response_format "${format}" is not supported by the simulator (json, text, verbose_json)`);
      return { status: 200, body: { text } };
    },

    '/audio/speech': async (req, body, signal) => {
      const json = parseJsonObject(req, body);
      const input = json.input;
      if (typeof input !== 'string' || !input.trim()) throw new BadRequest('"input" must be a non-empty string');
      if (input.length > MAX_TTS_INPUT_CHARS) throw new BadRequest(`"input" is ${input.length} characters; the limit is ${MAX_TTS_INPUT_CHARS}`);
      const voice = typeof json.voice === 'string' ? json.voice : undefined;
      const format = json.response_format ?? 'mp3';
      if (format !== 'pcm' && format !== 'wav') throw new BadRequest(`response_format "${String(format)}" is not supported by the simulator (pcm, wav)`);
      // The wire format carries no language; a `language` field is honoured, else the script decides.
      const language = typeof json.language === 'string' ? json.language : /[\u3040-\u30ff\u3400-\u9fff]/u.test(input) ? 'ja' : 'en';
      const speech = await p.tts.speak({ text: input, voice, language }, { signal });
      return format === 'pcm'
        ? { status: 200, body: speech.audio, contentType: 'audio/pcm' }
        : { status: 200, body: encodeWav(speech.audio, speech.sampleRate), contentType: 'audio/wav' };
    },

    '/pronunciation/assessments': async (req, body, signal) => {
      const form = parseForm(req, body);
      const file = requireFile(form);
      const referenceText = form.get('reference_text')?.data.toString('utf8') ?? '';
      if (!referenceText.trim()) throw new BadRequest('"reference_text" is required');
      const language = form.get('language')?.data.toString('utf8') || 'en';
      const result = await p.pronunciation.assess({ audio: { data: file, format: 'wav', sampleRate: 0, channels: 0 }, referenceText, language }, { signal });
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

function parseJsonObject(req: IncomingMessage, body: Buffer): Record<string, unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) throw new BadRequest(`Content-Type must be application/json, got "${type}"`);
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new BadRequest('Request body is not valid JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new BadRequest('Request body must be a JSON object');
  return json as Record<string, unknown>;
}

function parseMessages(raw: unknown): ChatMessage[] {
  if (!Array.isArray(raw) || raw.length === 0) throw new BadRequest('"messages" must be a non-empty array');
  return raw.map((m: unknown, i) => {
    const msg = m as { role?: unknown; content?: unknown } | null;
    if (!msg || (msg.role !== 'system' && msg.role !== 'user' && msg.role !== 'assistant') || typeof msg.content !== 'string') {
      throw new BadRequest(`"messages[${i}]" must be {role: system|user|assistant, content: string}`);
    }
    return { role: msg.role, content: msg.content };
  });
}

interface FormPart {
  readonly data: Buffer;
  readonly filename?: string | undefined;
}

function requireFile(form: Map<string, FormPart>): Buffer {
  const file = form.get('file');
  if (!file || file.filename === undefined) throw new BadRequest('"file" (an audio file) is required');
  if (file.data.length === 0) throw new BadRequest('"file" is empty');
  return file.data;
}

/** Parses a multipart/form-data body (RFC 7578) into its named parts. */
function parseForm(req: IncomingMessage, body: Buffer): Map<string, FormPart> {
  const type = req.headers['content-type'] ?? '';
  const m = /^multipart\/form-data\b.*?;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(type);
  const boundary = m?.[1] ?? m?.[2];
  if (!boundary) throw new BadRequest(`Content-Type must be multipart/form-data with a boundary, got "${type}"`);
  const delimiter = Buffer.from(`--${boundary}`);
  const next = Buffer.from(`\r\n--${boundary}`);
  const parts = new Map<string, FormPart>();
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw new BadRequest('Malformed multipart body: no boundary');
  pos += delimiter.length;
  for (;;) {
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return parts; // "--": the closing delimiter
    if (body[pos] !== 0x0d || body[pos + 1] !== 0x0a) throw new BadRequest('Malformed multipart body: bad delimiter line');
    const headStart = pos + 2;
    const headEnd = body.indexOf('\r\n\r\n', headStart);
    if (headEnd < 0) throw new BadRequest('Malformed multipart body: unterminated part headers');
    const end = body.indexOf(next, headEnd + 4);
    if (end < 0) throw new BadRequest('Malformed multipart body: missing closing boundary');
    const head = body.toString('utf8', headStart, headEnd);
    const disposition = /^content-disposition:\s*form-data\s*;(.*)$/im.exec(head)?.[1] ?? '';
    const name = /(?:^|;)\s*name="([^"]*)"/i.exec(disposition)?.[1];
    const filename = /(?:^|;)\s*filename="([^"]*)"/i.exec(disposition)?.[1];
    if (name !== undefined) parts.set(name, { data: body.subarray(headEnd + 4, end), filename });
    pos = end + next.length;
  }
}
