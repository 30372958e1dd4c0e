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

  it('returns the stored decision for a replayed opId after a reconnect', async () => {
    const prefix = 'test:' + randomUUID() + ':';
    const w = { kind: 'window', key: 'w:{a}', name: 'w', limit: 1, windowMs: 60_000 } as const;
    const a = await connect({ prefix });
    const first = await a.consume([w], 'same');
    expect(first.allowed).toBe(true);
    await a.close();
    const b = await connect({ prefix });
    expect(await b.consume([w], 'same')).toEqual(first);
    expect((await b.consume([w], 'other')).allowed).toBe(false);
    await b.close();
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
