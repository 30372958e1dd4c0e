/**
 * The Redis `Store`: every decision is one Lua script (`lua/admit.lua`), atomic across all limits and
 * leases; Redis owns the clock (`TIME`) unless a test injects one. Same semantics as MemoryStore (the
 * shared behaviour suite runs on both). Every key carries the configured prefix and a TTL.
 */
import { readFileSync } from 'node:fs';
import { Cluster, Redis, type ChainableCommander } from 'ioredis';
import type { Decision, LimitState } from '../limits/decision.js';
import type { LeaseSpec, LimitSpec, ReplicaCommand, ReplicaStats, SessionRecord, Store, TokenRecord } from './store.js';

const ADMIT_LUA = readFileSync(new URL('./lua/admit.lua', import.meta.url), 'utf8');

export interface RedisStoreOptions {
  readonly url?: string;
  /** Redis Cluster node URLs (instead of `url`). */
  readonly cluster?: readonly string[];
  readonly prefix?: string;
  readonly redis?: Redis;
  /** A command with no answer within this time fails (and the caller falls back). Default 500 ms. */
  readonly commandTimeoutMs?: number;
  /** TEST ONLY: overrides the clock (epoch ms); by default the scripts use Redis TIME. */
  readonly now?: () => number;
}

type Mode = 'admit' | 'acquire' | 'peek';

type Client = Redis | Cluster;
type WithAdmit = Client & {
  parleyAdmit(...args: (string | number)[]): Promise<string>;
};

function nodeOf(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 6379) };
}

/** A number of the script's reply (`%.14g`, or "inf"). */
const num = (v: string | undefined): number => (v === 'inf' ? Infinity : Number(v));

/**
 * The script's reply: "allowed,retryAfterMs,refusedIndex" then "remaining,resetMs" per spec and per
 * lease, in order (see lua/admit.lua). Names and limits come from the specs, not the wire.
 */
function parseDecision(reply: string, specs: readonly LimitSpec[], leases: readonly LeaseSpec[]): Decision {
  const f = reply.split(',');
  const states: LimitState[] = new Array<LimitState>(specs.length + leases.length);
  let j = 3;
  for (let i = 0; i < specs.length; i++, j += 2) {
    const s = specs[i]!;
    states[i] = { name: s.name, limit: s.kind === 'bucket' ? s.burst : s.limit, remaining: num(f[j]), resetMs: num(f[j + 1]) };
  }
  for (let i = 0; i < leases.length; i++, j += 2) {
    const l = leases[i]!;
    states[specs.length + i] = { name: l.name, limit: l.limit, remaining: num(f[j]), resetMs: num(f[j + 1]) };
  }
  if (f[0] === '1') return { allowed: true, states };
  const at = Number(f[2]) - 1;
  const limitName = at < specs.length ? (specs[at]?.name ?? '') : (leases[at - specs.length]?.name ?? '');
  return { allowed: false, retryAfterMs: num(f[1]), limitName, states };
}

/** The `{hash-tag}` of a key, so an auxiliary key lands in the same cluster slot. */
function tagOf(key: string | undefined): string {
  const m = key === undefined ? null : /\{[^}]*\}/.exec(key);
  return m ? m[0] : '';
}

const NO_LEASES: readonly LeaseSpec[] = [];
const NO_SPECS: readonly LimitSpec[] = [];

interface StoredSession {
  record: SessionRecord;
  expiresAt: number;
}

export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  private readonly redis: WithAdmit;
  private readonly prefix: string;
  private readonly nowFn: (() => number) | undefined;
  private readonly handlers = new Set<(command: ReplicaCommand) => void>();
  private subscriber: Client | undefined;

  private readonly isCluster: boolean;
  private readonly stateHandlers = new Set<(ready: boolean) => void>();

  constructor(opts: RedisStoreOptions = {}) {
    this.prefix = opts.prefix ?? 'parley:';
    this.nowFn = opts.now;
    // Fail fast while Redis is away (no offline queue, short timeouts): the caller falls back to
    // in-process limits instead of waiting; ioredis keeps reconnecting in the background.
    const common = {
      enableOfflineQueue: false,
      // No auto-pipelining: measured (bench/redis.ts) it costs a decision ~40 µs more client CPU
      // with one caller (a Pipeline per tick) and gave fewer decisions/s with 50 callers.
      maxRetriesPerRequest: 1,
      commandTimeout: opts.commandTimeoutMs ?? 500,
      connectTimeout: 2000,
      retryStrategy: (times: number) => Math.min(100 * times, 1000),
    };
    let redis: Client;
    if (opts.redis) redis = opts.redis;
    else if (opts.cluster && opts.cluster.length > 0) {
      const first = new URL(opts.cluster[0]!);
      redis = new Cluster(opts.cluster.map(nodeOf), {
        enableOfflineQueue: false,
        clusterRetryStrategy: (times: number) => Math.min(100 * times, 1000),
        redisOptions: { ...common, username: first.username || undefined, password: first.password ? decodeURIComponent(first.password) : undefined },
      });
    } else redis = new Redis(opts.url ?? 'redis://127.0.0.1:6379', common);
    this.isCluster = redis instanceof Cluster;
    redis.on('ready', () => this.emitState(true));
    redis.on('close', () => this.emitState(false));
    redis.on('end', () => this.emitState(false));
    // Faults surface as rejected commands; without a listener ioredis would log every reconnect error.
    redis.on('error', () => undefined);
    redis.defineCommand('parleyAdmit', { lua: ADMIT_LUA });
    this.redis = redis as WithAdmit;
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  /** Called with `true` when the connection becomes ready, `false` when it is lost. */
  onStateChange(handler: (ready: boolean) => void): () => void {
    this.stateHandlers.add(handler);
    return () => this.stateHandlers.delete(handler);
  }

  private lastState: boolean | undefined;
  private emitState(ready: boolean): void {
    if (this.lastState === ready) return;
    this.lastState = ready;
    for (const h of [...this.stateHandlers]) h(ready);
  }

  /**
   * Several writes at once: a MULTI on one Redis; on a Cluster the keys may live in different
   * slots, so each command goes on its own (each write is idempotent, so a partial batch retried by
   * the next save converges).
   */
  private async batch(build: (m: ChainableCommander) => void): Promise<void> {
    if (!this.isCluster) {
      const m = this.redis.multi();
      build(m);
      await m.exec();
      return;
    }
    const calls: Promise<unknown>[] = [];
    const target = this.redis as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    const proxy: ChainableCommander = new Proxy({} as ChainableCommander, {
      get: (_t, name: string) => (...args: unknown[]) => {
        calls.push(target[name]!.apply(this.redis, args));
        return proxy;
      },
    });
    build(proxy);
    await Promise.all(calls);
  }

  /** Resolves once the connection is ready (commands fail fast while offline). */
  async ready(): Promise<void> {
    if (this.redis.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const onReady = (): void => {
        cleanup();
        resolve();
      };
      const onEnd = (): void => {
        cleanup();
        reject(new Error('redis connection ended'));
      };
      const cleanup = (): void => {
        this.redis.off('ready', onReady);
        this.redis.off('end', onEnd);
      };
      this.redis.on('ready', onReady);
      this.redis.on('end', onEnd);
    });
  }

  private k(key: string): string {
    return this.prefix + key;
  }

  private clock(): number {
    return this.nowFn ? this.nowFn() : Date.now();
  }

  private run(mode: Mode, specs: readonly LimitSpec[], leases: readonly LeaseSpec[], holderId: string, ttlMs: number, opId: string): Promise<string> {
    // One flat argument list: numkeys, KEYS, then ARGV (layout in lua/admit.lua). Numbers go as
    // numbers; ioredis writes them without an intermediate string array.
    const nKeys = 1 + specs.length + leases.length;
    const firstKey = specs[0]?.key ?? leases[0]?.key;
    const args: (string | number)[] = [nKeys, this.prefix + 'op:' + tagOf(firstKey) + ':' + opId];
    for (const s of specs) args.push(this.prefix + s.key);
    for (const l of leases) args.push(this.prefix + l.key);
    args.push(mode, this.nowFn ? this.nowFn() : '', opId, holderId, ttlMs, specs.length, leases.length);
    for (const s of specs) {
      const cost = s.cost ?? 1;
      if (s.kind === 'window') args.push('w', s.limit, s.windowMs, cost);
      else if (s.kind === 'bucket') args.push('b', s.ratePerSec, s.burst, cost);
      else args.push('d', s.limit, 0, cost);
    }
    for (const l of leases) args.push(l.limit);
    return this.redis.parleyAdmit(...args);
  }

  async consume(specs: readonly LimitSpec[], opId: string): Promise<Decision> {
    return parseDecision(await this.run('admit', specs, NO_LEASES, '', 0, opId), specs, NO_LEASES);
  }

  async admit(specs: readonly LimitSpec[], leases: readonly LeaseSpec[], holderId: string, ttlMs: number, opId: string): Promise<Decision> {
    return parseDecision(await this.run('admit', specs, leases, holderId, ttlMs, opId), specs, leases);
  }

  async peek(specs: readonly LimitSpec[]): Promise<readonly LimitState[]> {
    return parseDecision(await this.run('peek', specs, NO_LEASES, '', 0, ''), specs, NO_LEASES).states;
  }

  async acquire(leases: readonly LeaseSpec[], holderId: string, ttlMs: number): Promise<Decision> {
    return parseDecision(await this.run('acquire', NO_SPECS, leases, holderId, ttlMs, ''), NO_SPECS, leases);
  }

  async renew(leases: readonly LeaseSpec[], holderId: string, ttlMs: number, mode: 'extend' | 'restore' = 'extend'): Promise<void> {
    if (leases.length === 0) return;
    const now = await this.serverNow();
    const exp = now + ttlMs;
    await this.batch((m) => {
      for (const l of leases) {
      // Sweep first, then XX: only a live holder is extended (restore re-adds a lost one).
        m.zremrangebyscore(this.k(l.key), '-inf', now);
        if (mode === 'restore') m.zadd(this.k(l.key), exp, holderId);
        else m.zadd(this.k(l.key), 'XX', exp, holderId);
        m.pexpire(this.k(l.key), ttlMs + 1000, 'GT');
        m.pexpire(this.k(l.key), ttlMs + 1000, 'NX');
      }
    });
  }

  async release(leases: readonly LeaseSpec[], holderId: string): Promise<void> {
    if (leases.length === 0) return;
    await this.batch((m) => {
      for (const l of leases) m.zrem(this.k(l.key), holderId);
    });
  }

  async countLeases(key: string): Promise<number> {
    const now = await this.serverNow();
    return this.redis.zcount(this.k(key), `(${now}`, '+inf');
  }

  async putToken(token: string, record: TokenRecord): Promise<void> {
    const ttl = Math.ceil(record.expiresAt - this.clock());
    if (ttl <= 0) return;
    await this.redis.set(this.k(`tok:${token}`), JSON.stringify(record), 'PX', ttl);
  }

  async takeToken(token: string): Promise<TokenRecord | undefined> {
    const raw = await this.redis.getdel(this.k(`tok:${token}`));
    if (raw === null) return undefined;
    const record = JSON.parse(raw) as TokenRecord;
    return record.expiresAt > this.clock() ? record : undefined;
  }

  saveSession(record: SessionRecord, ttlMs: number): Promise<void> {
    return this.track(this.writeSession(record, ttlMs));
  }

  deleteSession(sessionId: string): Promise<void> {
    return this.track(this.removeSession(sessionId));
  }

  /**
   * Session writes take several round trips; `close()` lets those already started finish, so a
   * session ended just before shutdown is still deleted.
   */
  private readonly writes = new Set<Promise<unknown>>();
  private track<T>(p: Promise<T>): Promise<T> {
    this.writes.add(p);
    const done = (): void => void this.writes.delete(p);
    p.then(done, done);
    return p;
  }

  private async writeSession(record: SessionRecord, ttlMs: number): Promise<void> {
    const now = this.clock();
    const expiresAt = now + ttlMs;
    const sKey = this.k(`sess:${record.sessionId}`);
    const old = await this.redis.get(sKey);
    const stored: StoredSession = { record, expiresAt };
    const aKey = this.k(`acct:${record.accountId}`);
    await this.batch((m) => {
      if (old !== null) {
        const prev = JSON.parse(old) as StoredSession;
        if (prev.record.resumeToken !== record.resumeToken) m.del(this.k(`resume:${prev.record.resumeToken}`));
        if (prev.record.accountId !== record.accountId) m.zrem(this.k(`acct:${prev.record.accountId}`), record.sessionId);
      }
      m.set(sKey, JSON.stringify(stored), 'PX', ttlMs);
      m.set(this.k(`resume:${record.resumeToken}`), record.sessionId, 'PX', ttlMs);
      m.zremrangebyscore(aKey, '-inf', now);
      m.zadd(aKey, expiresAt, record.sessionId);
      m.pexpire(aKey, ttlMs, 'GT');
      m.pexpire(aKey, ttlMs, 'NX');
    });
  }

  async loadSession(sessionId: string): Promise<SessionRecord | undefined> {
    const raw = await this.redis.get(this.k(`sess:${sessionId}`));
    if (raw === null) return undefined;
    const s = JSON.parse(raw) as StoredSession;
    return s.expiresAt > this.clock() ? s.record : undefined;
  }

  async findSessionByResumeToken(resumeToken: string): Promise<SessionRecord | undefined> {
    const id = await this.redis.get(this.k(`resume:${resumeToken}`));
    if (id === null) return undefined;
    const rec = await this.loadSession(id);
    return rec && rec.resumeToken === resumeToken ? rec : undefined;
  }

  private async removeSession(sessionId: string): Promise<void> {
    const sKey = this.k(`sess:${sessionId}`);
    const raw = await this.redis.get(sKey);
    if (raw === null) return;
    const s = JSON.parse(raw) as StoredSession;
    const rKey = this.k(`resume:${s.record.resumeToken}`);
    // Drop the index only if it still points at this session.
    const cur = await this.redis.get(rKey);
    await this.batch((m) => {
      m.del(sKey);
      m.zrem(this.k(`acct:${s.record.accountId}`), sessionId);
      if (cur === sessionId) m.del(rKey);
    });
  }

  async listSessions(accountId: string): Promise<readonly SessionRecord[]> {
    const now = this.clock();
    const ids = await this.redis.zrangebyscore(this.k(`acct:${accountId}`), `(${now}`, '+inf');
    if (ids.length === 0) return [];
    // MGET spans slots on a Cluster; one GET per session there.
    const keys = ids.map((id) => this.k(`sess:${id}`));
    const raws = this.isCluster ? await Promise.all(keys.map((key) => this.redis.get(key))) : await this.redis.mget(keys);
    const out: SessionRecord[] = [];
    for (const raw of raws) {
      if (raw === null) continue;
      const s = JSON.parse(raw) as StoredSession;
      if (s.expiresAt > now && s.record.accountId === accountId) out.push(s.record);
    }
    return out;
  }

  async publish(command: ReplicaCommand): Promise<void> {
    await this.redis.publish(this.k('commands'), JSON.stringify(command));
  }

  subscribe(handler: (command: ReplicaCommand) => void): () => void {
    this.handlers.add(handler);
    if (!this.subscriber) {
      // A subscribed connection can run nothing else, so commands get their own; ioredis
      // re-subscribes it after a reconnect.
      const sub: Client = this.redis instanceof Cluster ? this.redis.duplicate(undefined, { enableOfflineQueue: true }) : this.redis.duplicate({ enableOfflineQueue: true });
      sub.on('error', () => undefined);
      sub.on('message', (_channel: string, message: string) => {
        let command: ReplicaCommand;
        try {
          command = JSON.parse(message) as ReplicaCommand;
        } catch {
          return;
        }
        for (const h of [...this.handlers]) h(command);
      });
      sub.subscribe(this.k('commands')).catch(() => undefined);
      this.subscriber = sub;
    }
    return () => this.handlers.delete(handler);
  }

  async putReplicaStats(replicaId: string, stats: Readonly<Record<string, unknown>>, ttlMs: number): Promise<void> {
    const at = this.clock();
    const key = this.k('replicas');
    const entry: ReplicaStats & { expiresAt: number } = { replicaId, at, stats, expiresAt: at + ttlMs };
    await this.batch((m) => m.hset(key, replicaId, JSON.stringify(entry)).pexpire(key, ttlMs * 10));
  }

  async listReplicaStats(): Promise<readonly ReplicaStats[]> {
    const key = this.k('replicas');
    const all = await this.redis.hgetall(key);
    const now = this.clock();
    const out: ReplicaStats[] = [];
    const stale: string[] = [];
    for (const [id, raw] of Object.entries(all)) {
      const e = JSON.parse(raw) as ReplicaStats & { expiresAt: number };
      if (e.expiresAt <= now) stale.push(id);
      else out.push({ replicaId: e.replicaId, at: e.at, stats: e.stats });
    }
    if (stale.length > 0) await this.redis.hdel(key, ...stale);
    return out;
  }

  healthy(): boolean {
    return this.redis.status === 'ready';
  }

  async close(): Promise<void> {
    if (this.writes.size > 0) await Promise.race([Promise.allSettled([...this.writes]), new Promise((r) => setTimeout(r, 1000).unref())]);
    this.handlers.clear();
    this.subscriber?.disconnect();
    this.subscriber = undefined;
    if (this.redis.status === 'end') return;
    const ended = new Promise<void>((resolve) => this.redis.once('end', () => resolve()));
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
    // QUIT resolves on the server's OK; wait for the socket to close so `healthy()` is false after.
    await Promise.race([ended, new Promise<void>((r) => setTimeout(r, 1000).unref())]);
  }

  /** The clock the scripts use: the injected one, else Redis TIME. */
  private async serverNow(): Promise<number> {
    if (this.nowFn) return this.nowFn();
    const [sec, usec] = await this.redis.time();
    return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  }
}
