import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { limitId, RedisStore } from '../../../src/store/redis.js';
import { startLossyProxy } from '../../helpers/lossy-proxy.js';
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
    const started = performance.now();
    expect((await s.consume([w], 'o1')).allowed).toBe(true);
    const refused = await s.consume([w], 'o2');
    const between = performance.now() - started;
    expect(refused.allowed).toBe(false);
    if (!refused.allowed) {
      // Until the 1 s bucket of the first has left the 60 s window: 60-61 s after the first decision
      // on Redis' clock, so less the time between the two (long on a busy machine), plus 1 ms of rounding.
      expect(refused.retryAfterMs).toBeGreaterThan(60_000 - between - 1);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(61_000);
    }
    expect(s.healthy()).toBe(true);
    await s.close();
    expect(s.healthy()).toBe(false);
  });

  /**
   * What ioredis does after a reconnect: the same script call again, byte for byte (same client id,
   * same seq). Sent here by hand, one decision per call: a daily limit of 5 and a window of 1 in 60 s.
   * The reply, decoded: [now, allowed, retryAfterMs, refused index, d used, 0, w sum, w newest bucket].
   */
  const RAW_DAILY = { kind: 'daily', key: 'd:{a}', name: 'd', limit: 5, cost: 1 } as const;
  const RAW_WINDOW = { kind: 'window', key: 'w:{a}', name: 'w', limit: 1, windowMs: 60_000 } as const;
  async function rawDecider(prefix: string, now: () => number): Promise<{ send(seq: number): Promise<number[]>; close(): Promise<void> }> {
    const r = new Redis(server.url);
    r.defineCommand('parleyAdmit', { lua: readFileSync(new URL('../../../src/store/lua/admit.lua', import.meta.url), 'utf8') });
    const call = r as Redis & { parleyAdmitBuffer(...a: (string | number | Buffer)[]): Promise<Buffer> };
    // 1 group: hash key 1, 2 fields, 1 decision, writes; field 1: the daily's id, daily; field 2:
    // the window's id, a window of 1 s buckets in 61 slots; admit, ttl 0, 2 specs, 0 leases;
    // field 1 limit 5 cost 1; field 2 limit 1 over 60 s cost 1.
    const [dId, wId] = [limitId(RAW_DAILY), limitId(RAW_WINDOW)];
    const blob = Buffer.from(new Float64Array([1, 1, 2, 1, 1, dId, 3, 0, 0, wId, 1, 1_000, 61, 1, 0, 2, 0, 1, 5, 0, 1, 2, 1, 60_000, 1]).buffer);
    return {
      send: async (seq) => {
        const reply = await call.parleyAdmitBuffer(1, `${prefix}lim:{a}`, now(), 'client1', seq, blob);
        return Array.from(new Float64Array(reply.buffer.slice(reply.byteOffset, reply.byteOffset + reply.length)));
      },
      close: async () => void (await r.quit()),
    };
  }

  it('applies a replayed script call once and answers its recorded outcome, with the states as they are now', async () => {
    const c = { t: Date.UTC(2026, 10, 23, 12, 0, 0) };
    const bucket = c.t / 1000; // the window's 1 s bucket of the first call
    const prefix = 'test:' + randomUUID() + ':';
    const raw = await rawDecider(prefix, () => c.t);
    expect(await raw.send(1)).toEqual([c.t, 1, 0, 0, 1, 0, 1, bucket]);
    c.t += 10_000;
    // The replay: the same outcome, nothing consumed (d used stays 1, w sum 1).
    expect(await raw.send(1)).toEqual([c.t, 1, 0, 0, 1, 0, 1, bucket]);
    // The next call (seq 2) is refused by the window (index 2) until its bucket leaves: 51 s.
    expect(await raw.send(2)).toEqual([c.t, 0, 51_000, 2, 1, 0, 1, bucket]);
    c.t += 20_000;
    // That refusal replayed: the recorded retry time and limit, the states as they are now.
    expect(await raw.send(2)).toEqual([c.t, 0, 51_000, 2, 1, 0, 1, bucket]);
    // A call older than the record (a late resend of seq 1) consumes nothing either.
    expect((await raw.send(1)).slice(4)).toEqual([1, 0, 1, bucket]);
    const s = await connect({ prefix, now: () => c.t });
    expect((await s.peek([RAW_DAILY]))[0]!.remaining).toBe(4);
    await Promise.all([s.close(), raw.close()]);
  });

  it('applies a decision once when its reply is lost and ioredis resends it after reconnecting', async () => {
    const proxy = await startLossyProxy(server.port);
    const prefix = 'test:' + randomUUID() + ':';
    const s = new RedisStore({ url: proxy.url, prefix, commandTimeoutMs: 2_000 });
    await s.ready();
    const w = { kind: 'window', key: 'w:{a}', name: 'w', limit: 5, windowMs: 60_000 } as const;
    const d = { kind: 'daily', key: 'd:{a}', name: 'd', limit: 10, cost: 1 } as const;
    expect((await s.consume([w, d], 'first')).allowed).toBe(true);
    const r = new Redis(server.url);
    await r.config('RESETSTAT');
    proxy.loseNextReply();
    // Redis applies it, the reply is lost with the connection; ioredis reconnects and sends it again.
    const lost = await s.consume([w, d], 'lost');
    expect(proxy.cuts).toBe(1);
    // Two script runs (ioredis resends it as EVAL on the new connection), one write.
    const stats = await r.info('commandstats');
    const calls = (cmd: string): number => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    expect([calls('evalsha') + calls('eval'), calls('hset')]).toEqual([2, 1]);
    // The answer is the recorded one, and each limit counted the decision once: 2 of 5, 2 of 10.
    expect(lost).toMatchObject({ allowed: true, states: [{ name: 'w', remaining: 3 }, { name: 'd', remaining: 8 }] });
    expect((await s.peek([w, d])).map((x) => x.remaining)).toEqual([3, 8]);
    await r.quit();
    await s.close();
    await proxy.close();
  });

  it('sends at most 32 decisions per script call, several calls at once for distinct tags', async () => {
    const s = await connect({ prefix: 'test:' + randomUUID() + ':' });
    await s.peek([{ kind: 'daily', key: 'd:{warm}', name: 'd', limit: 1 }]); // the script is cached
    const r = new Redis(server.url);
    await r.config('RESETSTAT');
    const ds = await Promise.all(
      Array.from({ length: 70 }, (_, i) => s.consume([{ kind: 'window', key: `w:{t${i}}`, name: 'w', limit: 1, windowMs: 60_000 }], `o${i}`)),
    );
    expect(ds.filter((x) => x.allowed).length).toBe(70);
    // The first at once (nothing in flight), then the 69 others on the next tick: 32 + 32 + 5.
    expect(/cmdstat_evalsha:calls=(\d+)/.exec(await r.info('commandstats'))?.[1]).toBe('4');
    await r.quit();
    await s.close();
  });

  it('rejects every decision of a batch whose call times out (so the caller falls back)', async () => {
    const proxy = await startLossyProxy(server.port);
    const s = new RedisStore({ url: proxy.url, prefix: 'test:' + randomUUID() + ':', commandTimeoutMs: 300 });
    await s.ready();
    const w = (i: number) => ({ kind: 'window', key: `w:{t${i}}`, name: 'w', limit: 1, windowMs: 60_000 }) as const;
    proxy.swallowReplies();
    const outcomes = await Promise.allSettled([0, 1, 2, 3, 4].map((i) => s.consume([w(i)], `o${i}`)));
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected', 'rejected']);
    expect(String((outcomes[0] as PromiseRejectedResult).reason)).toMatch(/timed out/i);
    await s.close();
    await proxy.close();
  });

  it('decides a burst of calls together in one script call, in order, each all or nothing', async () => {
    const c = { t: Date.UTC(2026, 10, 23, 12, 0, 0) };
    const s = await connect({ prefix: 'test:' + randomUUID() + ':', now: () => c.t });
    const w = { kind: 'window', key: 'w:{a}', name: 'w', limit: 3, windowMs: 60_000 } as const;
    const d = { kind: 'daily', key: 'd:{a}', name: 'd', limit: 10, cost: 1 } as const;
    const other = { kind: 'window', key: 'w:{b}', name: 'wb', limit: 1, windowMs: 60_000 } as const;
    await s.peek([d]); // the script is cached (no EVAL after a NOSCRIPT below)
    const r = new Redis(server.url);
    await r.config('RESETSTAT');
    const burst = await Promise.all([
      s.consume([d, w], 'o1'), s.consume([d, w], 'o2'), s.consume([other], 'o3'), s.consume([d, w], 'o4'),
      s.consume([d, w], 'o5'), s.consume([other], 'o6'), s.peek([d, w]),
    ]);
    expect(burst.slice(0, 6).map((x) => ('allowed' in x ? x.allowed : undefined))).toEqual([true, true, true, true, false, false]);
    // The refused fifth consumed nothing from d: 3 taken, 7 left, as the peek after it shows.
    expect((burst[6] as readonly { remaining: number }[]).map((x) => x.remaining)).toEqual([7, 0]);
    // Three calls for seven decisions: the first at once (nothing was in flight); the two on {b} on
    // the next tick; the four others on {a} once the first answered (one batch per tag in flight).
    const stats = await r.info('commandstats');
    expect(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1]).toBe('3');
    await r.quit();
    await s.close();
  });

  it('keeps each tag\'s leases apart when one script call carries admissions on several tags', async () => {
    const c = { t: Date.UTC(2026, 10, 23, 12, 0, 0) };
    const prefix = 'test:' + randomUUID() + ':';
    const s = await connect({ prefix, now: () => c.t });
    const specs = (u: string) => [{ kind: 'window', key: `up:{${u}}:rpm`, name: `${u}.rpm`, limit: 100, windowMs: 60_000 }] as const;
    const lease = (u: string) => [{ key: `up:{${u}}:conc`, name: `${u}.conc`, limit: 2 }];
    await s.peek(specs('u1')); // one call in flight first, so the six below share batches
    const r = new Redis(server.url);
    await r.config('RESETSTAT');
    const first = s.admit(specs('u0'), lease('u0'), 'h0', 30_000, 'o0');
    const burst = await Promise.all(
      ['u1', 'u2', 'u1', 'u2', 'u1', 'u2'].map((u, i) => s.admit(specs(u), lease(u), `h${i}`, 30_000, `o${i}`)),
    );
    await first;
    // Per upstream: two taken, the third refused by its own lease (holders 0-5 alternate u1, u2).
    expect(burst.map((d) => (d.allowed ? 'ok' : d.limitName))).toEqual(['ok', 'ok', 'ok', 'ok', 'u1.conc', 'u2.conc']);
    expect(await r.zrange(`${prefix}up:{u1}:conc`, 0, -1)).toEqual(['h0', 'h2']);
    expect(await r.zrange(`${prefix}up:{u2}:conc`, 0, -1)).toEqual(['h1', 'h3']);
    expect(Number(/cmdstat_evalsha:calls=(\d+)/.exec(await r.info('commandstats'))?.[1])).toBe(2);
    await r.quit();
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
    // One hash for the tag's limits (window, bucket, daily), one sorted set for the lease.
    expect(keys.sort()).toEqual([prefix + 'l:{a}', prefix + 'lim:{a}']);
    expect(await r.hlen(prefix + 'lim:{a}')).toBe(3); // the limits' states, the replay record, the expiry mark
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
