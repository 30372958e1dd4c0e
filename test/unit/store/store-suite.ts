/**
 * The Store's behaviour, written once and run against every implementation (STYLE.md §10).
 * `make` gets a clock the suite controls.
 */
import { describe, expect, it } from 'vitest';
import type { LeaseSpec, LimitSpec } from '../../../src/limits/spec.js';
import type { SessionRecord, Store } from '../../../src/store/store.js';

export interface StoreFactory {
  (clock: { now: () => number }): Promise<Store>;
}

const NOON = Date.UTC(2026, 10, 23, 12, 0, 0);

function clock(start = NOON): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

const window = (limit: number, key = 'w:{a}', cost = 1): LimitSpec => ({ kind: 'window', key, name: key, limit, windowMs: 60_000, cost });
const bucket = (rate: number, burst: number, key = 'b:{a}'): LimitSpec => ({ kind: 'bucket', key, name: key, ratePerSec: rate, burst });
const daily = (limit: number, cost: number, key = 'd:{a}'): LimitSpec => ({ kind: 'daily', key, name: key, limit, cost });
const session = (over: Partial<SessionRecord> = {}): SessionRecord => ({
  sessionId: 's1', resumeToken: 'rt1', accountId: 'a', keyId: 'k', language: 'es',
  audio: { format: 'pcm16', sampleRate: 16000 }, createdAt: NOON, expiresAt: NOON + 1_800_000,
  history: [{ role: 'user', content: 'hola' }], pending: ['r1'], replicaId: 'x', connected: true,
  counters: { turns: 1, assessments: 0, translations: 0, audioSeconds: 1.5 },
  ...over,
});

export function storeSuite(name: string, make: StoreFactory): void {
  describe(`${name} store`, () => {
    it('a window allows `limit` in any 60 s; the oldest counts until its 1 s bucket has left', async () => {
      const c = clock();
      const s = await make(c);
      for (let i = 0; i < 3; i++) {
        c.advance(10_000);
        expect((await s.consume([window(3)], `op${i}`)).allowed).toBe(true);
      }
      const refused = await s.consume([window(3)], 'op3');
      // The oldest (+10 s, bucket [+10 s, +11 s)) stops counting at +71 s: an exact log would say
      // +70 s; the bucketed window is up to one bucket (1/60 of the window) more careful. It is +30 s.
      expect(refused).toMatchObject({ allowed: false, retryAfterMs: 41_000, limitName: 'w:{a}', states: [{ remaining: 0, resetMs: 61_000 }] });
      c.advance(40_999);
      expect((await s.consume([window(3)], 'op3b')).allowed).toBe(false);
      c.advance(1);
      expect((await s.consume([window(3)], 'op4')).allowed).toBe(true);
      await s.close();
    });

    it('a bucket allows the burst, then one per 1/rate', async () => {
      const c = clock();
      const s = await make(c);
      for (let i = 0; i < 5; i++) expect((await s.consume([bucket(2, 5)], `b${i}`)).allowed).toBe(true);
      const refused = await s.consume([bucket(2, 5)], 'b5');
      expect(refused).toMatchObject({ allowed: false, retryAfterMs: 500 });
      c.advance(500);
      expect((await s.consume([bucket(2, 5)], 'b6')).allowed).toBe(true);
      await s.close();
    });

    it('a daily limit counts fractional cost and resets at 00:00 UTC', async () => {
      const c = clock();
      const s = await make(c);
      expect((await s.consume([daily(1, 0.6)], 'd1')).allowed).toBe(true);
      const refused = await s.consume([daily(1, 0.5)], 'd2');
      expect(refused).toMatchObject({ allowed: false, retryAfterMs: 12 * 3600_000 });
      expect((await s.consume([daily(1, 0.4)], 'd3')).allowed).toBe(true);
      const [state] = await s.peek([daily(1, 0)]);
      expect(state!.remaining).toBeCloseTo(0, 9);
      c.advance(12 * 3600_000);
      expect((await s.consume([daily(1, 1)], 'd4')).allowed).toBe(true);
      await s.close();
    });

    it('decides several limits all or nothing', async () => {
      const c = clock();
      const s = await make(c);
      expect((await s.consume([window(5, 'w1:{a}'), window(1, 'w2:{a}')], 'x1')).allowed).toBe(true);
      const refused = await s.consume([window(5, 'w1:{a}'), window(1, 'w2:{a}')], 'x2');
      expect(refused).toMatchObject({ allowed: false, limitName: 'w2:{a}' });
      // The refusal consumed nothing from w1: four more fit.
      const [w1] = await s.peek([window(5, 'w1:{a}')]);
      expect(w1!.remaining).toBe(4);
      await s.close();
    });

    it('leases cap holders, are idempotent per holder, release idempotently and expire', async () => {
      const c = clock();
      const s = await make(c);
      const caps: LeaseSpec[] = [{ key: 'l:{a}', name: 'cap', limit: 2 }];
      expect((await s.acquire(caps, 'h1', 30_000)).allowed).toBe(true);
      expect((await s.acquire(caps, 'h1', 30_000)).allowed).toBe(true);
      expect((await s.acquire(caps, 'h2', 30_000)).allowed).toBe(true);
      const refused = await s.acquire(caps, 'h3', 30_000);
      expect(refused).toMatchObject({ allowed: false, limitName: 'cap' });
      expect(await s.countLeases('l:{a}')).toBe(2);
      await s.release(caps, 'h1');
      await s.release(caps, 'h1');
      expect(await s.countLeases('l:{a}')).toBe(1);
      c.advance(20_000);
      await s.renew([{ leases: caps, holderId: 'h2' }], 30_000);
      c.advance(20_000);
      expect(await s.countLeases('l:{a}')).toBe(1);
      c.advance(10_000);
      expect(await s.countLeases('l:{a}')).toBe(0);
      await s.close();
    });

    it('a lease key with many holders counts them, refuses the next until the earliest expires, and frees each at its expiry', async () => {
      const c = clock();
      const s = await make(c);
      const cap: LeaseSpec = { key: 'many:{a}', name: 'cap', limit: 300 };
      // 300 holders, taken 100 ms apart: h0 expires at +30 s, h299 at +59.9 s.
      for (let i = 0; i < 300; i++) {
        if (i > 0) c.advance(100);
        expect((await s.acquire([cap], `h${i}`, 30_000)).allowed).toBe(true);
      }
      expect(await s.countLeases('many:{a}')).toBe(300);
      const refused = await s.acquire([cap], 'late', 30_000);
      // Now +29.9 s: h0 expires in 100 ms, so the retry is the floor of 1 s.
      expect(refused).toMatchObject({ allowed: false, limitName: 'cap', retryAfterMs: 1000 });
      c.advance(99);
      expect(await s.countLeases('many:{a}')).toBe(300);
      c.advance(1);
      expect(await s.countLeases('many:{a}')).toBe(299);
      expect((await s.acquire([cap], 'late', 30_000)).allowed).toBe(true);
      // h100..h299 renewed at +30.001 s to +60.001 s; h1..h99 lapse at +30.1 s .. +39.8 s.
      await s.renew(Array.from({ length: 200 }, (_, i) => ({ leases: [cap], holderId: `h${i + 100}` })), 30_000);
      c.advance(9_900);
      expect(await s.countLeases('many:{a}')).toBe(201);
      await s.release([cap], 'h150');
      expect(await s.countLeases('many:{a}')).toBe(200);
      c.advance(20_100);
      expect(await s.countLeases('many:{a}')).toBe(0);
      await s.close();
    });

    it('slots of different TTLs on one key expire each at its own time, and a renewal may shorten one', async () => {
      const c = clock();
      const s = await make(c);
      const l: LeaseSpec = { key: 'mix:{a}', name: 'mix', limit: 10 };
      expect((await s.acquire([l], 'long', 30_000)).allowed).toBe(true);
      expect((await s.acquire([l], 'short', 10_000)).allowed).toBe(true);
      expect((await s.acquire([l], 'mid', 20_000)).allowed).toBe(true);
      expect((await s.acquire([l], 'cut', 30_000)).allowed).toBe(true);
      await s.renew([{ leases: [l], holderId: 'cut' }], 5_000);
      c.advance(5_000);
      expect(await s.countLeases('mix:{a}')).toBe(3);
      c.advance(5_000);
      expect(await s.countLeases('mix:{a}')).toBe(2);
      c.advance(10_000);
      expect(await s.countLeases('mix:{a}')).toBe(1);
      c.advance(10_000);
      expect(await s.countLeases('mix:{a}')).toBe(0);
      await s.close();
    });

    it('acquires several leases all or nothing', async () => {
      const c = clock();
      const s = await make(c);
      const key: LeaseSpec = { key: 'k:{a}', name: 'key', limit: 5 };
      const acct: LeaseSpec = { key: 'a:{a}', name: 'account', limit: 1 };
      expect((await s.acquire([key, acct], 'h1', 30_000)).allowed).toBe(true);
      expect((await s.acquire([key, acct], 'h2', 30_000)).allowed).toBe(false);
      expect(await s.countLeases('k:{a}')).toBe(1);
      await s.close();
    });

    it('admits upstream work against rates and a concurrency lease, all or nothing', async () => {
      const c = clock();
      const s = await make(c);
      const conc: LeaseSpec = { key: 'up:{u}:conc', name: 'concurrency', limit: 1 };
      const rate = bucket(10, 2, 'up:{u}:rps');
      expect((await s.admit([rate], [conc], 'j1', 30_000, 'a1')).allowed).toBe(true);
      const busy = await s.admit([rate], [conc], 'j2', 30_000, 'a2');
      expect(busy).toMatchObject({ allowed: false, limitName: 'concurrency', retryAfterMs: 0 });
      // The refusal took no token: after the release one token is still there for j2.
      await s.release([conc], 'j1');
      expect((await s.admit([rate], [conc], 'j2', 30_000, 'a3')).allowed).toBe(true);
      await s.release([conc], 'j2');
      const limited = await s.admit([rate], [conc], 'j3', 30_000, 'a4');
      expect(limited).toMatchObject({ allowed: false, limitName: 'up:{u}:rps', retryAfterMs: 100 });
      expect(await s.countLeases('up:{u}:conc')).toBe(0);
      await s.close();
    });

    it('a token is taken exactly once and not after it expires', async () => {
      const c = clock();
      const s = await make(c);
      await s.putToken('t1', { accountId: 'a', keyId: 'k', expiresAt: NOON + 60_000 });
      await s.putToken('t2', { accountId: 'a', keyId: 'k', expiresAt: NOON + 60_000 });
      expect((await s.takeToken('t1'))?.accountId).toBe('a');
      expect(await s.takeToken('t1')).toBeUndefined();
      c.advance(60_000);
      expect(await s.takeToken('t2')).toBeUndefined();
      await s.close();
    });

    it('keeps session records for their ttl, by id and by resume token, per account', async () => {
      const c = clock();
      const s = await make(c);
      const rec = session();
      await s.saveSession(rec, 60_000);
      expect(await s.loadSession('s1')).toEqual(rec);
      expect((await s.findSessionByResumeToken('rt1'))?.sessionId).toBe('s1');
      expect((await s.listSessions('a')).map((r) => r.sessionId)).toEqual(['s1']);
      expect(await s.listSessions('b')).toEqual([]);
      c.advance(60_000);
      expect(await s.loadSession('s1')).toBeUndefined();
      expect(await s.findSessionByResumeToken('rt1')).toBeUndefined();
      await s.saveSession(rec, 60_000);
      await s.deleteSession('s1');
      expect(await s.listSessions('a')).toEqual([]);
      await s.close();
    });

    it('a record saved again under another resume token or account is found only under the new ones', async () => {
      const c = clock();
      const s = await make(c);
      const rec = session({ sessionId: 's2', resumeToken: 'rtA' });
      await s.saveSession(rec, 60_000);
      await s.saveSession({ ...rec, resumeToken: 'rtB', accountId: 'b' }, 60_000);
      expect(await s.findSessionByResumeToken('rtA')).toBeUndefined();
      expect((await s.findSessionByResumeToken('rtB'))?.accountId).toBe('b');
      expect(await s.listSessions('a')).toEqual([]);
      expect((await s.listSessions('b')).map((r) => r.sessionId)).toEqual(['s2']);
      await s.close();
    });

    it('delivers a published command to every subscriber, the publisher included', async () => {
      const c = clock();
      const a = await make(c);
      const got: string[] = [];
      const done = new Promise<void>((resolve) => {
        a.subscribe((cmd) => {
          got.push(`${cmd.type}:${cmd.sessionId}:${cmd.from}`);
          resolve();
        });
      });
      // Redis subscribes asynchronously: publish until the subscription is live.
      for (let i = 0; i < 50 && got.length === 0; i++) {
        await a.publish({ type: 'session.delete', sessionId: 's9', from: 'r1' });
        await Promise.race([done, new Promise((r) => setTimeout(r, 20))]);
      }
      expect(got[0]).toBe('session.delete:s9:r1');
      await a.close();
    });

    it('keeps each replica\'s latest figures for their ttl', async () => {
      const c = clock();
      const s = await make(c);
      await s.putReplicaStats('r1', { connections: 3 }, 5000);
      await s.putReplicaStats('r2', { connections: 1 }, 2000);
      await s.putReplicaStats('r1', { connections: 4 }, 5000);
      const all = [...(await s.listReplicaStats())].sort((x, y) => x.replicaId.localeCompare(y.replicaId));
      expect(all.map((r) => [r.replicaId, r.stats.connections, r.at])).toEqual([['r1', 4, NOON], ['r2', 1, NOON]]);
      c.advance(2000);
      expect((await s.listReplicaStats()).map((r) => r.replicaId)).toEqual(['r1']);
      await s.close();
    });

    it('restore re-adds a lost lease slot; extend does not', async () => {
      const c = clock();
      const s = await make(c);
      const l: LeaseSpec = { key: 'r:{a}', name: 'r', limit: 1 };
      await s.renew([{ leases: [l], holderId: 'h1' }], 30_000);
      expect(await s.countLeases('r:{a}')).toBe(0);
      await s.renew([{ leases: [l], holderId: 'h1' }], 30_000, 'restore');
      expect(await s.countLeases('r:{a}')).toBe(1);
      c.advance(30_001);
      expect(await s.countLeases('r:{a}')).toBe(0);
      await s.close();
    });

    it('renews many holders over shared and separate keys in one call, extending only live ones', async () => {
      const c = clock();
      const s = await make(c);
      const acct: LeaseSpec = { key: 'c:{a}', name: 'acct', limit: 10 };
      const key1: LeaseSpec = { key: 'c:{a}:k1', name: 'k1', limit: 10 };
      const key2: LeaseSpec = { key: 'c:{a}:k2', name: 'k2', limit: 10 };
      for (const [h, leases] of [['h1', [acct, key1]], ['h2', [acct, key1]], ['h3', [acct, key2]]] as const) {
        expect((await s.acquire(leases, h, 10_000)).allowed).toBe(true);
      }
      c.advance(9_000);
      // h4 never acquired: extend must not add it.
      await s.renew([{ leases: [acct, key1], holderId: 'h1' }, { leases: [acct, key1], holderId: 'h2' }, { leases: [acct, key2], holderId: 'h3' }, { leases: [acct, key2], holderId: 'h4' }], 10_000);
      c.advance(9_000);
      expect([await s.countLeases('c:{a}'), await s.countLeases('c:{a}:k1'), await s.countLeases('c:{a}:k2')]).toEqual([3, 2, 1]);
      c.advance(1_001);
      expect([await s.countLeases('c:{a}'), await s.countLeases('c:{a}:k1'), await s.countLeases('c:{a}:k2')]).toEqual([0, 0, 0]);
      await s.close();
    });
  });
}
