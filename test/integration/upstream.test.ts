/**
 * The upstream layer end to end: the real app on port 0 (real time), real HTTP upstreams that
 * speak the OpenAI-compatible wire format and enforce limits, real ws clients.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startSimUpstream, type SimUpstream } from '../../src/simulator/server.js';
import { startApp, until, type TestApp } from '../helpers/app.js';
import { json, normalAnswer, openAiUpstreams, startScriptedUpstream, type ScriptedUpstream } from '../helpers/upstream.js';

let t: TestApp | undefined;
let sim: SimUpstream | undefined;
let up: ScriptedUpstream | undefined;
afterEach(async () => {
  await t?.close();
  await sim?.close();
  await up?.close();
  t = sim = up = undefined;
});

describe('admission against the upstream account', () => {
  it('many sessions at once: zero upstream 429s and never more than the concurrency', async () => {
    sim = await startSimUpstream({ rps: 10, burst: 4, concurrency: 2, latencyMs: 40 });
    t = await startApp({ realTime: true, plan: { connectionsPerKey: 10 }, upstreams: openAiUpstreams(sim.url, { requestsPerSecond: 10, burst: 4, concurrency: 2 }) });
    const clients = await Promise.all(Array.from({ length: 6 }, () => t!.session()));
    clients.forEach((c, i) => c.send({ type: 'turn.text', id: `t${i}`, text: 'Hola, quiero un café' }));
    await Promise.all(clients.map((c, i) => c.waitFor('reply.audio.end', (e) => e.request_id === `t${i}`, 15_000)));
    const stats = sim.stats();
    expect(stats.rejected429).toBe(0);
    expect(stats.maxInFlight).toBeLessThanOrEqual(2);
    // A conversation call per turn, and as many speech calls as each turn's turn.metrics counts.
    const metrics = await Promise.all(clients.map((c) => c.waitFor('turn.metrics')));
    expect(stats.ok).toBe(6 + metrics.reduce((n, m) => n + m.tts_requests, 0));
    expect(clients.flatMap((c) => c.of('error'))).toEqual([]);
    // With more than 12 calls for 2 slots, some turns had to wait and were told so.
    expect(clients.flatMap((c) => c.of('request.queued')).length).toBeGreaterThan(0);
  });

  it('honours Retry-After for the whole upstream account, then answers without an error', async () => {
    let first = true;
    up = await startScriptedUpstream((req, res) => {
      if (req.path.endsWith('/chat/completions') && first) {
        first = false;
        return json(res, 429, { error: { message: 'slow down' } }, { 'Retry-After': '2' });
      }
      return normalAnswer(req, res);
    });
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(up.url) });
    const c = await t.session();
    c.send({ type: 'translate', id: 'tr', text: 'good morning', target_language: 'es' });
    const result = await c.waitFor('translation.result', () => true, 10_000);
    expect(result.request_id).toBe('tr');
    const chats = up.seen.filter((r) => r.path.endsWith('/chat/completions'));
    expect(chats).toHaveLength(2);
    expect(chats[1]!.at - chats[0]!.at).toBeGreaterThanOrEqual(2000);
    expect(c.of('error')).toEqual([]);
  });

  it('speaks the first sentence alone, then the rest packed up to maxChars at sentence ends, as one reply', async () => {
    const long = 'Claro que sí. Un café con leche cuesta dos euros. ¿Quieres algo más para comer? Tenemos pan y fruta.';
    up = await startScriptedUpstream((req, res) => normalAnswer(req, res, long));
    const upstreams = openAiUpstreams(up.url);
    (upstreams.tts as { limits: Record<string, unknown> }).limits = { maxChars: 50 };
    t = await startApp({ realTime: true, upstreams });
    const c = await t.session();
    c.send({ type: 'turn.text', id: 'long', text: 'Hola' });
    const end = await c.waitFor('reply.audio.end', () => true, 10_000);
    const inputs = up.seen.filter((r) => r.path.endsWith('/audio/speech')).map((r) => String(r.json?.input));
    expect(inputs).toEqual(['Claro que sí.', 'Un café con leche cuesta dos euros.', '¿Quieres algo más para comer? Tenemos pan y fruta.']);
    expect(inputs.every((p) => p.length <= 50)).toBe(true);
    expect(c.of('reply.audio.start')).toHaveLength(1);
    expect(end.bytes).toBe(c.audio.reduce((n, b) => n + b.length, 0));
  });

  it('serves a quiet account after at most one slot while another account floods', async () => {
    up = await startScriptedUpstream(async (req, res) => {
      await new Promise((r) => setTimeout(r, 30));
      normalAnswer(req, res);
    });
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(up.url, { concurrency: 1 }), plan: { connectionsPerKey: 20, connectionsPerAccount: 20 } });
    const flood = await Promise.all(Array.from({ length: 8 }, () => t!.session()));
    const quiet = await t.session({}, { token: await t.token({}, 'sk_test_b_0123456789') });
    flood.forEach((c, i) => c.send({ type: 'translate', id: `f${i}`, text: `flood ${i}`, target_language: 'es' }));
    await until(() => up!.seen.length >= 1, 3000, 'the flood reaching the upstream');
    quiet.send({ type: 'translate', id: 'quiet', text: 'quiet please', target_language: 'es' });
    await quiet.waitFor('translation.result', () => true, 10_000);
    const order = up.seen.map((r) => JSON.stringify(r.json?.messages ?? ''));
    const quietIndex = order.findIndex((m) => m.includes('quiet please'));
    // In flight when it arrived: one flood call; then round-robin across accounts puts it next.
    expect(quietIndex).toBeLessThanOrEqual(2);
    await Promise.all(flood.map((c, i) => c.waitFor('translation.result', (e) => e.request_id === `f${i}`, 10_000)));
  });
});

describe('size limits', () => {
  it('refuses audio over the STT upstream\'s maxBytes with audio_too_large before any call', async () => {
    up = await startScriptedUpstream();
    const upstreams = openAiUpstreams(up.url);
    (upstreams.stt as { limits: Record<string, unknown> }).limits = { maxBytes: 16000 };
    t = await startApp({ realTime: true, upstreams });
    const c = await t.session();
    c.sendBinary(Buffer.alloc(16001, 1));
    c.send({ type: 'input_audio.commit', id: 'big', purpose: 'turn' });
    expect(await c.waitFor('error', (e) => e.request_id === 'big')).toMatchObject({ code: 'audio_too_large' });
    expect(up.seen).toHaveLength(0);
    c.sendBinary(Buffer.alloc(16000, 1));
    c.send({ type: 'input_audio.commit', id: 'fits', purpose: 'turn' });
    await c.waitFor('reply.audio.end', (e) => e.request_id === 'fits', 10_000);
    expect(up.seen.filter((r) => r.path.endsWith('/audio/transcriptions'))).toHaveLength(1);
  });
});

describe('cancellation', () => {
  it('a session that ends cancels its in-flight call: the upstream sees the abort', async () => {
    up = await startScriptedUpstream(() => undefined); // never answers
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(up.url), plan: { resumeWindowSeconds: 0 } });
    const c = await t.session();
    c.send({ type: 'translate', id: 'hang', text: 'hello', target_language: 'es' });
    await until(() => up!.seen.length === 1, 3000, 'the call reaching the upstream');
    c.ws.terminate();
    await until(() => up!.seen[0]!.aborted, 3000, 'the upstream seeing the abort');
    expect(up.seen[0]!.answered).toBe(false);
  });

  it('a drop cancels work that has not reached the upstream and reports it on resume', async () => {
    const release: (() => void)[] = [];
    up = await startScriptedUpstream((req, res) => {
      release.push(() => normalAnswer(req, res));
    });
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(up.url, { concurrency: 1 }) });
    const holder = await t.session();
    holder.send({ type: 'translate', id: 'holder', text: 'first', target_language: 'es' });
    await until(() => up!.seen.length === 1, 3000, 'the first call in flight');
    const c = await t.session();
    const resumeToken = c.of('session.created')[0]!.resume_token;
    c.send({ type: 'translate', id: 'queued', text: 'second', target_language: 'es' });
    const queued = await c.waitFor('request.queued');
    expect(queued).toEqual({ type: 'request.queued', request_id: 'queued', position: 1 });
    c.ws.terminate();
    await c.waitClose();
    await until(() => t!.app.gateway.connections.size === 1, 3000, 'teardown');
    release.shift()!();
    await holder.waitFor('translation.result');
    const back = await t.client();
    back.send({ type: 'session.start', resume_token: resumeToken });
    await back.waitFor('session.resumed');
    expect(await back.waitFor('error')).toMatchObject({ code: 'upstream_busy', request_id: 'queued' });
    expect(up.seen).toHaveLength(1);
  });
});

describe('a failing upstream', () => {
  const cases: [string, (res: import('node:http').ServerResponse) => void, Record<string, unknown>][] = [
    ['garbage JSON', (res) => { res.writeHead(200, { 'Content-Type': 'application/json' }); res.end('{"choices": [tru'); }, {}],
    ['an empty body', (res) => { res.writeHead(200, { 'Content-Type': 'application/json' }); res.end(); }, {}],
    ['a 401 (bad upstream key)', (res) => json(res, 401, { error: { message: 'invalid api key' } }), {}],
    ['a hung connection', () => undefined, { timeoutSeconds: 0.3, maxRetries: 0 }],
    ['a huge body', (res) => { res.writeHead(200, { 'Content-Type': 'application/json' }); res.end(`{"choices":[{"message":{"content":"${'x'.repeat(40 * 1024 * 1024)}"}}]}`); }, {}],
  ];
  it.each(cases)('%s gives upstream_error for that request, a log line naming the upstream, and the session goes on', async (_name, answer, limits) => {
    up = await startScriptedUpstream((req, res) => (req.path.endsWith('/chat/completions') ? answer(res) : normalAnswer(req, res)));
    t = await startApp({ realTime: true, upstreams: openAiUpstreams(up.url, limits) });
    const c = await t.session();
    c.send({ type: 'translate', id: 'bad', text: 'hello', target_language: 'es' });
    const err = await c.waitFor('error', (e) => e.request_id === 'bad', 15_000);
    expect(err.code).toBe('upstream_error');
    expect(err.close_code).toBeUndefined();
    expect(t.logs.find((l) => l.msg === 'upstream call failed' && l.upstream === 'shared')).toBeDefined();
    c.send({ type: 'ping', id: 'after' });
    await c.waitFor('pong');
    expect(c.closeInfo).toBeUndefined();
  });
});
