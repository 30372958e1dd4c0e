/**
 * The store's behaviour suite, unchanged, on a local 3-master Redis Cluster through ioredis
 * Cluster (`store.cluster`), plus the cross-slot paths: sessions and commands.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Decision } from '../../../src/limits/decision.js';
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

describe('redis cluster failover', () => {
  let ha: RedisClusterHandle;
  beforeAll(async () => {
    ha = await startRedisCluster({ replicasPerMaster: 1 });
  }, 60_000);
  afterAll(async () => {
    await ha?.stop();
  });

  it('keeps deciding after the master of a tag is killed and its replica takes over, with the counts replicated', async () => {
    const s = new RedisStore({ cluster: ha.urls, prefix: 'test:' + randomUUID() + ':', commandTimeoutMs: 500 });
    await s.ready();
    const w = { kind: 'window', key: 'rpm:{acct_f}:turn', name: 'turn', limit: 10, windowMs: 60_000 } as const;
    for (let i = 0; i < 3; i++) expect((await s.consume([w], `o${i}`)).allowed).toBe(true);
    // The master that holds the tag, and its replica caught up with it.
    const admin = new Redis(ha.urls[0]!);
    const slot = Number(await admin.cluster('KEYSLOT', '{acct_f}'));
    // CLUSTER SLOTS: [from, to, master, ...replicas], each node [host, port, id, …]. Replicas show
    // up once they have synced with their master.
    let nodes: [host: string, port: number, nodeId: string, info: unknown[]][] = [];
    for (const deadline = Date.now() + 15_000; nodes.length < 2; await new Promise((r) => setTimeout(r, 100))) {
      if (Date.now() > deadline) throw new Error('the master of {acct_f} has no replica listed');
      const owner = (await admin.cluster('SLOTS')).find(([from, to]) => slot >= from && slot <= to);
      if (owner) [, , ...nodes] = owner;
    }
    const [masterPort, replicaPort] = [nodes[0]![1], nodes[1]![1]];
    admin.disconnect();
    const master = new Redis(masterPort, '127.0.0.1');
    const replica = new Redis(replicaPort, '127.0.0.1');
    // WAIT: the writes so far have reached the replica.
    expect(Number(await master.call('WAIT', '1', '5000'))).toBe(1);
    master.disconnect();
    await ha.kill(masterPort);
    // Until the replica is promoted (node timeout 1 s + election) decisions fail, and a caller falls
    // back; then the store finds the new master by itself.
    const started = Date.now();
    let failures = 0;
    let after: Decision | undefined;
    while (!after) {
      try {
        after = await s.consume([w], `after:${failures}`);
      } catch {
        failures++;
        if (Date.now() - started > 20_000) throw new Error(`still failing after 20 s (${failures} failures)`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    // The three decisions from before the kill survived it (else 9 would be left); attempts that
    // timed out may have been applied once the new master answered ioredis' resend, which only ever
    // counts more, never less.
    expect(after.allowed).toBe(true);
    expect(after.states[0]!.remaining).toBeLessThanOrEqual(6);
    expect(after.states[0]!.remaining).toBeGreaterThanOrEqual(6 - failures);
    expect(failures).toBeGreaterThan(0);
    expect(String(await replica.role()).startsWith('master')).toBe(true);
    replica.disconnect();
    await s.close();
  }, 40_000);
});
