/**
 * The live view across replicas. Every second each replica publishes its own figures to the store
 * (`Store.putReplicaStats`, a few hundred bytes with a short TTL, so a replica that dies drops out
 * by itself); the dashboard then reads every replica's latest figures and sums them. Rates are
 * computed by the replica that owns the counters (delta over its own tick), so the sum needs no
 * history and survives a replica restarting.
 *
 * Ticks run on the app's scheduler, so tests drive them with virtual time.
 */
import type { SchedulerLike, Subscription } from 'rxjs';
import type { Config } from '../config/schema.js';
import { UpstreamKinds } from '../config/schema.js';
import type { ReplicaStats, Store } from '../store/store.js';
import type { Logger } from './logger.js';
import type { Metrics, Totals, UpstreamAllowance } from './metrics.js';
import type { UpstreamReadings } from './upstream-readings.js';

/** Publishing interval and what the dashboard streams at. */
export const TICK_MS = 1000;
/** A replica's figures outlive it by this much (a few missed ticks are tolerated). */
export const STATS_TTL_MS = 5000;

export interface UpstreamFigures {
  readonly name: string;
  readonly queued: number;
  readonly inFlight: number;
  /** Attempts admitted per second (over the last tick). */
  readonly requestsPerSecond: number;
  /** Configured allowance; not summed across replicas (the upstream account is shared). */
  readonly allowancePerSecond: number | null;
  readonly concurrency: number | null;
}

/** What one replica publishes and what the dashboard shows summed over replicas. */
interface Figures {
  readonly at: number;
  readonly connections: number;
  readonly sessions: number;
  readonly messagesInPerSecond: number;
  readonly bytesInPerSecond: number;
  readonly messagesOutPerSecond: number;
  readonly bytesOutPerSecond: number;
  /** Closes by close code over the last tick. */
  readonly closesPerSecond: Readonly<Record<string, number>>;
  /** Closes by close code since the replica(s) started. */
  readonly closesTotal: Readonly<Record<string, number>>;
  readonly upstreams: readonly UpstreamFigures[];
  /** Event-loop delay p99 of the last window, ms (the worst replica's when summed). */
  readonly eventLoopLagMs: number;
}

/** One replica's figures, as published (JSON) every tick. */
export interface ReplicaFigures extends Figures {
  readonly replicaId: string;
  readonly draining: boolean;
}

/** Every replica's figures summed: what `/dashboard/events` streams once a second. */
export interface ClusterFigures extends Figures {
  readonly replicas: readonly { id: string; connections: number; sessions: number; draining: boolean; eventLoopLagMs: number; ageMs: number }[];
  readonly queueDepth: number;
}

/** What the live view reads from the running replica (implemented by `Gateway`). */
export interface LiveSources {
  readonly replicaId: string;
  readonly store: Store;
  readonly scheduler: SchedulerLike;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly isDraining: boolean;
  readonly connections: ReadonlySet<{ readonly principal: { readonly account: { readonly id: string } } }>;
  readonly registry: { readonly size: number; all(): Iterable<{ readonly principal: { readonly account: { readonly id: string } } }> };
}

/** The allowance of every upstream account, from the configuration (kinds naming one account share it). */
export function upstreamAllowances(config: Config): Map<string, UpstreamAllowance> {
  const out = new Map<string, UpstreamAllowance>();
  for (const kind of UpstreamKinds) {
    const cfg = config.upstreams[kind];
    const name = cfg.account ?? kind;
    if (out.has(name)) continue;
    const l = cfg.limits;
    const rates = [l.requestsPerSecond, l.requestsPerMinute !== undefined ? l.requestsPerMinute / 60 : undefined].filter((r): r is number => r !== undefined);
    out.set(name, { requestsPerSecond: rates.length ? Math.min(...rates) : undefined, concurrency: l.concurrency });
  }
  return out;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

function addInto(target: Record<string, number>, from: unknown): void {
  if (!from || typeof from !== 'object') return;
  for (const [k, v] of Object.entries(from as Record<string, unknown>)) target[k] = (target[k] ?? 0) + num(v);
}

/** Sums replica figures (as read back from the store, so every field is checked, not trusted). */
export function aggregate(entries: readonly ReplicaStats[], now: number): ClusterFigures {
  const closesPerSecond: Record<string, number> = {};
  const closesTotal: Record<string, number> = {};
  const upstreams = new Map<string, { -readonly [K in keyof UpstreamFigures]: UpstreamFigures[K] }>();
  let connections = 0;
  let sessions = 0;
  let messagesIn = 0;
  let bytesIn = 0;
  let messagesOut = 0;
  let bytesOut = 0;
  let lag = 0;
  const replicas: ClusterFigures['replicas'][number][] = [];
  for (const e of [...entries].sort((a, b) => a.replicaId.localeCompare(b.replicaId))) {
    const s = e.stats as Partial<Record<keyof ReplicaFigures, unknown>>;
    connections += num(s.connections);
    sessions += num(s.sessions);
    messagesIn += num(s.messagesInPerSecond);
    bytesIn += num(s.bytesInPerSecond);
    messagesOut += num(s.messagesOutPerSecond);
    bytesOut += num(s.bytesOutPerSecond);
    lag = Math.max(lag, num(s.eventLoopLagMs));
    addInto(closesPerSecond, s.closesPerSecond);
    addInto(closesTotal, s.closesTotal);
    if (Array.isArray(s.upstreams)) {
      for (const u of s.upstreams as Partial<UpstreamFigures>[]) {
        if (typeof u?.name !== 'string') continue;
        const acc = upstreams.get(u.name) ?? { name: u.name, queued: 0, inFlight: 0, requestsPerSecond: 0, allowancePerSecond: null, concurrency: null };
        acc.queued += num(u.queued);
        acc.inFlight += num(u.inFlight);
        acc.requestsPerSecond += num(u.requestsPerSecond);
        // Every replica has the same configuration; the allowance is the upstream account's, shared.
        if (typeof u.allowancePerSecond === 'number') acc.allowancePerSecond = Math.max(acc.allowancePerSecond ?? 0, u.allowancePerSecond);
        if (typeof u.concurrency === 'number') acc.concurrency = Math.max(acc.concurrency ?? 0, u.concurrency);
        upstreams.set(u.name, acc);
      }
    }
    replicas.push({ id: e.replicaId, connections: num(s.connections), sessions: num(s.sessions), draining: s.draining === true, eventLoopLagMs: num(s.eventLoopLagMs), ageMs: Math.max(0, now - e.at) });
  }
  const ups = [...upstreams.values()].sort((a, b) => a.name.localeCompare(b.name));
  return {
    at: now,
    replicas,
    connections,
    sessions,
    messagesInPerSecond: messagesIn,
    bytesInPerSecond: bytesIn,
    messagesOutPerSecond: messagesOut,
    bytesOutPerSecond: bytesOut,
    closesPerSecond,
    closesTotal,
    queueDepth: ups.reduce((n, u) => n + u.queued, 0),
    upstreams: ups,
    eventLoopLagMs: lag,
  };
}

function delta(now: Readonly<Record<string, number>>, before: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(now)) {
    const d = v - (before[k] ?? 0);
    if (d > 0) out[k] = d;
  }
  return out;
}

const round = (v: number, digits = 2): number => Math.round(v * 10 ** digits) / 10 ** digits;

export type ClusterListener = (figures: ClusterFigures) => void;

/**
 * Publishes this replica's figures every {@link TICK_MS} and, while someone listens (a dashboard
 * stream), reads every replica's back and hands the sum to the listeners.
 */
export class LiveTelemetry {
  private timer: Subscription | undefined;
  private last: { at: number; totals: Totals } | undefined;
  private readonly listeners = new Set<ClusterListener>();
  private readonly allowances: ReadonlyMap<string, UpstreamAllowance>;
  private publishWarned = false;
  private stopped = false;
  /** A tick still waiting for the store: the next one is skipped rather than piled up. */
  private busy = false;

  constructor(
    private readonly src: LiveSources,
    private readonly governors: ReadonlyMap<string, UpstreamReadings>,
    config: Config,
  ) {
    this.allowances = upstreamAllowances(config);
    const accountIds = config.accounts.map((a) => a.id);
    src.metrics.watchAllowances(this.allowances);
    src.metrics.watchAccounts({
      accountIds,
      connectionAccounts: () => mapIter(src.connections, (c) => c.principal.account.id),
      sessionAccounts: () => mapIter(src.registry.all(), (s) => s.principal.account.id),
    });
  }

  start(): void {
    if (this.timer || this.stopped) return;
    this.last = { at: this.src.scheduler.now(), totals: this.src.metrics.totals() };
    const tick = (): void => {
      this.timer = this.src.scheduler.schedule(tick, TICK_MS);
      if (this.busy) return;
      this.busy = true;
      void this.tick().finally(() => {
        this.busy = false;
      });
    };
    this.timer = this.src.scheduler.schedule(tick, TICK_MS);
  }

  stop(): void {
    this.stopped = true;
    this.timer?.unsubscribe();
    this.timer = undefined;
    this.listeners.clear();
  }

  /** Receives the cluster figures once a tick; returns the unsubscribe. */
  listen(listener: ClusterListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  /** This replica's figures over the interval since the previous call. */
  sample(): ReplicaFigures {
    const now = this.src.scheduler.now();
    const totals = this.src.metrics.totals();
    const prev = this.last ?? { at: now, totals };
    this.last = { at: now, totals };
    const seconds = Math.max(0.001, (now - prev.at) / 1000);
    const rate = (a: number, b: number): number => round(Math.max(0, a - b) / seconds);
    const attempts = delta(totals.upstreamAttempts, prev.totals.upstreamAttempts);
    const upstreams: UpstreamFigures[] = [];
    // Every configured upstream account, also before its governor exists (made on first call).
    const names = new Set([...this.allowances.keys(), ...this.governors.keys()]);
    for (const name of [...names].sort()) {
      const g = this.governors.get(name);
      const a = this.allowances.get(name);
      upstreams.push({
        name,
        queued: g?.queued ?? 0,
        inFlight: g?.inFlight ?? 0,
        requestsPerSecond: round((attempts[name] ?? 0) / seconds),
        allowancePerSecond: a?.requestsPerSecond ?? null,
        concurrency: a?.concurrency ?? null,
      });
    }
    const closes = delta(totals.closes, prev.totals.closes);
    for (const k of Object.keys(closes)) closes[k] = round((closes[k] ?? 0) / seconds);
    return {
      replicaId: this.src.replicaId,
      at: now,
      draining: this.src.isDraining,
      connections: this.src.connections.size,
      sessions: this.src.registry.size,
      messagesInPerSecond: rate(totals.messagesIn, prev.totals.messagesIn),
      bytesInPerSecond: rate(totals.bytesIn, prev.totals.bytesIn),
      messagesOutPerSecond: rate(totals.messagesOut, prev.totals.messagesOut),
      bytesOutPerSecond: rate(totals.bytesOut, prev.totals.bytesOut),
      closesPerSecond: closes,
      closesTotal: totals.closes,
      upstreams,
      eventLoopLagMs: round(this.src.metrics.eventLoopLag().p99 * 1000),
    };
  }

  /** Every replica's latest figures, summed. */
  async cluster(): Promise<ClusterFigures> {
    return aggregate(await this.src.store.listReplicaStats(), this.src.scheduler.now());
  }

  private async tick(): Promise<void> {
    const figures = this.sample();
    try {
      await this.src.store.putReplicaStats(this.src.replicaId, figures as unknown as Record<string, unknown>, STATS_TTL_MS);
      this.publishWarned = false;
    } catch (err) {
      // Once per outage: the store being down is reported by /readyz and the store's own logs.
      if (!this.publishWarned) this.src.logger.warn({ err }, 'could not publish replica figures');
      this.publishWarned = true;
    }
    if (this.listeners.size === 0 || this.stopped) return;
    let cluster: ClusterFigures;
    try {
      cluster = await this.cluster();
    } catch {
      // Without the store the dashboard still shows this replica.
      cluster = aggregate([{ replicaId: figures.replicaId, at: figures.at, stats: figures as unknown as Record<string, unknown> }], figures.at);
    }
    for (const l of this.listeners) l(cluster);
  }
}

function* mapIter<T, U>(it: Iterable<T>, f: (t: T) => U): Iterable<U> {
  for (const t of it) yield f(t);
}
