/**
 * Several replicas on one real Redis (spawned per file on a free port): caps, tokens, resume,
 * operator DELETE and upstream limits hold across replicas; a SIGKILLed replica's slots free
 * themselves after the lease; Redis killed and restarted mid-test (the failure policy).
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSimUpstream, type SimUpstream } from '../../src/simulator/server.js';
import { startApp, testConfig, until, type TestApp, type TestAppOptions } from '../helpers/app.js';
import { connect, type TestClient } from '../helpers/client.js';
import { startRedis, startRedisCluster, type RedisHandle } from '../helpers/redis.js';
import { spawnReplica, type Replica } from '../helpers/replica.js';
import { openAiUpstreams } from '../helpers/upstream.js';

let redis: RedisHandle;
const apps: TestApp[] = [];
const extra: { close(): Promise<void> }[] = [];
let child: Replica | undefined;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(async () => {
  child?.kill('SIGKILL');
  child = undefined;
  for (const a of apps.splice(0)) await a.close();
  for (const x of extra.splice(0)) await x.close();
});

/** `n` replicas sharing one fresh key prefix on `server`. */
async function replicas(n: number, opts: TestAppOptions & { leaseSeconds?: number } = {}, server = redis): Promise<TestApp[]> {
  const prefix = `t:${randomUUID().slice(0, 8)}:`;
  const out: TestApp[] = [];
  for (let i = 0; i < n; i++) {
    const t = await startApp({
      realTime: true,
      replicaId: `r${i + 1}`,
      ...opts,
      storeConfig: { kind: 'redis', url: server.url, prefix, expectedReplicas: n, ...(opts.leaseSeconds ? { leaseSeconds: opts.leaseSeconds } : {}) },
    });
    apps.push(t);
    out.push(t);
  }
  return out;
}

async function refusedWith(c: TestClient): Promise<{ close: number; code: string | undefined }> {
  const closed = await c.waitClose(5000);
  return { close: closed.code, code: c.of('error')[0]?.code };
}

describe('replicas on one Redis', () => {
  it('connection caps per key hold across replicas, and a freed slot is usable anywhere', async () => {
    const [a, b] = await replicas(2, { plan: { connectionsPerKey: 2, connectionsPerAccount: 10 } });
    const c1 = await a!.session();
    await b!.session();
    const c3 = await a!.client();
    expect(await refusedWith(c3)).toEqual({ close: 4029, code: 'connection_limit' });
    const c4 = await b!.client();
    expect(await refusedWith(c4)).toEqual({ close: 4029, code: 'connection_limit' });
    c1.close();
    await c1.waitClose();
    // The release is asynchronous: the slot is free once the store says so.
    const usage = async (): Promise<number> => ((await (await b!.rest('GET', '/v1/usage')).json()) as { connections_used: number }).connections_used;
    for (let i = 0; i < 100 && (await usage()) !== 1; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await usage()).toBe(1);
    const c5 = await b!.session();
    expect(c5.closeInfo).toBeUndefined();
  });

  it('a token minted on one replica opens a connection on another, exactly once', async () => {
    const [a, b] = await replicas(2);
    const token = await a!.token();
    const onB = await b!.session({}, { token });
    expect(onB.of('session.created')).toHaveLength(1);
    const again = await a!.client({ token });
    expect(await refusedWith(again)).toEqual({ close: 4001, code: 'unauthorized' });
  });

  it('a session dropped on one replica resumes on another with the same id, expiry and history', async () => {
    const [a, b] = await replicas(2);
    const s = await a!.session({ language: 'es' });
    const created = await s.waitFor('session.created');
    s.send({ type: 'turn.text', id: 't1', text: 'Hola, quiero un café' });
    await s.waitFor('reply.audio.end', (e) => e.request_id === 't1', 10_000);
    s.ws.terminate();
    await s.waitClose();
    await until(() => a!.app.gateway.connections.size === 0, 3000, 'the drop reaching replica 1');

    const r = await b!.client();
    r.send({ type: 'session.start', resume_token: created.resume_token });
    const resumed = await r.waitFor('session.resumed');
    expect(resumed.session_id).toBe(created.session_id);
    expect(resumed.expires_at).toBe(created.expires_at);
    // Replica 1 lets go of its copy without deleting the record replica 2 now owns.
    await until(() => a!.app.gateway.registry.get(created.session_id) === undefined, 3000, 'replica 1 letting go');
    r.send({ type: 'turn.text', id: 't2', text: 'Y un croissant, por favor' });
    await r.waitFor('reply.audio.end', (e) => e.request_id === 't2', 10_000);
    // The record is written after the answer went out (one store write): wait for it, then read it.
    type Listed = { sessions: { session_id: string; replica_id: string; turns: number }[] };
    let listed: Listed = { sessions: [] };
    for (let i = 0; i < 50; i++) {
      listed = (await (await a!.rest('GET', '/v1/sessions')).json()) as Listed;
      if (listed.sessions[0]?.turns === 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(listed.sessions).toEqual([expect.objectContaining({ session_id: created.session_id, replica_id: 'r2', turns: 2 })]);
  });

  it('resuming on another replica while the old connection is open closes it with 4030', async () => {
    const [a, b] = await replicas(2);
    const s = await a!.session();
    const created = await s.waitFor('session.created');
    const r = await b!.client();
    r.send({ type: 'session.start', resume_token: created.resume_token });
    expect((await r.waitFor('session.resumed')).session_id).toBe(created.session_id);
    expect(await refusedWith(s)).toEqual({ close: 4030, code: 'session_taken_over' });
    expect(r.closeInfo).toBeUndefined();
  });

  it('two resumes of one session at the same moment on one replica make one session: one connection keeps it, the other closes with 4030', async () => {
    const [a, b] = await replicas(2);
    const s = await a!.session();
    const created = await s.waitFor('session.created');
    const [r1, r2] = await Promise.all([b!.client(), b!.client()]);
    r1!.send({ type: 'session.start', resume_token: created.resume_token });
    r2!.send({ type: 'session.start', resume_token: created.resume_token });
    await Promise.all([r1!.waitFor('session.resumed'), r2!.waitFor('session.resumed')]);
    expect(await refusedWith(s)).toEqual({ close: 4030, code: 'session_taken_over' });
    // Exactly one of the two keeps the session; the other is taken over, as on two replicas.
    const loser = await Promise.race([
      r1!.closed.then(() => r1!),
      r2!.closed.then(() => r2!),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('neither resumed connection was taken over')), 5000)),
    ]);
    const winner = loser === r1 ? r2! : r1!;
    expect(await refusedWith(loser)).toEqual({ close: 4030, code: 'session_taken_over' });
    expect([...b!.app.gateway.registry.all()].filter((x) => x.id === created.session_id)).toHaveLength(1);
    winner.send({ type: 'turn.text', id: 'w', text: 'Hola' });
    await winner.waitFor('reply.audio.end', (e) => e.request_id === 'w', 10_000);
    // The operator's DELETE reaches the one copy that is left.
    expect((await a!.rest('DELETE', `/v1/sessions/${created.session_id}`)).status).toBe(204);
    expect(await refusedWith(winner)).toEqual({ close: 4003, code: 'forbidden' });
  });

  it('operator DELETE on one replica closes the session on another with 4003', async () => {
    const [a, b] = await replicas(2);
    const s = await a!.session();
    const created = await s.waitFor('session.created');
    const res = await b!.rest('DELETE', `/v1/sessions/${created.session_id}`);
    expect(res.status).toBe(204);
    expect(await refusedWith(s)).toEqual({ close: 4003, code: 'forbidden' });
    const listed = (await (await b!.rest('GET', '/v1/sessions')).json()) as { sessions: unknown[] };
    expect(listed.sessions).toEqual([]);
  });

  it('upstream rate and concurrency are shared: two replicas feed a limit-enforcing upstream with zero 429s', async () => {
    const sim: SimUpstream = await startSimUpstream({ rps: 4, burst: 2, concurrency: 2, latencyMs: 30 });
    extra.push(sim);
    const limits = { requestsPerSecond: 4, burst: 2, concurrency: 2 };
    const [a, b] = await replicas(2, { plan: { connectionsPerKey: 10 }, upstreams: openAiUpstreams(sim.url, limits) });
    const clients = [...(await Promise.all([1, 2, 3].map(() => a!.session()))), ...(await Promise.all([1, 2, 3].map(() => b!.session())))];
    clients.forEach((c, i) => c.send({ type: 'turn.text', id: `t${i}`, text: 'Hola, quiero un café' }));
    await Promise.all(clients.map((c, i) => c.waitFor('reply.audio.end', (e) => e.request_id === `t${i}`, 20_000)));
    const stats = sim.stats();
    expect(stats.rejected429).toBe(0);
    expect(stats.maxInFlight).toBeLessThanOrEqual(2);
    // A conversation call per turn, and as many speech calls as each turn's turn.metrics counts.
    const metrics = await Promise.all(clients.map((c) => c.waitFor('turn.metrics')));
    expect(stats.ok).toBe(6 + metrics.reduce((n, m) => n + m.tts_requests, 0));
    expect(clients.flatMap((c) => c.of('error'))).toEqual([]);
  });
});

describe('a replica that dies', () => {
  it('SIGKILL: its connection slots free themselves after the lease period', async () => {
    const leaseSeconds = 2;
    const [a] = await replicas(1, { plan: { connectionsPerKey: 2, connectionsPerAccount: 10 }, leaseSeconds });
    const prefix = (a!.app.gateway.config.store as { prefix: string }).prefix;
    const cfg = testConfig({ plan: { connectionsPerKey: 2, connectionsPerAccount: 10 } });
    child = await spawnReplica({ ...cfg, store: { kind: 'redis', url: redis.url, prefix, leaseSeconds } });
    const held = [await connect(child.url, { token: await a!.token() }), await connect(child.url, { token: await a!.token() })];
    for (const c of held) {
      c.send({ type: 'session.start', language: 'es' });
      await c.waitFor('session.created');
    }
    expect(await refusedWith(await a!.client())).toEqual({ close: 4029, code: 'connection_limit' });

    child.kill('SIGKILL');
    await child.exited;
    const killedAt = Date.now();
    // Right after the crash the slots are still leased...
    expect(await refusedWith(await a!.client())).toEqual({ close: 4029, code: 'connection_limit' });
    // ...and free within the lease period (plus the refusal round trips).
    let admitted: TestClient | undefined;
    while (!admitted && Date.now() - killedAt < (leaseSeconds + 3) * 1000) {
      const c = await a!.client();
      c.send({ type: 'session.start', language: 'es' });
      const first = await Promise.race([c.waitFor('session.created', undefined, 5000).then(() => 'created'), c.closed.then(() => 'closed')]);
      if (first === 'created') admitted = c;
      else await new Promise((r) => setTimeout(r, 200));
    }
    expect(admitted?.of('session.created')).toHaveLength(1);
    const freedAfter = Date.now() - killedAt;
    expect(freedAfter).toBeLessThanOrEqual((leaseSeconds + 3) * 1000);
  }, 40_000);
});

describe('Redis killed and restarted mid-test', () => {
  it('sessions keep working on in-process limits, /readyz says 503, and service is whole again within 5 s', async () => {
    const own = await startRedis();
    extra.push({ close: () => own.stop() });
    const [a] = await replicas(1, { plan: { connectionsPerKey: 5 } }, own);
    const prefix = (a!.app.gateway.config.store as { prefix: string }).prefix;
    const s1 = await a!.session();
    const s2 = await a!.session();
    expect((await a!.rest('GET', '/readyz')).status).toBe(200);

    await own.kill();
    await until(() => !a!.app.gateway.store.healthy(), 5000, 'the app noticing Redis is gone');
    expect((await a!.rest('GET', '/readyz')).status).toBe(503);
    // Open sessions keep working: the turn's account quota is decided in process.
    s1.send({ type: 'turn.text', id: 'during', text: 'Hola' });
    expect((await s1.waitFor('reply.text', (e) => e.request_id === 'during', 10_000)).text.length).toBeGreaterThan(0);
    // A new learner can still connect (the token lives in this replica's fallback).
    const s3 = await a!.session();
    expect(s3.of('session.created')).toHaveLength(1);
    expect(a!.logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('store unreachable'))).toBeDefined();
    // Every decision the fallback took is counted.
    const metrics = await (await a!.rest('GET', '/metrics')).text();
    const consumed = /^parley_store_fallback_total\{operation="consume"\} (\d+)/m.exec(metrics);
    expect(Number(consumed?.[1])).toBeGreaterThanOrEqual(1);

    const restarted = await startRedis(own.port);
    extra.push({ close: () => restarted.stop() });
    const back = Date.now();
    const raw = new Redis(restarted.url);
    extra.push({ close: async () => void raw.disconnect() });
    const ready = async (): Promise<boolean> => (await a!.rest('GET', '/readyz')).status === 200;
    while (!(await ready()) && Date.now() - back < 5000) await new Promise((r) => setTimeout(r, 50));
    // The restarted Redis is empty: this replica re-registers its 3 connections and 3 sessions.
    const conns = (): Promise<number> => raw.zcard(`${prefix}conns:{acct_a}`);
    while ((await conns()) < 3 && Date.now() - back < 5000) await new Promise((r) => setTimeout(r, 50));
    const recoveredMs = Date.now() - back;
    expect(await ready()).toBe(true);
    expect(await conns()).toBe(3);
    const listed = (await (await a!.rest('GET', '/v1/sessions')).json()) as { sessions: unknown[] };
    expect(listed.sessions).toHaveLength(3);
    expect(recoveredMs).toBeLessThan(5000);
    s2.send({ type: 'turn.text', id: 'after', text: 'Gracias' });
    expect((await s2.waitFor('reply.text', (e) => e.request_id === 'after', 10_000)).request_id).toBe('after');
    expect(a!.logs.find((l) => l.msg === 'store reachable again; re-registering leases and sessions')).toBeDefined();
  }, 40_000);
});

describe('replicas on a local 3-node Redis Cluster (store.cluster)', () => {
  it('caps, a token, resume with takeover and operator DELETE hold across two replicas', async () => {
    const cluster = await startRedisCluster();
    extra.push({ close: () => cluster.stop() });
    const prefix = `t:${randomUUID().slice(0, 8)}:`;
    const opts = { realTime: true, plan: { connectionsPerKey: 2 }, storeConfig: { kind: 'redis', cluster: cluster.urls, prefix, expectedReplicas: 2 } } as const;
    const a = await startApp({ ...opts, replicaId: 'c1' });
    apps.push(a);
    const b = await startApp({ ...opts, replicaId: 'c2' });
    apps.push(b);
    expect((await b.rest('GET', '/readyz')).status).toBe(200);

    const s = await a.session();
    const created = await s.waitFor('session.created');
    const r = await b.client({ token: await a.token() });
    r.send({ type: 'session.start', resume_token: created.resume_token });
    expect((await r.waitFor('session.resumed')).session_id).toBe(created.session_id);
    expect(await refusedWith(s)).toEqual({ close: 4030, code: 'session_taken_over' });

    await b.session();
    expect(await refusedWith(await a.client())).toEqual({ close: 4029, code: 'connection_limit' });

    expect((await a.rest('DELETE', `/v1/sessions/${created.session_id}`)).status).toBe(204);
    expect(await refusedWith(r)).toEqual({ close: 4003, code: 'forbidden' });
  }, 60_000);
});

describe('drain (SIGTERM) with a second replica', () => {
  it('a SIGTERM during a live turn answers that turn, closes with 1012, and the session resumes on the other replica', async () => {
    const [a] = await replicas(1);
    const prefix = (a!.app.gateway.config.store as { prefix: string }).prefix;
    const cfg = testConfig({ server: { drainSeconds: 5 }, upstreams: { conversation: { provider: 'simulated', latencyMs: 1500 } } });
    child = await spawnReplica({ ...cfg, store: { kind: 'redis', url: redis.url, prefix } });
    const s = await connect(child.url, { token: await a!.token() });
    s.send({ type: 'session.start', language: 'es' });
    const created = await s.waitFor('session.created');
    s.send({ type: 'turn.text', id: 'live', text: 'Hola, quiero un café' });
    await s.waitFor('quota.updated', undefined, 5000);
    child.kill('SIGTERM');
    child.kill('SIGTERM'); // a repeated signal is ignored
    const reply = await s.waitFor('reply.text', (e) => e.request_id === 'live', 10_000);
    expect(reply.text.length).toBeGreaterThan(0);
    expect(await refusedWith(s)).toEqual({ close: 1012, code: 'server_draining' });
    expect(await child.exited).toBe(0);

    const r = await a!.client();
    r.send({ type: 'session.start', resume_token: created.resume_token });
    const resumed = await r.waitFor('session.resumed');
    expect(resumed).toMatchObject({ session_id: created.session_id, expires_at: created.expires_at });
    r.send({ type: 'turn.text', id: 'next', text: 'Gracias' });
    expect((await r.waitFor('reply.text', (e) => e.request_id === 'next', 10_000)).request_id).toBe('next');
  }, 40_000);
});

describe('Redis that hangs (SIGSTOP) with its connections open', () => {
  it('decisions fall back after the command timeout, /readyz says 503, and the replica rejoins when Redis answers again', async () => {
    const own = await startRedis();
    extra.push({ close: async () => (own.signal('SIGCONT'), own.stop()) });
    const [a] = await replicas(1, {}, own);
    const s = await a!.session();
    own.signal('SIGSTOP');
    const sentAt = Date.now();
    s.send({ type: 'turn.text', id: 'hung', text: 'Hola' });
    expect((await s.waitFor('reply.text', (e) => e.request_id === 'hung', 10_000)).request_id).toBe('hung');
    expect((await a!.rest('GET', '/readyz')).status).toBe(503);
    // Later decisions do not wait for a timeout each.
    s.send({ type: 'turn.text', id: 'next', text: 'Otra vez' });
    await s.waitFor('reply.text', (e) => e.request_id === 'next', 10_000);
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(500);
    own.signal('SIGCONT');
    const back = Date.now();
    while ((await a!.rest('GET', '/readyz')).status !== 200 && Date.now() - back < 5000) await new Promise((r) => setTimeout(r, 50));
    expect((await a!.rest('GET', '/readyz')).status).toBe(200);
    expect(a!.logs.find((l) => l.msg === 'store reachable again; re-registering leases and sessions')).toBeDefined();
  }, 30_000);
});
