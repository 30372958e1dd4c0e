/**
 * The Parley configuration the bench runs with, shared by the server child and the orchestrator
 * (which prints it). Every per-connection limit is ACTIVE (the buckets, the queues, the timers all
 * run) but set high enough that a bench connection never waits: the bench measures what the
 * limits cost, not what they refuse. If a limit did bite, the load client would see `error`
 * events or closes and the orchestrator reports them.
 */

/** The bench account's API key; server-side clients may connect with `Authorization: Bearer <key>`. */
export const BENCH_KEY = 'sk_bench_0123456789abcdef';

const HIGH_RATE = 1_000_000;

export const benchPlan = {
  connectionsPerKey: 100_000,
  connectionsPerAccount: 100_000,
  messagesPerSecond: HIGH_RATE,
  messageBurst: HIGH_RATE,
  messageQueue: HIGH_RATE,
  bytesPerSecond: 1e9,
  byteBurst: 1e9,
  // A day: longer than any bench run, so neither the session clock nor the idle timer fires.
  maxSessionSeconds: 86_400,
  idleTimeoutSeconds: 86_400,
  requestsPerMinute: {
    rest: HIGH_RATE,
    'conversation.start': HIGH_RATE,
    'conversation.turn': HIGH_RATE,
    'pronunciation.assess': HIGH_RATE,
    translate: HIGH_RATE,
  },
};

/** The raw config document handed to parseConfig() in the Parley child. */
export const benchConfig = {
  server: {
    host: '127.0.0.1',
    port: 0,
    // Above the memory phase's 5,000 connections (plus the throughput phase's, had they overlapped).
    maxConnections: 20_000,
    // The memory phase connects 5,000 sockets before starting their sessions in batches.
    sessionStartTimeoutSeconds: 120,
  },
  logLevel: 'warn',
  plans: { bench: benchPlan },
  accounts: [{ id: 'acct_bench', plan: 'bench', keys: [{ id: 'key_bench', secret: BENCH_KEY }] }],
};

/** What a bench phase may change in the Parley child's configuration (BENCH_PARLEY_CONFIG). */
export interface ParleyOverrides {
  /** server.maxConnections of the replica. */
  readonly maxConnections?: number;
  /** The bench plan's connectionsPerKey and connectionsPerAccount (one key, one account). */
  readonly connectionCap?: number;
  /** The store (default: in-memory). */
  readonly store?: { kind: 'memory' } | { kind: 'redis'; url: string; expectedReplicas: number; leaseSeconds?: number };
}

/** The bench configuration with a phase's overrides applied. */
export function withOverrides(o: ParleyOverrides): typeof benchConfig & { store?: ParleyOverrides['store'] } {
  const plan = o.connectionCap !== undefined ? { ...benchPlan, connectionsPerKey: o.connectionCap, connectionsPerAccount: o.connectionCap } : benchPlan;
  return {
    ...benchConfig,
    server: { ...benchConfig.server, ...(o.maxConnections !== undefined ? { maxConnections: o.maxConnections } : {}) },
    plans: { bench: plan },
    ...(o.store ? { store: o.store } : {}),
  };
}
