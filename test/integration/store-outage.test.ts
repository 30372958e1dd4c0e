/**
 * Redis outages seen from the learners' side, on a real redis-server per test: a resume the store
 * cannot answer is never told its session expired (D3), and the fallback admits the same number of
 * new connections in every outage (D10).
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { startApp, TEST_KEY, until, type TestApp } from '../helpers/app.js';
import type { TestClient } from '../helpers/client.js';
import { startRedis, type RedisHandle } from '../helpers/redis.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function ownRedis(port?: number): Promise<RedisHandle> {
  const r = await startRedis(port);
  cleanup.push(async () => {
    r.signal('SIGCONT');
    await r.stop();
  });
  return r;
}

/** `n` replicas on `redis`, one fresh key prefix. */
async function replicas(redis: RedisHandle, n: number, plan: Record<string, unknown> = {}, expectedReplicas = n): Promise<{ apps: TestApp[]; prefix: string }> {
  const prefix = `t:${randomUUID().slice(0, 8)}:`;
  const apps: TestApp[] = [];
  for (let i = 0; i < n; i++) {
    const a = await startApp({ realTime: true, replicaId: `r${i + 1}`, plan, storeConfig: { kind: 'redis', url: redis.url, prefix, expectedReplicas } });
    cleanup.push(() => a.close());
    apps.push(a);
  }
  return { apps, prefix };
}

/** A session on `a` with one answered turn in its history, then dropped (its replica keeps it for a resume). */
async function droppedSession(a: TestApp): Promise<{ sessionId: string; resumeToken: string }> {
  const s = await a.session({ language: 'es' });
  const created = await s.waitFor('session.created');
  s.send({ type: 'turn.text', id: 't1', text: 'Hola, quiero un café' });
  await s.waitFor('reply.audio.end', (e) => e.request_id === 't1', 10_000);
  s.ws.terminate();
  await s.waitClose();
  await until(() => a.app.gateway.connections.size === 0, 3000, 'the drop reaching the replica');
  return { sessionId: created.session_id, resumeToken: created.resume_token };
}

/** The session's history as the store has it. */
async function storedHistory(redis: RedisHandle, prefix: string, sessionId: string): Promise<string[]> {
  const raw = new Redis(redis.url);
  try {
    const stored = await raw.get(`${prefix}sess:${sessionId}`);
    const record = JSON.parse(stored ?? '{"record":{"history":[]}}') as { record: { history: { content: string }[] } };
    return record.record.history.map((m) => m.content);
  } finally {
    raw.disconnect();
  }
}

describe('a resume while the store cannot answer (D3)', () => {
  it('Redis paused (SIGSTOP): the resume waits for it instead of answering session_expired, and resumes with the history', async () => {
    const redis = await ownRedis();
    const { apps: [a, b], prefix } = await replicas(redis, 2);
    const { sessionId, resumeToken } = await droppedSession(a!);

    redis.signal('SIGSTOP');
    const r = await b!.client({ apiKey: TEST_KEY });
    r.send({ type: 'session.start', id: 'resume', resume_token: resumeToken });
    // The resume is waiting on a store that does not answer; Redis comes back meanwhile.
    await until(() => !b!.app.gateway.store.healthy(), 5000, 'replica 2 finding Redis unresponsive');
    redis.signal('SIGCONT');
    const resumed = await r.waitFor('session.resumed', undefined, 10_000);
    expect(resumed.session_id).toBe(sessionId);
    expect(r.of('error')).toEqual([]);
    r.send({ type: 'turn.text', id: 't2', text: 'Y un croissant, por favor' });
    await r.waitFor('reply.audio.end', (e) => e.request_id === 't2', 10_000);
    await until(() => a!.app.gateway.registry.get(sessionId) === undefined, 3000, 'replica 1 letting go');
    const history = await storedHistory(redis, prefix, sessionId);
    expect(history.slice(0, 1)).toEqual(['Hola, quiero un café']);
    expect(history).toContain('Y un croissant, por favor');
  }, 40_000);

  it('Redis killed: the resume is refused with internal_error and close 1011 (reconnect and resume), and resumes with the history once Redis is back', async () => {
    const redis = await ownRedis();
    const { apps: [a, b], prefix } = await replicas(redis, 2);
    const { sessionId, resumeToken } = await droppedSession(a!);

    await redis.kill();
    const r = await b!.client({ apiKey: TEST_KEY });
    r.send({ type: 'session.start', id: 'resume', resume_token: resumeToken });
    const closed = await r.waitClose(15_000);
    expect(closed.code).toBe(1011);
    expect(r.of('error')).toEqual([expect.objectContaining({ code: 'internal_error', close_code: 1011, retry_after_ms: 2000 })]);
    expect(r.of('session.resumed')).toEqual([]);

    // Redis is back, empty: replica 1 re-registers the session it still holds for a resume.
    const back = await ownRedis(redis.port);
    await until(() => a!.app.gateway.store.healthy() && b!.app.gateway.store.healthy(), 10_000, 'both replicas rejoining Redis');
    const raw = new Redis(back.url);
    cleanup.push(async () => void raw.disconnect());
    for (const deadline = Date.now() + 5000; (await raw.exists(`${prefix}sess:${sessionId}`)) === 0; await new Promise((x) => setTimeout(x, 50))) {
      if (Date.now() > deadline) throw new Error('replica 1 did not re-register the session');
    }
    const again = await b!.client({ apiKey: TEST_KEY });
    again.send({ type: 'session.start', id: 'resume2', resume_token: resumeToken });
    expect((await again.waitFor('session.resumed', undefined, 10_000)).session_id).toBe(sessionId);
    again.send({ type: 'turn.text', id: 't2', text: 'Y un croissant, por favor' });
    await again.waitFor('reply.audio.end', (e) => e.request_id === 't2', 10_000);
    const history = await storedHistory(back, prefix, sessionId);
    expect(history.slice(0, 1)).toEqual(['Hola, quiero un café']);
    expect(history).toContain('Y un croissant, por favor');
  }, 60_000);
});

describe('new connections while Redis is away (D10)', () => {
  /** Opens a session with the API key; true if created, false if refused with 4029 connection_limit. */
  async function open(a: TestApp, opened: TestClient[]): Promise<boolean> {
    const c = await a.client({ apiKey: TEST_KEY });
    const refused = c.waitClose(10_000).then(() => false);
    c.send({ type: 'session.start', language: 'es' });
    const ok = await Promise.race([c.waitFor('session.created', undefined, 10_000).then(() => true), refused]);
    if (ok) opened.push(c);
    else expect(c.of('error')[0]).toMatchObject({ code: 'connection_limit', close_code: 4029 });
    return ok;
  }

  it('each outage (Redis killed, restarted, killed again) admits the same number: the replica\'s share less its own open connections', async () => {
    let redis = await ownRedis();
    // A cap of 8 per key; the share of one of 2 replicas is 4.
    const { apps: [a] } = await replicas(redis, 1, { connectionsPerKey: 8 }, 2);
    const steady: TestClient[] = [];
    expect(await open(a!, steady)).toBe(true);
    expect(await open(a!, steady)).toBe(true);

    const outage = async (): Promise<number> => {
      await redis.kill();
      await until(() => !a!.app.gateway.store.healthy(), 5000, 'the replica noticing Redis is gone');
      const extra: TestClient[] = [];
      while (await open(a!, extra)) if (extra.length > 10) break;
      redis = await ownRedis(redis.port);
      await until(() => a!.app.gateway.store.healthy(), 10_000, 'the replica rejoining Redis');
      // Back to the two steady connections before the next outage.
      for (const c of extra) c.close();
      await until(() => a!.app.gateway.connections.size === 2, 5000, 'the extra connections closing');
      return extra.length;
    };
    const first = await outage();
    const second = await outage();
    expect([first, second]).toEqual([2, 2]);
  }, 60_000);
});
