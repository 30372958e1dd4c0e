/**
 * The simulator server against real HTTP on port 0 (real time, short timings; exact timings are
 * asserted on virtual time in streaming.test.ts): OpenAI's streaming shape, chunked speech, a
 * client leaving mid-answer, tokens per minute and the x-ratelimit headers.
 */
import { request } from 'undici';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SIMULATED_TTS_SAMPLE_RATE } from '../../../src/simulator/index.js';
import { formatResetDuration } from '../../../src/simulator/server-limits.js';
import { startSimUpstream, type SimUpstream, type SimUpstreamOptions } from '../../../src/simulator/server.js';
import { synthesizeSpeech } from '../../../src/simulator/speech-synth.js';
import { promptTokens } from '../../../src/simulator/tokens.js';
import { readChatStream } from '../../../src/upstream/openai/chat-stream.js';
import type { ChatMessage } from '../../../src/upstream/provider.js';

const sims: SimUpstream[] = [];
afterEach(async () => {
  await Promise.all(sims.splice(0).map((s) => s.close()));
});
async function sim(opts: SimUpstreamOptions = {}): Promise<SimUpstream> {
  const s = await startSimUpstream({ port: 0, ...opts });
  sims.push(s);
  return s;
}

const MESSAGES: ChatMessage[] = [
  { role: 'system', content: 'You are a friendly speaking tutor. Answer in es, in one to three short sentences. Scenario: ordering coffee.' },
  { role: 'user', content: 'Hola, quisiera un café con leche.' },
];

function post(s: SimUpstream, path: string, body: unknown, signal?: AbortSignal) {
  return request(`${s.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...(signal ? { signal } : {}) });
}

interface Completion {
  choices: { message: { content: string }; finish_reason: string }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

async function complete(s: SimUpstream, extra: Record<string, unknown> = {}): Promise<Completion> {
  const res = await post(s, '/chat/completions', { model: 'm', messages: MESSAGES, ...extra });
  expect(res.statusCode).toBe(200);
  return (await res.body.json()) as Completion;
}

/** The `data:` payloads of an SSE body, in order. */
function events(text: string): string[] {
  return text.split('\n\n').filter((e) => e.length > 0).map((e) => {
    expect(e.startsWith('data: ')).toBe(true);
    return e.slice('data: '.length);
  });
}

describe('POST /chat/completions with stream: true', () => {
  it('answers OpenAI SSE: a role chunk, one chunk a token, finish_reason, the usage chunk, [DONE]', async () => {
    const s = await sim({ firstTokenMs: 5, tokensPerSecond: 500 });
    const whole = await complete(s);
    const res = await post(s, '/chat/completions', { model: 'm', messages: MESSAGES, stream: true, stream_options: { include_usage: true } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    const data = events(await res.body.text());
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as Record<string, unknown> & { choices: { index: number; delta: Record<string, string>; finish_reason: string | null }[] });
    const [role, ...rest] = chunks;
    const usage = rest.pop()!;
    const finish = rest.pop()!;
    expect(role).toMatchObject({ object: 'chat.completion.chunk', model: 'm', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }], usage: null });
    expect(rest.length).toBeGreaterThan(5);
    for (const c of rest) expect(c).toMatchObject({ id: role!.id, choices: [{ index: 0, finish_reason: null }], usage: null });
    expect(rest.map((c) => c.choices[0]!.delta.content).join('')).toBe(whole.choices[0]!.message.content);
    expect(finish).toMatchObject({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
    expect(usage).toMatchObject({ choices: [], usage: { prompt_tokens: promptTokens(MESSAGES), completion_tokens: rest.length, total_tokens: promptTokens(MESSAGES) + rest.length } });
    expect(whole.usage).toEqual(usage.usage);
  });

  it('sends no usage chunk (and no usage fields) unless include_usage is asked for', async () => {
    const s = await sim();
    const res = await post(s, '/chat/completions', { model: 'm', messages: MESSAGES, stream: true });
    const data = events(await res.body.text());
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as Record<string, unknown>);
    expect(chunks.every((c) => !('usage' in c))).toBe(true);
    expect(chunks.at(-1)).toMatchObject({ choices: [{ finish_reason: 'stop' }] });
  });

  it('is read by the gateway’s SSE reader: the deltas make the reply, then the usage', async () => {
    const s = await sim({ tokensPerSecond: 1000 });
    const whole = await complete(s);
    const res = await post(s, '/chat/completions', { model: 'm', messages: MESSAGES, stream: true, stream_options: { include_usage: true } });
    let text = '';
    const usages: unknown[] = [];
    for await (const e of readChatStream(res.body, 'conversation', 1 << 20)) {
      if (e.type === 'delta') text += e.text;
      else usages.push(e.usage);
    }
    expect(text).toBe(whole.choices[0]!.message.content);
    expect(usages).toEqual([{ promptTokens: whole.usage.prompt_tokens, completionTokens: whole.usage.completion_tokens }]);
  });

  it('cuts the reply at max_tokens with finish_reason "length", streamed or not', async () => {
    const s = await sim();
    const whole = await complete(s, { max_tokens: 3 });
    expect(whole.choices[0]!.finish_reason).toBe('length');
    expect(whole.usage.completion_tokens).toBe(3);
    const res = await post(s, '/chat/completions', { model: 'm', messages: MESSAGES, stream: true, max_completion_tokens: 3 });
    const chunks = events(await res.body.text()).slice(0, -1).map((d) => JSON.parse(d) as { choices: { delta: { content?: string }; finish_reason: string | null }[] });
    expect(chunks.filter((c) => c.choices[0]!.delta.content)).toHaveLength(3);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('length');
    expect((await post(s, '/chat/completions', { messages: MESSAGES, max_tokens: 0 })).statusCode).toBe(400);
    expect((await post(s, '/chat/completions', { messages: MESSAGES, stream: 'yes' })).statusCode).toBe(400);
  });

  it('delivers the first tokens while the rest are still being made', async () => {
    const s = await sim({ firstTokenMs: 0, tokensPerSecond: 50 }); // 20 ms a token
    const res = await post(s, '/chat/completions', { model: 'm', messages: MESSAGES, stream: true });
    const body = res.body[Symbol.asyncIterator]();
    const first = await body.next();
    expect(String(first.value)).toContain('"content":');
    expect(s.stats()).toMatchObject({ inFlight: 1, ok: 0 });
    for (let next = await body.next(); !next.done; next = await body.next());
    await vi.waitFor(() => expect(s.stats()).toMatchObject({ inFlight: 0, ok: 1 }));
  });

  it('stops at once when the client leaves mid-stream: counted as aborted, only the tokens made counted', async () => {
    const s = await sim({ firstTokenMs: 0, tokensPerSecond: 50 });
    const whole = await complete(await sim()); // the same reply, from an instant twin
    const ctl = new AbortController();
    const res = await post(s, '/chat/completions', { model: 'm', messages: MESSAGES, stream: true }, ctl.signal);
    const body = res.body[Symbol.asyncIterator]();
    await body.next();
    ctl.abort();
    await vi.waitFor(() => expect(s.stats()).toMatchObject({ aborted: 1, inFlight: 0, ok: 0 }));
    // The usage is counted once, when the answer ends: fewer tokens than the whole reply means the
    // stream ended at the abort, not at its natural end.
    await vi.waitFor(() => expect(s.tokens().prompt).toBe(whole.usage.prompt_tokens));
    expect(s.tokens().completion).toBeGreaterThanOrEqual(1);
    expect(s.tokens().completion).toBeLessThan(whole.usage.completion_tokens);
  });

  it('answers plain JSON with usage when stream is absent, after the last token is due', async () => {
    const s = await sim({ tokensPerSecond: 1000 });
    const res = await complete(s);
    expect(res).toMatchObject({ object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant' }, finish_reason: 'stop' }] });
    expect(res.usage.total_tokens).toBe(res.usage.prompt_tokens + res.usage.completion_tokens);
    expect(s.tokens()).toMatchObject({ prompt: res.usage.prompt_tokens, completion: res.usage.completion_tokens, total: res.usage.total_tokens });
  });
});

describe('POST /audio/speech', () => {
  const input = 'Claro que sí. Un café con leche cuesta dos euros.';
  const audio = synthesizeSpeech(input, { sampleRate: SIMULATED_TTS_SAMPLE_RATE, language: 'es' });

  it('streams the PCM body chunked as it is synthesized: the first bytes come while the rest is made', async () => {
    const s = await sim({ firstByteMs: 0, realTimeFactor: 5 }); // a 100 ms chunk every 20 ms
    const res = await post(s, '/audio/speech', { input, response_format: 'pcm', language: 'es' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('audio/pcm');
    expect(res.headers['content-length']).toBeUndefined();
    expect(res.headers['transfer-encoding']).toBe('chunked');
    const parts: Buffer[] = [];
    let duringStream: ReturnType<SimUpstream['stats']> | undefined;
    for await (const part of res.body) {
      parts.push(part as Buffer);
      duringStream ??= s.stats();
    }
    expect(duringStream).toMatchObject({ inFlight: 1, ok: 0 });
    expect(Buffer.concat(parts).equals(audio)).toBe(true);
    await vi.waitFor(() => expect(s.stats()).toMatchObject({ inFlight: 0, ok: 1 }));
  });

  it('stops at once when the client leaves mid-body, counted as aborted', async () => {
    const s = await sim({ firstByteMs: 0, realTimeFactor: 2 });
    const ctl = new AbortController();
    const res = await post(s, '/audio/speech', { input, response_format: 'pcm', language: 'es' }, ctl.signal);
    await res.body[Symbol.asyncIterator]().next();
    ctl.abort();
    await vi.waitFor(() => expect(s.stats()).toMatchObject({ aborted: 1, inFlight: 0, ok: 0 }));
  });

  it('answers wav whole, the same audio in a WAV file', async () => {
    const s = await sim({ realTimeFactor: 50 });
    const res = await post(s, '/audio/speech', { input, response_format: 'wav', language: 'es' });
    expect(res.headers['content-type']).toBe('audio/wav');
    const wav = Buffer.from(await res.body.arrayBuffer());
    expect(Number(res.headers['content-length'])).toBe(wav.length);
    expect(wav.subarray(wav.length - audio.length).equals(audio)).toBe(true);
  });

  it('holds its concurrency slot until the body ends', async () => {
    const s = await sim({ concurrency: 1, firstByteMs: 0, realTimeFactor: 5 });
    const res = await post(s, '/audio/speech', { input, response_format: 'pcm', language: 'es' });
    const body = res.body[Symbol.asyncIterator]();
    await body.next();
    const second = await post(s, '/chat/completions', { messages: MESSAGES });
    expect(second.statusCode).toBe(429);
    await second.body.dump();
    for (let next = await body.next(); !next.done; next = await body.next());
    await vi.waitFor(() => expect(s.stats().inFlight).toBe(0));
    expect((await post(s, '/chat/completions', { messages: MESSAGES })).statusCode).toBe(200);
  });
});

describe('tokens per minute and the x-ratelimit headers', () => {
  it('refuses chat while the last 60 s of reported usage reach tokensPerMinute, with Retry-After until it falls below', async () => {
    let t = 0;
    const s = await sim({ tokensPerMinute: 40, now: () => t });
    const first = await complete(s); // counted at its end, at t = 0
    expect(first.usage.total_tokens).toBeGreaterThanOrEqual(40);
    t = 10_000;
    const refused = await post(s, '/chat/completions', { messages: MESSAGES });
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBe('50');
    expect(refused.headers['retry-after-ms']).toBe('50000');
    expect(refused.headers['x-ratelimit-remaining-tokens']).toBe('0');
    expect(refused.headers['x-ratelimit-reset-tokens']).toBe('50s');
    expect(await refused.body.json()).toMatchObject({ error: { type: 'rate_limit', code: 'rate_limit_exceeded', message: expect.stringMatching(/tokens per min \(TPM\): Limit 40/) } });
    // Other routes are not limited by tokens.
    expect((await post(s, '/audio/speech', { input: 'Hola.', response_format: 'pcm' })).statusCode).toBe(200);
    t = 60_000;
    await complete(s);
    expect(s.stats()).toMatchObject({ rejected429: 1 });
    expect(s.tokens()).toMatchObject({ total: 2 * first.usage.total_tokens, inWindow: first.usage.total_tokens, peakPerMinute: first.usage.total_tokens });
  });

  it('records the peak per minute when answers admitted below the limit take the count above it', async () => {
    let t = 0;
    const s = await sim({ tokensPerMinute: 1000, now: () => t });
    const a = await complete(s);
    t = 30_000;
    const b = await complete(s);
    t = 70_000;
    await complete(s);
    expect(s.tokens().peakPerMinute).toBe(a.usage.total_tokens + b.usage.total_tokens);
  });

  it('sends the requests and tokens headers on every chat answer, streamed or not', async () => {
    let t = 0;
    const s = await sim({ rpm: 10, tokensPerMinute: 1000, now: () => t });
    const a = await post(s, '/chat/completions', { messages: MESSAGES });
    const used = ((await a.body.json()) as Completion).usage.total_tokens;
    expect(a.headers).toMatchObject({
      'x-ratelimit-limit-requests': '10',
      'x-ratelimit-remaining-requests': '9',
      'x-ratelimit-reset-requests': '1m0s',
      'x-ratelimit-limit-tokens': '1000',
      'x-ratelimit-remaining-tokens': String(1000 - used), // counted before the JSON answer leaves
      'x-ratelimit-reset-tokens': '1m0s',
    });
    t = 59_650;
    const b = await post(s, '/chat/completions', { messages: MESSAGES, stream: true });
    await b.body.text();
    expect(b.headers).toMatchObject({
      'x-ratelimit-remaining-requests': '8',
      'x-ratelimit-reset-requests': '1m0s',
      'x-ratelimit-remaining-tokens': String(1000 - used), // a stream's headers leave before its usage is counted
      'x-ratelimit-reset-tokens': '350ms',
    });
    const speech = await post(s, '/audio/speech', { input: 'Hola.', response_format: 'pcm' });
    await speech.body.dump();
    expect(speech.headers['x-ratelimit-remaining-requests']).toBe('7');
    expect(speech.headers['x-ratelimit-limit-tokens']).toBeUndefined();
  });

  it('GET /stats/tokens reports the counts and POST /stats/reset zeroes them', async () => {
    const s = await sim();
    const a = await complete(s);
    const res = await request(`${s.url.replace(/\/v1$/, '')}/stats/tokens`);
    expect(await res.body.json()).toEqual({ prompt: a.usage.prompt_tokens, completion: a.usage.completion_tokens, total: a.usage.total_tokens, inWindow: a.usage.total_tokens, peakPerMinute: a.usage.total_tokens });
    await (await request(`${s.url}/stats/reset`, { method: 'POST' })).body.dump();
    expect(s.tokens()).toMatchObject({ prompt: 0, completion: 0, total: 0 });
    expect(s.stats().requests).toBe(0);
  });

  it('refuses invalid timing and token options, naming the option', async () => {
    await expect(startSimUpstream({ tokensPerMinute: 0 })).rejects.toThrow(/tokensPerMinute must be an integer >= 1, got 0/);
    await expect(startSimUpstream({ realTimeFactor: 0 })).rejects.toThrow(/realTimeFactor must be a finite number > 0, got 0/);
    await expect(startSimUpstream({ firstTokenMs: -1 })).rejects.toThrow(/firstTokenMs must be a finite number >= 0, got -1/);
  });

  it('writes reset durations as OpenAI does (Go durations)', () => {
    expect([0, 0.2, 350, 999, 1000, 1500, 6857, 59_973, 60_000, 90_061, 360_000, 3_600_000, 3_723_000].map(formatResetDuration)).toEqual([
      '0s', '1ms', '350ms', '999ms', '1s', '1.5s', '6.857s', '59.973s', '1m0s', '1m30.061s', '6m0s', '1h0m0s', '1h2m3s',
    ]);
  });
});
