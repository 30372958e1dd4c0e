/**
 * The Redis failure policy (ARCHITECTURE.md "Redis unreachable"): wraps the shared store with an
 * in-process fallback. While the shared store is unreachable (or a command fails or times out; a
 * stall of this process's own event loop is not a timeout: command-deadline.ts):
 * - every shared limit is decided by an in-process limiter sized at limit ÷ `expectedReplicas`, so
 *   the replicas together stay near the configured limit;
 * - a lease (connection cap, upstream concurrency) counts this replica's own holders against that
 *   share, those taken before the outage included: the fallback keeps a record of them at all times
 *   (taken, renewed, released), and nothing else while the shared store answers (D10). So every
 *   outage admits the same, whatever happened in the one before;
 * - a resume whose session the fallback does not know fails with `StoreUnavailableError`, not
 *   "no such session" (D3);
 * - tokens, session records and replica figures go to the fallback (a token minted during an
 *   outage opens a connection on this replica only);
 * - commands to other replicas reach this replica only;
 * - every fallback decision is counted (`onFallback`) and the outage is logged once.
 * When the shared store is back, `onRecovered` handlers re-register what this replica holds
 * (connection leases, live sessions); nothing restarts.
 */
import type { Decision, LimitState } from '../limits/decision.js';
import type { Logger } from '../telemetry/logger.js';
import { MemoryStore } from './memory.js';
import { StoreUnavailableError, type LeaseHolder, type ReplicaCommand, type ReplicaStats, type SessionRecord, type Store, type TokenRecord } from './store.js';
import type { LeaseSpec, LimitSpec } from '../limits/spec.js';

/** A shared store that can say when its connection comes and goes (RedisStore). */
export interface SharedStore extends Store {
  onStateChange(handler: (ready: boolean) => void): () => void;
  /** Resolves if the store answers a trivial command (probe while degraded). */
  ping(): Promise<void>;
}

/** While degraded with the connection still up (a hung Redis), probe this often. */
const PROBE_MS = 1000;

export interface ResilientStoreOptions {
  readonly primary: SharedStore;
  readonly expectedReplicas: number;
  readonly logger: Logger;
  /** Epoch ms for the fallback's limiters. */
  readonly now?: () => number;
  /** Counts one decision or write served by the fallback, by operation. */
  readonly onFallback?: (operation: string) => void;
  /** The in-process fallback (default: a new MemoryStore on `now`); tests pass one to count its work. */
  readonly fallback?: MemoryStore;
}

/** The share of a limit one replica may use on its own (at least 1 where the limit allows any). */
export function shareOf(limit: number, replicas: number, integral: boolean): number {
  if (replicas <= 1 || limit <= 0) return limit;
  const share = limit / replicas;
  return integral ? Math.max(1, Math.floor(share)) : share;
}

export function scaleLimit(spec: LimitSpec, replicas: number): LimitSpec {
  switch (spec.kind) {
    case 'window':
      return { ...spec, limit: shareOf(spec.limit, replicas, true) };
    case 'bucket':
      return { ...spec, ratePerSec: shareOf(spec.ratePerSec, replicas, false), burst: shareOf(spec.burst, replicas, true) };
    case 'daily':
      return { ...spec, limit: shareOf(spec.limit, replicas, false) };
  }
}

export class ResilientStore implements Store {
  readonly kind: Store['kind'];
  private readonly primary: SharedStore;
  private readonly fallback: MemoryStore;
  private readonly replicas: number;
  private readonly log: Logger;
  private readonly onFallback: (operation: string) => void;
  private readonly recoveredHandlers = new Set<() => void>();
  private readonly unsubscribeState: () => void;
  private degraded = false;
  private probe: NodeJS.Timeout | undefined;

  constructor(opts: ResilientStoreOptions) {
    this.primary = opts.primary;
    this.kind = opts.primary.kind;
    this.fallback = opts.fallback ?? new MemoryStore(opts.now ? { now: opts.now } : {});
    this.replicas = Math.max(1, opts.expectedReplicas);
    this.log = opts.logger;
    this.onFallback = opts.onFallback ?? (() => undefined);
    this.unsubscribeState = opts.primary.onStateChange((ready) => {
      if (ready) this.recover();
      else this.enterDegraded('connection lost');
    });
  }

  /** Whether decisions are being made in process now. */
  get isDegraded(): boolean {
    return this.degraded;
  }

  /** Runs after the shared store comes back, so holders can re-register. */
  onRecovered(handler: () => void): () => void {
    this.recoveredHandlers.add(handler);
    return () => this.recoveredHandlers.delete(handler);
  }

  private enterDegraded(why: string, err?: unknown): void {
    if (this.degraded) return;
    this.degraded = true;
    // A connection that stays up but stops answering (a hung Redis) never emits "ready" again:
    // probe it, so recovery does not depend on a reconnect.
    this.probe = setInterval(() => {
      if (!this.primary.healthy()) return;
      this.primary.ping().then(
        () => this.recover(),
        () => undefined,
      );
    }, PROBE_MS);
    this.probe.unref();
    this.log.warn(
      { err, replicas: this.replicas },
      `store unreachable (${why}); shared limits fall back to in-process limiters sized at limit / ${this.replicas}`,
    );
  }

  private recover(): void {
    if (!this.degraded) return;
    this.degraded = false;
    clearInterval(this.probe);
    this.probe = undefined;
    this.log.info('store reachable again; re-registering leases and sessions');
    for (const h of [...this.recoveredHandlers]) {
      try {
        h();
      } catch (err) {
        this.log.error({ err }, 're-registration after store recovery failed');
      }
    }
  }

  /** Runs `shared` on the primary, or `local` on the fallback when the primary is away or fails. */
  private async either<T>(operation: string, shared: () => Promise<T>, local: () => Promise<T>): Promise<T> {
    const answer = await this.attempt(shared);
    if (answer.ok) return answer.value;
    this.onFallback(operation);
    return local();
  }

  /** The primary's answer, or `{ok: false}` when it is away or fails (then degraded). */
  private async attempt<T>(shared: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> {
    // While degraded, go straight to the fallback: no decision waits for a command timeout.
    if (this.primary.healthy() && !this.degraded) {
      try {
        return { ok: true, value: await shared() };
      } catch (err) {
        this.enterDegraded('a command failed', err);
      }
    } else {
      this.enterDegraded('not connected');
    }
    return { ok: false };
  }

  /** Best effort on the primary (a lost write there expires by its TTL). */
  private async quietly(work: () => Promise<void>): Promise<void> {
    if (!this.primary.healthy() || this.degraded) return;
    try {
      await work();
    } catch (err) {
      this.enterDegraded('a command failed', err);
    }
  }

  private scaled(specs: readonly LimitSpec[]): LimitSpec[] {
    return specs.map((s) => scaleLimit(s, this.replicas));
  }

  private scaledLeases(leases: readonly LeaseSpec[]): LeaseSpec[] {
    return leases.map((l) => ({ ...l, limit: shareOf(l.limit, this.replicas, true) }));
  }

  consume(limits: readonly LimitSpec[], opId: string): Promise<Decision> {
    return this.either('consume', () => this.primary.consume(limits, opId), () => this.fallback.consume(this.scaled(limits), opId));
  }

  peek(limits: readonly LimitSpec[]): Promise<readonly LimitState[]> {
    return this.either('peek', () => this.primary.peek(limits), () => this.fallback.peek(this.scaled(limits)));
  }

  admit(limits: readonly LimitSpec[], leases: readonly LeaseSpec[], holderId: string, ttlMs: number, opId: string): Promise<Decision> {
    return this.either(
      'admit',
      async () => {
        const d = await this.primary.admit(limits, leases, holderId, ttlMs, opId);
        if (d.allowed && leases.length > 0) this.fallback.hold(leases, holderId, ttlMs);
        return d;
      },
      () => this.fallback.admit(this.scaled(limits), this.scaledLeases(leases), holderId, ttlMs, opId),
    );
  }

  acquire(leases: readonly LeaseSpec[], holderId: string, ttlMs: number): Promise<Decision> {
    return this.either(
      'acquire',
      async () => {
        const d = await this.primary.acquire(leases, holderId, ttlMs);
        // This replica's own record, counted against its share if Redis goes away (D10).
        if (d.allowed) this.fallback.hold(leases, holderId, ttlMs);
        return d;
      },
      () => this.fallback.acquire(this.scaledLeases(leases), holderId, ttlMs),
    );
  }

  async renew(holders: readonly LeaseHolder[], ttlMs: number, mode?: 'extend' | 'restore'): Promise<void> {
    // The own record first, in one pass (a few map steps a slot): the holders renewed are this
    // replica's open connections, so they are (re)taken whatever the mode, and an outage starting
    // now counts every one of them.
    this.fallback.renewNow(holders, ttlMs, 'restore');
    await this.quietly(() => this.primary.renew(holders, ttlMs, mode));
  }

  async release(leases: readonly LeaseSpec[], holderId: string): Promise<void> {
    this.fallback.drop(leases, holderId);
    await this.quietly(() => this.primary.release(leases, holderId));
  }

  countLeases(key: string): Promise<number> {
    return this.either('count', () => this.primary.countLeases(key), () => this.fallback.countLeases(key));
  }

  putToken(token: string, record: TokenRecord): Promise<void> {
    return this.either('token', () => this.primary.putToken(token, record), () => this.fallback.putToken(token, record));
  }

  async takeToken(token: string): Promise<TokenRecord | undefined> {
    // A token minted here during an outage lives in the fallback; take it from both so it opens once.
    const local = await this.fallback.takeToken(token);
    const shared = await this.either('token', () => this.primary.takeToken(token), async () => undefined);
    return shared ?? local;
  }

  async saveSession(record: SessionRecord, ttlMs: number): Promise<void> {
    await this.either('session', () => this.primary.saveSession(record, ttlMs), () => this.fallback.saveSession(record, ttlMs));
  }

  async loadSession(sessionId: string): Promise<SessionRecord | undefined> {
    const shared = await this.either('session', () => this.primary.loadSession(sessionId), async () => undefined);
    return shared ?? this.fallback.loadSession(sessionId);
  }

  async findSessionByResumeToken(resumeToken: string): Promise<SessionRecord | undefined> {
    const shared = await this.attempt(() => this.primary.findSessionByResumeToken(resumeToken));
    // A record written here during an outage lives in the fallback.
    const local = await this.fallback.findSessionByResumeToken(resumeToken);
    if (shared.ok) return shared.value ?? local;
    this.onFallback('session');
    if (local !== undefined) return local;
    // Not "no such session": the shared store, which would know, cannot say (D3).
    throw new StoreUnavailableError('the session store cannot answer now (Redis unreachable)');
  }

  async deleteSession(sessionId: string): Promise<void> {
    await this.fallback.deleteSession(sessionId);
    await this.either('session', () => this.primary.deleteSession(sessionId), async () => undefined);
  }

  listSessions(accountId: string): Promise<readonly SessionRecord[]> {
    return this.either('session', () => this.primary.listSessions(accountId), () => this.fallback.listSessions(accountId));
  }

  publish(command: ReplicaCommand): Promise<void> {
    return this.either('publish', () => this.primary.publish(command), () => this.fallback.publish(command));
  }

  subscribe(handler: (command: ReplicaCommand) => void): () => void {
    const a = this.primary.subscribe(handler);
    const b = this.fallback.subscribe(handler);
    return () => {
      a();
      b();
    };
  }

  putReplicaStats(replicaId: string, stats: Readonly<Record<string, unknown>>, ttlMs: number): Promise<void> {
    return this.either('stats', () => this.primary.putReplicaStats(replicaId, stats, ttlMs), () => this.fallback.putReplicaStats(replicaId, stats, ttlMs));
  }

  listReplicaStats(): Promise<readonly ReplicaStats[]> {
    return this.either('stats', () => this.primary.listReplicaStats(), () => this.fallback.listReplicaStats());
  }

  /** Ready for traffic: the shared store is connected and answering. */
  healthy(): boolean {
    return this.primary.healthy() && !this.degraded;
  }

  async close(): Promise<void> {
    clearInterval(this.probe);
    this.unsubscribeState();
    this.recoveredHandlers.clear();
    await this.primary.close();
    await this.fallback.close();
  }
}
