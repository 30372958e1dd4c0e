/**
 * Integration-like: real HTTP servers on port 0 (the simulated upstream and tiny node:http servers
 * that misbehave on purpose), the real undici client, no mocks.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { encodeWav } from '../../../src/audio/wav.js';
import { synthesizeSpeech } from '../../../src/simulator/speech-synth.js';
import { parseRetryAfter, UpstreamHttpError } from '../../../src/upstream/http-error.js';
import {
  createOpenAiAdapters,
  createOpenAiConversation,
  createOpenAiStt,
  createOpenAiTts,
  translationPrompt,
  type OpenAiOptions,
} from '../../../src/upstream/openai/index.js';
import { UpstreamError, type AudioInput, type ConversationRequest } from '../../../src/upstream/provider.js';
import { startSimUpstream, type SimUpstream, type SimUpstreamStats } from '../../../src/simulator/server.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

interface TinyServer {
  readonly url: string;
  /** Resolves when the n-th (1-based) connection the server accepted has closed. */
  socketClosed(n?: number): Promise<void>;
  readonly requests: IncomingMessage[];
  close(): Promise<void>;
}

const servers: TinyServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A node:http server on port 0 with `handler`; tracks its sockets so tests can see them close. */
async function tiny(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TinyServer> {
  const closes: Promise<void>[] = [];
  const requests: IncomingMessage[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req);
    handler(req, res);
  });
  server.on('connection', (socket: Socket) => {
    closes.push(new Promise<void>((resolve) => socket.once('close', () => resolve())));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const s: TinyServer = {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    socketClosed: async (n = 1) => {
      await vi.waitFor(() => expect(closes.length).toBeGreaterThanOrEqual(n), { timeout: 2000 });
      await closes[n - 1];
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  servers.push(s);
  return s;
}

/** Answers with `status`, `headers` and `body` (JSON-encoded unless a string). */
function answer(status: number, body: unknown, headers: Record<string, string> = {}) {
  return (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
}

const CHAT_OK = { choices: [{ index: 0, message: { role: 'assistant', content: 'Hola, ¿qué tal?' }, finish_reason: 'stop' }] };

const CONVERSATION: ConversationRequest = {
  language: 'es',
  messages: [
    { role: 'system', content: 'You are a friendly speaking tutor. Answer in es, in one to three short sentences. Scenario: ordering coffee.' },
    { role: 'user', content: 'Hola, quisiera un café.' },
  ],
};

function speech(text: string, sampleRate = 16000): AudioInput {
  return { data: synthesizeSpeech(text, { sampleRate, language: 'en' }), format: 'pcm16', sampleRate, channels: 1 };
}

/** The rejection of `p` (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}

async function postChat(sim: SimUpstream, apiKey?: string) {
  const res = await request(`${sim.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
    body: JSON.stringify(CONVERSATION),
  });
  const body = (await res.body.json()) as Record<string, unknown>;
  return { status: res.statusCode, headers: res.headers, body };
}

// ---------------------------------------------------------------------------------------------
// Against the simulated upstream
// ---------------------------------------------------------------------------------------------

describe('OpenAI adapters against the simulated upstream (real HTTP)', () => {
  let sim: SimUpstream;
  let opts: OpenAiOptions;
  beforeAll(async () => {
    sim = await startSimUpstream({ port: 0, apiKey: 'sk-sim-key' });
    opts = { baseUrl: sim.url, apiKey: 'sk-sim-key' };
  });
  afterAll(() => sim.close());

  it('conversation returns the tutor reply in choices[0].message.content', async () => {
    const reply = await createOpenAiAdapters(opts).conversation.reply(CONVERSATION);
    expect(typeof reply).toBe('string');
    expect(reply.length).toBeGreaterThan(5);
    expect(reply).not.toMatch(/doesn't speak/); // the sim read "Answer in es" from the system prompt
  });

  it('translation sends a translate-only prompt and returns just the translation', async () => {
    const text = await createOpenAiAdapters(opts).translation.translate({ text: 'Thank you very much.', targetLanguage: 'es' });
    expect(text).toMatch(/muchas gracias/i);
    expect(translationPrompt('es', 'en')).toBe("Translate the user's message from en into es. Reply with only the translation: no quotes, notes or explanations.");
  });

  it('stt wraps PCM16 in a WAV file and returns a non-empty transcript of synthesized speech', async () => {
    const text = await createOpenAiAdapters(opts).stt.transcribe({ audio: speech('I would like a coffee, please.'), language: 'en-US' });
    expect(text.trim().length).toBeGreaterThan(0);
  });

  it('stt passes WAV input through unchanged', async () => {
    const pcm = speech('Where is the train station?');
    const wav: AudioInput = { data: encodeWav(pcm.data, 16000), format: 'wav', sampleRate: 16000, channels: 1 };
    const text = await createOpenAiStt(opts).transcribe({ audio: wav, language: 'en' });
    expect(text.trim().length).toBeGreaterThan(0);
  });

  it('tts returns raw PCM16 at 24 kHz of a plausible length', async () => {
    const out = await createOpenAiTts({ ...opts, voice: 'nova' }).speak({ text: 'Hello! How are you today?', language: 'en' });
    expect(out.sampleRate).toBe(24000);
    expect(out.audio.length % 2).toBe(0);
    const seconds = out.audio.length / 2 / 24000;
    expect(seconds).toBeGreaterThan(0.5);
    expect(seconds).toBeLessThan(6);
  });

  it('pronunciation returns a 0-100 score and one word entry per reference word', async () => {
    const ref = 'I would like a coffee';
    const result = await createOpenAiAdapters(opts).pronunciation.assess({ audio: speech(ref), referenceText: ref, language: 'en' });
    expect(result.score).toBeGreaterThanOrEqual(0);
    expect(result.score).toBeLessThanOrEqual(100);
    expect(result.words.map((w) => w.word)).toEqual(['I', 'would', 'like', 'a', 'coffee']);
    for (const w of result.words) expect(w.score).toBeGreaterThanOrEqual(0);
  });

  it('a missing or wrong key gets UpstreamHttpError 401 from the simulator', async () => {
    const noKey = await rejection(createOpenAiConversation({ baseUrl: sim.url }).reply(CONVERSATION));
    expect(noKey).toBeInstanceOf(UpstreamHttpError);
    expect((noKey as UpstreamHttpError).status).toBe(401);
    const wrong = await rejection(createOpenAiConversation({ baseUrl: sim.url, apiKey: 'sk-wrong' }).reply(CONVERSATION));
    expect((wrong as UpstreamHttpError).status).toBe(401);
    expect((wrong as Error).message).not.toContain('sk-wrong');
  });
});

// ---------------------------------------------------------------------------------------------
// Against misbehaving servers
// ---------------------------------------------------------------------------------------------

describe('OpenAI adapter HTTP handling', () => {
  it('sends Authorization: Bearer <apiKey>, and no Authorization header without a key', async () => {
    const srv = await tiny(answer(200, CHAT_OK));
    expect(await createOpenAiConversation({ baseUrl: srv.url, apiKey: 'sk-test-123' }).reply(CONVERSATION)).toBe('Hola, ¿qué tal?');
    await createOpenAiConversation({ baseUrl: `${srv.url}/` }).reply(CONVERSATION);
    expect(srv.requests[0]?.headers.authorization).toBe('Bearer sk-test-123');
    expect(srv.requests[0]?.url).toBe('/v1/chat/completions');
    expect(srv.requests[1]?.headers.authorization).toBeUndefined();
    expect(srv.requests[1]?.url).toBe('/v1/chat/completions');
  });

  it('sends the chat body {model, messages, stream, stream_options} with the configured model', async () => {
    let body = '';
    const srv = await tiny((req, res) => {
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => answer(200, CHAT_OK)(req, res));
    });
    await createOpenAiConversation({ baseUrl: srv.url, model: 'tutor-1' }).reply(CONVERSATION);
    expect(JSON.parse(body)).toEqual({ model: 'tutor-1', messages: CONVERSATION.messages, stream: true, stream_options: { include_usage: true } });
  });

  it('429 with Retry-After: 2 throws UpstreamHttpError 429 with retryAfterMs 2000 and the body reason', async () => {
    const srv = await tiny(answer(429, { error: { message: 'Rate limit reached for requests', type: 'rate_limit' } }, { 'retry-after': '2' }));
    const err = await rejection(createOpenAiConversation({ baseUrl: srv.url }).reply(CONVERSATION));
    expect(err).toBeInstanceOf(UpstreamHttpError);
    expect(err).toMatchObject({ status: 429, retryAfterMs: 2000, message: 'Rate limit reached for requests' });
  });

  it('retry-after-ms: 1500 gives retryAfterMs 1500', async () => {
    const srv = await tiny(answer(503, { error: { message: 'overloaded' } }, { 'retry-after-ms': '1500' }));
    const err = await rejection(createOpenAiConversation({ baseUrl: srv.url }).reply(CONVERSATION));
    expect(err).toMatchObject({ status: 503, retryAfterMs: 1500 });
  });

  it('401 throws UpstreamHttpError 401 without echoing the key, and the reason is at most 200 chars', async () => {
    const key = 'sk-secret-abcdef123456';
    const srv = await tiny(answer(401, { error: { message: `Incorrect API key provided: ${key}. ${'x'.repeat(400)}` } }));
    const err = await rejection(createOpenAiConversation({ baseUrl: srv.url, apiKey: key }).reply(CONVERSATION));
    expect(err).toBeInstanceOf(UpstreamHttpError);
    expect((err as UpstreamHttpError).status).toBe(401);
    expect((err as UpstreamHttpError).retryAfterMs).toBeUndefined();
    expect((err as Error).message).not.toContain(key);
    expect((err as Error).message).toContain('[REDACTED]');
    expect((err as Error).message.length).toBeLessThanOrEqual(200);
  });

  it('a key across the 200-character cut leaves no part of itself in the reason (redacted before the cut, D6)', async () => {
    const key = 'upstreamkey0123456789abcdef';
    const srv = await tiny((_req, res) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${'x'.repeat(185)} key: ${key} more`));
    const err = await rejection(createOpenAiConversation({ baseUrl: srv.url, apiKey: key }).reply(CONVERSATION));
    expect((err as Error).message).toBe(`${'x'.repeat(185)} key: [REDACTE…`);
    expect((err as Error).message).not.toContain(key.slice(0, 4));
  });

  it('an error answer with a text body uses the text, or the status text when empty', async () => {
    const text = await tiny((_req, res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>Bad gateway</h1>\n'));
    expect(await rejection(createOpenAiConversation({ baseUrl: text.url }).reply(CONVERSATION))).toMatchObject({ status: 502, message: '<h1>Bad gateway</h1>' });
    const empty = await tiny((_req, res) => res.writeHead(500).end());
    expect(await rejection(createOpenAiConversation({ baseUrl: empty.url }).reply(CONVERSATION))).toMatchObject({ status: 500, message: 'Internal Server Error' });
  });

  it.each([
    ['garbage JSON', '{"choices": [', /not JSON/],
    ['an empty body', '', /empty body/],
    ['a body without choices', { id: 'x', object: 'chat.completion' }, /no "choices" array/],
    ['empty choices', { choices: [] }, /"choices" is empty/],
    ['null content', { choices: [{ message: { role: 'assistant', content: null } }] }, /choices\[0\]\.message\.content/],
  ])('a 2xx with %s throws a non-retryable UpstreamError naming the problem', async (_name, body, message) => {
    const srv = await tiny(answer(200, body));
    const err = await rejection(createOpenAiConversation({ baseUrl: srv.url }).reply(CONVERSATION));
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).not.toBeInstanceOf(UpstreamHttpError);
    expect(err).toMatchObject({ upstream: 'conversation', status: 200, busy: false });
    expect((err as Error).message).toMatch(message);
  });

  it('stt without a "text" string and pronunciation without "words" are invalid answers', async () => {
    const srv = await tiny(answer(200, { transcript: 'hi', score: 80 }));
    const adapters = createOpenAiAdapters({ baseUrl: srv.url });
    expect(await rejection(adapters.stt.transcribe({ audio: speech('Hello.'), language: 'en' }))).toMatchObject({ upstream: 'stt', message: expect.stringMatching(/"text"/) });
    expect(await rejection(adapters.pronunciation.assess({ audio: speech('Hello.'), referenceText: 'Hello', language: 'en' }))).toMatchObject({
      upstream: 'pronunciation',
      message: expect.stringMatching(/"words"/),
    });
  });

  it('tts refuses a JSON body on 2xx instead of playing it as audio', async () => {
    const srv = await tiny(answer(200, { audio: 'base64...' }));
    const err = await rejection(createOpenAiTts({ baseUrl: srv.url }).speak({ text: 'Hi', language: 'en' }));
    expect(err).toMatchObject({ upstream: 'tts', message: expect.stringMatching(/expected raw PCM/) });
  });

  it('stops reading a body over maxResponseBytes at once and closes the connection (server streams forever)', async () => {
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let written = 0;
    const srv = await tiny((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk)) written += chunk.length;
      };
      res.on('drain', pump);
      pump();
    });
    const started = Date.now();
    const err = await rejection(createOpenAiConversation({ baseUrl: srv.url, maxResponseBytes: 1024 * 1024 }).reply(CONVERSATION));
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).toMatchObject({ upstream: 'conversation', message: expect.stringMatching(/maxResponseBytes \(1048576 bytes\)/) });
    expect(Date.now() - started).toBeLessThan(2000);
    await srv.socketClosed();
    expect(written).toBeLessThan(64 * 1024 * 1024);
  });

  it('refuses a declared Content-Length over maxResponseBytes without reading it', async () => {
    const srv = await tiny((_req, res) => {
      res.writeHead(200, { 'content-type': 'audio/pcm', 'content-length': String(10 * 1024 * 1024) });
      res.write(Buffer.alloc(1024));
    });
    const err = await rejection(createOpenAiTts({ baseUrl: srv.url, maxResponseBytes: 1024 * 1024 }).speak({ text: 'Hi', language: 'en' }));
    expect(err).toMatchObject({ upstream: 'tts', message: expect.stringMatching(/maxResponseBytes/) });
    await srv.socketClosed();
  });

  it('an AbortSignal aborts a request to a hung server, and the server sees the connection close', async () => {
    const srv = await tiny(() => {
      /* never answers */
    });
    const ctl = new AbortController();
    const pending = createOpenAiConversation({ baseUrl: srv.url }).reply(CONVERSATION, { signal: ctl.signal });
    await vi.waitFor(() => expect(srv.requests).toHaveLength(1));
    ctl.abort();
    const err = await rejection(pending);
    expect((err as Error).name).toBe('AbortError');
    await srv.socketClosed();
  });

  it('an already aborted signal sends nothing', async () => {
    const srv = await tiny(answer(200, CHAT_OK));
    const err = await rejection(createOpenAiConversation({ baseUrl: srv.url }).reply(CONVERSATION, { signal: AbortSignal.abort() }));
    expect((err as Error).name).toBe('AbortError');
    expect(srv.requests).toHaveLength(0);
  });

  it('timeoutMs bounds a gap in the answer: an UpstreamError, and the connection is closed', async () => {
    const srv = await tiny((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"choices":'); // then stalls
    });
    const err = await rejection(createOpenAiConversation({ baseUrl: srv.url, timeoutMs: 150 }).reply(CONVERSATION));
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).toMatchObject({ upstream: 'conversation', message: expect.stringMatching(/sent nothing for 150 ms/) });
    await srv.socketClosed();
  });

  it('a refused connection is an UpstreamError naming the cause', async () => {
    const srv = await tiny(answer(200, CHAT_OK));
    const url = srv.url;
    await srv.close();
    const err = await rejection(createOpenAiConversation({ baseUrl: url }).reply(CONVERSATION));
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).toMatchObject({ upstream: 'conversation', message: expect.stringMatching(/ECONNREFUSED/) });
  });

  it('an invalid baseUrl fails fast, naming it', () => {
    expect(() => createOpenAiConversation({ baseUrl: 'api.example.com/v1' })).toThrow(/baseUrl must be an absolute http\(s\) URL, got "api.example.com\/v1"/);
    expect(() => createOpenAiConversation({ baseUrl: 'ftp://x/v1' })).toThrow(/baseUrl must use http or https/);
  });
});

describe('parseRetryAfter', () => {
  const headers = (h: Record<string, string>) => (name: string) => h[name];
  const now = Date.parse('2025-01-01T00:00:00Z');
  it('reads delay-seconds, fractions rounded up to whole ms', () => {
    expect(parseRetryAfter(headers({ 'retry-after': '2' }), now)).toBe(2000);
    expect(parseRetryAfter(headers({ 'retry-after': '0' }), now)).toBe(0);
    expect(parseRetryAfter(headers({ 'retry-after': '0.0015' }), now)).toBe(2);
  });
  it('reads an HTTP-date relative to now; a past date gives 0', () => {
    expect(parseRetryAfter(headers({ 'retry-after': 'Wed, 01 Jan 2025 00:00:17 GMT' }), now)).toBe(17_000);
    expect(parseRetryAfter(headers({ 'retry-after': 'Tue, 31 Dec 2024 23:59:00 GMT' }), now)).toBe(0);
  });
  it('prefers retry-after-ms, and falls back to Retry-After when it is invalid', () => {
    expect(parseRetryAfter(headers({ 'retry-after-ms': '1500', 'retry-after': '2' }), now)).toBe(1500);
    expect(parseRetryAfter(headers({ 'retry-after-ms': 'soon', 'retry-after': '2' }), now)).toBe(2000);
  });
  it('gives undefined for absent or unusable values', () => {
    expect(parseRetryAfter(headers({}), now)).toBeUndefined();
    expect(parseRetryAfter(headers({ 'retry-after': '-5' }), now)).toBeUndefined();
    expect(parseRetryAfter(headers({ 'retry-after': 'later' }), now)).toBeUndefined();
    expect(parseRetryAfter(headers({ 'retry-after': '' }), now)).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------
// The simulated upstream's own limits
// ---------------------------------------------------------------------------------------------

describe('simulated upstream server limits and stats', () => {
  const sims: SimUpstream[] = [];
  afterEach(async () => {
    await Promise.all(sims.splice(0).map((s) => s.close()));
  });
  async function sim(opts: Parameters<typeof startSimUpstream>[0]): Promise<SimUpstream> {
    const s = await startSimUpstream({ port: 0, ...opts });
    sims.push(s);
    return s;
  }
  async function httpStats(s: SimUpstream): Promise<SimUpstreamStats> {
    const res = await request(`${s.url.replace(/\/v1$/, '')}/stats`);
    return (await res.body.json()) as SimUpstreamStats;
  }

  it('rps 2 burst 2: three immediate requests give 2 OK and one 429 with Retry-After >= 1', async () => {
    const s = await sim({ rps: 2, burst: 2 });
    const results = await Promise.all([postChat(s), postChat(s), postChat(s)]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 429]);
    const limited = results.find((r) => r.status === 429)!;
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers['retry-after-ms'])).toBeGreaterThan(0);
    expect(Number(limited.headers['retry-after-ms'])).toBeLessThanOrEqual(500);
    expect(limited.body).toMatchObject({ error: { type: 'rate_limit', message: expect.any(String) } });
    expect(s.stats()).toMatchObject({ requests: 3, ok: 2, rejected429: 1 });
  });

  it('rpm: the request over the 60 s window is refused with the seconds until one leaves it', async () => {
    let t = 0;
    const s = await sim({ rpm: 2, now: () => t });
    expect((await postChat(s)).status).toBe(200);
    t = 10_000;
    expect((await postChat(s)).status).toBe(200);
    t = 20_000;
    const limited = await postChat(s);
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('40');
    t = 60_000;
    expect((await postChat(s)).status).toBe(200);
  });

  it('concurrency 1 with latency: the second concurrent request gets 429', async () => {
    const s = await sim({ concurrency: 1, latencyMs: 300 });
    const first = postChat(s);
    await vi.waitFor(() => expect(s.stats().inFlight).toBe(1));
    const second = await postChat(s);
    expect(second.status).toBe(429);
    expect(Number(second.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(second.body).toMatchObject({ error: { type: 'rate_limit' } });
    expect((await first).status).toBe(200);
    expect(s.stats()).toMatchObject({ requests: 2, ok: 1, rejected429: 1, maxInFlight: 1, inFlight: 0 });
  });

  it('the adapter surfaces the simulator 429 as UpstreamHttpError with its retry-after-ms', async () => {
    const s = await sim({ rps: 1, burst: 1 });
    const conv = createOpenAiConversation({ baseUrl: s.url });
    await conv.reply(CONVERSATION);
    const err = await rejection(conv.reply(CONVERSATION));
    expect(err).toBeInstanceOf(UpstreamHttpError);
    expect((err as UpstreamHttpError).status).toBe(429);
    expect((err as UpstreamHttpError).retryAfterMs).toBeGreaterThan(0);
    expect((err as UpstreamHttpError).retryAfterMs).toBeLessThanOrEqual(1000);
  });

  it('failRate 1 answers 503 with Retry-After: 1', async () => {
    const s = await sim({ failRate: 1 });
    const err = await rejection(createOpenAiConversation({ baseUrl: s.url }).reply(CONVERSATION));
    expect(err).toMatchObject({ status: 503, retryAfterMs: 1000 });
    expect(s.stats()).toMatchObject({ requests: 1, failed: 1, ok: 0 });
  });

  it('counts a request whose client closed the connection before the answer as aborted', async () => {
    const s = await sim({ latencyMs: 5000 });
    const ctl = new AbortController();
    const pending = createOpenAiConversation({ baseUrl: s.url }).reply(CONVERSATION, { signal: ctl.signal });
    await vi.waitFor(() => expect(s.stats().inFlight).toBe(1));
    ctl.abort();
    expect(((await rejection(pending)) as Error).name).toBe('AbortError');
    await vi.waitFor(() => expect(s.stats()).toMatchObject({ aborted: 1, inFlight: 0, ok: 0 }));
  });

  it('GET /stats reports the counters and POST /stats/reset zeroes them', async () => {
    const s = await sim({ rps: 1, burst: 1, apiKey: 'k' });
    await postChat(s, 'k');
    await postChat(s, 'k');
    await postChat(s, 'nope');
    expect(await httpStats(s)).toEqual({ requests: 3, ok: 1, rejected429: 1, unauthorized: 1, failed: 0, errors: 0, aborted: 0, inFlight: 0, maxInFlight: 1 });
    expect(await httpStats(s)).toEqual(s.stats()); // the stats routes are not counted
    const reset = await request(`${s.url}/stats/reset`, { method: 'POST' });
    expect(reset.statusCode).toBe(200);
    await reset.body.dump();
    expect(s.stats()).toMatchObject({ requests: 0, ok: 0, rejected429: 0, unauthorized: 0, maxInFlight: 0 });
  });

  it('answers a malformed request with 400 invalid_request_error', async () => {
    const s = await sim({});
    const res = await request(`${s.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"messages": 3}' });
    expect(res.statusCode).toBe(400);
    expect(await res.body.json()).toMatchObject({ error: { type: 'invalid_request_error', message: expect.stringMatching(/"messages"/) } });
    const bad = await rejection(createOpenAiStt({ baseUrl: s.url }).transcribe({ audio: { data: Buffer.from('not a wav'), format: 'wav', sampleRate: 0, channels: 0 }, language: 'en' }));
    expect(bad).toMatchObject({ status: 400, message: expect.stringMatching(/invalid audio/) });
    expect(s.stats()).toMatchObject({ requests: 2, errors: 2 });
  });

  it('refuses invalid options, naming the option', async () => {
    await expect(startSimUpstream({ rps: 0 })).rejects.toThrow(/rps must be a finite number > 0, got 0/);
    await expect(startSimUpstream({ concurrency: 1.5 })).rejects.toThrow(/concurrency must be an integer >= 1, got 1.5/);
    await expect(startSimUpstream({ burst: 3 })).rejects.toThrow(/burst needs rps/);
  });
});

describe('OpenAI adapter streaming (CONTRACT §6)', () => {
  const sse = (chunks: unknown[]): string => chunks.map((c) => `data: ${typeof c === 'string' ? c : JSON.stringify(c)}\n\n`).join('');

  it('conversation.stream hands each delta on as its event arrives, then the usage', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const srv = await tiny((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sse([{ choices: [{ delta: { role: 'assistant' } }] }, { choices: [{ delta: { content: 'Hola. ' } }] }]));
      void gate.then(() => res.end(sse([{ choices: [{ delta: { content: '¿Qué tal?' } }] }, { choices: [], usage: { prompt_tokens: 20, completion_tokens: 6 } }, '[DONE]'])));
    });
    const deltas: string[] = [];
    const done = createOpenAiConversation({ baseUrl: srv.url }).stream!(CONVERSATION, undefined, (d) => {
      deltas.push(d);
      release(); // the second half is sent only once the first delta reached us: no whole-body wait
    });
    expect(await done).toEqual({ text: 'Hola. ¿Qué tal?', usage: { promptTokens: 20, completionTokens: 6 } });
    expect(deltas).toEqual(['Hola. ', '¿Qué tal?']);
  });

  it('conversation.stream accepts a plain JSON answer as one delta, with its usage', async () => {
    const srv = await tiny(answer(200, { ...CHAT_OK, usage: { prompt_tokens: 9, completion_tokens: 4 } }));
    const deltas: string[] = [];
    const reply = await createOpenAiConversation({ baseUrl: srv.url }).stream!(CONVERSATION, undefined, (d) => deltas.push(d));
    expect(reply).toEqual({ text: 'Hola, ¿qué tal?', usage: { promptTokens: 9, completionTokens: 4 } });
    expect(deltas).toEqual(['Hola, ¿qué tal?']);
  });

  it('tts.stream forwards audio before the body ends, and an abort closes the connection', async () => {
    const srv = await tiny((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(Buffer.alloc(4800, 1)); // then nothing more: the rest would come later
    });
    const ctl = new AbortController();
    const got: number[] = [];
    const done = createOpenAiTts({ baseUrl: srv.url }).stream!({ text: 'Hola', language: 'es' }, { signal: ctl.signal }, (chunk, rate) => {
      got.push(chunk.length);
      expect(rate).toBe(24_000);
      ctl.abort(new Error('cancelled by the learner'));
    });
    await expect(done).rejects.toThrow('cancelled by the learner');
    expect(got.reduce((a, b) => a + b, 0)).toBe(4800);
    await srv.socketClosed();
  });

  it('tts.stream waits for the sink before reading on (backpressure)', async () => {
    const srv = await tiny((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(Buffer.alloc(1000, 1));
      setTimeout(() => res.end(Buffer.alloc(1000, 2)), 30); // a second chunk, sent while the sink waits
    });
    let releaseSink!: () => void;
    const calls: number[] = [];
    const done = createOpenAiTts({ baseUrl: srv.url }).stream!({ text: 'Hola', language: 'es' }, undefined, (chunk) => {
      calls.push(chunk[0]!);
      if (calls.length === 1) return new Promise<void>((r) => (releaseSink = r));
      return undefined;
    });
    await vi.waitFor(() => expect(calls).toEqual([1]));
    await new Promise((r) => setTimeout(r, 150)); // the second chunk was sent meanwhile, and must wait
    expect(calls).toEqual([1]);
    releaseSink();
    await done;
    expect(calls).toEqual([1, 2]);
  });
});
