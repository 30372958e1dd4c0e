/** Replica figures: per-tick rates, publishing through the store, summing across replicas. */
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { MemoryStore } from '../../../src/store/memory.js';
import { createLogger } from '../../../src/telemetry/logger.js';
import { aggregate, LiveTelemetry, STATS_TTL_MS, upstreamAllowances, type ClusterFigures } from '../../../src/telemetry/live.js';
import { Metrics } from '../../../src/telemetry/metrics.js';
import type { Governor } from '../../../src/upstream/governor/governor.js';
import { ManualScheduler } from '../../helpers/scheduler.js';

const config = parseConfig(
  {
    plans: { p: {} },
    accounts: [{ id: 'acct_a', plan: 'p', keys: [{ id: 'k', secret: 'sk_unit_0123456789' }] }],
    upstreams: { stt: { limits: { requestsPerSecond: 20, requestsPerMinute: 600, concurrency: 4 } }, tts: { account: 'stt' }, conversation: { limits: { requestsPerMinute: 90 } } },
  },
  {},
);

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

function replica(id: string, store: MemoryStore, scheduler: ManualScheduler, governors: Map<string, Governor> = new Map()) {
  const metrics = new Metrics({ connections: () => 0, sessions: () => 0 });
  const conns = new Set([{ principal: { account: { id: 'acct_a' } } }]);
  const live = new LiveTelemetry(
    { replicaId: id, store, scheduler, logger: createLogger({ level: 'silent' }), metrics, isDraining: false, connections: conns, registry: { size: 2, all: () => [] } },
    governors,
    config,
  );
  cleanup.push(() => {
    live.stop();
    metrics.close();
  });
  return { metrics, live };
}

describe('upstreamAllowances', () => {
  it('takes the tighter of the rate limits and lets kinds naming one account share it', () => {
    const a = upstreamAllowances(config);
    expect(a.get('stt')).toEqual({ requestsPerSecond: 10, concurrency: 4 });
    expect(a.has('tts')).toBe(false);
    expect(a.get('conversation')).toEqual({ requestsPerSecond: 1.5, concurrency: undefined });
    expect(a.get('translation')).toEqual({ requestsPerSecond: undefined, concurrency: undefined });
  });
});

describe('LiveTelemetry', () => {
  it('turns running totals into per-second rates over its own tick', () => {
    const scheduler = new ManualScheduler();
    const { metrics, live } = replica('r1', new MemoryStore({ now: () => scheduler.now() }), scheduler);
    live.start();
    for (let i = 0; i < 30; i++) metrics.frameIn(100);
    metrics.closed(4029);
    scheduler.advanceBy(2000);
    const s = live.sample();
    // Two ticks ran inside advanceBy and took their own samples; this one covers no new frames.
    expect(s.messagesInPerSecond).toBe(0);
    for (let i = 0; i < 30; i++) metrics.frameIn(100);
    scheduler.advanceBy(500);
    const next = live.sample();
    expect(next.messagesInPerSecond).toBe(60);
    expect(next.bytesInPerSecond).toBe(6000);
    expect(next.closesTotal).toEqual({ '4029': 1 });
    expect(next.connections).toBe(1);
    expect(next.sessions).toBe(2);
  });

  it('publishes every second and hands listeners every replica summed', async () => {
    const scheduler = new ManualScheduler();
    const store = new MemoryStore({ now: () => scheduler.now() });
    const a = replica('r1', store, scheduler);
    const b = replica('r2', store, scheduler);
    a.live.start();
    b.live.start();
    const seen: ClusterFigures[] = [];
    a.live.listen((f) => seen.push(f));
    for (let i = 0; i < 10; i++) a.metrics.frameIn(1);
    for (let i = 0; i < 5; i++) b.metrics.frameIn(1);
    scheduler.advanceBy(1000);
    await new Promise((r) => setImmediate(r));
    // r1's tick read the store before r2 had published; the next tick sees both.
    scheduler.advanceBy(1000);
    await new Promise((r) => setImmediate(r));
    const last = seen[seen.length - 1]!;
    expect(last.replicas.map((r) => r.id)).toEqual(['r1', 'r2']);
    expect(last.connections).toBe(2);
    expect(last.sessions).toBe(4);
    expect((await store.listReplicaStats()).length).toBe(2);
    // A replica that stops publishing drops out after the TTL.
    b.live.stop();
    for (let ms = 0; ms <= STATS_TTL_MS; ms += 1000) {
      scheduler.advanceBy(1000);
      await new Promise((r) => setImmediate(r));
    }
    expect(seen[seen.length - 1]!.replicas.map((r) => r.id)).toEqual(['r1']);
  });
});

describe('aggregate', () => {
  it('sums replica figures, keeps the shared allowance once and ignores malformed fields', () => {
    const up = (requestsPerSecond: number, queued: number) => ({ name: 'stt', queued, inFlight: 1, requestsPerSecond, allowancePerSecond: 10, concurrency: 4 });
    const f = aggregate(
      [
        { replicaId: 'b', at: 900, stats: { connections: 2, sessions: 1, messagesInPerSecond: 5, closesPerSecond: { '1000': 1 }, closesTotal: { '1000': 3 }, upstreams: [up(4, 2)], eventLoopLagMs: 3 } },
        { replicaId: 'a', at: 1000, stats: { connections: 3, sessions: 'x', messagesInPerSecond: 7, closesTotal: { '1000': 1, '4029': 2 }, upstreams: [up(5, 1), { queued: 9 }], eventLoopLagMs: 8 } },
      ],
      1000,
    );
    expect(f.connections).toBe(5);
    expect(f.sessions).toBe(1);
    expect(f.messagesInPerSecond).toBe(12);
    expect(f.closesTotal).toEqual({ '1000': 4, '4029': 2 });
    expect(f.closesPerSecond).toEqual({ '1000': 1 });
    expect(f.upstreams).toEqual([{ name: 'stt', queued: 3, inFlight: 2, requestsPerSecond: 9, allowancePerSecond: 10, concurrency: 4 }]);
    expect(f.queueDepth).toBe(3);
    expect(f.eventLoopLagMs).toBe(8);
    expect(f.replicas.map((r) => [r.id, r.ageMs])).toEqual([['a', 0], ['b', 100]]);
  });
});
