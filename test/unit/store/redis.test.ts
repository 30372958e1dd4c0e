import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisStore } from '../../../src/store/redis.js';
import { startRedis, type RedisHandle } from '../../helpers/redis.js';
import { storeSuite } from './store-suite.js';

let server: RedisHandle;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

async function connect(opts: { prefix: string; now?: () => number }): Promise<RedisStore> {
  const s = new RedisStore({ url: server.url, ...opts });
  await s.ready();
  return s;
}

storeSuite('redis', async (clock) => connect({ prefix: 'test:' + randomUUID() + ':', now: clock.now }));

describe('redis store specifics', () => {
  it('uses Redis TIME as the clock when none is injected', async () => {
    const s = await connect({ prefix: 'test:' + randomUUID() + ':' });
    const w = { kind: 'window', key: 'w:{a}', name: 'w', limit: 1, windowMs: 60_000 } as const;
    expect((await s.consume([w], 'o1')).allowed).toBe(true);
    const refused = await s.consume([w], 'o2');
    expect(refused.allowed).toBe(false);
    if (!refused.allowed) {
      expect(refused.retryAfterMs).toBeGreaterThan(59_000);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(60_000);
    }
    expect(s.healthy()).toBe(true);
    await s.close();
    expect(s.healthy()).toBe(false);
  });

  it('returns the stored outcome for a replayed opId after a reconnect, with the states as they are now', async () => {
    const prefix = 'test:' + randomUUID() + ':';
    const w = { kind: 'window', key: 'w:{a}', name: 'w', limit: 1, windowMs: 60_000 } as const;
    const a = await connect({ prefix });
    const first = await a.consume([w], 'same');
    expect(first).toMatchObject({ allowed: true, states: [{ name: 'w', limit: 1, remaining: 0 }] });
    await a.close();
    const b = await connect({ prefix });
    // The record keeps the outcome only; the states of a replay are a peek (Redis TIME has moved on).
    const replay = await b.consume([w], 'same');
    expect(replay).toMatchObject({ allowed: true, states: [{ name: 'w', limit: 1, remaining: 0 }] });
    expect(replay.states[0]!.resetMs).toBeLessThanOrEqual(first.states[0]!.resetMs);
    expect(replay.states[0]!.resetMs).toBeGreaterThan(0);
    expect((await b.consume([w], 'other')).allowed).toBe(false);
    await b.close();
  });

  it('replays a refusal with its retry time and limit, consuming nothing', async () => {
    const c = { t: Date.UTC(2026, 10, 23, 12, 0, 0) };
    const s = await connect({ prefix: 'test:' + randomUUID() + ':', now: () => c.t });
    const w = { kind: 'window', key: 'w:{a}', name: 'w', limit: 1, windowMs: 60_000 } as const;
    const d = { kind: 'daily', key: 'd:{a}', name: 'd', limit: 5, cost: 1 } as const;
    expect((await s.consume([d, w], 'o1')).allowed).toBe(true);
    c.t += 10_000;
    const refused = await s.consume([d, w], 'o2');
    expect(refused).toMatchObject({ allowed: false, retryAfterMs: 50_000, limitName: 'w', states: [{ name: 'd', remaining: 4 }, { name: 'w', remaining: 0 }] });
    c.t += 20_000;
    // Replayed later: the same outcome; states read now (the window slid by 20 s).
    expect(await s.consume([d, w], 'o2')).toEqual({
      allowed: false,
      retryAfterMs: 50_000,
      limitName: 'w',
      states: [
        { name: 'd', limit: 5, remaining: 4, resetMs: 12 * 3600_000 - 30_000 },
        { name: 'w', limit: 1, remaining: 0, resetMs: 30_000 },
      ],
    });
    // An allowed replay consumes nothing either.
    expect((await s.consume([d, w], 'o1')).allowed).toBe(true);
    expect((await s.peek([d]))[0]!.remaining).toBe(4);
    await s.close();
  });

  it('puts a TTL on every key it writes', async () => {
    const prefix = 'test:' + randomUUID() + ':';
    const s = await connect({ prefix });
    await s.consume(
      [
        { kind: 'window', key: 'w:{a}', name: 'w', limit: 3, windowMs: 60_000 },
        { kind: 'bucket', key: 'b:{a}', name: 'b', ratePerSec: 1, burst: 5 },
        { kind: 'daily', key: 'd:{a}', name: 'd', limit: 10, cost: 0.5 },
      ],
      'op',
    );
    await s.acquire([{ key: 'l:{a}', name: 'l', limit: 2 }], 'h', 30_000);
    const r = new Redis(server.url);
    const keys = await r.keys(prefix + '*');
    expect(keys.length).toBeGreaterThanOrEqual(5);
    expect(await r.pttl(prefix + 'w:{a}')).toBeGreaterThan(0);
    for (const k of keys) expect(await r.pttl(k), k).toBeGreaterThan(0);
    await r.quit();
    await s.close();
  });
});

describe('redis store shutdown', () => {
  it('finishes a session delete already started when close() is called', async () => {
    const prefix = 'test:' + randomUUID() + ':';
    const s = await connect({ prefix });
    const rec = {
      sessionId: 'sx', resumeToken: 'rtx', accountId: 'a', keyId: 'k', language: 'es',
      audio: { format: 'pcm16', sampleRate: 16000 }, createdAt: Date.now(), expiresAt: Date.now() + 60_000,
      history: [], pending: [], replicaId: 'r', connected: true,
      counters: { turns: 0, assessments: 0, translations: 0, audioSeconds: 0 },
    } as const;
    await s.saveSession(rec, 60_000);
    const deleting = s.deleteSession('sx');
    await s.close();
    await expect(deleting).resolves.toBeUndefined();
    const r = new Redis(server.url);
    expect(await r.exists(`${prefix}sess:sx`, `${prefix}resume:rtx`)).toBe(0);
    await r.quit();
  });
});
