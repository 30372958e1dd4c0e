/**
 * The Redis decision script (lua/admit.lua) against the memory store (src/limits in TypeScript): the
 * same seeded random sequence of consumes, admissions, acquisitions and peeks, under the same
 * injected clock, must give the same decisions and states. Decisions are fired in bursts of one to
 * four at once, over two hash tags, so the Redis store batches several decisions per script call,
 * several on the same tag among them.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Decision, LimitState } from '../../../src/limits/decision.js';
import { MemoryStore } from '../../../src/store/memory.js';
import { RedisStore } from '../../../src/store/redis.js';
import type { LeaseSpec, LimitSpec } from '../../../src/limits/spec.js';
import type { Store } from '../../../src/store/store.js';
import { startRedis, type RedisHandle } from '../../helpers/redis.js';
import { mulberry32 } from '../limits/virtual-time.js';

let server: RedisHandle;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

const SPECS: LimitSpec[] = [
  { kind: 'window', key: 'w1:{a}', name: 'w1', limit: 3, windowMs: 10_000 },
  { kind: 'window', key: 'w2:{a}', name: 'w2', limit: 5, windowMs: 2_500, cost: 2 },
  { kind: 'window', key: 'w3:{a}', name: 'w3', limit: 1, windowMs: 700 },
  { kind: 'bucket', key: 'b1:{a}', name: 'b1', ratePerSec: 2, burst: 3 },
  { kind: 'bucket', key: 'b2:{a}', name: 'b2', ratePerSec: 0.7, burst: 2, cost: 1.5 },
  { kind: 'daily', key: 'd1:{a}', name: 'd1', limit: 2, cost: 0.3 },
  { kind: 'daily', key: 'd2:{a}', name: 'd2', limit: 1, cost: 0.45 },
  { kind: 'window', key: 'w1:{b}', name: 'bw1', limit: 2, windowMs: 5_000 },
  { kind: 'bucket', key: 'b1:{b}', name: 'bb1', ratePerSec: 1, burst: 2 },
];
const LEASES: LeaseSpec[] = [
  { key: 'l1:{a}', name: 'l1', limit: 2 },
  { key: 'l2:{a}', name: 'l2', limit: 1 },
  { key: 'l1:{b}', name: 'bl1', limit: 1 },
];

function expectSameStates(actual: readonly LimitState[], expected: readonly LimitState[], at: string): void {
  expect(actual.length, at).toBe(expected.length);
  actual.forEach((s, i) => {
    const e = expected[i]!;
    expect([s.name, s.limit, s.resetMs], at).toEqual([e.name, e.limit, e.resetMs]);
    expect(s.remaining, at).toBeCloseTo(e.remaining, 9);
  });
}

/** One random operation, the same on both stores. */
type Op = (s: Store) => Promise<Decision | readonly LimitState[]>;

describe('admit.lua against the memory store', () => {
  it.each([1, 2, 3])('gives the same decisions for seeded random sequence %i', async (seed) => {
    const rand = mulberry32(seed);
    let t = Date.UTC(2026, 10, 23, 23, 59, 0); // crosses a UTC midnight on the way
    const now = (): number => t;
    const memory = new MemoryStore({ now });
    const redis = new RedisStore({ url: server.url, prefix: `eq:${randomUUID()}:`, now });
    await redis.ready();
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    // One decision touches one hash tag (a Cluster needs that): {a} or {b}.
    const subset = <T extends { key: string }>(xs: readonly T[], max: number): T[] => {
      const tag = rand() < 0.75 ? '{a}' : '{b}';
      const mine = xs.filter((x) => x.key.includes(tag));
      const n = 1 + Math.floor(rand() * max);
      return Array.from({ length: n }, () => pick(mine)).filter((x, i, all) => all.indexOf(x) === i);
    };
    const randomOp = (step: number): Op => {
      const r = rand();
      if (r < 0.5) {
        const specs = subset(SPECS, 3);
        return (s) => s.consume(specs, `op${step}`);
      }
      if (r < 0.7) {
        const specs = subset(SPECS, 2);
        const tag = specs[0]!.key.includes('{a}') ? '{a}' : '{b}';
        const leases = subset(LEASES, 2).filter((l) => l.key.includes(tag));
        const holder = `h${Math.floor(rand() * 4)}`;
        return (s) => s.admit(specs, leases, holder, 5_000, `adm${step}`);
      }
      if (r < 0.8) {
        const leases = subset(LEASES, 2);
        const holder = `h${Math.floor(rand() * 4)}`;
        return (s) => s.acquire(leases, holder, 5_000);
      }
      const specs = subset(SPECS, 4);
      return (s) => s.peek(specs);
    };
    let allowed = 0;
    let refused = 0;
    let batched = 0;
    for (let step = 0; step < 250; ) {
      t += Math.floor(rand() * rand() * 3000);
      // A burst: started together, so the Redis store sends them in one script call.
      const ops = Array.from({ length: 1 + Math.floor(rand() * rand() * 4) }, () => randomOp(step++));
      if (ops.length > 1) batched += ops.length;
      const expected = await Promise.all(ops.map((op) => op(memory)));
      const actual = await Promise.all(ops.map((op) => op(redis)));
      expected.forEach((e, i) => {
        const a = actual[i]!;
        const at = `seed ${seed} step ${step - ops.length + i}`;
        if ('allowed' in e) {
          const d = a as Decision;
          expect(d.allowed, at).toBe(e.allowed);
          if (!d.allowed && !e.allowed) expect([d.retryAfterMs, d.limitName], at).toEqual([e.retryAfterMs, e.limitName]);
          expectSameStates(d.states, e.states, at);
          if (e.allowed) allowed++;
          else refused++;
        } else expectSameStates(a as readonly LimitState[], e, at);
      });
    }
    // The sequence exercised both outcomes, and batches of several decisions.
    expect(allowed).toBeGreaterThan(10);
    expect(refused).toBeGreaterThan(10);
    expect(batched).toBeGreaterThan(20);
    await Promise.all([memory.close(), redis.close()]);
  });
});
