/**
 * Sessions end to end over real sockets: turns, assessments, translations, resume, takeover,
 * operator end, drain, and the resources a connection holds.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { synthesizeSpeech } from '../../src/simulator/speech-synth.js';
import { ORIGIN, TEST_KEY, startApp, until, type TestApp } from '../helpers/app.js';
import { gatedProviders } from '../helpers/gated-providers.js';

let t: TestApp;
afterEach(async () => {
  await t?.close();
});

/** 16 kHz speech-like PCM16 for an audio turn. */
const utterance = (text = 'Hola, me llamo Ana y quiero un café con leche.'): Buffer => synthesizeSpeech(text, { sampleRate: 16000 });

describe('handshake and auth', () => {
  it('answers the parley.v1 subprotocol and creates a session with the contract fields', async () => {
    t = await startApp();
    const c = await t.client();
    expect(c.ws.protocol).toBe('parley.v1');
    c.send({ type: 'session.start', id: 'start', language: 'es', scenario: 'ordering coffee' });
    const created = await c.waitFor('session.created');
    expect(created.request_id).toBe('start');
    expect(created.session_id).toMatch(/^sess_[0-9a-f]{32}$/);
    expect(created.resume_token).toMatch(/^rt_/);
    expect(Date.parse(created.expires_at) - t.scheduler!.now()).toBe(1800 * 1000);
    expect(created.limits).toMatchObject({ messages_per_second: 100, message_burst: 100, max_frame_bytes: 262144, audio: { format: 'pcm16', sample_rate: 16000 } });
    const quota = await c.waitFor('quota.updated');
    expect(quota.limits.map((l) => l.name)).toEqual([
      'connection.messages',
      'connection.bytes',
      'session.seconds',
      'session.idle_seconds',
      'account.conversation.start',
      'account.conversation.turn',
      'account.pronunciation.assess',
      'account.translate',
      'account.audio_minutes',
    ]);
    expect(quota.limits.find((l) => l.name === 'account.conversation.start')).toEqual({ name: 'account.conversation.start', limit: 20, remaining: 19, reset_seconds: 61 });
    expect(c.invalid).toEqual([]);
  });

  it('accepts ?token= and Authorization: Bearer <api key>', async () => {
    t = await startApp();
    const q = await t.client({ token: await t.token(), via: 'query' });
    q.send({ type: 'session.start', language: 'fr' });
    await q.waitFor('session.created');
    const k = await t.client({ apiKey: TEST_KEY });
    k.send({ type: 'session.start', language: 'de' });
    await k.waitFor('session.created');
  });

  it.each([
    ['no credential', {}],
    ['an unknown token', { token: 'pt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
    ['a malformed token', { token: 'not-a-token' }],
    ['a bad API key', { apiKey: 'sk_wrong_key_123456' }],
  ])('completes the handshake, then sends unauthorized and closes 4001 for %s', async (_name, opts) => {
    t = await startApp();
    const c = await t.client(Object.keys(opts).length ? opts : { protocols: ['parley.v1'] });
    const closed = await c.waitClose();
    expect(closed.code).toBe(4001);
    expect(c.of('error')[0]).toMatchObject({ code: 'unauthorized', close_code: 4001 });
  });

  it('a token opens exactly one connection', async () => {
    t = await startApp();
    const token = await t.token();
    const first = await t.client({ token });
    first.send({ type: 'ping', id: 1 });
    await first.waitFor('pong');
    const second = await t.client({ token });
    expect((await second.waitClose()).code).toBe(4001);
  });

  it('an expired token is refused with 4001', async () => {
    t = await startApp();
    const token = await t.token({ ttl_seconds: 10 });
    t.scheduler!.advanceBy(10_000);
    const c = await t.client({ token });
    expect((await c.waitClose()).code).toBe(4001);
    expect(c.of('error')[0]!.code).toBe('unauthorized');
  });

  it('refuses a browser origin outside the account\'s origins with 1008 forbidden', async () => {
    t = await startApp();
    const bad = await t.client({ token: await t.token(), origin: 'http://evil.example' });
    expect((await bad.waitClose()).code).toBe(1008);
    expect(bad.of('error')[0]).toMatchObject({ code: 'forbidden', close_code: 1008 });
    const good = await t.client({ token: await t.token(), origin: ORIGIN });
    good.send({ type: 'ping', id: 1 });
    await good.waitFor('pong');
  });
});

describe('requests', () => {
  it('an audio turn answers transcript, the reply text as it streams, its audio, reply.text, reply.audio.end and turn.metrics, in order', async () => {
    t = await startApp();
    const c = await t.session();
    const audio = utterance();
    for (let off = 0; off < audio.length; off += 3200) c.sendBinary(audio.subarray(off, off + 3200));
    c.send({ type: 'input_audio.commit', id: 'turn-1', purpose: 'turn' });
    const end = await c.waitFor('reply.audio.end');
    const metrics = await c.waitFor('turn.metrics');
    const types = c.events.filter((e) => 'request_id' in e && e.request_id === 'turn-1').map((e) => e.type);
    // Deltas come first; the audio starts with the first sentence, possibly before the text ends.
    expect(types[0]).toBe('transcript');
    expect(types.slice(-3)).toEqual(['reply.text', 'reply.audio.end', 'turn.metrics']);
    expect(types.indexOf('reply.text.delta')).toBe(1);
    expect(types.filter((x) => x === 'reply.audio.start')).toHaveLength(1);
    const deltas = c.of('reply.text.delta').map((d) => d.delta).join('');
    expect(deltas).toBe(c.of('reply.text')[0]!.text);
    expect(metrics).toMatchObject({ request_id: 'turn-1' });
    expect(metrics.stt_ms).toBeGreaterThanOrEqual(0);
    expect(metrics.tts_requests).toBeGreaterThanOrEqual(1);
    expect(c.of('transcript')[0]!.text.length).toBeGreaterThan(0);
    expect(c.of('reply.audio.start')[0]).toMatchObject({ format: 'pcm16', sample_rate: 24000 });
    const received = c.audio.reduce((n, b) => n + b.length, 0);
    expect(end.bytes).toBe(received);
    expect(received).toBeGreaterThan(24000); // more than half a second of speech
    expect(c.invalid).toEqual([]);
  });

  it('an assessment answers assessment.result with a score per reference word', async () => {
    t = await startApp();
    const c = await t.session();
    c.sendBinary(utterance('Buenos días, señora.'));
    c.send({ type: 'input_audio.commit', id: 'as', purpose: 'assessment', reference_text: 'Buenos días señora' });
    const r = await c.waitFor('assessment.result');
    expect(r.request_id).toBe('as');
    expect(r.words.map((w) => w.word)).toEqual(['Buenos', 'días', 'señora']);
    expect(r.score).toBeGreaterThanOrEqual(0);
    expect(r.score).toBeLessThanOrEqual(100);
  });

  it('an assessment without reference_text, or an empty buffer, gets invalid_message with the request_id', async () => {
    t = await startApp();
    const c = await t.session();
    c.sendBinary(utterance());
    c.send({ type: 'input_audio.commit', id: 'no-ref', purpose: 'assessment' });
    c.send({ type: 'input_audio.commit', id: 'empty', purpose: 'turn' });
    const a = await c.waitFor('error', (e) => e.request_id === 'no-ref');
    const b = await c.waitFor('error', (e) => e.request_id === 'empty');
    expect(a.code).toBe('invalid_message');
    expect(a.message).toContain('reference_text');
    expect(b.code).toBe('invalid_message');
    expect(b.message).toContain('empty');
  });

  it('input_audio.clear empties the buffer', async () => {
    t = await startApp();
    const c = await t.session();
    c.sendBinary(utterance());
    c.send({ type: 'input_audio.clear' });
    c.send({ type: 'input_audio.commit', id: 'x', purpose: 'turn' });
    expect((await c.waitFor('error', (e) => e.request_id === 'x')).code).toBe('invalid_message');
  });

  it('an utterance over maxUtteranceBytes gets audio_too_large, the buffer is cleared and the connection stays', async () => {
    t = await startApp({ plan: { maxUtteranceBytes: 4096, maxFrameBytes: 4096 } });
    const c = await t.session();
    c.sendBinary(Buffer.alloc(3000, 1));
    c.sendBinary(Buffer.alloc(2000, 1));
    const err = await c.waitFor('error');
    expect(err.code).toBe('audio_too_large');
    c.send({ type: 'input_audio.commit', id: 'after', purpose: 'turn' });
    expect((await c.waitFor('error', (e) => e.request_id === 'after')).message).toContain('empty');
    expect(c.closeInfo).toBeUndefined();
  });

  it('text over maxTextChars gets text_too_long and is not run', async () => {
    t = await startApp({ plan: { maxTextChars: 10 } });
    const c = await t.session();
    c.send({ type: 'turn.text', id: 'long', text: 'x'.repeat(11) });
    c.send({ type: 'translate', id: 'ok', text: 'thank you', target_language: 'es' });
    expect((await c.waitFor('error', (e) => e.request_id === 'long')).code).toBe('text_too_long');
    expect((await c.waitFor('translation.result')).text.toLowerCase()).toContain('gracias');
    expect(c.of('reply.text')).toHaveLength(0);
  });

  it('runs a session\'s requests one at a time, in order', async () => {
    t = await startApp();
    const c = await t.session();
    c.send({ type: 'turn.text', id: 1, text: 'Hola' });
    c.send({ type: 'translate', id: 2, text: 'good morning', target_language: 'es' });
    c.send({ type: 'turn.text', id: 3, text: 'Quiero un café' });
    await c.waitFor('reply.audio.end', (e) => e.request_id === 3);
    const order = c.events.filter((e) => e.type === 'reply.audio.end' || e.type === 'translation.result').map((e) => (e as { request_id: unknown }).request_id);
    expect(order).toEqual([1, 2, 3]);
  });

  it('session.end answers session.ended with usage and closes 1000 without an error', async () => {
    t = await startApp();
    const c = await t.session();
    c.send({ type: 'turn.text', id: 1, text: 'Hola' });
    await c.waitFor('reply.audio.end');
    c.send({ type: 'session.end', id: 'bye' });
    const ended = await c.waitFor('session.ended');
    expect(ended).toMatchObject({ request_id: 'bye', reason: 'client_ended', usage: { turns: 1, assessments: 0 } });
    expect((await c.waitClose()).code).toBe(1000);
    expect(c.of('error')).toHaveLength(0);
  });
});

describe('resume', () => {
  it('resumes after a drop with the same session_id and expires_at; the duration clock is not reset', async () => {
    t = await startApp();
    const a = await t.session();
    const created = a.of('session.created')[0]!;
    a.send({ type: 'turn.text', id: 1, text: 'Hola' });
    await a.waitFor('reply.audio.end');
    a.ws.terminate();
    await a.waitClose();
    t.scheduler!.advanceBy(30_000);
    const b = await t.client();
    b.send({ type: 'session.start', id: 'r', resume_token: created.resume_token });
    const resumed = await b.waitFor('session.resumed');
    expect(resumed).toMatchObject({ request_id: 'r', session_id: created.session_id, expires_at: created.expires_at, resume_token: created.resume_token });
    b.send({ type: 'session.end' });
    expect((await b.waitFor('session.ended')).usage.turns).toBe(1);
  });

  it('answers a request that was in flight at the drop on the new connection', async () => {
    const gated = gatedProviders();
    t = await startApp({ providers: gated.providers });
    const a = await t.session();
    const token = a.of('session.created')[0]!.resume_token;
    a.send({ type: 'turn.text', id: 'inflight', text: 'Hola' });
    await gated.started;
    a.ws.terminate();
    await a.waitClose();
    const b = await t.client();
    b.send({ type: 'session.start', resume_token: token });
    await b.waitFor('session.resumed');
    gated.open();
    expect((await b.waitFor('reply.text')).request_id).toBe('inflight');
    expect((await b.waitFor('reply.audio.end')).request_id).toBe('inflight');
    expect(gated.aborted()).toBe(false);
  });

  it('closes the older connection with 4030 session_taken_over', async () => {
    t = await startApp();
    const a = await t.session();
    const token = a.of('session.created')[0]!.resume_token;
    const b = await t.client();
    b.send({ type: 'session.start', resume_token: token });
    await b.waitFor('session.resumed');
    expect((await a.waitClose()).code).toBe(4030);
    expect(a.of('error').at(-1)).toMatchObject({ code: 'session_taken_over', close_code: 4030 });
    b.send({ type: 'turn.text', id: 't', text: 'Hola' });
    await b.waitFor('reply.text');
  });

  it('after the resume window the token is refused with session_expired and the connection stays', async () => {
    t = await startApp({ plan: { resumeWindowSeconds: 60 } });
    const gated = gatedProviders();
    await t.close();
    t = await startApp({ plan: { resumeWindowSeconds: 60 }, providers: gated.providers });
    const a = await t.session();
    const token = a.of('session.created')[0]!.resume_token;
    a.send({ type: 'turn.text', id: 'lost', text: 'Hola' });
    await gated.started;
    a.ws.terminate();
    await a.waitClose();
    await until(() => t.app.gateway.connections.size === 0, 3000, 'teardown');
    t.scheduler!.advanceBy(60_000);
    expect(gated.aborted()).toBe(true);
    const b = await t.client();
    b.send({ type: 'session.start', id: 'late', resume_token: token });
    const err = await b.waitFor('error');
    expect(err).toMatchObject({ code: 'session_expired', request_id: 'late' });
    expect(err.close_code).toBeUndefined();
    b.send({ type: 'session.start', language: 'es' });
    await b.waitFor('session.created');
  });

  it('refuses another account\'s resume token', async () => {
    t = await startApp();
    const a = await t.session();
    const token = a.of('session.created')[0]!.resume_token;
    const b = await t.client({ token: await t.token({}, 'sk_test_b_0123456789') });
    b.send({ type: 'session.start', resume_token: token });
    expect((await b.waitFor('error')).code).toBe('session_expired');
  });
});

describe('operator and shutdown', () => {
  it('DELETE /v1/sessions/:id closes the session with 4003 forbidden', async () => {
    t = await startApp();
    const c = await t.session();
    const id = c.of('session.created')[0]!.session_id;
    const list = (await (await t.rest('GET', '/v1/sessions')).json()) as { sessions: { session_id: string; connected: boolean }[] };
    expect(list.sessions).toEqual([expect.objectContaining({ session_id: id, connected: true })]);
    const res = await t.rest('DELETE', `/v1/sessions/${id}`);
    expect(res.status).toBe(204);
    expect((await c.waitClose()).code).toBe(4003);
    expect(c.of('error').at(-1)).toMatchObject({ code: 'forbidden', close_code: 4003 });
    expect((await t.rest('DELETE', `/v1/sessions/${id}`)).status).toBe(404);
  });

  it('drain closes sessions with 1012 server_draining, keeps them resumable, and refuses new connections', async () => {
    t = await startApp();
    const c = await t.session();
    const token = c.of('session.created')[0]!.resume_token;
    const record = await t.app.gateway.store.findSessionByResumeToken(token);
    expect(record?.sessionId).toBe(c.of('session.created')[0]!.session_id);
    const fresh = await t.token();
    await t.app.drain();
    expect((await c.waitClose()).code).toBe(1012);
    expect(c.of('error').at(-1)).toMatchObject({ code: 'server_draining', close_code: 1012 });
    expect((await t.rest('GET', '/readyz', undefined, '')).status).toBe(503);
    const late = await t.client({ token: fresh });
    expect((await late.waitClose()).code).toBe(1012);
    expect((await t.app.gateway.store.findSessionByResumeToken(token))?.connected).toBe(false);
  });

  it('drain waits for a request in flight and answers it before closing', async () => {
    const gated = gatedProviders();
    t = await startApp({ providers: gated.providers });
    const c = await t.session();
    c.send({ type: 'turn.text', id: 'during-drain', text: 'Hola' });
    await gated.started;
    const drained = t.app.drain();
    setTimeout(() => gated.open(), 50);
    await drained;
    expect((await c.waitClose()).code).toBe(1012);
    expect(c.of('reply.audio.end').map((e) => e.request_id)).toEqual(['during-drain']);
  });
});

describe('teardown', () => {
  it('a closed connection releases its timers, subscriptions and connection slots', async () => {
    t = await startApp();
    const baseline = t.scheduler!.pending; // the replica-wide heartbeat and lease renewal
    const c = await t.session();
    const conn = [...t.app.gateway.connections][0]!;
    expect(t.scheduler!.pending).toBeGreaterThan(baseline);
    expect(await t.app.gateway.store.countLeases('conns:{acct_a}')).toBe(1);
    c.send({ type: 'session.end' });
    await c.waitClose();
    await until(() => t.app.gateway.connections.size === 0, 3000, 'teardown');
    expect(conn.holdings()).toEqual({ subscribed: false, startTimer: false, session: false });
    expect(t.scheduler!.pending).toBe(baseline);
    expect(await t.app.gateway.store.countLeases('conns:{acct_a}')).toBe(0);
    expect(t.app.gateway.registry.size).toBe(0);
  });

  it('idle sessions share one scheduler action for all their clocks', async () => {
    t = await startApp({ plan: { idleTimeoutSeconds: 60, maxSessionSeconds: 600 } });
    const baseline = t.scheduler!.pending;
    const clients = [];
    for (let i = 0; i < 5; i++) clients.push(await t.session());
    // Idle, session length and quota checks of five sessions: one queue, one action.
    expect(t.app.gateway.timers.size).toBe(5);
    expect(t.scheduler!.pending).toBe(baseline + 1);
    t.scheduler!.advanceBy(45_000);
    for (const c of clients) await c.waitFor('session.expiring', (e) => e.reason === 'idle');
    expect(t.scheduler!.pending).toBe(baseline + 1);
    t.scheduler!.advanceBy(15_000);
    for (const c of clients) expect((await c.waitClose()).code).toBe(4031);
    await until(() => t.app.gateway.connections.size === 0, 3000, 'closed');
    // Each session now waits out its resume window: still one entry each, still one action.
    expect(t.app.gateway.timers.size).toBe(5);
    expect(t.scheduler!.pending).toBe(baseline + 1);
  });

  it('a dropped session keeps only its resume timer, which then frees everything', async () => {
    t = await startApp({ plan: { resumeWindowSeconds: 30 } });
    const baseline = t.scheduler!.pending;
    const c = await t.session();
    c.ws.terminate();
    await until(() => t.app.gateway.connections.size === 0, 3000, 'teardown');
    expect(t.scheduler!.pending).toBe(baseline + 1);
    t.scheduler!.advanceBy(30_000);
    expect(t.scheduler!.pending).toBe(baseline);
    expect(t.app.gateway.registry.size).toBe(0);
  });
});
