/**
 * The rewritten decision script (lua/admit.lua: fewer calls, a positional reply, lazily trimmed
 * windows, a compact op record) against its predecessor (fixtures/admit-v0.lua, JSON reply), on one
 * Redis: the same seeded random sequence of consumes, admissions, acquisitions, peeks and replays
 * under the same injected clock must give the same decisions. Replays are compared on their outcome
 * only: the new record keeps the outcome and re-reads the states (a peek).
 */
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Decision, LimitState } from '../../../src/limits/decision.js';
import { RedisStore } from '../../../src/store/redis.js';
import type { LeaseSpec, LimitSpec } from '../../../src/store/store.js';
import { startRedis, type RedisHandle } from '../../helpers/redis.js';
import { mulberry32 } from '../limits/virtual-time.js';

const V0 = readFileSync(new URL('./fixtures/admit-v0.lua', import.meta.url), 'utf8');

let server: RedisHandle;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

/** The old client side: its argument layout and its JSON reply. */
class V0Store {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly now: () => number,
  ) {}

  async run(mode: string, specs: readonly LimitSpec[], leases: readonly LeaseSpec[], holderId: string, ttlMs: number, opId: string): Promise<Decision> {
    const tag = /\{[^}]*\}/.exec(specs[0]?.key ?? leases[0]?.key ?? '')?.[0] ?? '';
    const keys = [`${this.prefix}op:${tag}:${opId}`, ...specs.map((s) => this.prefix + s.key), ...leases.map((l) => this.prefix + l.key)];
    const argv: (string | number)[] = [mode, String(this.now()), opId, holderId, ttlMs, specs.length, leases.length];
    for (const s of specs) {
      const cost = s.cost ?? 1;
      if (s.kind === 'window') argv.push('window', s.name, s.limit, s.windowMs, cost);
      else if (s.kind === 'bucket') argv.push('bucket', s.name, s.ratePerSec, s.burst, cost);
      else argv.push('daily', s.name, s.limit, 0, cost);
    }
    for (const l of leases) argv.push(l.name, l.limit);
    const raw = (await this.redis.eval(V0, keys.length, ...keys, ...argv)) as string;
    type N = number | 'inf';
    const r = JSON.parse(raw) as { allowed: boolean; retryAfterMs?: N; limitName?: string; states: { name: string; limit: N; remaining: N; resetMs: N }[] | Record<string, never> };
    const num = (v: N | undefined): number => (v === 'inf' ? Infinity : (v ?? 0));
    const states: LimitState[] = (Array.isArray(r.states) ? r.states : []).map((s) => ({ name: s.name, limit: num(s.limit), remaining: num(s.remaining), resetMs: num(s.resetMs) }));
    return r.allowed ? { allowed: true, states } : { allowed: false, retryAfterMs: num(r.retryAfterMs), limitName: r.limitName ?? '', states };
  }
}

const SPECS: LimitSpec[] = [
  { kind: 'window', key: 'w1:{a}', name: 'w1', limit: 3, windowMs: 10_000 },
  { kind: 'window', key: 'w2:{a}', name: 'w2', limit: 5, windowMs: 2_500, cost: 2 },
  { kind: 'window', key: 'w3:{a}', name: 'w3', limit: 1, windowMs: 700 },
  { kind: 'bucket', key: 'b1:{a}', name: 'b1', ratePerSec: 2, burst: 3 },
  { kind: 'bucket', key: 'b2:{a}', name: 'b2', ratePerSec: 0.7, burst: 2, cost: 1.5 },
  { kind: 'daily', key: 'd1:{a}', name: 'd1', limit: 2, cost: 0.3 },
  { kind: 'daily', key: 'd2:{a}', name: 'd2', limit: 1, cost: 0.45 },
];
const LEASES: LeaseSpec[] = [
  { key: 'l1:{a}', name: 'l1', limit: 2 },
  { key: 'l2:{a}', name: 'l2', limit: 1 },
];

function expectSameStates(actual: readonly LimitState[], expected: readonly LimitState[], at: string): void {
  expect(actual.length, at).toBe(expected.length);
  actual.forEach((s, i) => {
    const e = expected[i]!;
    expect([s.name, s.limit, s.resetMs], at).toEqual([e.name, e.limit, e.resetMs]);
    // The old reply wrote numbers with %.14g; the new one keeps every bit of a fractional one.
    expect(s.remaining, at).toBeCloseTo(e.remaining, 9);
  });
}

function expectSameOutcome(actual: Decision, expected: Decision, at: string): void {
  expect(actual.allowed, at).toBe(expected.allowed);
  if (!actual.allowed && !expected.allowed) {
    expect([actual.retryAfterMs, actual.limitName], at).toEqual([expected.retryAfterMs, expected.limitName]);
  }
}

describe('admit.lua against its predecessor', () => {
  it.each([1, 2, 3])('gives the same decisions for seeded random sequence %i', async (seed) => {
    const rand = mulberry32(seed);
    let t = Date.UTC(2026, 10, 23, 23, 59, 0); // crosses a UTC midnight on the way
    const now = (): number => t;
    const redis = new Redis(server.url);
    const prefix = `eq:${randomUUID()}:`;
    const v0 = new V0Store(redis, `${prefix}v0:`, now);
    const v1 = new RedisStore({ url: server.url, prefix: `${prefix}v1:`, now });
    await v1.ready();
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const subset = <T>(xs: readonly T[], max: number): T[] => {
      const n = 1 + Math.floor(rand() * max);
      return Array.from({ length: n }, () => pick(xs)).filter((x, i, all) => all.indexOf(x) === i);
    };
    const past: { specs: LimitSpec[]; leases: LeaseSpec[]; holder: string; opId: string }[] = [];
    let allowed = 0;
    let refused = 0;
    for (let step = 0; step < 250; step++) {
      t += Math.floor(rand() * rand() * 3000);
      const at = `seed ${seed} step ${step}`;
      const r = rand();
      if (r < 0.45) {
        const specs = subset(SPECS, 3);
        const opId = `op${step}`;
        const [a, b] = [await v0.run('admit', specs, [], '', 0, opId), await v1.consume(specs, opId)];
        expectSameOutcome(b, a, at);
        expectSameStates(b.states, a.states, at);
        past.push({ specs, leases: [], holder: '', opId });
        if (a.allowed) allowed++;
        else refused++;
      } else if (r < 0.65) {
        const specs = subset(SPECS, 2);
        const leases = subset(LEASES, 2);
        const holder = `h${Math.floor(rand() * 4)}`;
        const opId = `adm${step}`;
        const [a, b] = [await v0.run('admit', specs, leases, holder, 5_000, opId), await v1.admit(specs, leases, holder, 5_000, opId)];
        expectSameOutcome(b, a, at);
        expectSameStates(b.states, a.states, at);
        past.push({ specs, leases, holder, opId });
      } else if (r < 0.75) {
        const leases = subset(LEASES, 2);
        const holder = `h${Math.floor(rand() * 4)}`;
        const [a, b] = [await v0.run('acquire', [], leases, holder, 5_000, ''), await v1.acquire(leases, holder, 5_000)];
        expectSameOutcome(b, a, at);
        expectSameStates(b.states, a.states, at);
      } else if (r < 0.9 || past.length === 0) {
        const specs = subset(SPECS, 4);
        const [a, b] = [await v0.run('peek', specs, [], '', 0, ''), await v1.peek(specs)];
        expectSameStates(b, a.states, at);
      } else {
        // A replay: same outcome, nothing consumed (the next peek would show it).
        const p = pick(past);
        const [a, b] = [await v0.run('admit', p.specs, p.leases, p.holder, 5_000, p.opId), await v1.admit(p.specs, p.leases, p.holder, 5_000, p.opId)];
        expectSameOutcome(b, a, at);
      }
    }
    // The sequence exercised both outcomes.
    expect(allowed).toBeGreaterThan(10);
    expect(refused).toBeGreaterThan(10);
    redis.disconnect();
    await v1.close();
  });
});
