import { describe, expect, it, vi } from 'vitest';
import { MemoryStore } from '../../../src/store/memory.js';
import { ResilientStore, scaleLimit, shareOf, type SharedStore } from '../../../src/store/resilient.js';
import type { LimitSpec } from '../../../src/limits/spec.js';
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
    const counted: string[] = [];
    const logs = logSink('info');
    const store = new ResilientStore({ primary, expectedReplicas: replicas, logger: logs.logger, onFallback: (op) => counted.push(op) });
    return { primary, store, counted, logs };
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
});
