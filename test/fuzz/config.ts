/**
 * The configuration the fuzzed app runs with. Two accounts: the attackers' (caps and rates high
 * enough that the fuzzer is answered, not simply refused) and the control learner's (the defaults
 * of a real plan, with room for a turn every second). Everything else is as an operator runs it:
 * the in-memory store and the simulated upstreams.
 */

/** The attackers' API key: server-side clients present it as `Authorization: Bearer`. */
export const ATTACK_KEY = 'sk_fuzz_attacker_0123456789abcdef';
export const ATTACK_ACCOUNT = 'acct_fuzz';
/** The only browser origin the attackers' account allows (any other gets `forbidden` + 1008). */
export const ATTACK_ORIGIN = 'http://fuzz.example';
/** The control learner's key: it mints a token through REST, as an app back end does. */
export const CONTROL_KEY = 'sk_fuzz_control_0123456789abcdef';
export const CONTROL_ORIGIN = 'http://learner.example';

const HIGH = 1_000_000;

/** The attackers' plan: the limits that matter to the oracle are stated here. */
export const attackPlan = {
  connectionsPerKey: 10_000,
  connectionsPerAccount: 10_000,
  messagesPerSecond: HIGH,
  messageBurst: HIGH,
  messageQueue: HIGH,
  bytesPerSecond: 1e9,
  byteBurst: 1_000_000_000,
  // The contract's default frame bound (262144): the 200,000-character ids of the issue fit in one frame.
  maxFrameBytes: 262_144,
  maxSessionSeconds: 3600,
  idleTimeoutSeconds: 600,
  // Short, so the sessions the fuzzer drops are gone before the "30 s later" reading (with the
  // default 60 s they would still be held, as documented, and look like retained memory).
  resumeWindowSeconds: 5,
  // 1 MiB: big enough for real turns, small enough that audio_too_large is reachable.
  maxUtteranceBytes: 1_048_576,
  maxTextChars: 2000,
  requestsPerMinute: { rest: HIGH, 'conversation.start': HIGH, 'conversation.turn': HIGH, 'pronunciation.assess': HIGH, translate: HIGH },
  dailyAudioMinutes: HIGH,
} as const;

export interface FuzzConfigOptions {
  /** Protocol ping interval: a dead peer is dropped after one to two of these. */
  readonly heartbeatSeconds: number;
}

/** The raw config document handed to parseConfig() in the app child. */
export function fuzzConfig(opts: FuzzConfigOptions): Record<string, unknown> {
  return {
    server: {
      host: '127.0.0.1',
      port: 0,
      maxConnections: 10_000,
      heartbeatSeconds: opts.heartbeatSeconds,
      // Fuzz connections that never start a session live a few seconds at most; 30 s keeps a slow
      // case on a busy machine from meeting the no-session close (4031) while it is still running.
      sessionStartTimeoutSeconds: 30,
    },
    logLevel: 'info',
    plans: {
      attacker: attackPlan,
      // The contract's standard plan, except the turn quota: a turn every second is 60 a minute.
      learner: { requestsPerMinute: { 'conversation.turn': 600, rest: 600 } },
    },
    accounts: [
      { id: ATTACK_ACCOUNT, plan: 'attacker', origins: [ATTACK_ORIGIN], keys: [{ id: 'key_fuzz', secret: ATTACK_KEY }] },
      { id: 'acct_learner', plan: 'learner', origins: [CONTROL_ORIGIN], keys: [{ id: 'key_learner', secret: CONTROL_KEY }] },
    ],
  };
}
