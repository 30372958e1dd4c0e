/**
 * The in-memory `Store`: the embedded default for a single replica, and the fallback while Redis is
 * away. Same semantics as the Redis store (the shared behaviour suite runs on both, and a seeded
 * test compares them); windows are `WindowCounter`s; the clock is injected so tests control it.
 */
import type { Decision, LimitState } from '../limits/decision.js';
import { WindowCounter } from '../limits/window-counter.js';
import { TokenBucket } from '../limits/token-bucket.js';
import type { LeaseHolder, ReplicaCommand, ReplicaStats, SessionRecord, Store, TokenRecord } from './store.js';
import type { LeaseSpec, LimitSpec } from '../limits/spec.js';
import { LeaseSet } from './lease-set.js';

const DAY_MS = 86_400_000;

interface Daily {
  day: number;
  used: number;
}

type LimitStateful = WindowCounter | TokenBucket | Daily;

export interface MemoryStoreOptions {
  /** Epoch ms. */
  readonly now?: () => number;
}

/** Milliseconds until the next UTC midnight. */
export function msUntilUtcMidnight(nowMs: number): number {
  return DAY_MS - (nowMs % DAY_MS);
}

export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  private readonly now: () => number;
  private readonly limits = new Map<string, LimitStateful>();
  private readonly leases = new Map<string, LeaseSet>();
  /** Work of lease sets already dropped (emptied), so `leaseWork()` only grows. */
  private droppedLeaseWork = 0;
  private readonly tokens = new Map<string, TokenRecord>();
  private readonly sessions = new Map<string, { record: SessionRecord; expiresAt: number }>();
  private readonly resumeIndex = new Map<string, string>();
  private lastSweep = 0;
  private readonly handlers = new Set<(command: ReplicaCommand) => void>();
  private readonly replicas = new Map<string, { stats: ReplicaStats; expiresAt: number }>();

  constructor(opts: MemoryStoreOptions = {}) {
    this.now = opts.now ?? Date.now;
  }

  async consume(specs: readonly LimitSpec[], _opId: string): Promise<Decision> {
    // A rate decision is an admission that takes no lease.
    return this.admit(specs, [], '', 0, _opId);
  }

  async admit(specs: readonly LimitSpec[], leases: readonly LeaseSpec[], holderId: string, ttlMs: number, _opId: string): Promise<Decision> {
    const now = this.now();
    this.sweep(now);
    let refusal: { retryAfterMs: number; limitName: string } | undefined;
    for (const spec of specs) {
      const wait = this.msUntil(spec, now);
      if (wait > 0 && (refusal === undefined || wait > refusal.retryAfterMs)) refusal = { retryAfterMs: wait, limitName: spec.name };
    }
    for (const l of leases) {
      const holders = this.holders(l.key, now);
      // A full lease frees when a holder finishes: no time can be promised, so 0 means "on release".
      if (!holders.has(holderId) && holders.size >= l.limit && refusal === undefined) refusal = { retryAfterMs: 0, limitName: l.name };
    }
    if (refusal === undefined) {
      for (const spec of specs) this.take(spec, now);
      for (const l of leases) this.holders(l.key, now).set(holderId, now + ttlMs);
    }
    for (const l of leases) this.dropIfEmpty(l.key);
    const states = [...specs.map((s) => this.state(s, now)), ...leases.map((l) => this.leaseState(l, now))];
    const decision: Decision = refusal ? { allowed: false, ...refusal, states } : { allowed: true, states };
    return decision;
  }

  async peek(specs: readonly LimitSpec[]): Promise<readonly LimitState[]> {
    const now = this.now();
    return specs.map((s) => this.state(s, now));
  }

  async acquire(leases: readonly LeaseSpec[], holderId: string, ttlMs: number): Promise<Decision> {
    const now = this.now();
    let refusal: string | undefined;
    for (const l of leases) {
      const holders = this.holders(l.key, now);
      if (!holders.has(holderId) && holders.size >= l.limit) {
        refusal ??= l.name;
      }
    }
    if (refusal === undefined) for (const l of leases) this.holders(l.key, now).set(holderId, now + ttlMs);
    const states = leases.map((l) => this.leaseState(l, now));
    if (refusal !== undefined) {
      // The earliest a slot can free itself is when the soonest lease expires.
      const retryAfterMs = Math.max(1000, Math.min(...leases.map((l) => this.msUntilFirstExpiry(l.key, now))));
      for (const l of leases) this.dropIfEmpty(l.key);
      return { allowed: false, retryAfterMs, limitName: refusal, states };
    }
    return { allowed: true, states };
  }

  async renew(holders: readonly LeaseHolder[], ttlMs: number, mode: 'extend' | 'restore' = 'extend'): Promise<void> {
    this.renewNow(holders, ttlMs, mode);
  }

  /**
   * `renew`, synchronously: one pass over the holders, each key swept once, then a constant number
   * of steps a slot (LeaseSet).
   */
  renewNow(holders: readonly LeaseHolder[], ttlMs: number, mode: 'extend' | 'restore'): void {
    const now = this.now();
    const exp = now + ttlMs;
    const sets = new Map<string, LeaseSet>();
    for (const { leases, holderId } of holders) {
      for (const l of leases) {
        let slots = sets.get(l.key);
        if (slots === undefined) sets.set(l.key, (slots = this.holders(l.key, now)));
        if (mode === 'restore' || slots.has(holderId)) slots.set(holderId, exp);
      }
    }
    // The entries this round replaced are now at the front of each key's queue: dropped here, in the
    // round's own pass, rather than by the next acquire.
    for (const [key, slots] of sets) {
      slots.sweep(now);
      this.dropIfEmpty(key);
    }
  }

  /**
   * Takes one slot of every lease for `holderId` whatever the limit (a holder admitted elsewhere:
   * the resilient store's record of this replica's own holders). Synchronous, a few steps a lease.
   */
  hold(leases: readonly LeaseSpec[], holderId: string, ttlMs: number): void {
    const now = this.now();
    for (const l of leases) this.holders(l.key, now).set(holderId, now + ttlMs);
  }

  /** Synchronous `release` (for the resilient store's own record). */
  drop(leases: readonly LeaseSpec[], holderId: string): void {
    for (const l of leases) {
      const holders = this.leases.get(l.key);
      if (!holders) continue;
      holders.delete(holderId);
      this.dropIfEmpty(l.key);
    }
  }

  async release(leases: readonly LeaseSpec[], holderId: string): Promise<void> {
    this.drop(leases, holderId);
  }

  async countLeases(key: string): Promise<number> {
    const n = this.holders(key, this.now()).size;
    this.dropIfEmpty(key);
    return n;
  }

  /**
   * Lease-set entries visited so far (sweeps, updates, heap steps), summed over every key: a
   * measure of work, so tests can show an operation costs the same at 10 or 100,000 holders.
   */
  leaseWork(): number {
    let sum = this.droppedLeaseWork;
    for (const set of this.leases.values()) sum += set.work;
    return sum;
  }

  async putToken(token: string, record: TokenRecord): Promise<void> {
    this.sweep(this.now());
    this.tokens.set(token, record);
  }

  async takeToken(token: string): Promise<TokenRecord | undefined> {
    const record = this.tokens.get(token);
    if (!record) return undefined;
    this.tokens.delete(token);
    return record.expiresAt > this.now() ? record : undefined;
  }

  async saveSession(record: SessionRecord, ttlMs: number): Promise<void> {
    const now = this.now();
    this.sweep(now);
    const old = this.sessions.get(record.sessionId);
    if (old && old.record.resumeToken !== record.resumeToken) this.resumeIndex.delete(old.record.resumeToken);
    this.sessions.set(record.sessionId, { record, expiresAt: now + ttlMs });
    this.resumeIndex.set(record.resumeToken, record.sessionId);
  }

  async loadSession(sessionId: string): Promise<SessionRecord | undefined> {
    const entry = this.sessions.get(sessionId);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.dropSession(sessionId);
      return undefined;
    }
    return entry.record;
  }

  async findSessionByResumeToken(resumeToken: string): Promise<SessionRecord | undefined> {
    const id = this.resumeIndex.get(resumeToken);
    return id === undefined ? undefined : this.loadSession(id);
  }

  async deleteSession(sessionId: string): Promise<void> {
    this.dropSession(sessionId);
  }

  async listSessions(accountId: string): Promise<readonly SessionRecord[]> {
    const now = this.now();
    const out: SessionRecord[] = [];
    for (const { record, expiresAt } of this.sessions.values()) {
      if (record.accountId === accountId && expiresAt > now) out.push(record);
    }
    return out;
  }

  async publish(command: ReplicaCommand): Promise<void> {
    // Asynchronous like a real broadcast, so a handler never runs inside the publisher's call.
    queueMicrotask(() => {
      for (const h of [...this.handlers]) h(command);
    });
  }

  subscribe(handler: (command: ReplicaCommand) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  async putReplicaStats(replicaId: string, stats: Readonly<Record<string, unknown>>, ttlMs: number): Promise<void> {
    const now = this.now();
    this.replicas.set(replicaId, { stats: { replicaId, at: now, stats }, expiresAt: now + ttlMs });
  }

  async listReplicaStats(): Promise<readonly ReplicaStats[]> {
    const now = this.now();
    const out: ReplicaStats[] = [];
    for (const [id, r] of this.replicas) {
      if (r.expiresAt <= now) this.replicas.delete(id);
      else out.push(r.stats);
    }
    return out;
  }

  healthy(): boolean {
    return true;
  }

  async close(): Promise<void> {
    this.limits.clear();
    this.sessions.clear();
    this.tokens.clear();
    this.leases.clear();
    this.handlers.clear();
    this.replicas.clear();
  }

  private dropSession(sessionId: string): void {
    const entry = this.sessions.get(sessionId);
    if (!entry) return;
    this.sessions.delete(sessionId);
    if (this.resumeIndex.get(entry.record.resumeToken) === sessionId) this.resumeIndex.delete(entry.record.resumeToken);
  }

  /** Amortised clean-up of expired entries, at most once a second. */
  private sweep(now: number): void {
    if (now - this.lastSweep < 1000) return;
    this.lastSweep = now;
    for (const [t, r] of this.tokens) if (r.expiresAt <= now) this.tokens.delete(t);
    for (const [id, s] of this.sessions) if (s.expiresAt <= now) this.dropSession(id);
  }

  /** The key's holders, those expired at `now` swept (a few steps, whatever their number). */
  private holders(key: string, now: number): LeaseSet {
    let holders = this.leases.get(key);
    if (!holders) {
      holders = new LeaseSet();
      this.leases.set(key, holders);
      return holders;
    }
    holders.sweep(now);
    return holders;
  }

  /** Forgets a key with no holder left, so keys of closed accounts or jobs do not accumulate. */
  private dropIfEmpty(key: string): void {
    const holders = this.leases.get(key);
    if (holders !== undefined && holders.size === 0) {
      this.droppedLeaseWork += holders.work;
      this.leases.delete(key);
    }
  }

  private msUntilFirstExpiry(key: string, now: number): number {
    const first = this.holders(key, now).earliest();
    return first === undefined ? 0 : first - now;
  }

  private leaseState(l: LeaseSpec, now: number): LimitState {
    const used = this.holders(l.key, now).size;
    return { name: l.name, limit: l.limit, remaining: Math.max(0, l.limit - used), resetMs: 0 };
  }

  private stateful(spec: LimitSpec, now: number): LimitStateful {
    let s = this.limits.get(spec.key);
    if (s === undefined) {
      s =
        spec.kind === 'window'
          ? new WindowCounter(spec.limit, spec.windowMs, now)
          : spec.kind === 'bucket'
            ? new TokenBucket({ ratePerSec: spec.ratePerSec, burst: spec.burst }, now)
            : { day: Math.floor(now / DAY_MS), used: 0 };
      this.limits.set(spec.key, s);
    }
    return s;
  }

  private daily(spec: LimitSpec, now: number): Daily {
    const d = this.stateful(spec, now) as Daily;
    const day = Math.floor(now / DAY_MS);
    if (d.day !== day) {
      d.day = day;
      d.used = 0;
    }
    return d;
  }

  private msUntil(spec: LimitSpec, now: number): number {
    const cost = spec.cost ?? 1;
    switch (spec.kind) {
      case 'window':
        return (this.stateful(spec, now) as WindowCounter).msUntil(cost, now);
      case 'bucket':
        return (this.stateful(spec, now) as TokenBucket).msUntil(cost, now);
      case 'daily': {
        const d = this.daily(spec, now);
        return d.used + cost > spec.limit + 1e-9 ? msUntilUtcMidnight(now) : 0;
      }
    }
  }

  private take(spec: LimitSpec, now: number): void {
    const cost = spec.cost ?? 1;
    switch (spec.kind) {
      case 'window':
        (this.stateful(spec, now) as WindowCounter).consume(cost, now);
        return;
      case 'bucket':
        (this.stateful(spec, now) as TokenBucket).tryTake(cost, now);
        return;
      case 'daily':
        this.daily(spec, now).used += cost;
        return;
    }
  }

  private state(spec: LimitSpec, now: number): LimitState {
    switch (spec.kind) {
      case 'window': {
        const w = this.stateful(spec, now) as WindowCounter;
        return { name: spec.name, limit: spec.limit, remaining: w.remaining(now), resetMs: w.msUntilEmpty(now) };
      }
      case 'bucket': {
        const b = this.stateful(spec, now) as TokenBucket;
        return { name: spec.name, limit: spec.burst, remaining: Math.floor(b.available(now)), resetMs: b.msUntilFull(now) };
      }
      case 'daily': {
        const d = this.daily(spec, now);
        return { name: spec.name, limit: spec.limit, remaining: Math.max(0, spec.limit - d.used), resetMs: msUntilUtcMidnight(now) };
      }
    }
  }
}
