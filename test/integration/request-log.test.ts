/**
 * Request ids and log lines (CONTRACT §9 "Logs"): an incoming `X-Request-Id` is the request's id
 * when valid and is echoed; the replica id is on every line; the probes' access lines are at debug.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp, type ParleyApp } from '../../src/app.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { startApp, testConfig, TEST_KEY, type TestApp } from '../helpers/app.js';
import { connect, type TestClient } from '../helpers/client.js';
import { logSink } from '../helpers/log-sink.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let t: TestApp | undefined;
let app: ParleyApp | undefined;
let client: TestClient | undefined;
afterEach(async () => {
  client?.ws.terminate();
  await t?.close();
  await app?.close();
  t = app = client = undefined;
});

const get = (url: string, path: string, headers: Record<string, string> = {}): Promise<Response> =>
  fetch(`${url}${path}`, { headers: { Authorization: `Bearer ${TEST_KEY}`, ...headers } });

describe('X-Request-Id', () => {
  it('is the request id when valid: echoed on the answer and on the request\'s log lines', async () => {
    t = await startApp();
    const id = 'b7c1e0d2-5f4a-4e8b-9a1c-0d2e3f4a5b6c';
    const res = await get(t.url, '/v1/usage', { 'X-Request-Id': id });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe(id);
    const lines = t.logs.lines.filter((l) => l.reqId === id);
    expect(lines.map((l) => l.msg)).toEqual(['incoming request', 'request completed']);
  });

  it('is echoed on errors too (401, 404, 400)', async () => {
    t = await startApp();
    for (const [path, status, headers] of [
      ['/v1/usage', 401, { Authorization: 'Bearer sk_wrong_key_123456' }],
      ['/nothing-here', 404, {}],
    ] as const) {
      const res = await get(t.url, path, { ...headers, 'X-Request-Id': `req-${status}` });
      expect(res.status).toBe(status);
      expect(res.headers.get('x-request-id')).toBe(`req-${status}`);
    }
    const bad = await fetch(`${t.url}/v1/tokens`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TEST_KEY}`, 'Content-Type': 'application/json', 'X-Request-Id': 'req-400' },
      body: '{"ttl_seconds": 1}',
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('x-request-id')).toBe('req-400');
  });

  it('is replaced by a fresh id when absent, too long or outside the allowed characters', async () => {
    t = await startApp();
    const none = await get(t.url, '/healthz');
    expect(none.headers.get('x-request-id')).toMatch(UUID);
    for (const given of ['x'.repeat(129), 'has space', 'quote"d', 'ünï', '']) {
      const res = await get(t.url, '/healthz', { 'X-Request-Id': given });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-request-id')).toMatch(UUID);
    }
    const longest = 'a'.repeat(128);
    expect((await get(t.url, '/healthz', { 'X-Request-Id': longest })).headers.get('x-request-id')).toBe(longest);
    const ids = new Set<string>();
    for (let i = 0; i < 3; i++) ids.add((await get(t.url, '/healthz')).headers.get('x-request-id')!);
    expect(ids.size).toBe(3);
  });

  it('a repeated X-Request-Id does not make calls count once against the rest quota', async () => {
    t = await startApp({ plan: { requestsPerMinute: { rest: 2 } } });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await get(t.url, '/v1/usage', { 'X-Request-Id': 'same-id' })).status);
    expect(statuses).toEqual([200, 200, 429]);
  });
});

describe('log lines', () => {
  it('carry the replica id, every one of them, at every level', async () => {
    const logs = logSink('debug');
    app = await buildApp({ config: testConfig(), logger: logs.logger, replicaId: 'replica_logs' });
    const { url } = await app.listen(0, '127.0.0.1');
    await get(url, '/healthz');
    await get(url, '/v1/usage', { Authorization: 'Bearer sk_wrong_key_123456' });
    const minted = (await (await fetch(`${url}/v1/tokens`, { method: 'POST', headers: { Authorization: `Bearer ${TEST_KEY}` } })).json()) as { token: string };
    const c = (client = await connect(url, { token: minted.token }));
    c.send({ type: 'session.start', language: 'es' });
    await c.waitFor('session.created');
    c.send({ type: 'turn.text', id: 1, text: 'Hola' });
    await c.waitFor('reply.audio.end');
    expect(logs.lines.length).toBeGreaterThan(6);
    const levels = new Set(logs.lines.map((l) => l.level));
    expect(levels.has(20) && levels.has(30)).toBe(true);
    expect(logs.lines.filter((l) => l.replica_id !== 'replica_logs')).toEqual([]);
    expect(logs.raw.every((l) => l.split('"replica_id"').length === 2)).toBe(true);
  });

  it('createLogger({replicaId}) writes it from the logger\'s base, as npm start does', () => {
    const raw: string[] = [];
    const logger = createLogger({
      replicaId: 'replica_base',
      destination: new Writable({
        write(chunk: Buffer, _enc, cb) {
          raw.push(chunk.toString('utf8'));
          cb();
        },
      }),
    });
    logger.info('one');
    logger.child({ a: 1 }).warn('two');
    expect(raw.map((l) => (JSON.parse(l) as { replica_id?: string }).replica_id)).toEqual(['replica_base', 'replica_base']);
  });

  it('log the probes\' access lines at debug and every other request\'s at info', async () => {
    const logs = logSink('debug');
    app = await buildApp({ config: testConfig(), logger: logs.logger });
    const { url } = await app.listen(0, '127.0.0.1');
    const levelsOf = async (path: string): Promise<number[]> => {
      const id = `probe-${path.replace(/\W/g, '')}`;
      await get(url, path, { 'X-Request-Id': id });
      return logs.lines.filter((l) => l.reqId === id && /^(incoming request|request completed)$/.test(String(l.msg))).map((l) => l.level as number);
    };
    for (const probe of ['/healthz', '/readyz', '/metrics']) expect(await levelsOf(probe), probe).toEqual([20, 20]);
    expect(await levelsOf('/v1/usage')).toEqual([30, 30]);
    expect(await levelsOf('/openapi-nothing')).toEqual([30, 30]);
  });

  it('at info, the probes write no access line at all', async () => {
    t = await startApp();
    await get(t.url, '/healthz', { 'X-Request-Id': 'quiet-probe' });
    await get(t.url, '/metrics', { 'X-Request-Id': 'quiet-probe' });
    await get(t.url, '/v1/usage', { 'X-Request-Id': 'loud-call' });
    expect(t.logs.lines.filter((l) => l.reqId === 'quiet-probe')).toEqual([]);
    expect(t.logs.lines.filter((l) => l.reqId === 'loud-call').length).toBe(2);
  });
});
