/**
 * The store's behaviour suite, unchanged, on a local 3-master Redis Cluster through ioredis
 * Cluster (`store.cluster`), plus the cross-slot paths: sessions and commands.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisStore } from '../../../src/store/redis.js';
import { startRedisCluster, type RedisClusterHandle } from '../../helpers/redis.js';
import { storeSuite } from './store-suite.js';

let cluster: RedisClusterHandle;
beforeAll(async () => {
  cluster = await startRedisCluster();
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

async function connect(opts: { prefix: string; now?: () => number }): Promise<RedisStore> {
  const s = new RedisStore({ cluster: cluster.urls, ...opts });
  await s.ready();
  return s;
}

storeSuite('redis cluster', async (clock) => connect({ prefix: 'test:' + randomUUID() + ':', now: clock.now }));

describe('redis cluster specifics', () => {
  it('spreads accounts over several nodes and still decides each atomically', async () => {
    const s = await connect({ prefix: 'test:' + randomUUID() + ':' });
    const accounts = Array.from({ length: 12 }, (_, i) => `acct_${i}`);
    for (const a of accounts) {
      const specs = [
        { kind: 'window', key: `rpm:{${a}}:turn`, name: 'turn', limit: 2, windowMs: 60_000 },
        { kind: 'daily', key: `audio:{${a}}`, name: 'audio', limit: 1, cost: 0.4 },
      ] as const;
      expect((await s.consume(specs, `${a}:1`)).allowed).toBe(true);
      expect((await s.consume(specs, `${a}:2`)).allowed).toBe(true);
      // The window still has room for none, the daily for 0.2: refused, and nothing consumed.
      const third = await s.consume(specs, `${a}:3`);
      expect(third.allowed).toBe(false);
      expect((await s.peek(specs)).map((x) => x.remaining)).toEqual([0, expect.closeTo(0.2, 6)]);
    }
    await s.close();
  });
});
