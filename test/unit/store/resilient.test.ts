import { describe, expect, it, vi } from 'vitest';
import { MemoryStore } from '../../../src/store/memory.js';
import { ResilientStore, scaleLimit, shareOf, type SharedStore } from '../../../src/store/resilient.js';
import type { LeaseSpec, LimitSpec } from '../../../src/limits/spec.js';
import { StoreUnavailableError, type LeaseHolder, type SessionRecord } from '../../../src/store/store.js';
import { logSink } from '../../helpers/log-sink.js';

/** A memory store standing in for Redis, whose reachability the test switches. */
class FlakyPrimary extends MemoryStore implements SharedStore {
  up = true;
  throwing = false;
  private stateHandlers = new Set<(ready: boolean) => void>();
  onStateChange(h: (ready: boolean) => void): () => void {
    this.stateHandlers.add(h);
    return () => this.stateHandlers.delete(h);
  }
  set(ready: boolean): void {
    this.up = ready;
    for (const h of this.stateHandlers) h(ready);
  }
  override healthy(): boolean {
    return this.up;
  }
  async ping(): Promise<void> {
    if (this.throwing) throw new Error('Command timed out');
  }
  override async consume(...args: Parameters<MemoryStore['consume']>) {
    if (this.throwing) throw new Error('Command timed out');
    return super.consume(...args);
  }
  override async acquire(...args: Parameters<MemoryStore['acquire']>) {
    if (this.throwing) throw new Error('Command timed out');
    return super.acquire(...args);
  }
  override async findSessionByResumeToken(token: string) {
    if (this.throwing) throw new Error('Command timed out');
    return super.findSessionByResumeToken(token);
  }
}

const window10: LimitSpec = { kind: 'window', key: 'w:{a}', name: 'w', limit: 10, windowMs: 60_000 };

describe('shares of a limit while the shared store is away', () => {
  it('divides by the expected replicas, keeping at least one slot', () => {
    expect(shareOf(10, 3, true)).toBe(3);
    expect(shareOf(1, 3, true)).toBe(1);
    expect(shareOf(500, 4, false)).toBe(125);
    expect(shareOf(7, 1, true)).toBe(7);
    expect(scaleLimit({ kind: 'bucket', key: 'b', name: 'b', ratePerSec: 20, burst: 60 }, 4)).toMatchObject({ ratePerSec: 5, burst: 15 });
    expect(scaleLimit({ kind: 'daily', key: 'd', name: 'd', limit: 500 }, 2)).toMatchObject({ limit: 250 });
  });
});

describe('ResilientStore', () => {
  function make(replicas = 2) {
    const primary = new FlakyPrimary();
    const fallback = new MemoryStore();
    const counted: string[] = [];
    const logs = logSink('info');
    const store = new ResilientStore({ primary, fallback, expectedReplicas: replicas, logger: logs.logger, onFallback: (op) => counted.push(op) });
    return { primary, fallback, store, counted, logs };
  }

  it('decides on the shared store while it answers, and counts no fallback', async () => {
    const { primary, store, counted } = make();
    for (let i = 0; i < 10; i++) expect((await store.consume([window10], `o${i}`)).allowed).toBe(true);
    expect((await store.consume([window10], 'o10')).allowed).toBe(false);
    expect((await primary.peek([window10]))[0]?.remaining).toBe(0);
    expect(counted).toEqual([]);
  });

  it('while unreachable, decides in process at limit / replicas, counts each decision and logs the outage once', async () => {
    const { primary, store, counted, logs } = make(2);
    primary.set(false);
    const outcomes = [];
    for (let i = 0; i < 7; i++) outcomes.push((await store.consume([window10], `o${i}`)).allowed);
    expect(outcomes).toEqual([true, true, true, true, true, false, false]);
    expect(counted).toEqual(Array(7).fill('consume'));
    expect(store.healthy()).toBe(false);
    expect(logs.lines.filter((l) => String(l.msg).startsWith('store unreachable'))).toHaveLength(1);
  });

  it('a failing command falls back for that decision', async () => {
    const { primary, store, counted } = make(2);
    primary.throwing = true;
    expect((await store.consume([window10], 'x')).allowed).toBe(true);
    expect(counted).toEqual(['consume']);
    expect(store.isDegraded).toBe(true);
  });

  it('a store that stays connected but stops answering is probed and rejoined once it answers', async () => {
    vi.useFakeTimers();
    try {
      const { primary, store, counted } = make(2);
      let reregistered = 0;
      store.onRecovered(() => reregistered++);
      primary.throwing = true;
      await store.consume([window10], 'a');
      expect(store.healthy()).toBe(false);
      // Degraded: the next decision goes straight to the fallback, without trying the primary.
      await store.consume([window10], 'b');
      expect(counted).toEqual(['consume', 'consume']);
      await vi.advanceTimersByTimeAsync(1000);
      expect(store.healthy()).toBe(false);
      primary.throwing = false;
      await vi.advanceTimersByTimeAsync(1000);
      expect(store.healthy()).toBe(true);
      expect(reregistered).toBe(1);
      await store.consume([window10], 'c');
      expect(counted).toHaveLength(2);
      await store.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('on recovery runs the re-registration handlers once and decides on the shared store again', async () => {
    const { primary, store, counted } = make(2);
    let reregistered = 0;
    store.onRecovered(() => reregistered++);
    primary.set(false);
    await store.consume([window10], 'a');
    primary.set(true);
    primary.set(true);
    expect(reregistered).toBe(1);
    await store.consume([window10], 'b');
    expect(counted).toEqual(['consume']);
    expect((await primary.peek([window10]))[0]?.remaining).toBe(9);
  });

  it('a token minted during an outage opens exactly once on this replica', async () => {
    const { primary, store } = make();
    primary.set(false);
    await store.putToken('t', { accountId: 'a', keyId: 'k', expiresAt: Date.now() + 60_000 });
    primary.set(true);
    expect((await store.takeToken('t'))?.accountId).toBe('a');
    expect(await store.takeToken('t')).toBeUndefined();
  });

  const caps = (limit: number): LeaseSpec[] => [{ key: 'conns:{a}', name: 'account', limit }, { key: 'conns:{a}:key:k', name: 'key', limit }];

  /** Opens connections (acquires) until one is refused; returns how many were admitted. */
  async function admitted(store: ResilientStore, prefix: string, limit: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < 1000; i++) {
      if (!(await store.acquire(caps(limit), `${prefix}${i}`, 30_000)).allowed) return ids;
      ids.push(`${prefix}${i}`);
    }
    throw new Error('never refused');
  }

  it('counts this replica\'s own open connections against its share in every outage alike (D10)', async () => {
    const { primary, store } = make(2);
    // 10 connections open while Redis answers; the cap is 60, so the share of 2 replicas is 30.
    for (let i = 0; i < 10; i++) expect((await store.acquire(caps(60), `open${i}`, 30_000)).allowed).toBe(true);
    const open = Array.from({ length: 10 }, (_, i) => ({ leases: caps(60), holderId: `open${i}` }));
    const outage = async (n: number): Promise<number> => {
      primary.set(false);
      const got = await admitted(store, `o${n}-`, 60);
      // The renewal rounds go on meanwhile, and the outage ends.
      await store.renew([...open, ...got.map((holderId) => ({ leases: caps(60), holderId }))], 30_000);
      primary.set(true);
      await store.renew([...open, ...got.map((holderId) => ({ leases: caps(60), holderId }))], 30_000, 'restore');
      // Back to the same 10 open connections before the next outage.
      for (const id of got) await store.release(caps(60), id);
      return got.length;
    };
    const first = await outage(1);
    const second = await outage(2);
    expect([first, second]).toEqual([20, 20]);
  });

  it('while the primary answers, the fallback holds only this replica\'s own lease holders, renewed in one pass a round', async () => {
    const { store, fallback } = make(2);
    const n = 20_000;
    const holders: LeaseHolder[] = [];
    let refused = 0;
    for (let i = 0; i < n; i++) {
      if (!(await store.acquire(caps(1_000_000), `h${i}`, 30_000)).allowed) refused++;
      holders.push({ leases: caps(1_000_000), holderId: `h${i}` });
    }
    expect(refused).toBe(0);
    // Rate decisions leave nothing in the fallback while the primary decides them.
    for (let i = 0; i < 20; i++) await store.consume([window10], `c${i}`);
    expect((await fallback.peek([window10]))[0]?.remaining).toBe(10);
    expect(await fallback.countLeases('conns:{a}')).toBe(n);
    for (const size of [10, n]) {
      const before = fallback.leaseWork();
      await store.renew(holders.slice(0, size), 30_000);
      // Two slots a holder: per slot one update and one step dropping the entry it replaced.
      expect(fallback.leaseWork() - before).toBeLessThanOrEqual(4 * size + 8);
    }
    // Releasing leaves the fallback with nothing.
    for (const h of holders) await store.release(h.leases, h.holderId);
    expect(await fallback.countLeases('conns:{a}')).toBe(0);
  });

  it('a resume the shared store cannot answer is StoreUnavailableError, not "no such session" (D3)', async () => {
    const { primary, store } = make(2);
    const rec: SessionRecord = {
      sessionId: 's1', resumeToken: 'rt1', accountId: 'a', keyId: 'k', language: 'es', audio: { format: 'pcm16', sampleRate: 16000 },
      createdAt: Date.now(), expiresAt: Date.now() + 60_000, history: [], pending: [], replicaId: 'x', connected: false,
      counters: { turns: 0, assessments: 0, translations: 0, audioSeconds: 0 },
    };
    await store.saveSession(rec, 60_000);
    expect(await store.findSessionByResumeToken('nope')).toBeUndefined();
    primary.throwing = true;
    await expect(store.findSessionByResumeToken('rt1')).rejects.toBeInstanceOf(StoreUnavailableError);
    primary.throwing = false;
    primary.set(false);
    await expect(store.findSessionByResumeToken('nope')).rejects.toBeInstanceOf(StoreUnavailableError);
    // A session written on this replica during the outage is in its fallback: that one it knows.
    await store.saveSession({ ...rec, sessionId: 's2', resumeToken: 'rt2' }, 60_000);
    expect((await store.findSessionByResumeToken('rt2'))?.sessionId).toBe('s2');
    primary.set(true);
    expect((await store.findSessionByResumeToken('rt1'))?.sessionId).toBe('s1');
  });
});
