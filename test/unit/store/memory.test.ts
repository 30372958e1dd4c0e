import { describe, expect, it } from 'vitest';
import type { LeaseSpec } from '../../../src/limits/spec.js';
import { MemoryStore } from '../../../src/store/memory.js';
import type { LeaseHolder } from '../../../src/store/store.js';
import { storeSuite } from './store-suite.js';

storeSuite('memory', async (clock) => new MemoryStore({ now: clock.now }));

/**
 * Work, not time (issue 18 item 1): `leaseWork()` counts the lease-set entries an operation visits.
 * A sweep of every holder per call (the old bookkeeping) visits all of them, so these fail if it
 * comes back: at 100,000 holders an operation would visit 100,000 entries, not a handful.
 */
describe('memory store lease bookkeeping does not grow with the holders of a key', () => {
  const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);
  const TTL = 30_000;
  const acct: LeaseSpec = { key: 'conns:{a}', name: 'account', limit: 1_000_000 };
  const key: LeaseSpec = { key: 'conns:{a}:key:k', name: 'key', limit: 1_000_000 };

  /** A store whose one account holds `n` connections (each a slot of two keys). */
  async function holding(n: number): Promise<{ s: MemoryStore; clock: { t: number }; holders: LeaseHolder[] }> {
    const clock = { t: T0 };
    const s = new MemoryStore({ now: () => clock.t });
    const holders: LeaseHolder[] = Array.from({ length: n }, (_, i) => ({ leases: [acct, key], holderId: `h${i}` }));
    // Taken in one call (as a replica re-registers them after Redis comes back), then one more the
    // usual way, so the key's state is what acquisitions leave.
    await s.renew(holders.slice(0, -1), TTL, 'restore');
    expect((await s.acquire([acct, key], `h${n - 1}`, TTL)).allowed).toBe(true);
    expect(await s.countLeases(acct.key)).toBe(n);
    return { s, clock, holders };
  }

  /** Entries visited by `op`. */
  async function work(s: MemoryStore, op: () => Promise<unknown>): Promise<number> {
    const before = s.leaseWork();
    await op();
    return s.leaseWork() - before;
  }

  it('acquire, release and count visit as many entries at 100,000 holders as at 10', async () => {
    const cost = async (n: number): Promise<number[]> => {
      const { s } = await holding(n);
      return [
        await work(s, () => s.acquire([acct, key], 'new', TTL)),
        await work(s, () => s.countLeases(acct.key)),
        await work(s, () => s.release([acct, key], 'new')),
        await work(s, () => s.acquire([acct, key], 'h3', TTL)), // a holder already there
      ];
    };
    const small = await cost(10);
    const large = await cost(100_000);
    expect(large).toEqual(small);
    // And a handful each: a front check per key swept, one update per slot.
    for (const w of large) expect(w).toBeLessThanOrEqual(12);
  });

  it('a renewal round visits a constant number of entries per slot', async () => {
    for (const n of [10, 100_000]) {
      const { s, clock, holders } = await holding(n);
      clock.t += TTL / 3;
      const w = await work(s, () => s.renew(holders, TTL));
      // Two slots a holder; per slot one update, and one step to drop the entry it replaced.
      expect(w).toBeLessThanOrEqual(2 * 2 * n + 8);
      // Which leaves nothing for the next operation to clean up.
      expect(await work(s, () => s.acquire([acct, key], 'next', TTL))).toBeLessThanOrEqual(12);
      expect(await s.countLeases(acct.key)).toBe(n + 1);
    }
  });

  it('expired holders are visited once each when they expire, and the next operation is cheap again', async () => {
    const n = 50_000;
    const { s, clock, holders } = await holding(n);
    // The first half is renewed; the second half is not, and lapses.
    clock.t += TTL / 2;
    await s.renew(holders.slice(0, n / 2), TTL);
    clock.t += TTL / 2 + 100;
    const sweep = await work(s, () => s.countLeases(acct.key));
    expect(await s.countLeases(acct.key)).toBe(n / 2);
    // Each lapsed holder once, plus the first live one.
    expect(sweep).toBeLessThanOrEqual(n / 2 + 2);
    expect(await work(s, () => s.countLeases(acct.key))).toBeLessThanOrEqual(2);
  });

  it('slots of mixed TTLs on one key each expire at their own time, with logarithmic work', async () => {
    const clock = { t: T0 };
    const s = new MemoryStore({ now: () => clock.t });
    const lease: LeaseSpec = { key: 'up:{u}:conc', name: 'conc', limit: 1_000_000 };
    const n = 20_000;
    // Long, then ever shorter TTLs: every insertion after the first is out of expiry order.
    for (let i = 0; i < n; i++) await s.acquire([lease], `j${i}`, 2 * n - i);
    const perOp = await work(s, () => s.acquire([lease], 'late', 5));
    expect(perOp).toBeLessThanOrEqual(4 * Math.ceil(Math.log2(n)));
    // j(i) expires at 2n - i: after n + 1 ms, those with i ≥ n - 1 are gone (the last one and 'late').
    clock.t += n + 1;
    expect(await s.countLeases(lease.key)).toBe(n - 1);
    clock.t += n / 2;
    expect(await s.countLeases(lease.key)).toBe(n / 2 - 1);
    expect(await s.countLeases(lease.key)).toBe(n / 2 - 1);
    clock.t += n;
    expect(await s.countLeases(lease.key)).toBe(0);
  });
});
