/**
 * The configuration every chaos replica runs with: one account whose connection cap is the
 * quantity under test, request quotas high enough that the steady load never meets them (so any
 * `rate_limited` seen is the fallback's share, not the plan), and the built-in simulated upstream
 * with latency, so turns take a few hundred milliseconds and some are always in flight when a
 * fault strikes.
 */

/** The chaos account's API key (server side: it mints the learners' tokens and reads /v1/usage). */
export const CHAOS_KEY = 'sk_chaos_0123456789abcdef';
export const CHAOS_ACCOUNT = 'acct_chaos';

export interface ChaosConfigOptions {
  readonly redisUrl: string;
  readonly sessions: number;
  readonly cap: number;
  readonly leaseSeconds: number;
  readonly replicas: number;
}

/** The raw config document (PARLEY_CONFIG) of a replica. */
export function chaosConfig(o: ChaosConfigOptions): Record<string, unknown> {
  // Upstream limits comfortably above the load (a turn a second per learner, ~0.5 s each), also at
  // the fallback's half share: the run is about the store, not about upstream queueing.
  const upstreamLimits = { concurrency: o.sessions * 2, requestsPerSecond: o.sessions * 4, burst: o.sessions * 4 };
  return {
    server: {
      host: '127.0.0.1',
      // HAProxy adds X-Forwarded-For; the replicas see each learner's own address (docs/operations.md "Proxy settings").
      trustProxy: true,
    },
    store: { kind: 'redis', url: o.redisUrl, expectedReplicas: o.replicas, leaseSeconds: o.leaseSeconds },
    plans: {
      chaos: {
        // Only the account cap binds: the per-key cap is twice it, so a refusal names the account.
        connectionsPerAccount: o.cap,
        connectionsPerKey: o.cap * 2,
        requestsPerMinute: {
          rest: 60_000,
          'conversation.start': 10_000,
          'conversation.turn': Math.max(10_000, o.sessions * 60 * 4),
          'pronunciation.assess': 1_000,
          translate: 1_000,
        },
      },
    },
    accounts: [{ id: CHAOS_ACCOUNT, plan: 'chaos', origins: ['*'], keys: [{ id: 'key_chaos', secret: CHAOS_KEY }] }],
    upstreams: {
      conversation: { provider: 'simulated', latencyMs: 300, limits: upstreamLimits },
      tts: { provider: 'simulated', latencyMs: 150, limits: upstreamLimits },
      stt: { provider: 'simulated' },
      translation: { provider: 'simulated' },
      pronunciation: { provider: 'simulated' },
    },
  };
}
