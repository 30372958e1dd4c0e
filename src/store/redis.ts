/**
 * The Redis `Store`. Every decision is decided by the Lua script (`lua/admit.lua`), atomically across
 * all its limits and leases; Redis owns the clock (`TIME`) unless a test injects one. Same semantics
 * as MemoryStore: the shared behaviour suite runs on both, and a seeded test compares them decision
 * by decision. Every key carries the configured prefix and a TTL.
 *
 * Decisions made in one event-loop tick travel together: one script call decides up to MAX_BATCH of
 * them, grouped by hash tag (one call per tag on a Cluster), each still all or nothing. A tag has at
 * most one batch in flight, so a batch that ioredis replays after a reconnect is recognised by its
 * sequence number and applied once. With nothing in flight a decision goes at once. The limits of
 * one tag live in one hash: one HMGET and one HSET per tag per batch (bench/redis.ts measures it).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Cluster, Redis, type ChainableCommander } from 'ioredis';
import type { Decision, LimitState } from '../limits/decision.js';
import { TokenBucket } from '../limits/token-bucket.js';
import { windowGeometry, windowState } from '../limits/window-counter.js';
import { fnv1a } from '../util/hash.js';
import { CommandDeadline } from './command-deadline.js';
import { msUntilUtcMidnight } from './memory.js';
import type { LeaseHolder, ReplicaCommand, ReplicaStats, SessionRecord, Store, TokenRecord } from './store.js';
import type { LeaseSpec, LimitSpec } from '../limits/spec.js';

const ADMIT_LUA = readFileSync(new URL('./lua/admit.lua', import.meta.url), 'utf8');

export interface RedisStoreOptions {
  readonly url?: string;
  /** Redis Cluster node URLs (instead of `url`). */
  readonly cluster?: readonly string[];
  readonly prefix?: string;
  readonly redis?: Redis;
  /**
   * TLS for `rediss://` URLs: `ca` (PEM) to trust a private CA; `rejectUnauthorized: false` accepts
   * any certificate (testing only). A `rediss://` URL with neither trusts the system's CAs.
   */
  readonly tls?: { readonly ca?: string | Buffer; readonly rejectUnauthorized?: boolean };
  /**
   * A command with no answer within this time of a responsive event loop fails (and the caller falls
   * back); a stall of this process does not count (command-deadline.ts). Default 500 ms.
   */
  readonly commandTimeoutMs?: number;
  /** TEST ONLY: overrides the clock (epoch ms); by default the scripts use Redis TIME. */
  readonly now?: () => number;
}

/** Script modes: admit (limits + leases), acquire (leases only), peek (read only). */
type Mode = 'a' | 'q' | 'p';

interface Job {
  readonly mode: Mode;
  readonly specs: readonly LimitSpec[];
  readonly leases: readonly LeaseSpec[];
  readonly holderId: string;
  readonly ttlMs: number;
  readonly tag: string;
  readonly resolve: (d: Decision) => void;
  readonly reject: (err: unknown) => void;
}

type Client = Redis | Cluster;
type WithAdmit = Client & {
  parleyAdmitBuffer(...args: (string | number | Buffer)[]): Promise<Buffer>;
};

/** Decisions per script call at most (a hot tag's burst may exceed it: a tag is never split). */
const MAX_BATCH = 32;
const MODE_CODE: Record<Mode, number> = { a: 1, q: 2, p: 3 };
/**
 * Holders per ZADD of a renewal: Redis runs one command at a time, and a ZADD of 20,000 members took
 * it 53 ms (bench/redis-leases.ts); 1,000 keep each under a few ms, and a 100,000-holder renewal no
 * longer builds one call of 200,000 arguments (which overflowed the stack).
 */
const RENEW_CHUNK = 1000;

function nodeOf(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 6379) };
}

/**
 * The script's reply (lua/admit.lua): doubles; now, then per decision the outcome and the stored
 * numbers of each limit and lease, from which remaining and reset are derived here exactly as the
 * memory store derives them.
 */
function readReply(reply: Buffer, jobs: readonly Job[]): Decision[] {
  const now = reply.readDoubleLE(0);
  let o = 8;
  const out: Decision[] = new Array<Decision>(jobs.length);
  for (let j = 0; j < jobs.length; j++) {
    const job = jobs[j]!;
    const allowed = reply.readDoubleLE(o) === 1;
    const retryAfterMs = reply.readDoubleLE(o + 8);
    const at = reply.readDoubleLE(o + 16) - 1;
    o += 24;
    const states: LimitState[] = [];
    for (const sp of job.specs) {
      const x = reply.readDoubleLE(o);
      const y = reply.readDoubleLE(o + 8);
      o += 16;
      if (sp.kind === 'window') states.push({ name: sp.name, limit: sp.limit, ...windowState(sp.limit, sp.windowMs, x, y, now) });
      else if (sp.kind === 'bucket') {
        const b = TokenBucket.restore({ ratePerSec: sp.ratePerSec, burst: sp.burst }, x, y);
        states.push({ name: sp.name, limit: sp.burst, remaining: Math.floor(b.available(now)), resetMs: b.msUntilFull(now) });
      } else states.push({ name: sp.name, limit: sp.limit, remaining: Math.max(0, sp.limit - x), resetMs: msUntilUtcMidnight(now) });
    }
    for (const l of job.leases) {
      states.push({ name: l.name, limit: l.limit, remaining: Math.max(0, l.limit - reply.readDoubleLE(o)), resetMs: 0 });
      o += 8;
    }
    if (allowed) out[j] = { allowed: true, states };
    else {
      const limitName = at < job.specs.length ? (job.specs[at]?.name ?? '') : (job.leases[at - job.specs.length]?.name ?? '');
      out[j] = { allowed: false, retryAfterMs, limitName, states };
    }
  }
  return out;
}

/** The `{hash-tag}` of a key, so an auxiliary key lands in the same cluster slot. */
function tagOf(key: string | undefined): string {
  const m = key === undefined ? null : /\{[^}]*\}/.exec(key);
  return m ? m[0] : '';
}

/**
 * A limit's id in its tag's state field: 46 bits of two FNV-1a hashes (differently seeded) of its
 * kind, window and key, so a window whose length changes starts a new entry. Below 1e14, so Lua
 * prints it exactly.
 */
export function limitId(sp: LimitSpec): number {
  const name = `${sp.kind}:${sp.kind === 'window' ? sp.windowMs : ''}:${sp.key}`;
  return fnv1a(name) * 16384 + (fnv1a(name, 0x5bd1e995) & 0x3fff);
}

/** What a decision needs of a limit key, computed once per key (and kind and window). */
interface KeyInfo {
  readonly kind: LimitSpec['kind'];
  readonly windowMs: number;
  readonly id: number;
  readonly tag: string;
}
const keyInfos = new Map<string, KeyInfo>();
function keyInfo(sp: LimitSpec): KeyInfo {
  const windowMs = sp.kind === 'window' ? sp.windowMs : 0;
  let k = keyInfos.get(sp.key);
  if (k === undefined || k.kind !== sp.kind || k.windowMs !== windowMs) {
    if (keyInfos.size >= 100_000) keyInfos.clear();
    k = { kind: sp.kind, windowMs, id: limitId(sp), tag: tagOf(sp.key) };
    keyInfos.set(sp.key, k);
  }
  return k;
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
  /** Times every command (instead of ioredis' commandTimeout, which a stall of this process trips). */
  readonly deadline: CommandDeadline;

  constructor(opts: RedisStoreOptions = {}) {
    this.prefix = opts.prefix ?? 'parley:';
    this.nowFn = opts.now;
    this.deadline = new CommandDeadline({ timeoutMs: opts.commandTimeoutMs ?? 500 });
    // Fail fast while Redis is away (no offline queue, short timeouts): the caller falls back to
    // in-process limits instead of waiting; ioredis keeps reconnecting in the background.
    const common = {
      enableOfflineQueue: false,
      // No auto-pipelining: measured (bench/redis.ts) it costs a decision ~40 µs more client CPU
      // with one caller (a Pipeline per tick) and gave fewer decisions/s with 50 callers.
      maxRetriesPerRequest: 1,
      // No ioredis commandTimeout: every command is timed by `deadline`, which tells a stall of this
      // event loop from a Redis that does not answer.
      connectTimeout: 2000,
      retryStrategy: (times: number) => Math.min(100 * times, 1000),
    };
    // TLS when the URL says rediss:// (ioredis does that for a URL; Cluster nodes are host:port, so
    // it is set here from the first node's scheme).
    const tlsFor = (url: string): { tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean } } =>
      new URL(url).protocol === 'rediss:'
        ? { tls: { ...(opts.tls?.ca !== undefined ? { ca: opts.tls.ca } : {}), ...(opts.tls?.rejectUnauthorized !== undefined ? { rejectUnauthorized: opts.tls.rejectUnauthorized } : {}) } }
        : {};
    let redis: Client;
    if (opts.redis) redis = opts.redis;
    else if (opts.cluster && opts.cluster.length > 0) {
      const first = new URL(opts.cluster[0]!);
      redis = new Cluster(opts.cluster.map(nodeOf), {
        enableOfflineQueue: false,
        clusterRetryStrategy: (times: number) => Math.min(100 * times, 1000),
        // ioredis re-reads the slot map on MOVED/ASK or a closed connection only; a master that
        // hangs (connection open, no answers) would keep its slots unreachable after its replica
        // took over. So re-read it every 2 s (one CLUSTER SLOTS).
        slotsRefreshInterval: 2000,
        redisOptions: {
          ...common,
          ...tlsFor(opts.cluster[0]!),
          username: first.username || undefined,
          password: first.password ? decodeURIComponent(first.password) : undefined,
        },
      });
    } else {
      const url = opts.url ?? 'redis://127.0.0.1:6379';
      redis = new Redis(url, { ...common, ...tlsFor(url) });
    }
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
    await this.t(this.redis.ping());
  }

  /** A command, timed (see `deadline`). */
  private t<T>(command: Promise<T>): Promise<T> {
    return this.deadline.track(command);
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
      await this.t(m.exec());
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
    await this.t(Promise.all(calls));
  }

  /**
   * Several writes that need not be atomic, in one round trip: a pipeline, not a MULTI, so Redis
   * serves other clients between its commands (a renewal of 20,000 holders as one ZADD blocked Redis
   * for 53 ms, bench/redis-leases.ts). On a Cluster each command goes on its own, as in `batch`.
   */
  private async pipelined(build: (m: ChainableCommander) => void): Promise<void> {
    if (this.isCluster) return this.batch(build);
    const p = this.redis.pipeline();
    build(p);
    await this.t(p.exec());
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

  // ---- Decisions: coalesced per tick, one script call per batch --------------------------------

  /** Decisions waiting for the next flush (or for their tag's batch in flight to answer). */
  private pending: Job[] = [];
  /** Tags with a batch in flight: at most one per tag, so a replay is always of the latest (lua/admit.lua). */
  private readonly inFlight = new Set<string>();
  private flushScheduled = false;
  private seq = 0;
  private readonly clientId = randomBytes(6).toString('base64url');

  private decide(mode: Mode, specs: readonly LimitSpec[], leases: readonly LeaseSpec[], holderId: string, ttlMs: number): Promise<Decision> {
    if (specs.length === 0 && leases.length === 0) return Promise.resolve({ allowed: true, states: [] });
    if (this.redis.status !== 'ready') return Promise.reject(new Error(`redis not ready (${this.redis.status})`));
    return new Promise<Decision>((resolve, reject) => {
      this.pending.push({ mode, specs, leases, holderId, ttlMs, tag: specs[0] ? keyInfo(specs[0]).tag : tagOf(leases[0]?.key), resolve, reject });
      // Nothing in flight: no one to coalesce with, so no reason to wait for the next tick.
      if (this.inFlight.size === 0 && this.pending.length === 1 && !this.flushScheduled) this.flush();
      else this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate, not a microtask: callers answered by one batch reply decide again in the
    // microtasks that follow it, and all of those should ride the next batch together.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    // Batches of at most MAX_BATCH decisions, so that under load several are in flight and the
    // client's work overlaps Redis'. A tag with a batch in flight waits (see `inFlight`).
    const waiting: Job[] = [];
    let groups = new Map<string, Job[]>();
    let size = 0;
    const ship = (): void => {
      if (size === 0) return;
      // A Cluster routes a script by its keys' slot: one call per tag there.
      if (this.isCluster) for (const [tag, jobs] of groups) this.send(new Map([[tag, jobs]]));
      else this.send(groups);
      groups = new Map();
      size = 0;
    };
    for (const job of this.pending) {
      const g = groups.get(job.tag);
      if (g) {
        g.push(job);
        size++;
      } else if (this.inFlight.has(job.tag)) waiting.push(job);
      else {
        if (size >= MAX_BATCH) ship();
        groups.set(job.tag, [job]);
        size++;
      }
    }
    this.pending = waiting;
    ship();
  }

  private send(groups: Map<string, Job[]>): void {
    const seq = ++this.seq;
    // KEYS, by 1-based index (few: a linear search beats a Map here).
    const keys: string[] = [];
    // Layout: lua/admit.lua. Every number goes in one buffer of doubles (one struct.unpack there),
    // the strings (holders) as arguments after it.
    const nums: number[] = [groups.size];
    const strs: string[] = [];
    const jobs: Job[] = [];
    const fieldKeys: string[] = [];
    for (const [tag, group] of groups) {
      this.inFlight.add(tag);
      keys.push(this.prefix + 'lim:' + tag);
      // The group's limits, each by a numeric id (lua/admit.lua keeps their states in one field).
      fieldKeys.length = 0;
      const head = nums.length;
      nums.push(keys.length, 0, group.length, 0);
      let writes = 0;
      for (const job of group) {
        if (job.mode !== 'p') writes = 1;
        for (const sp of job.specs) {
          if (fieldKeys.includes(sp.key)) continue;
          fieldKeys.push(sp.key);
          const id = keyInfo(sp).id;
          if (sp.kind === 'window') {
            const { bucketMs, span } = windowGeometry(sp.windowMs);
            nums.push(id, 1, bucketMs, span + 1);
          } else nums.push(id, sp.kind === 'bucket' ? 2 : 3, 0, 0);
        }
      }
      nums[head + 1] = fieldKeys.length;
      nums[head + 3] = writes;
      for (const job of group) {
        jobs.push(job);
        nums.push(MODE_CODE[job.mode], job.ttlMs, job.specs.length, job.leases.length);
        for (const sp of job.specs) {
          const f = fieldKeys.indexOf(sp.key) + 1;
          const cost = sp.cost ?? 1;
          if (sp.kind === 'window') nums.push(f, sp.limit, sp.windowMs, cost);
          else if (sp.kind === 'bucket') nums.push(f, sp.ratePerSec, sp.burst, cost);
          else nums.push(f, sp.limit, 0, cost);
        }
        for (const l of job.leases) {
          const lk = this.prefix + l.key;
          let i = keys.indexOf(lk) + 1;
          if (i === 0) i = keys.push(lk);
          nums.push(i, l.limit);
        }
        if (job.leases.length > 0) strs.push(job.holderId);
      }
    }
    // From Node's buffer pool: a Float64Array of its own would cost an ArrayBuffer per call.
    const blob = Buffer.allocUnsafe(nums.length * 8);
    for (let i = 0; i < nums.length; i++) blob.writeDoubleLE(nums[i]!, i * 8);
    this.t(this.redis.parleyAdmitBuffer(keys.length, ...keys, this.nowFn ? this.nowFn() : '', this.clientId, seq, blob, ...strs)).then(
      (reply) => {
        this.sent(groups);
        let decisions: Decision[];
        try {
          decisions = readReply(reply, jobs);
        } catch (err) {
          for (const job of jobs) job.reject(err);
          return;
        }
        for (let i = 0; i < jobs.length; i++) jobs[i]!.resolve(decisions[i]!);
      },
      (err: unknown) => {
        this.sent(groups);
        for (const job of jobs) job.reject(err);
      },
    );
  }

  /** A batch answered (or failed): its tags may go again. */
  private sent(groups: Map<string, Job[]>): void {
    for (const tag of groups.keys()) this.inFlight.delete(tag);
    if (this.pending.length > 0) this.scheduleFlush();
  }

  consume(specs: readonly LimitSpec[], _opId: string): Promise<Decision> {
    return this.decide('a', specs, NO_LEASES, '', 0);
  }

  admit(specs: readonly LimitSpec[], leases: readonly LeaseSpec[], holderId: string, ttlMs: number, _opId: string): Promise<Decision> {
    return this.decide('a', specs, leases, holderId, ttlMs);
  }

  async peek(specs: readonly LimitSpec[]): Promise<readonly LimitState[]> {
    return (await this.decide('p', specs, NO_LEASES, '', 0)).states;
  }

  acquire(leases: readonly LeaseSpec[], holderId: string, ttlMs: number): Promise<Decision> {
    return this.decide('q', NO_SPECS, leases, holderId, ttlMs);
  }

  async renew(holders: readonly LeaseHolder[], ttlMs: number, mode: 'extend' | 'restore' = 'extend'): Promise<void> {
    // One TIME and one pipeline for every holder: per lease key a sweep, its holders' new expiry in
    // ZADDs of at most RENEW_CHUNK members, and the key's own expiry (connections of one account
    // share their keys).
    const byKey = new Map<string, string[]>();
    for (const { leases, holderId } of holders) {
      for (const l of leases) {
        const key = this.k(l.key);
        let members = byKey.get(key);
        if (!members) byKey.set(key, (members = []));
        members.push(holderId);
      }
    }
    if (byKey.size === 0) return;
    const now = await this.serverNow();
    const exp = now + ttlMs;
    await this.pipelined((m) => {
      for (const [key, members] of byKey) {
        // Sweep first, then XX: only a live holder is extended (restore re-adds a lost one).
        m.zremrangebyscore(key, '-inf', now);
        for (let i = 0; i < members.length; i += RENEW_CHUNK) {
          const args: (string | number)[] = mode === 'restore' ? [] : ['XX'];
          for (let j = i; j < Math.min(i + RENEW_CHUNK, members.length); j++) args.push(exp, members[j]!);
          m.zadd(key, ...args);
        }
        m.pexpire(key, ttlMs + 1000, 'GT');
        m.pexpire(key, ttlMs + 1000, 'NX');
      }
    });
  }

  async release(leases: readonly LeaseSpec[], holderId: string): Promise<void> {
    // One ZREM per lease, no MULTI: each is idempotent and needs no other to hold, and a MULTI
    // (an ioredis Pipeline) cost several times the client CPU of the ZREM itself (bench/redis.ts,
    // admit+release).
    if (leases.length === 1) await this.t(this.redis.zrem(this.k(leases[0]!.key), holderId));
    else if (leases.length > 1) await this.t(Promise.all(leases.map((l) => this.redis.zrem(this.k(l.key), holderId))));
  }

  async countLeases(key: string): Promise<number> {
    const now = await this.serverNow();
    return this.t(this.redis.zcount(this.k(key), `(${now}`, '+inf'));
  }

  async putToken(token: string, record: TokenRecord): Promise<void> {
    const ttl = Math.ceil(record.expiresAt - this.clock());
    if (ttl <= 0) return;
    await this.t(this.redis.set(this.k(`tok:${token}`), JSON.stringify(record), 'PX', ttl));
  }

  async takeToken(token: string): Promise<TokenRecord | undefined> {
    const raw = await this.t(this.redis.getdel(this.k(`tok:${token}`)));
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
    const stored: StoredSession = { record, expiresAt };
    const aKey = this.k(`acct:${record.accountId}`);
    // One round trip, no read of the previous record (a session is written after every request):
    // an index entry left by an earlier resume token or account is harmless, since both lookups
    // check the record they reach (findSessionByResumeToken, listSessions), and expires with its TTL.
    await this.batch((m) => {
      m.set(sKey, JSON.stringify(stored), 'PX', ttlMs);
      m.set(this.k(`resume:${record.resumeToken}`), record.sessionId, 'PX', ttlMs);
      m.zremrangebyscore(aKey, '-inf', now);
      m.zadd(aKey, expiresAt, record.sessionId);
      m.pexpire(aKey, ttlMs, 'GT');
      m.pexpire(aKey, ttlMs, 'NX');
    });
  }

  async loadSession(sessionId: string): Promise<SessionRecord | undefined> {
    const raw = await this.t(this.redis.get(this.k(`sess:${sessionId}`)));
    if (raw === null) return undefined;
    const s = JSON.parse(raw) as StoredSession;
    return s.expiresAt > this.clock() ? s.record : undefined;
  }

  async findSessionByResumeToken(resumeToken: string): Promise<SessionRecord | undefined> {
    const id = await this.t(this.redis.get(this.k(`resume:${resumeToken}`)));
    if (id === null) return undefined;
    const rec = await this.loadSession(id);
    return rec && rec.resumeToken === resumeToken ? rec : undefined;
  }

  private async removeSession(sessionId: string): Promise<void> {
    const sKey = this.k(`sess:${sessionId}`);
    const raw = await this.t(this.redis.get(sKey));
    if (raw === null) return;
    const s = JSON.parse(raw) as StoredSession;
    // A resume token is random per session, so its index entry is this session's alone.
    await this.batch((m) => {
      m.del(sKey);
      m.zrem(this.k(`acct:${s.record.accountId}`), sessionId);
      m.del(this.k(`resume:${s.record.resumeToken}`));
    });
  }

  async listSessions(accountId: string): Promise<readonly SessionRecord[]> {
    const now = this.clock();
    const ids = await this.t(this.redis.zrangebyscore(this.k(`acct:${accountId}`), `(${now}`, '+inf'));
    if (ids.length === 0) return [];
    // MGET spans slots on a Cluster; one GET per session there.
    const keys = ids.map((id) => this.k(`sess:${id}`));
    const raws = await this.t(this.isCluster ? Promise.all(keys.map((key) => this.redis.get(key))) : this.redis.mget(keys));
    const out: SessionRecord[] = [];
    for (const raw of raws) {
      if (raw === null) continue;
      const s = JSON.parse(raw) as StoredSession;
      if (s.expiresAt > now && s.record.accountId === accountId) out.push(s.record);
    }
    return out;
  }

  async publish(command: ReplicaCommand): Promise<void> {
    await this.t(this.redis.publish(this.k('commands'), JSON.stringify(command)));
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
    const all = await this.t(this.redis.hgetall(key));
    const now = this.clock();
    const out: ReplicaStats[] = [];
    const stale: string[] = [];
    for (const [id, raw] of Object.entries(all)) {
      const e = JSON.parse(raw) as ReplicaStats & { expiresAt: number };
      if (e.expiresAt <= now) stale.push(id);
      else out.push({ replicaId: e.replicaId, at: e.at, stats: e.stats });
    }
    if (stale.length > 0) await this.t(this.redis.hdel(key, ...stale));
    return out;
  }

  healthy(): boolean {
    return this.redis.status === 'ready';
  }

  async close(): Promise<void> {
    if (this.writes.size > 0) await Promise.race([Promise.allSettled([...this.writes]), new Promise((r) => setTimeout(r, 1000).unref())]);
    this.handlers.clear();
    this.deadline.close();
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
    const [sec, usec] = await this.t(this.redis.time());
    return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  }
}
