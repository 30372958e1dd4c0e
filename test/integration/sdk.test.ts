/**
 * The client SDK (src/client) in Node, with `ws`'s WebSocket, against the real app on port 0:
 * sessions, requests, errors, automatic resume after a drop, the close-code policy and pacing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ParleyClient, ParleyClientError, type ClosedEvent, type ParleyClientOptions, type ReconnectEvent, type WebSocketConstructor } from '../../src/client/index.js';
import { synthesizeSpeech } from '../../src/simulator/speech-synth.js';
import { MemoryStore } from '../../src/store/memory.js';
import { startApp, until, type TestApp } from '../helpers/app.js';
import { rejection } from '../helpers/client-rejection.js';
import { gatedProviders } from '../helpers/gated-providers.js';

let t: TestApp | undefined;
let other: TestApp | undefined;
const clients: ParleyClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await t?.close();
  await other?.close();
  t = other = undefined;
});

/** `ws`'s WebSocket that remembers every socket it opens, so a test can cut one. */
function recordingWebSocket(): { WS: WebSocketConstructor; sockets: WebSocket[] } {
  const sockets: WebSocket[] = [];
  class RecordingWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  }
  return { WS: RecordingWebSocket, sockets };
}

function sdk(app: TestApp, opts: Partial<ParleyClientOptions> = {}): ParleyClient {
  const c = new ParleyClient({
    url: `${app.url.replace(/^http/, 'ws')}/v1/realtime`,
    token: () => app.token(),
    session: { language: 'es', scenario: 'ordering coffee' },
    WebSocket: WebSocket,
    // Quick, deterministic reconnects: jitter 0 means attempt 1 after a plain drop waits 0 ms.
    reconnect: { baseMs: 20, capMs: 200 },
    random: () => 0,
    ...opts,
  });
  clients.push(c);
  return c;
}

/** Records every `closed` and `reconnect` event of a client. */
function record(c: ParleyClient): { closed: ClosedEvent[]; reconnects: ReconnectEvent[]; states: string[] } {
  const out = { closed: [] as ClosedEvent[], reconnects: [] as ReconnectEvent[], states: [] as string[] };
  c.on('closed', (e) => out.closed.push(e));
  c.on('reconnect', (e) => out.reconnects.push(e));
  c.on('state', (e) => out.states.push(e.state));
  return out;
}

const speech = (text: string, sampleRate = 16000): Uint8Array => new Uint8Array(synthesizeSpeech(text, { sampleRate }));

describe('ParleyClient against the real gateway', () => {
  it('connects with the token subprotocol and resolves connect() with session.created', async () => {
    t = await startApp();
    const c = sdk(t);
    const rec = record(c);
    const quota = new Promise((resolve) => c.once('quota.updated', resolve));
    const info = await c.connect();
    expect(info.sessionId).toMatch(/^sess_[0-9a-f]{32}$/);
    expect(info.resumeToken).toMatch(/^rt_/);
    expect(info.resumed).toBe(false);
    expect(info.limits).toMatchObject({ messages_per_second: 100, byte_burst: 1048576, max_frame_bytes: 262144 });
    expect(c.state).toBe('open');
    expect(c.sessionId).toBe(info.sessionId);
    expect(rec.states).toEqual(['connecting', 'open']);
    expect(await quota).toMatchObject({ type: 'quota.updated' });
    const sessions = (await (await t.rest('GET', '/v1/sessions')).json()) as { sessions: { session_id: string; scenario?: string }[] };
    expect(sessions.sessions.map((s) => s.session_id)).toEqual([info.sessionId]);
  });

  it('turnText resolves with the reply text and all of its audio', async () => {
    t = await startApp();
    const c = sdk(t);
    await c.connect();
    let audioEvents = 0;
    c.on('audio', () => audioEvents++);
    const turn = await c.turnText('Hola, quiero un café');
    expect(turn.transcript).toBeUndefined();
    expect(turn.text.length).toBeGreaterThan(0);
    expect(turn.audio.format).toBe('pcm16');
    expect(turn.audio.sample_rate).toBe(24000);
    const received = turn.audio.chunks.reduce((n, ch) => n + ch.length, 0);
    expect(received).toBe(turn.audio.bytes);
    expect(received).toBeGreaterThan(24000);
    expect(audioEvents).toBe(turn.audio.chunks.length);
    expect(c.pendingRequests).toBe(0);
  });

  it('an audio turn answers transcript, text and audio; translate answers the translation', async () => {
    t = await startApp();
    const c = sdk(t);
    await c.connect();
    await c.sendAudio(speech('Hola, me llamo Ana y quiero un café con leche.'));
    const turn = await c.commitAudio({ purpose: 'turn' });
    expect(turn.transcript!.length).toBeGreaterThan(0);
    expect(turn.text.length).toBeGreaterThan(0);
    expect(turn.audio.chunks.reduce((n, ch) => n + ch.length, 0)).toBe(turn.audio.bytes);
    expect((await c.translate('thank you', 'es')).toLowerCase()).toContain('gracias');
  });

  it('assess uploads audio, commits an assessment and resolves with a score per reference word', async () => {
    t = await startApp();
    const c = sdk(t);
    await c.connect();
    void c.sendAudio(speech('Buenos días, señora.'));
    const result = await c.assess('Buenos días señora');
    expect(result.words.map((w) => w.word)).toEqual(['Buenos', 'días', 'señora']);
    expect(result.score).toBeGreaterThanOrEqual(0);
    expect(result.score).toBeLessThanOrEqual(100);
  });

  it('a request error rejects that request with a typed ParleyClientError; the session goes on', async () => {
    t = await startApp({ plan: { maxTextChars: 10 } });
    const c = sdk(t);
    await c.connect();
    const long = await rejection(c.turnText('x'.repeat(11)));
    expect(long).toBeInstanceOf(ParleyClientError);
    expect(long.code).toBe('text_too_long');
    expect(long.requestId).toMatch(/^r\d+$/);
    expect(long.closeCode).toBeUndefined();
    const empty = await rejection(c.commitAudio({ purpose: 'turn' }));
    expect(empty.code).toBe('invalid_message');
    expect(empty.message).toContain('empty');
    expect(await c.translate('thank you', 'es')).toMatch(/gracias/i);
    expect(c.state).toBe('open');
  });

  it('ping resolves with a round-trip time and end() resolves with the usage, then the client is closed', async () => {
    t = await startApp();
    const c = sdk(t);
    const rec = record(c);
    await c.connect();
    expect(await c.ping()).toBeGreaterThanOrEqual(0);
    await c.translate('good morning', 'es');
    const usage = await c.end();
    expect(usage).toMatchObject({ turns: 0, translations: 1 });
    await until(() => c.state === 'closed', 5000, 'closed');
    expect(rec.closed).toEqual([expect.objectContaining({ code: 1000, action: 'stop', willReconnect: false })]);
    expect(rec.reconnects).toEqual([]);
    expect((await rejection(c.ping())).code).toBe('not_connected');
  });

  it('a dropped socket resumes the same session; the request in flight is answered once, the one not started is reported', async () => {
    const gated = gatedProviders();
    t = await startApp({ providers: gated.providers });
    const { WS, sockets } = recordingWebSocket();
    const c = sdk(t, { WebSocket: WS });
    const rec = record(c);
    const resumed: { sessionId: string; pending: number }[] = [];
    c.on('resumed', (e) => resumed.push(e));
    const info = await c.connect();
    const inflight = c.turnText('Hola');
    // Handled at once: it rejects during the resume, before the test looks at it.
    const behind = rejection(c.turnText('Quiero un café'));
    await gated.started;
    sockets[0]!.terminate();
    await until(() => resumed.length === 1, 5000, 'resumed');
    expect(resumed[0]).toEqual({ sessionId: info.sessionId, pending: 2 });
    expect(c.sessionId).toBe(info.sessionId);
    expect(c.session?.resumed).toBe(true);
    expect(sockets).toHaveLength(2);
    expect(rec.closed).toEqual([expect.objectContaining({ code: 1006, action: 'retry', willReconnect: true })]);
    expect(rec.reconnects).toEqual([{ attempt: 1, delayMs: 0, code: 1006, action: 'retry' }]);
    // Not started at the drop: cancelled by the gateway and reported with its request_id.
    const busy = await behind;
    expect(busy.code).toBe('upstream_busy');
    expect(busy.requestId).toBe('r3');
    gated.open();
    const answered = await inflight;
    expect(answered.requestId).toBe('r2');
    expect(answered.text.length).toBeGreaterThan(0);
    expect(answered.audio.chunks.reduce((n, ch) => n + ch.length, 0)).toBe(answered.audio.bytes);
    expect(c.pendingRequests).toBe(0);
    expect(rec.states).toEqual(['connecting', 'open', 'reconnecting', 'open']);
    // The resumed session still serves requests.
    expect((await c.turnText('Gracias')).text.length).toBeGreaterThan(0);
  });

  it('audio being uploaded when the socket drops is sent again after the resume, so the commit hears all of it', async () => {
    t = await startApp();
    const { WS, sockets } = recordingWebSocket();
    const c = sdk(t, { WebSocket: WS });
    await c.connect();
    const first = speech('Hola, me llamo Ana.');
    await c.sendAudio(first);
    sockets[0]!.terminate();
    await until(() => c.state === 'reconnecting', 5000, 'reconnecting');
    const second = speech('Quiero un café con leche.');
    void c.sendAudio(second);
    const turn = await c.commitAudio({ purpose: 'turn' });
    expect(turn.transcript!.length).toBeGreaterThan(0);
    const usage = await c.end();
    // The gateway's counter includes the replayed first part once on the new connection.
    expect(usage.bytes_in).toBeGreaterThanOrEqual(first.length + second.length);
    expect(usage.audio_seconds).toBeCloseTo((first.length + second.length) / 32000, 1);
  });

  it('1012 from a draining replica resumes at once on another replica with a fresh token', async () => {
    // Two replicas sharing one store; a "load balancer" (the WebSocket constructor) sends new
    // connections to whichever replica is current.
    const store = new MemoryStore();
    t = await startApp({ realTime: true, store, replicaId: 'replica-a' });
    other = await startApp({ realTime: true, store, replicaId: 'replica-b' });
    let current = t;
    const urls: string[] = [];
    class Balanced extends WebSocket {
      constructor(_url: string, protocols?: string | string[]) {
        const url = `${current.url.replace(/^http/, 'ws')}/v1/realtime`;
        super(url, protocols);
        urls.push(url);
      }
    }
    const c = sdk(t, { WebSocket: Balanced, token: () => current.token() });
    const rec = record(c);
    const info = await c.connect();
    await c.turnText('Hola');
    current = other;
    await t.app.drain();
    await until(() => c.state === 'open' && c.session?.resumed === true, 5000, 'resumed on replica b');
    expect(rec.closed).toEqual([expect.objectContaining({ code: 1012, action: 'resume', willReconnect: true, error: expect.objectContaining({ code: 'server_draining' }) })]);
    expect(rec.reconnects).toEqual([{ attempt: 1, delayMs: 0, code: 1012, action: 'resume' }]);
    expect(urls).toEqual([`${t.url.replace(/^http/, 'ws')}/v1/realtime`, `${other.url.replace(/^http/, 'ws')}/v1/realtime`]);
    expect(c.sessionId).toBe(info.sessionId);
    await c.turnText('Quiero un café');
    expect((await c.end()).turns).toBe(2);
  });

  it('4029 connection_limit is retried after its retry_after_ms and connects once a slot is free', async () => {
    t = await startApp({ plan: { connectionsPerKey: 1 } });
    const first = sdk(t);
    await first.connect();
    // The gateway asks for the lease's remaining time (30 s here): timers cut waits of a second or
    // more to 10 ms, so the test does not sit through it. The decision is checked, not the wait.
    const second = sdk(t, {
      timers: {
        now: () => Date.now(),
        setTimeout: (fn, ms) => setTimeout(fn, ms >= 1000 ? 10 : ms),
        clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
      },
    });
    const rec = record(second);
    const connected = second.connect();
    await until(() => rec.reconnects.length === 1, 5000, 'the first refusal');
    const refusal = rec.closed[0]!;
    expect(refusal).toMatchObject({ code: 4029, action: 'retry', willReconnect: true, error: expect.objectContaining({ code: 'connection_limit' }) });
    expect(refusal.error!.retryAfterMs).toBeGreaterThanOrEqual(1000);
    // random() is 0: the delay is exactly the server's retry_after_ms.
    expect(rec.reconnects[0]).toEqual({ attempt: 1, delayMs: refusal.error!.retryAfterMs, code: 4029, action: 'retry' });
    first.close();
    const info = await connected;
    expect(info.resumed).toBe(false);
    expect(rec.reconnects.length).toBeGreaterThanOrEqual(1);
    expect(rec.closed.every((e) => e.code === 4029 && e.willReconnect)).toBe(true);
    expect(second.state).toBe('open');
  });

  it('4003 from DELETE /v1/sessions/:id stops the client: no reconnect, pending requests rejected with forbidden', async () => {
    const gated = gatedProviders();
    t = await startApp({ providers: gated.providers });
    const c = sdk(t);
    const rec = record(c);
    const info = await c.connect();
    const pending = c.turnText('Hola');
    await gated.started;
    expect((await t.rest('DELETE', `/v1/sessions/${info.sessionId}`)).status).toBe(204);
    const err = await rejection(pending);
    expect(err.code).toBe('forbidden');
    expect(err.closeCode).toBe(4003);
    expect(c.state).toBe('closed');
    expect(rec.closed).toHaveLength(1);
    expect(rec.closed[0]).toMatchObject({ code: 4003, action: 'stop', willReconnect: false, error: expect.objectContaining({ code: 'forbidden' }) });
    expect(rec.reconnects).toEqual([]);
    gated.open();
  });

  it('with a plain string token a drop cannot be resumed, and the client says so', async () => {
    t = await startApp();
    const { WS, sockets } = recordingWebSocket();
    const c = sdk(t, { WebSocket: WS, token: await t.token() });
    const rec = record(c);
    await c.connect();
    sockets[0]!.terminate();
    await until(() => c.state === 'closed', 5000, 'closed');
    expect(rec.closed).toEqual([expect.objectContaining({ code: 1006, action: 'retry', willReconnect: false, blockedBy: 'token_spent' })]);
    expect(sockets).toHaveLength(1);
  });

  it('an unauthorized first token (4001) fetches a new token and connects', async () => {
    t = await startApp();
    const spent = await t.token();
    const burner = new WebSocket(`${t.url.replace(/^http/, 'ws')}/v1/realtime`, ['parley.v1', `parley.token.${spent}`]);
    await new Promise((r) => burner.once('open', r));
    let calls = 0;
    const c = sdk(t, {
      token: async () => {
        calls += 1;
        return calls === 1 ? spent : t!.token();
      },
    });
    const rec = record(c);
    const info = await c.connect();
    burner.terminate();
    expect(info.resumed).toBe(false);
    expect(calls).toBe(2);
    expect(rec.closed).toEqual([expect.objectContaining({ code: 4001, action: 'new_token', willReconnect: true })]);
    expect(rec.reconnects).toEqual([expect.objectContaining({ attempt: 1, code: 4001, action: 'new_token' })]);
  });

  it('uploading 10 s of audio at once under a tight byte and message plan never meets 4029; an unpaced client does', async () => {
    const plan = { bytesPerSecond: 64000, byteBurst: 16000, messagesPerSecond: 20, messageBurst: 5, messageQueue: 5, maxFrameBytes: 8000 };
    t = await startApp({ realTime: true, plan });
    const rate = 8000;
    const tenSeconds = new Uint8Array(10 * rate * 2);
    const words = speech('Hola, me llamo Ana y quiero un café con leche, por favor.', rate);
    tenSeconds.set(words.subarray(0, Math.min(words.length, tenSeconds.length)));
    const c = sdk(t, { session: { language: 'es', audio: { format: 'pcm16', sample_rate: rate } }, pacing: { maxChunkBytes: 4000 } });
    const rec = record(c);
    await c.connect();
    const upload = c.sendAudio(tenSeconds);
    expect(c.queued.bytes).toBeGreaterThan(tenSeconds.length - plan.byteBurst);
    await upload;
    const turn = await c.commitAudio({ purpose: 'turn' });
    expect(turn.transcript!.length).toBeGreaterThan(0);
    const usage = await c.end();
    expect(usage.bytes_in).toBeGreaterThanOrEqual(tenSeconds.length);
    expect(usage.audio_seconds).toBeCloseTo(10, 1);
    await until(() => c.state === 'closed', 5000, 'closed');
    expect(rec.closed.map((e) => e.code)).toEqual([1000]);
    expect(rec.reconnects).toEqual([]);

    // The same upload, unpaced, is refused: the plan is tight enough to matter.
    const raw = await t.session({ language: 'es', audio: { format: 'pcm16', sample_rate: rate } });
    for (let off = 0; off < tenSeconds.length; off += 4000) raw.sendBinary(Buffer.from(tenSeconds.subarray(off, off + 4000)));
    expect((await raw.waitClose()).code).toBe(4029);
  });
});
