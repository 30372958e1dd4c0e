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
import type { LimitSpec } from '../../src/limits/spec.js';
import type { Decision } from '../../src/limits/decision.js';
import type { ServerEvent } from '../../src/protocol/messages.js';
import { MemoryStore } from '../../src/store/memory.js';
import { startSimUpstream, type SimUpstream } from '../../src/simulator/server.js';
import { startApp, until, type TestApp } from '../helpers/app.js';
import type { TestClient } from '../helpers/client.js';
import { gate } from '../helpers/gate.js';
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

/**
 * Answers a streamed chat request with `pieces`, a TTS request with `ttsMs(input)` of audio, and
 * the rest (translations ask for plain JSON, transcriptions) as normal.
 */
function streamedAnswer(req: SeenRequest, res: ServerResponse, pieces: readonly string[], ttsMs: (input: string) => number = () => 200): void {
  if (req.path.endsWith(CHAT) && req.json?.stream === true) {
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

describe('cancel at each stage', () => {
  it('waiting behind an earlier request: stage waiting, the upstream never sees it, nothing follows, the earlier one is answered', async () => {
    const hold = gate();
    up = await startScriptedUpstream(async (req, res) => {
      if (req.path.endsWith(CHAT) && chatMessages(req).at(-1)?.content === 'primero') await hold.wait;
      streamedAnswer(req, res, ['Vale.']);
    });
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(up.url) });
    const c = await t.session();
    c.send({ type: 'turn.text', id: 'a', text: 'primero' });
    c.send({ type: 'turn.text', id: 'b', text: 'segundo' });
    await until(() => chatFor('primero') !== undefined, 5000, 'the first turn at the upstream');
    c.send({ type: 'cancel', request_id: 'b' });
    expect(await c.waitFor('request.cancelled')).toEqual({ type: 'request.cancelled', request_id: 'b', stage: 'waiting', audio_bytes_sent: 0, kept_text: '' });
    hold.open();
    await c.waitFor('turn.metrics', (e) => e.request_id === 'a');
    c.send({ type: 'turn.text', id: 'c', text: 'tercero' });
    await c.waitFor('turn.metrics', (e) => e.request_id === 'c');
    expect(chatFor('segundo')).toBeUndefined();
    expectNothingAfterCancel(c, 'b');
    // The cancelled turn left nothing in the history.
    expect(chatMessages(chatFor('tercero')!).slice(1)).toEqual([
      { role: 'user', content: 'primero' },
      { role: 'assistant', content: 'Vale.' },
      { role: 'user', content: 'tercero' },
    ]);
    expect(c.of('turn.metrics').map((m) => m.request_id)).toEqual(['a', 'c']);
    expect(await metric('parley_turns_cancelled_total{stage="waiting"}')).toBe(1);
  });

  it('queued at a full upstream: stage queued, its queue place is given up, the upstream never sees it, the holder keeps its lease', async () => {
    const hold = gate();
    up = await startScriptedUpstream(async (req, res) => {
      if (req.path.endsWith(CHAT) && chatMessages(req).at(-1)?.content === 'ocupado') await hold.wait;
      streamedAnswer(req, res, ['Vale.']);
    });
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(up.url, { concurrency: 1 }) });
    const holder = await t.session();
    holder.send({ type: 'turn.text', id: 'h', text: 'ocupado' });
    await until(() => chatFor('ocupado') !== undefined, 5000, 'the holder at the upstream');
    const c = await t.session();
    c.send({ type: 'turn.text', id: 'q', text: 'en cola' });
    expect(await c.waitFor('request.queued')).toEqual({ type: 'request.queued', request_id: 'q', position: 1 });
    c.send({ type: 'cancel', request_id: 'q' });
    expect(await c.waitFor('request.cancelled')).toEqual({ type: 'request.cancelled', request_id: 'q', stage: 'queued', audio_bytes_sent: 0, kept_text: '' });
    expect(await leases()).toBe(1); // the holder's only
    hold.open();
    await holder.waitFor('turn.metrics');
    c.send({ type: 'turn.text', id: 'n', text: 'siguiente' });
    await c.waitFor('turn.metrics', (e) => e.request_id === 'n');
    expect(chatFor('en cola')).toBeUndefined();
    expectNothingAfterCancel(c, 'q');
    expect(c.of('turn.metrics').map((m) => m.request_id)).toEqual(['n']);
    expect(await leases()).toBe(0);
    expect(await metric('parley_turns_cancelled_total{stage="queued"}')).toBe(1);
  });

  it('running in speech-to-text: stage running, the upstream sees the abort, the lease is free at once, neither message is kept', async () => {
    up = await startScriptedUpstream((req, res) => {
      if (req.path.endsWith(STT)) return; // transcribes forever
      streamedAnswer(req, res, ['Vale.']);
    });
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(up.url, { concurrency: 1 }) });
    const c = await t.session();
    c.sendBinary(utterance());
    c.send({ type: 'input_audio.commit', id: 's', purpose: 'turn' });
    await until(() => calls(STT).length === 1, 5000, 'the STT call at the upstream');
    c.send({ type: 'cancel', request_id: 's', played_ms: 0 });
    expect(await c.waitFor('request.cancelled')).toEqual({ type: 'request.cancelled', request_id: 's', stage: 'running', audio_bytes_sent: 0, kept_text: '' });
    expect(await leases()).toBe(0);
    await until(() => calls(STT)[0]!.aborted, 5000, 'the upstream seeing the abort');
    // The one slot is free: the next call starts without queueing.
    c.send({ type: 'turn.text', id: 'n', text: 'siguiente' });
    await c.waitFor('turn.metrics', (e) => e.request_id === 'n');
    expect(c.of('request.queued')).toEqual([]);
    expect(c.of('transcript')).toEqual([]);
    expectNothingAfterCancel(c, 's');
    expect(chatMessages(chatFor('siguiente')!).slice(1)).toEqual([{ role: 'user', content: 'siguiente' }]);
    expect(await metric('parley_turns_cancelled_total{stage="running"}')).toBe(1);
  });

  it('running in the chat stream: stage running, the stream is aborted, the lease is free at once, no empty assistant message is kept', async () => {
    const hold = gate();
    up = await startScriptedUpstream(async (req, res) => {
      if (!req.path.endsWith(CHAT) || chatMessages(req).at(-1)?.content !== 'primero') return streamedAnswer(req, res, ['Vale.']);
      const s = chatStream(res);
      s.delta('Hola, ');
      s.delta('qué tal');
      await hold.wait; // then tries to go on: nothing of it may reach the learner
      s.delta(' estás. Bien.');
      s.end();
    });
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(up.url, { concurrency: 1 }) });
    const c = await t.session();
    c.send({ type: 'turn.text', id: 'a', text: 'primero' });
    await until(() => c.of('reply.text.delta').length === 2, 5000, 'two deltas');
    c.send({ type: 'cancel', request_id: 'a' });
    expect(await c.waitFor('request.cancelled')).toEqual({ type: 'request.cancelled', request_id: 'a', stage: 'running', audio_bytes_sent: 0, kept_text: '' });
    expect(await leases()).toBe(0);
    await until(() => chatFor('primero')!.aborted, 5000, 'the upstream seeing the abort');
    hold.open();
    c.send({ type: 'turn.text', id: 'n', text: 'segundo' });
    await c.waitFor('turn.metrics', (e) => e.request_id === 'n');
    expect(c.of('request.queued')).toEqual([]);
    expectNothingAfterCancel(c, 'a');
    expect(c.of('reply.text').map((e) => e.request_id)).toEqual(['n']);
    expect(chatMessages(chatFor('segundo')!).slice(1)).toEqual([
      { role: 'user', content: 'primero' },
      { role: 'user', content: 'segundo' },
    ]);
  });

  it('speaking: stage speaking, the chat stream and the TTS body are both aborted, both leases are free at once, the history keeps the sentence sent', async () => {
    const hold = gate();
    up = await startScriptedUpstream(async (req, res) => {
      const held = chatMessages(req).at(-1)?.content === 'primero' || String(req.json?.input) === 'Hola.';
      if (!held) return streamedAnswer(req, res, ['Vale.']);
      if (req.path.endsWith(CHAT)) {
        // The model is still writing while the first sentence is spoken (pipecat #950: stop both).
        const s = chatStream(res);
        s.delta('Hola.');
        s.delta(' Y');
        await hold.wait;
        s.delta(' adiós.');
        s.end();
        return;
      }
      pcmStream(res);
      res.write(pcm24k(100));
      await hold.wait;
      if (!res.destroyed) res.end(pcm24k(400));
    });
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(up.url, { concurrency: 2 }) });
    const c = await t.session();
    c.send({ type: 'turn.text', id: 'a', text: 'primero' });
    await until(() => c.audioBytes() === 4_800, 5000, '100 ms of audio at the client');
    expect(await leases()).toBe(2);
    c.send({ type: 'cancel', request_id: 'a' });
    expect(await c.waitFor('request.cancelled')).toEqual({ type: 'request.cancelled', request_id: 'a', stage: 'speaking', audio_bytes_sent: 4_800, kept_text: 'Hola.' });
    expect(await leases()).toBe(0);
    await until(() => chatFor('primero')!.aborted && calls(TTS)[0]!.aborted, 5000, 'the upstream seeing both aborts');
    hold.open();
    c.send({ type: 'turn.text', id: 'n', text: 'segundo' });
    await c.waitFor('turn.metrics', (e) => e.request_id === 'n');
    expect(c.of('request.queued')).toEqual([]);
    expectNothingAfterCancel(c, 'a');
    expect(c.of('reply.audio.end').map((e) => e.request_id)).toEqual(['n']);
    expect(c.of('turn.metrics').map((e) => e.request_id)).toEqual(['n']);
    expect(chatMessages(chatFor('segundo')!).slice(1)).toEqual([
      { role: 'user', content: 'primero' },
      { role: 'assistant', content: 'Hola.' },
      { role: 'user', content: 'segundo' },
    ]);
    expect(await metric('parley_turns_cancelled_total{stage="speaking"}')).toBe(1);
  });

  it('speaking, against the simulator streaming speech at real time: its aborted count shows the cancel, its slots are free', async () => {
    const sim = await startSimUpstream({ firstByteMs: 10, realTimeFactor: 1 });
    sims.push(sim);
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(sim.url, { concurrency: 2 }) });
    const c = await t.session();
    c.send({ type: 'turn.text', id: 'a', text: 'Hola, quiero un café con leche' });
    await until(() => c.audio.length > 0, 5000, 'audio at the client');
    c.send({ type: 'cancel', request_id: 'a', played_ms: 50 });
    const cancelled = await c.waitFor('request.cancelled');
    expect(cancelled).toMatchObject({ request_id: 'a', stage: 'speaking' });
    expect(cancelled.audio_bytes_sent).toBe(c.audioBytes());
    expect(await leases()).toBe(0);
    await until(() => sim.stats().aborted >= 1 && sim.stats().inFlight === 0, 5000, 'the simulator seeing the abort');
    // A translation speaks nothing, so it is quick on this real-time profile; it shows the session goes on.
    c.send({ type: 'translate', id: 'n', text: 'thank you', target_language: 'es' });
    await c.waitFor('translation.result', (e) => e.request_id === 'n', 10_000);
    expectNothingAfterCancel(c, 'a');
  });

  it('done: a cancel after reply.audio.end truncates the history to what was heard; the turn keeps its turn.metrics and is not counted as cancelled', async () => {
    up = await startScriptedUpstream((req, res) => streamedAnswer(req, res, ['Hola. ¿Qué tal? Muy bien.'], (input) => (input === 'Hola.' ? 500 : 950)));
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(up.url) });
    const c = await t.session();
    c.send({ type: 'turn.text', id: 'a', text: 'primero' });
    await c.waitFor('turn.metrics', (e) => e.request_id === 'a');
    c.send({ type: 'cancel', request_id: 'a', played_ms: 700 });
    expect(await c.waitFor('request.cancelled')).toEqual({ type: 'request.cancelled', request_id: 'a', stage: 'done', audio_bytes_sent: 69_600, kept_text: 'Hola. ¿Qué tal?' });
    c.send({ type: 'turn.text', id: 'n', text: 'segundo' });
    await c.waitFor('turn.metrics', (e) => e.request_id === 'n');
    expect(chatMessages(chatFor('segundo')!).slice(1)).toEqual([
      { role: 'user', content: 'primero' },
      { role: 'assistant', content: 'Hola. ¿Qué tal?' },
      { role: 'user', content: 'segundo' },
    ]);
    expect(c.of('turn.metrics').map((e) => e.request_id)).toEqual(['a', 'n']);
    expect(await metric('parley_turns_cancelled_total{stage="done"}')).toBeUndefined();
    expect(await metric('parley_turn_duration_seconds_count')).toBe(2);
  });
});

describe('played_ms: history keeps what the learner heard', () => {
  // "Hola. " is spoken alone in 500 ms; "¿Qué tal? Muy bien." together in 950 ms, so "Muy bien."
  // starts at 500 + 950 × 10/19 = 1000 ms by its share of the request's characters.
  const reply = 'Hola. ¿Qué tal? Muy bien.';
  const ttsMs = (input: string): number => (input === 'Hola.' ? 500 : 950);

  it.each([
    [0, ''],
    [1, 'Hola.'],
    [499, 'Hola.'],
    [500, 'Hola.'],
    [501, 'Hola. ¿Qué tal?'],
    [999, 'Hola. ¿Qué tal?'],
    [1000, 'Hola. ¿Qué tal?'],
    [1001, 'Hola. ¿Qué tal? Muy bien.'],
    [10_000, 'Hola. ¿Qué tal? Muy bien.'], // past what was sent (1450 ms): clamped
    [undefined, 'Hola. ¿Qué tal? Muy bien.'], // no position: the sentences whose audio was sent
  ])('a cancel after reply.audio.end with played_ms %s keeps %j, and the next turn sees exactly that', async (playedMs, kept) => {
    up = await startScriptedUpstream((req, res) => streamedAnswer(req, res, [reply], ttsMs));
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(up.url) });
    const c = await t.session();
    c.send({ type: 'turn.text', id: 'a', text: 'primero' });
    await c.waitFor('reply.audio.end');
    c.send({ type: 'cancel', request_id: 'a', ...(playedMs !== undefined ? { played_ms: playedMs } : {}) });
    expect(await c.waitFor('request.cancelled')).toEqual({ type: 'request.cancelled', request_id: 'a', stage: 'done', audio_bytes_sent: 69_600, kept_text: kept });
    c.send({ type: 'turn.text', id: 'n', text: 'segundo' });
    await c.waitFor('turn.metrics', (e) => e.request_id === 'n');
    expect(chatMessages(chatFor('segundo')!).slice(1)).toEqual([
      { role: 'user', content: 'primero' },
      ...(kept ? [{ role: 'assistant', content: kept }] : []), // an empty kept_text keeps no assistant message
      { role: 'user', content: 'segundo' },
    ]);
  });

  it('while speaking, played_ms past the audio sent is clamped to it: a sentence whose audio had not started is not kept', async () => {
    const hold = gate();
    up = await startScriptedUpstream(async (req, res) => {
      if (!req.path.endsWith(TTS) || String(req.json?.input) === 'Hola.' || chatMessages(req).length > 0) return streamedAnswer(req, res, [reply], ttsMs);
      pcmStream(res);
      res.write(pcm24k(100)); // 100 ms of the second request, then nothing more
      await hold.wait;
      if (!res.destroyed) res.end(pcm24k(850));
    });
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(up.url) });
    const c = await t.session();
    c.send({ type: 'turn.text', id: 'a', text: 'primero' });
    await until(() => c.audioBytes() === 24_000 + 4_800, 5000, '600 ms of audio at the client');
    c.send({ type: 'cancel', request_id: 'a', played_ms: 10_000 });
    expect(await c.waitFor('request.cancelled')).toEqual({ type: 'request.cancelled', request_id: 'a', stage: 'speaking', audio_bytes_sent: 28_800, kept_text: 'Hola. ¿Qué tal?' });
    hold.open();
  });

  it('a negative or non-numeric played_ms is invalid_message and cancels nothing', async () => {
    up = await startScriptedUpstream((req, res) => streamedAnswer(req, res, [reply], ttsMs));
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(up.url) });
    const c = await t.session();
    c.send({ type: 'turn.text', id: 'a', text: 'primero' });
    await c.waitFor('turn.metrics');
    c.send({ type: 'cancel', request_id: 'a', played_ms: -1 });
    c.send({ type: 'cancel', request_id: 'a', played_ms: '500' });
    await until(() => c.of('error').length === 2, 5000, 'two errors');
    expect(c.of('error').map((e) => e.code)).toEqual(['invalid_message', 'invalid_message']);
    expect(c.of('request.cancelled')).toEqual([]);
  });
});

describe('cancels that are ignored', () => {
  it('a cancel of an unknown request, of an earlier finished turn, of a finished translation, or a second one of the latest reply gets no answer and changes nothing', async () => {
    up = await startScriptedUpstream((req, res) => streamedAnswer(req, res, ['Vale.']));
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(up.url) });
    const c = await t.session();
    c.send({ type: 'turn.text', id: 'a', text: 'uno' });
    c.send({ type: 'turn.text', id: 'b', text: 'dos' });
    c.send({ type: 'translate', id: 'tr', text: 'hello', target_language: 'es' });
    await c.waitFor('translation.result');
    c.send({ type: 'cancel', request_id: 'nope' });
    c.send({ type: 'cancel', request_id: 'a', played_ms: 0 }); // finished, and not the latest reply
    c.send({ type: 'cancel', request_id: 'tr' }); // finished, not a reply
    c.send({ type: 'ping', id: 'p1' });
    await c.waitFor('pong', (e) => e.request_id === 'p1');
    expect(c.of('request.cancelled')).toEqual([]);
    // The latest reply is still the one a barge-in can truncate, once.
    c.send({ type: 'cancel', request_id: 'b', played_ms: 0 });
    expect(await c.waitFor('request.cancelled')).toMatchObject({ request_id: 'b', stage: 'done', kept_text: '' });
    c.send({ type: 'cancel', request_id: 'b', played_ms: 5_000 });
    c.send({ type: 'ping', id: 'p2' });
    await c.waitFor('pong', (e) => e.request_id === 'p2');
    expect(c.of('request.cancelled')).toHaveLength(1);
    c.send({ type: 'turn.text', id: 'n', text: 'tres' });
    await c.waitFor('turn.metrics', (e) => e.request_id === 'n');
    expect(chatMessages(chatFor('tres')!).slice(1)).toEqual([
      { role: 'user', content: 'uno' },
      { role: 'assistant', content: 'Vale.' },
      { role: 'user', content: 'dos' },
      { role: 'user', content: 'tres' },
    ]);
    expect(c.of('error')).toEqual([]);
  });
});

describe('cancel racing the request', () => {
  /** The in-memory store whose account quota decision for a turn waits on `quotaGate` while it is set. */
  class HeldQuotaStore extends MemoryStore {
    quotaGate: ReturnType<typeof gate> | undefined;
    /** Turn decisions that have waited on the gate. */
    waiting = 0;
    readonly decided: Decision[] = [];
    override async consume(limits: readonly LimitSpec[], opId: string): Promise<Decision> {
      const held = this.quotaGate;
      if (held && limits.some((l) => l.name === 'account.conversation.turn')) {
        this.waiting++;
        await held.wait;
      }
      const decision = await super.consume(limits, opId);
      if (held) this.decided.push(decision);
      return decision;
    }
  }

  it('a cancel while the quota is being checked, then a refusal: the refusal is not sent after request.cancelled', async () => {
    up = await startScriptedUpstream((req, res) => streamedAnswer(req, res, ['Vale.']));
    const store = new HeldQuotaStore();
    t = await startApp({ realTime: true, store, upstreams: openAiUpstreams(up.url), plan: { requestsPerMinute: { 'conversation.turn': 1 } } });
    const c = await t.session();
    c.send({ type: 'turn.text', id: 'a', text: 'uno' });
    await c.waitFor('turn.metrics');
    store.quotaGate = gate();
    c.send({ type: 'turn.text', id: 'b', text: 'dos' });
    await until(() => store.waiting === 1, 5000, 'the quota check of the second turn');
    c.send({ type: 'cancel', request_id: 'b' });
    expect(await c.waitFor('request.cancelled')).toMatchObject({ request_id: 'b', stage: 'waiting' });
    store.quotaGate.open();
    await until(() => store.decided.length === 1, 5000, 'the quota decision');
    expect(store.decided[0]!.allowed).toBe(false); // the one turn a minute was spent
    c.send({ type: 'ping', id: 'p' });
    await c.waitFor('pong');
    expectNothingAfterCancel(c, 'b');
    expect(c.of('error')).toEqual([]);
    expect(chatFor('dos')).toBeUndefined();
  });
});

describe('a drop mid-turn, then resume', () => {
  it('a turn speaking at the drop is finished and the rest of its answer held for the resume; one waiting behind it never started and is reported upstream_busy', async () => {
    const hold = gate();
    up = await startScriptedUpstream(async (req, res) => {
      if (!req.path.endsWith(TTS) || String(req.json?.input) !== 'Hola.') return streamedAnswer(req, res, ['Hola. ¿Qué tal?'], () => 300);
      pcmStream(res);
      res.write(pcm24k(100));
      await hold.wait; // the rest once the learner's connection is gone
      res.end(pcm24k(400));
    });
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(up.url) });
    const a = await t.session();
    const token = a.of('session.created')[0]!.resume_token;
    a.send({ type: 'turn.text', id: 'speaking', text: 'primero' });
    a.send({ type: 'turn.text', id: 'behind', text: 'segundo' });
    await until(() => a.audioBytes() === 4_800, 5000, 'the first audio');
    a.ws.terminate();
    await a.waitClose();
    await until(() => t!.app.gateway.connections.size === 0, 5000, 'the gateway seeing the drop');
    hold.open();
    await until(() => calls(TTS).length === 2 && calls(TTS).every((r) => r.answered), 5000, 'the turn finishing while detached');
    const b = await t.client();
    b.send({ type: 'session.start', resume_token: token });
    await b.waitFor('session.resumed');
    const end = await b.waitFor('reply.audio.end');
    expect(end).toEqual({ type: 'reply.audio.end', request_id: 'speaking', bytes: 4_800 + 19_200 + 14_400 });
    expect(a.audioBytes() + b.audioBytes()).toBe(end.bytes); // nothing lost, nothing twice
    expect((await b.waitFor('turn.metrics')).request_id).toBe('speaking');
    expect(await b.waitFor('error')).toMatchObject({ code: 'upstream_busy', request_id: 'behind' });
    expect(chatFor('segundo')).toBeUndefined();
    // The finished turn is history whole: the next turn sees it.
    b.send({ type: 'turn.text', id: 'n', text: 'tercero' });
    await b.waitFor('turn.metrics', (e) => e.request_id === 'n');
    expect(chatMessages(chatFor('tercero')!).slice(1)).toEqual([
      { role: 'user', content: 'primero' },
      { role: 'assistant', content: 'Hola. ¿Qué tal?' },
      { role: 'user', content: 'tercero' },
    ]);
  });
});

describe('upstream limits with streaming and pipelined speech', () => {
  it('several sessions, TTS concurrency 2, two segments in flight per turn: zero upstream 429s and every turn answered', async () => {
    // Two upstream accounts, each a limit-enforcing simulator on a (fast) timing profile.
    const chat = await startSimUpstream({ concurrency: 3, rps: 20, burst: 6, firstTokenMs: 20, tokensPerSecond: 150, latencyMs: 20 });
    const tts = await startSimUpstream({ concurrency: 2, rps: 10, burst: 3, firstByteMs: 20, realTimeFactor: 10 });
    sims.push(chat, tts);
    const upstream = (url: string, account: string, limits: Record<string, unknown>) => ({ provider: 'openai', baseUrl: url, apiKey: 'sk_upstream_test_key', account, limits });
    t = await startApp({
      realTime: true,
      plan: { connectionsPerKey: 10 },
      upstreams: {
        conversation: upstream(chat.url, 'chat', { concurrency: 3, requestsPerSecond: 20, burst: 6 }),
        stt: upstream(chat.url, 'chat', { concurrency: 3, requestsPerSecond: 20, burst: 6 }),
        translation: upstream(chat.url, 'chat', { concurrency: 3, requestsPerSecond: 20, burst: 6 }),
        pronunciation: upstream(chat.url, 'chat', { concurrency: 3, requestsPerSecond: 20, burst: 6 }),
        tts: upstream(tts.url, 'tts', { concurrency: 2, requestsPerSecond: 10, burst: 3, segmentsInFlight: 2, maxChars: 60 }),
      },
    });
    const clients = await Promise.all(Array.from({ length: 5 }, () => t!.session({ scenario: 'ordering coffee' })));
    const texts = ['Hola, quiero un café con leche y un croissant, por favor', '¿Cuánto cuesta todo? ¿Puedo pagar con tarjeta?'];
    await Promise.all(
      clients.map(async (c, i) => {
        for (const [k, text] of texts.entries()) {
          c.send({ type: 'turn.text', id: `t${i}-${k}`, text });
          await c.waitFor('turn.metrics', (e) => e.request_id === `t${i}-${k}`, 30_000);
        }
      }),
    );
    const metrics = clients.flatMap((c) => c.of('turn.metrics'));
    expect(metrics).toHaveLength(10);
    expect(clients.flatMap((c) => c.of('error'))).toEqual([]);
    const ttsStats = tts.stats();
    expect(ttsStats.rejected429).toBe(0);
    expect(chat.stats().rejected429).toBe(0);
    expect(ttsStats.maxInFlight).toBe(2); // the limit was used, never exceeded
    expect(ttsStats.ok).toBe(metrics.reduce((n, m) => n + m.tts_requests, 0));
    // Replies made several TTS requests (maxChars 60), the case where segments are pipelined.
    expect(metrics.some((m) => m.tts_requests >= 2)).toBe(true);
    for (const c of clients) expect(c.of('reply.audio.end').reduce((n, e) => n + e.bytes, 0)).toBe(c.audioBytes());
  });
});
