/**
 * The streaming, cancellable turn end to end (issue 13 "What must be shown"; CONTRACT §6): the real
 * app on port 0 in real time (real sockets pace these tests), real ws clients, and real HTTP
 * upstreams: a scripted server where a test needs exact control of what the upstream sends and
 * when (it holds an answer on a gate until the test has seen what it waits for), and the
 * simulator server with a timing profile and its own limits.
 *
 * No sleeps: every wait is a condition (`until`, `waitFor`) on what the client or the upstream saw.
 */
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerEvent } from '../../src/protocol/messages.js';
import { startSimUpstream, type SimUpstream } from '../../src/simulator/server.js';
import { startApp, until, type TestApp } from '../helpers/app.js';
import type { TestClient } from '../helpers/client.js';
import { gate, type Gate } from '../helpers/gate.js';
import { chatMessages, chatStream, normalAnswer, openAiUpstreams, pcm24k, pcmStream, startScriptedUpstream, type ScriptedUpstream, type SeenRequest } from '../helpers/upstream.js';

let t: TestApp | undefined;
let up: ScriptedUpstream | undefined;
const sims: SimUpstream[] = [];
afterEach(async () => {
  await t?.close();
  await up?.close();
  await Promise.all(sims.splice(0).map((s) => s.close()));
  t = up = undefined;
});

const CHAT = '/chat/completions';
const TTS = '/audio/speech';
const STT = '/audio/transcriptions';
/** The governor's concurrency lease of the scripted upstreams' account (openAiUpstreams: "shared"). */
const LEASE = 'up:{shared}:conc';

const calls = (path: string): SeenRequest[] => up!.seen.filter((r) => r.path.endsWith(path));
/** The chat request whose last message is the learner's `text`. */
const chatFor = (text: string): SeenRequest | undefined => calls(CHAT).find((r) => chatMessages(r).at(-1)?.content === text);
const ttsInputs = (): string[] => calls(TTS).map((r) => String(r.json?.input));
const leases = (): Promise<number> => t!.app.gateway.store.countLeases(LEASE);
const requestId = (e: ServerEvent | Buffer): unknown => (Buffer.isBuffer(e) ? undefined : (e as { request_id?: unknown }).request_id);

/** Answers a chat request with `reply` streamed in `pieces`, a TTS request with `ms` of audio per input. */
function streamedAnswer(req: SeenRequest, res: ServerResponse, pieces: readonly string[], ttsMs: (input: string) => number = () => 200): void {
  if (req.path.endsWith(CHAT)) {
    const s = chatStream(res);
    for (const p of pieces) s.delta(p);
    s.end();
  } else if (req.path.endsWith(TTS)) {
    pcmStream(res);
    res.end(pcm24k(ttsMs(String(req.json?.input))));
  } else normalAnswer(req, res);
}

/** One second of PCM16 16 kHz for an audio turn. */
const utterance = (): Buffer => Buffer.alloc(32_000, 1);

/**
 * The `request.cancelled` of `id`, with nothing of that request after it: no event naming it, and
 * no binary frame before the next reply's `reply.audio.start` (binary frames carry no request id;
 * audio of the next reply follows its own start).
 */
function expectNothingAfterCancel(c: TestClient, id: string): void {
  const at = c.order.findIndex((e) => !Buffer.isBuffer(e) && e.type === 'request.cancelled' && e.request_id === id);
  expect(at, `request.cancelled for ${id}`).toBeGreaterThanOrEqual(0);
  const after = c.order.slice(at + 1);
  expect(after.filter((e) => requestId(e) === id)).toEqual([]);
  const nextStart = after.findIndex((e) => !Buffer.isBuffer(e) && e.type === 'reply.audio.start');
  expect((nextStart < 0 ? after : after.slice(0, nextStart)).filter((e) => Buffer.isBuffer(e))).toEqual([]);
  expect(c.of('request.cancelled').filter((e) => e.request_id === id)).toHaveLength(1);
}

/** The value of a Prometheus sample line (`name{labels} value`), or undefined when absent. */
async function metric(line: string): Promise<number | undefined> {
  const text = await (await t!.rest('GET', '/metrics')).text();
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

describe('a streamed reply', () => {
  it('sends reply.text.delta as the model streams; the deltas concatenate to reply.text, which comes once', async () => {
    // Pieces cut inside words and inside a two-byte character, as a tokenizer cuts them.
    const pieces = ['Muy', ' bi', 'en. ¿Y q', 'u', 'é más qu', 'ieres? Tenemos ca', 'fé y té.'];
    up = await startScriptedUpstream((req, res) => streamedAnswer(req, res, pieces));
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(up.url) });
    const c = await t.session();
    c.send({ type: 'turn.text', id: 'a', text: 'Hola' });
    await c.waitFor('turn.metrics');
    const deltas = c.of('reply.text.delta');
    expect(deltas.map((d) => d.delta)).toEqual(pieces);
    expect(c.of('reply.text')).toEqual([{ type: 'reply.text', request_id: 'a', text: pieces.join('') }]);
    // The request asked for a stream with usage (CONTRACT §6).
    expect(calls(CHAT)[0]!.json).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(c.invalid).toEqual([]);
  });

  it('against the simulator on a timing profile: deltas arrive over time and concatenate to reply.text', async () => {
    const sim = await startSimUpstream({ firstTokenMs: 20, tokensPerSecond: 200, firstByteMs: 10, realTimeFactor: 20, latencyMs: 10 });
    sims.push(sim);
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(sim.url) });
    const c = await t.session();
    c.send({ type: 'turn.text', id: 'a', text: 'Hola, quiero un café con leche' });
    const metrics = await c.waitFor('turn.metrics', () => true, 15_000);
    const deltas = c.of('reply.text.delta');
    expect(deltas.length).toBeGreaterThan(3);
    expect(deltas.map((d) => d.delta).join('')).toBe(c.of('reply.text')[0]!.text);
    expect(c.of('reply.text')).toHaveLength(1);
    expect(metrics.first_token_ms).toBeGreaterThanOrEqual(20);
    expect(metrics.first_audio_ms).toBeGreaterThan(metrics.first_token_ms!);
    expect(c.of('reply.audio.end')[0]!.bytes).toBe(c.audioBytes());
  });

  it('a plain JSON chat answer (a server that does not stream) is one delta and the turn is answered', async () => {
    up = await startScriptedUpstream((req, res) => normalAnswer(req, res, 'Muy bien. ¿Y qué más quieres?'));
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(up.url) });
    const c = await t.session();
    c.send({ type: 'turn.text', id: 'a', text: 'Hola' });
    const metrics = await c.waitFor('turn.metrics');
    expect(c.of('reply.text.delta').map((d) => d.delta)).toEqual(['Muy bien. ¿Y qué más quieres?']);
    expect(c.of('reply.text')[0]!.text).toBe('Muy bien. ¿Y qué más quieres?');
    // The first sentence alone, then the rest.
    expect(ttsInputs()).toEqual(['Muy bien.', '¿Y qué más quieres?']);
    expect(metrics.tts_requests).toBe(2);
    expect(c.of('reply.audio.end')[0]!.bytes).toBe(c.audioBytes());
    expect(c.of('error')).toEqual([]);
  });
});

describe('speech while the reply streams', () => {
  it('the first TTS request is the first sentence, sent while the model is still writing; 3.50 and Dr. are not sentence ends', async () => {
    const ttsSeen = gate();
    up = await startScriptedUpstream(async (req, res) => {
      if (req.path.endsWith(TTS)) ttsSeen.open();
      if (!req.path.endsWith(CHAT)) return streamedAnswer(req, res, []);
      const s = chatStream(res);
      for (const p of ['Claro', ' que sí', '. El']) s.delta(p);
      // The model holds its next token until the gateway has asked for the first sentence's speech.
      await ttsSeen.wait;
      for (const p of [' Dr', '. García cobra 3', '.', '50 euros', '. ¿Algo', ' más?']) s.delta(p);
      s.end();
    });
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(up.url) });
    const c = await t.session();
    c.send({ type: 'turn.text', id: 'a', text: 'Hola' });
    await c.waitFor('turn.metrics');
    // Reaching here proves the order: the chat stream could not end before the first TTS request.
    expect(ttsInputs()).toEqual(['Claro que sí.', 'El Dr. García cobra 3.50 euros. ¿Algo más?']);
    expect(calls(CHAT)[0]!.answered).toBe(true);
    expect(c.of('reply.text')[0]!.text).toBe('Claro que sí. El Dr. García cobra 3.50 euros. ¿Algo más?');
  });

  it('audio reaches the client before the TTS body ends', async () => {
    const heard = gate();
    let speech: SeenRequest | undefined;
    up = await startScriptedUpstream(async (req, res) => {
      if (!req.path.endsWith(TTS)) return streamedAnswer(req, res, ['Hola.']);
      speech = req;
      pcmStream(res);
      const body = pcm24k(1000);
      res.write(body.subarray(0, 9_600));
      await heard.wait; // the rest only once the client has received audio
      res.end(body.subarray(9_600));
    });
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(up.url) });
    const c = await t.session();
    c.send({ type: 'turn.text', id: 'a', text: 'Hola' });
    await until(() => c.audio.length > 0, 5000, 'a binary frame at the client');
    expect(speech!.answered).toBe(false); // the TTS body has not ended
    expect(c.of('reply.audio.start')).toHaveLength(1);
    expect(c.of('reply.audio.end')).toEqual([]);
    heard.open();
    const end = await c.waitFor('reply.audio.end');
    expect(end.bytes).toBe(48_000);
    expect(c.audioBytes()).toBe(48_000);
    expect(c.audio.every((f) => f.length <= 32 * 1024 && f.length % 2 === 0)).toBe(true);
  });
});
