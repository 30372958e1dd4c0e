/**
 * The configuration schema (CONTRACT.md §2): one TypeBox declaration gives the JSON Schema, the
 * defaults and the TypeScript type. `additionalProperties: false` everywhere, so a misspelt key is
 * an error that names it rather than a silently ignored setting.
 */
import { Type, type Static, type TSchema, type ObjectOptions } from '@sinclair/typebox';

/**
 * A closed object. `default: {}` on a nested object matters: TypeBox's `Value.Default` only fills
 * an absent (or, inside a `Record`, any) object whose own schema carries a `default`, so without
 * it `server`, a plan's `requestsPerMinute` or an upstream would stay absent instead of defaulted.
 */
const Obj = <T extends Parameters<typeof Type.Object>[0]>(props: T, description?: string, options: ObjectOptions = {}) =>
  Type.Object(props, { additionalProperties: false, ...(description ? { description } : {}), ...options });

const PositiveInt = (def: number, description: string, minimum = 1) =>
  Type.Integer({ minimum, default: def, description });
const PositiveNum = (def: number, description: string) =>
  Type.Number({ exclusiveMinimum: 0, default: def, description });

export const RequestKinds = ['rest', 'conversation.start', 'conversation.turn', 'pronunciation.assess', 'translate'] as const;
export type RequestKind = (typeof RequestKinds)[number];

export const ServerSchema = Obj({
  host: Type.String({ default: '0.0.0.0', minLength: 1, description: 'Interface to listen on' }),
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'TCP port (0 picks a free one)' }),
  maxConnections: PositiveInt(10000, 'WebSocket connections this replica accepts; beyond it new ones close with 1013'),
  drainSeconds: Type.Number({ minimum: 0, default: 10, description: 'On SIGTERM, time given to sessions to finish before exit' }),
  demo: Type.Boolean({ default: false, description: 'Serve the demo page at /demo/ and POST /demo/token' }),
  dashboard: Type.Boolean({ default: false, description: 'Serve the operator live view at /dashboard (its data needs an API key: Authorization: Bearer)' }),
  dashboardStreams: PositiveInt(32, 'Dashboard event streams this replica serves at once; beyond it 503 server_full'),
  dashboardStreamsPerAccount: PositiveInt(4, "Dashboard event streams one account's keys may hold open on this replica; beyond it 429 rate_limited"),
  demoAccount: Type.Optional(Type.String({ minLength: 1, description: 'Account used by the demo (default: the first account)' })),
  allowedHosts: Type.Array(Type.String({ minLength: 1 }), {
    default: ['localhost', '127.0.0.1', '[::1]'],
    description:
      'Host names the demo is served under (its page, POST /demo/token, and its own origin allowed for the demo account); a leading "." allows subdomains. Requests naming any other Host are refused, as dev servers refuse them against DNS rebinding',
  }),
  heartbeatSeconds: PositiveNum(30, 'Protocol-level ping interval; a peer that misses one ping is dropped'),
  sessionStartTimeoutSeconds: PositiveNum(10, 'A connection that sends no session.start within this time is closed with 4031'),
  maxBufferedBytes: PositiveInt(4 * 1024 * 1024, 'Bytes waiting to be sent to one client before it is closed as a slow consumer (1008)'),
  slowConsumerGraceSeconds: PositiveNum(5, 'After the slow_consumer close, time the client gets to read before the socket is destroyed'),
  maxPayloadBytes: Type.Optional(Type.Integer({ minimum: 1024, description: 'Hard frame ceiling of the WebSocket layer (default: 4 x the largest maxFrameBytes)' })),
  trustProxy: Type.Boolean({ default: false, description: "Trust X-Forwarded-* headers (behind a load balancer)" }),
  headersTimeoutSeconds: PositiveNum(10, 'A request (a WebSocket upgrade included) whose headers take longer gets 408 and is closed (against slowloris)'),
  authFailuresPerMinute: PositiveInt(30, 'Failed authentications (wrong key or token, REST or WebSocket) one client address may make within a minute; past them it gets 429 rate_limited (WebSocket: close 4029) until the minute has passed'),
}, 'The HTTP and WebSocket listener', { default: {} });

export const MemoryStoreSchema = Obj({ kind: Type.Literal('memory', { description: 'In-process store: one replica only' }) });
export const RedisStoreSchema = Obj({
  kind: Type.Literal('redis', { description: 'Redis store: limits, sessions and leases shared by every replica' }),
  url: Type.String({ default: 'redis://127.0.0.1:6379', description: 'redis:// URL' }),
  prefix: Type.String({ default: 'parley:', description: 'Key prefix' }),
  expectedReplicas: PositiveInt(1, "Replicas sharing the store; while Redis is unreachable shared limits fall back to limit / expectedReplicas, and connection caps count the replica's own open connections against that share"),
  cluster: Type.Optional(Type.Array(Type.String(), { minItems: 1, description: 'Redis Cluster node URLs (instead of url)' })),
  leaseSeconds: PositiveNum(30, "Connection-slot lease; renewed every third of it, so a crashed replica's slots free themselves within it"),
  commandTimeoutMs: PositiveInt(500, 'A Redis command unanswered within this time of a free event loop (a stall of the replica itself does not count; while earlier commands are being answered, up to 4 times this) falls back to the in-process limiters'),
  tls: Type.Optional(
    Obj(
      {
        caFile: Type.Optional(Type.String({ minLength: 1, description: 'PEM file of the CA that signed the Redis certificate (a private CA); read at start' })),
        rejectUnauthorized: Type.Optional(Type.Boolean({ description: 'false accepts any certificate: for testing only' })),
      },
      'TLS for rediss:// URLs (url or cluster): `caFile` (PEM of a private CA, read at start), `rejectUnauthorized` (false accepts any certificate: testing only); a rediss:// URL without it trusts the system CAs',
    ),
  ),
});
export const StoreSchema = Type.Union([MemoryStoreSchema, RedisStoreSchema], {
  default: { kind: 'memory' },
  description: 'Where the shared counters, leases and sessions live',
});

export const RequestsPerMinuteSchema = Obj({
  rest: PositiveInt(60, 'REST requests per minute, per API key'),
  'conversation.start': PositiveInt(20, 'New sessions per minute, per account'),
  'conversation.turn': PositiveInt(60, 'Turns (audio or text) per minute, per account'),
  'pronunciation.assess': PositiveInt(30, 'Pronunciation assessments per minute, per account'),
  translate: PositiveInt(120, 'Translations per minute, per account'),
}, 'Account request quotas per minute, by request kind', { default: {} });

export const PlanSchema = Obj({
  connectionsPerKey: PositiveInt(5, 'Concurrent WebSocket connections per API key, across replicas'),
  connectionsPerAccount: PositiveInt(50, 'Concurrent WebSocket connections per account, across replicas'),
  messagesPerSecond: PositiveNum(100, 'Per-connection message token bucket: refill rate'),
  messageBurst: PositiveInt(100, 'Per-connection message token bucket: capacity'),
  messageQueue: Type.Integer({ minimum: 0, default: 100, description: 'Messages that may wait for a token; one more closes with 4029' }),
  bytesPerSecond: PositiveNum(1048576, 'Per-connection byte token bucket: refill rate (bytes/s)'),
  byteBurst: PositiveInt(1048576, 'Per-connection byte token bucket: capacity; also the most bytes that may wait'),
  maxFrameBytes: PositiveInt(262144, 'Largest frame accepted; larger closes with 1009'),
  maxSessionSeconds: PositiveNum(1800, 'Session length; then close with 4008'),
  expiryWarningSeconds: Type.Number({ minimum: 0, default: 60, description: 'session.expiring is sent this long before maxSessionSeconds' }),
  idleTimeoutSeconds: PositiveNum(120, 'No request and no audio for this long closes with 4031'),
  resumeWindowSeconds: Type.Number({ minimum: 0, default: 60, description: 'A dropped session can be resumed for this long' }),
  maxUtteranceBytes: PositiveInt(26214400, 'Largest committed utterance; larger gets audio_too_large'),
  maxTextChars: PositiveInt(2000, 'Longest text in turn.text and translate; longer gets text_too_long'),
  requestsPerMinute: Type.Optional(RequestsPerMinuteSchema),
  dailyAudioMinutes: Type.Number({ minimum: 0, default: 500, description: 'Committed input audio per account per UTC day (fractional minutes)' }),
  maxHistoryTurns: PositiveInt(20, 'Conversation turns kept per session and sent to the conversation model'),
}, 'The limits an account gets', { default: {} });

/** A secret of at least 8 characters, or `env:NAME` (checked again, for length, once resolved). */
export const SecretPattern = '^(?:env:[A-Za-z_][A-Za-z0-9_]*|(?!env:)[\\s\\S]{8,})$';

export const KeySchema = Obj({
  id: Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_.-]+$', description: 'Key id, unique across all accounts; appears in logs instead of the secret' }),
  secret: Type.String({
    pattern: SecretPattern,
    writeOnly: true,
    description: 'The API key itself (at least 8 characters), or "env:NAME" to read it from the environment variable NAME',
  }),
  disabled: Type.Boolean({ default: false, description: 'A disabled key is refused (401); its open sessions close with 4003' }),
});

export const AccountSchema = Obj({
  id: Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_.-]+$', description: 'Account id, unique' }),
  plan: Type.String({ minLength: 1, description: 'Name of a plan in plans' }),
  origins: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'Allowed browser origins ("*" allows any)' }),
  keys: Type.Array(KeySchema, { minItems: 1, description: 'API keys of the account' }),
  disabled: Type.Boolean({ default: false, description: 'A disabled account is refused; its open sessions close with 4003' }),
});

// The rate and size limits carry no `default`: CONTRACT §2 makes them "all optional and
// combinable", and `Value.Default` would otherwise switch every one of them on for every upstream.
// Only the timeout, retry and queue-wait settings always apply.
export const UpstreamLimitsSchema = Obj({
  requestsPerMinute: Type.Optional(Type.Integer({ minimum: 1, description: 'Requests in any 60 s window' })),
  requestsPerSecond: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Token bucket refill rate' })),
  burst: Type.Optional(Type.Integer({ minimum: 1, description: 'Token bucket capacity (needs requestsPerSecond; default: requestsPerSecond rounded up)' })),
  concurrency: Type.Optional(Type.Integer({ minimum: 1, description: 'Requests in flight' })),
  maxChars: Type.Optional(Type.Integer({ minimum: 1, description: 'Longer text is split at sentence boundaries and sent as several requests (TTS: default 2000; a reply is spoken first sentence alone, then in requests of up to maxChars)' })),
  segmentsInFlight: Type.Optional(Type.Integer({ minimum: 1, description: 'TTS: requests of one reply open at once (the next sentence is synthesized while the previous one plays; default 2)' })),
  maxBytes: Type.Optional(Type.Integer({ minimum: 1, description: 'Largest audio upload' })),
  timeoutSeconds: Type.Optional(PositiveNum(30, 'Per-attempt timeout')),
  maxRetries: Type.Optional(Type.Integer({ minimum: 0, default: 5, description: 'Retries of a request the upstream answered with 429 or 503' })),
  maxQueueWaitSeconds: Type.Optional(PositiveNum(30, 'Longest wait for capacity, from acceptance; then upstream_busy')),
}, 'Limits of the upstream account, shared by every replica', { default: {} });

/**
 * The simulated provider's latency profile (issue 13): how a streamed reply and streamed speech
 * arrive over time. No defaults: absent keys are instant, which is what tests want; the embedded
 * default config (src/config/load.ts) sets the reference profile.
 */
export const SimulatedTimingSchema = Obj({
  firstTokenMs: Type.Optional(Type.Integer({ minimum: 0, description: 'Conversation, translation: ms from the call to the first token (default: latencyMs)' })),
  tokensPerSecond: Type.Optional(Type.Number({
    exclusiveMinimum: 0,
    description: 'Conversation, translation: tokens per second after the first (default: the rest at once); a simulated token is a word with its spaces and punctuation, or one CJK character',
  })),
  firstByteMs: Type.Optional(Type.Integer({ minimum: 0, description: 'TTS: ms from the call to the first audio (default: latencyMs)' })),
  realTimeFactor: Type.Optional(Type.Number({
    exclusiveMinimum: 0,
    description: 'TTS: audio is produced this many times faster than it plays, in chunks of 100 ms of sound (5: one second of audio every 200 ms; default: all at once)',
  })),
}, 'Simulated provider: its latency profile (streamed replies and speech); absent keys are instant');

export const UpstreamKinds = ['conversation', 'stt', 'tts', 'translation', 'pronunciation'] as const;
export type UpstreamKind = (typeof UpstreamKinds)[number];

export const UpstreamSchema = Obj({
  provider: Type.Union([Type.Literal('simulated'), Type.Literal('openai')], {
    default: 'simulated',
    description: '"openai": the OpenAI-compatible wire format; "simulated": built in, no network, no key',
  }),
  baseUrl: Type.Optional(Type.String({ pattern: '^https?://', description: 'Base URL of the OpenAI-compatible API' })),
  apiKey: Type.Optional(Type.String({ writeOnly: true, description: 'Bearer key, or "env:NAME" to read it from the environment' })),
  model: Type.Optional(Type.String({ minLength: 1, description: 'Model name sent to the provider' })),
  voice: Type.Optional(Type.String({ minLength: 1, description: 'TTS: default voice' })),
  account: Type.Optional(Type.String({ minLength: 1, description: 'Upstream account name; upstreams naming the same account share its limits' })),
  latencyMs: Type.Optional(Type.Integer({ minimum: 0, description: "Simulated provider: added latency per call, in ms (the whole wait of stt and pronunciation; the default of simulatedTiming's first-token and first-byte waits)" })),
  simulatedTiming: Type.Optional(SimulatedTimingSchema),
  simulatedLimits: Type.Optional(
    Type.Object(
      {
        requestsPerSecond: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Token bucket refill' })),
        burst: Type.Optional(Type.Integer({ minimum: 1, description: 'Token bucket capacity (default: requestsPerSecond)' })),
        requestsPerMinute: Type.Optional(Type.Integer({ minimum: 1, description: 'Requests in any 60 s window' })),
        concurrency: Type.Optional(Type.Integer({ minimum: 1, description: 'Calls in flight' })),
      },
      { additionalProperties: false, description: "Simulated provider: the provider's own limits; over them it answers 429 with Retry-After, like a real provider" },
    ),
  ),
  limits: Type.Optional(UpstreamLimitsSchema),
}, 'One upstream provider account', { default: {} });

export const UpstreamsSchema = Obj({
  conversation: Type.Optional(UpstreamSchema),
  stt: Type.Optional(UpstreamSchema),
  tts: Type.Optional(UpstreamSchema),
  translation: Type.Optional(UpstreamSchema),
  pronunciation: Type.Optional(UpstreamSchema),
}, 'The upstream provider per kind', { default: {} });

export const LogLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const ConfigSchema = Obj({
  server: Type.Optional(ServerSchema),
  store: Type.Optional(StoreSchema),
  logLevel: Type.Optional(Type.Union(LogLevels.map((l) => Type.Literal(l)), { default: 'info', description: 'pino log level' })),
  plans: Type.Record(Type.String({ minLength: 1 }), PlanSchema, { default: {}, description: 'Plans by name' }),
  accounts: Type.Array(AccountSchema, { default: [], description: 'Customer accounts' }),
  upstreams: Type.Optional(UpstreamsSchema),
  $schema: Type.Optional(
    Type.String({ minLength: 1, description: 'The JSON Schema the file follows, for editors (docs/config.schema.json, by a relative path or URL); the gateway ignores it' }),
  ),
});

type Required<T> = { -readonly [K in keyof T]-?: T[K] };
export type ServerConfig = Static<typeof ServerSchema>;
export type StoreConfig = Static<typeof StoreSchema>;
export type PlanConfig = Omit<Static<typeof PlanSchema>, 'requestsPerMinute'> & {
  requestsPerMinute: Static<typeof RequestsPerMinuteSchema>;
};
export type KeyConfig = Static<typeof KeySchema>;
export type AccountConfig = Static<typeof AccountSchema>;
export type UpstreamLimits = Static<typeof UpstreamLimitsSchema>;
export type UpstreamConfig = Static<typeof UpstreamSchema> & { limits: UpstreamLimits };
export type LogLevel = (typeof LogLevels)[number];

/** The validated, defaulted and frozen configuration the app runs on. */
export interface Config {
  readonly server: ServerConfig;
  readonly store: StoreConfig;
  readonly logLevel: LogLevel;
  readonly plans: Readonly<Record<string, PlanConfig>>;
  readonly accounts: readonly AccountConfig[];
  readonly upstreams: Readonly<Required<Record<UpstreamKind, UpstreamConfig>>>;
}

export type RawConfig = Static<typeof ConfigSchema>;
export type { TSchema };

/** Where the published JSON Schema of the configuration lives, relative to the repository. */
export const CONFIG_SCHEMA_FILE = 'docs/config.schema.json';

/**
 * The configuration's JSON Schema for editors and other tools (docs/config.schema.json, CONTRACT
 * §9): the same schema the loader validates with, as plain JSON (draft 07, what VS Code and the
 * YAML language server read), except that a key with a `default` is not `required`, since the
 * loader fills it before validating.
 */
export function configJsonSchema(): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(ConfigSchema)) as Record<string, unknown>;
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (typeof node !== 'object' || node === null) return;
    const obj = node as Record<string, unknown>;
    const properties = obj.properties as Record<string, Record<string, unknown>> | undefined;
    if (properties && Array.isArray(obj.required)) {
      const required = (obj.required as string[]).filter((key) => !('default' in (properties[key] ?? {})));
      if (required.length > 0) obj.required = required;
      else delete obj.required;
    }
    Object.values(obj).forEach(visit);
  };
  visit(plain);
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'Parley gateway configuration',
    description: 'PARLEY_CONFIG (JSON, or YAML for .yaml/.yml). Generated from src/config/schema.ts by scripts/gen-schemas.ts; see docs/configuration.md.',
    ...plain,
  };
}
