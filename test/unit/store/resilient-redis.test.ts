/**
 * The failure policy on a real redis-server (spawned for this file): a stall of this process's own
 * event loop is not an outage (issue 18 item 2), while a Redis that hangs (SIGSTOP) or dies (SIGKILL)
 * still is.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LeaseSpec, LimitSpec } from '../../../src/limits/spec.js';
import { RedisStore } from '../../../src/store/redis.js';
import { ResilientStore } from '../../../src/store/resilient.js';
import { until } from '../../helpers/app.js';
import { logSink } from '../../helpers/log-sink.js';
import { startRedis, type RedisHandle } from '../../helpers/redis.js';

let server: RedisHandle;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

const stores: ResilientStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

/** Holds the event loop: a synchronous task of `ms`, as a long renewal round or a big JSON parse would. */
function block(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy
  }
}

async function wrapped(url: string, commandTimeoutMs: number) {
  const primary = new RedisStore({ url, prefix: `test:${randomUUID()}:`, commandTimeoutMs });
  await primary.ready();
  const fellBack: string[] = [];
  const logs = logSink('info');
  const store = new ResilientStore({ primary, expectedReplicas: 2, logger: logs.logger, onFallback: (op) => fellBack.push(op) });
  stores.push(store);
  return { primary, store, fellBack, logs };
}

const window = (limit: number): LimitSpec => ({ kind: 'window', key: 'rpm:{stall}', name: 'rpm', limit, windowMs: 60_000 });
const caps: LeaseSpec[] = [{ key: 'conns:{stall}', name: 'account', limit: 100 }];

describe('a stall of the event loop is not a store outage', () => {
  it('decisions and renewals in flight while the loop is blocked past the command timeout are answered by Redis; the store stays healthy', async () => {
    const { primary, store, fellBack, logs } = await wrapped(server.url, 200);
    for (let i = 0; i < 5; i++) expect((await store.acquire(caps, `h${i}`, 30_000)).allowed).toBe(true);
    const holders = Array.from({ length: 5 }, (_, i) => ({ leases: caps, holderId: `h${i}` }));
    for (let round = 0; round < 3; round++) {
      const decision = store.consume([window(10)], `op${round}`);
      const renewal = store.renew(holders, 30_000);
      const count = store.countLeases('conns:{stall}');
      // The commands are written; the loop is held five times the command timeout.
      block(1000);
      expect((await decision).allowed).toBe(true);
      await renewal;
      expect(await count).toBe(5);
    }
    expect(fellBack).toEqual([]);
    expect(store.isDegraded).toBe(false);
    expect(store.healthy()).toBe(true);
    expect(logs.lines.filter((l) => String(l.msg).startsWith('store unreachable'))).toEqual([]);
    // The three decisions were made in Redis.
    expect((await primary.peek([window(10)]))[0]!.remaining).toBe(7);
    expect(primary.deadline.stallsForgiven).toBeGreaterThanOrEqual(3);
  });
});

describe('an absent or hung Redis is still an outage', () => {
  it('SIGSTOP: a decision falls back after the command timeout, also across a stall, and the store rejoins after SIGCONT', async () => {
    const own = await startRedis();
    try {
      const { store, fellBack, logs } = await wrapped(own.url, 200);
      expect((await store.consume([window(10)], 'before')).allowed).toBe(true);
      own.signal('SIGSTOP');
      const started = performance.now();
      const hung = store.consume([window(10)], 'hung');
      // A stall while the hung command is in flight postpones the verdict; it does not prevent it.
      block(600);
      expect((await hung).allowed).toBe(true);
      expect(performance.now() - started).toBeGreaterThanOrEqual(800);
      expect(fellBack).toEqual(['consume']);
      expect(store.isDegraded).toBe(true);
      expect(logs.lines.filter((l) => String(l.msg).startsWith('store unreachable'))).toHaveLength(1);
      // The next decision does not wait for a timeout: straight to the fallback.
      const t = performance.now();
      await store.consume([window(10)], 'next');
      expect(performance.now() - t).toBeLessThan(200);
      expect(fellBack).toEqual(['consume', 'consume']);
      own.signal('SIGCONT');
      await until(() => store.healthy(), 5000, 'the probe finding Redis again');
    } finally {
      own.signal('SIGCONT');
      await own.stop();
    }
  });

  it('SIGKILL: the store falls back at once and is degraded until Redis is back', async () => {
    const own = await startRedis();
    let restarted: RedisHandle | undefined;
    try {
      const { store, fellBack } = await wrapped(own.url, 200);
      expect((await store.consume([window(10)], 'before')).allowed).toBe(true);
      await own.kill();
      expect((await store.consume([window(10)], 'dead')).allowed).toBe(true);
      expect(fellBack).toEqual(['consume']);
      expect(store.healthy()).toBe(false);
      restarted = await startRedis(own.port);
      await until(() => store.healthy(), 5000, 'the store reconnecting');
      expect((await store.consume([window(10)], 'back')).allowed).toBe(true);
      expect(fellBack).toEqual(['consume']);
    } finally {
      await restarted?.stop();
    }
  });
});
