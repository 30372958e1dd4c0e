/**
 * The `Store` seam (ARCHITECTURE.md "Decisions already taken"): everything counted per key, per
 * account or per upstream account lives here so replicas agree. Two implementations fill it: the
 * in-memory store (the embedded default) and Redis (one Lua script per decision, Redis owns the
 * clock). One behaviour suite runs against both.
 *
 * Decisions are values (`Decision`); methods throw only for faults (the store is unreachable).
 */
import type { Decision, LimitState } from '../limits/decision.js';
import type { LeaseSpec, LimitSpec } from '../limits/spec.js';

/** A holder and the lease slots it holds (a connection: its per-key and per-account caps). */
export interface LeaseHolder {
  readonly leases: readonly LeaseSpec[];
  readonly holderId: string;
}

export interface TokenRecord {
  readonly accountId: string;
  readonly keyId: string;
  readonly learnerId?: string | undefined;
  /** Epoch ms. */
  readonly expiresAt: number;
}

/** What a replica needs to resume a session (CONTRACT "Resume"). */
export interface SessionRecord {
  readonly sessionId: string;
  readonly resumeToken: string;
  readonly accountId: string;
  readonly keyId: string;
  readonly learnerId?: string | undefined;
  readonly language: string;
  readonly nativeLanguage?: string | undefined;
  readonly scenario?: string | undefined;
  readonly voice?: string | undefined;
  readonly audio: { readonly format: 'pcm16' | 'wav'; readonly sampleRate: number };
  /** Epoch ms; resuming never moves it. */
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly history: readonly { readonly role: 'user' | 'assistant'; readonly content: string }[];
  /** Requests accepted but not yet answered when the record was written. */
  readonly pending: readonly (string | number)[];
  readonly replicaId: string;
  /** Whether a connection holds the session now (false: waiting for a resume). */
  readonly connected: boolean;
  readonly counters: { turns: number; assessments: number; translations: number; audioSeconds: number };
}

/**
 * A command every replica receives (pub/sub on Redis, a local call in memory): the replica that
 * holds the session acts on it, the others ignore it.
 */
export type ReplicaCommand =
  | {
      /** Operator `DELETE /v1/sessions/:id`: close with 4003 wherever the session is. */
      readonly type: 'session.delete';
      readonly sessionId: string;
      readonly from: string;
    }
  | {
      /** The session was resumed on replica `from`: the replica holding it closes it with 4030 and lets go. */
      readonly type: 'session.takeover';
      readonly sessionId: string;
      readonly from: string;
    };

/** A replica's live figures, published every second for the dashboard and usage across replicas. */
export interface ReplicaStats {
  readonly replicaId: string;
  /** Epoch ms when published. */
  readonly at: number;
  readonly stats: Readonly<Record<string, unknown>>;
}

/**
 * The store cannot answer now (Redis unreachable, and the answer is not in this replica's own
 * fallback): the thing asked about may well exist. Distinct from "no such thing" (`undefined`), so a
 * resume is never told its session expired because the store was briefly away (D3).
 */
export class StoreUnavailableError extends Error {
  constructor(message = 'the shared store cannot answer now') {
    super(message);
    this.name = 'StoreUnavailableError';
  }
}

export interface Store {
  readonly kind: 'memory' | 'redis';

  /**
   * Checks every limit, then consumes all or none. `opId` names the decision (unique per call, for
   * traces); it is not a dedupe key: a store that can see its own transport replay a command (Redis,
   * after a reconnect) recognises the replay itself and applies the decision once.
   */
  consume(limits: readonly LimitSpec[], opId: string): Promise<Decision>;
  /** Reads the limits without consuming (for /v1/usage and quota.updated). */
  peek(limits: readonly LimitSpec[]): Promise<readonly LimitState[]>;

  /**
   * Upstream admission: checks every rate limit and every lease, then consumes the limits and
   * takes one slot of each lease, all or nothing. `opId` as for `consume`.
   */
  admit(limits: readonly LimitSpec[], leases: readonly LeaseSpec[], holderId: string, ttlMs: number, opId: string): Promise<Decision>;

  /** Takes one slot of every lease or none. Expired leases are swept first. */
  acquire(leases: readonly LeaseSpec[], holderId: string, ttlMs: number): Promise<Decision>;
  /**
   * Extends the holders' slots (heartbeat), all of a replica's in one call. `restore` also re-adds
   * a slot the store lost (Redis restarted empty), ignoring the limit: the connection is already open.
   */
  renew(holders: readonly LeaseHolder[], ttlMs: number, mode?: 'extend' | 'restore'): Promise<void>;
  /** Idempotent. */
  release(leases: readonly LeaseSpec[], holderId: string): Promise<void>;
  /** Live holders of a lease key (expired ones excluded). */
  countLeases(key: string): Promise<number>;

  /** Stores a single-use token. */
  putToken(token: string, record: TokenRecord): Promise<void>;
  /** Returns the record and deletes it atomically (a token opens exactly one connection). */
  takeToken(token: string): Promise<TokenRecord | undefined>;

  saveSession(record: SessionRecord, ttlMs: number): Promise<void>;
  loadSession(sessionId: string): Promise<SessionRecord | undefined>;
  /**
   * The session a resume token names, `undefined` when there is none; rejects with
   * `StoreUnavailableError` when the store cannot answer (never a false "none").
   */
  findSessionByResumeToken(resumeToken: string): Promise<SessionRecord | undefined>;
  deleteSession(sessionId: string): Promise<void>;
  /** Live sessions of an account on every replica. */
  listSessions(accountId: string): Promise<readonly SessionRecord[]>;

  /** Sends a command to every replica (this one included). */
  publish(command: ReplicaCommand): Promise<void>;
  /** Receives every replica's commands; returns the unsubscribe. */
  subscribe(handler: (command: ReplicaCommand) => void): () => void;

  /** Publishes this replica's live figures for `ttlMs`. */
  putReplicaStats(replicaId: string, stats: Readonly<Record<string, unknown>>, ttlMs: number): Promise<void>;
  /** Every live replica's latest figures. */
  listReplicaStats(): Promise<readonly ReplicaStats[]>;

  /** Whether the store currently answers (for /readyz). */
  healthy(): boolean;
  close(): Promise<void>;
}
