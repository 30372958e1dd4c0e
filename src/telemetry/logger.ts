/**
 * pino, with every place a secret can reach a log line closed (CONTRACT.md §10: no API key, token,
 * resume token, upstream key or Redis password in any log line, at any level). Four layers, from
 * the most precise to the bluntest; the redaction functions are the project's one redaction
 * (src/util/redact.ts):
 * 1. `redact` paths: fields that hold a credential are censored (`[REDACTED]`); fields that hold a
 *    URL (`url`, `path`, `redis`, `baseUrl`, `store.url`, …) keep the URL without its userinfo and
 *    credential parameters; a `query` object loses the values of its credential-like keys.
 * 2. Serializers: `err` keeps an error's type, message and stack (redacted as text), code and a
 *    few scalar fields, and drops every other field: ioredis' `command` (`{name, args}`, whose
 *    args hold resume tokens and whole session records), node's `rawPacket` (the raw request,
 *    headers included), anything else a library hangs on an error. `req` logs the method, the
 *    redacted URL and the address: never headers.
 * 3. The message: every string argument of a log call (the message, printf-style arguments) is
 *    redacted as text, since libraries put URLs in messages (fastify: "Route GET:/x?token=… not
 *    found").
 * 4. With `secrets` (the configured API keys, upstream keys and Redis passwords), the finished line
 *    is searched for each of them, and for Parley's token shapes, before it is written: a secret
 *    that reached a field nobody foresaw is still replaced.
 * Tests pass a `destination` sink and assert on the fields.
 */
import { pino, type DestinationStream, type LevelWithSilent, type Logger, type LoggerOptions as PinoOptions } from 'pino';
import { REDACTED, isCredentialName, redactText, redactUrl, secretRedactor } from '../util/redact.js';

export type { Logger };

/** Fields whose value is a URL: kept, without userinfo and credential parameters. */
const URL_FIELDS = new Set(['url', 'path', 'redis', 'baseUrl', 'href', 'cluster']);
/** Fields whose value is an object of query parameters: credential-like keys lose their values. */
const QUERY_FIELDS = new Set(['query']);

/** Paths pino censors in every log line (fast-redact syntax; `*` is one level). */
export const redactPaths = [
  // Credentials by name, at the top level and one level down.
  'secret',
  '*.secret',
  'token',
  '*.token',
  'apiKey',
  '*.apiKey',
  'api_key',
  '*.api_key',
  'password',
  '*.password',
  'resume_token',
  '*.resume_token',
  'resumeToken',
  '*.resumeToken',
  'authorization',
  '*.authorization',
  'cookie',
  '*.cookie',
  // Headers, wherever a request or a response is logged whole.
  'headers.authorization',
  'headers.cookie',
  'headers["set-cookie"]',
  'headers["sec-websocket-protocol"]',
  'headers["x-api-key"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["sec-websocket-protocol"]',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  // The configuration, logged whole or in part.
  'keys[*].secret',
  'accounts[*].keys[*].secret',
  'config.accounts[*].keys[*].secret',
  'upstreams.*.apiKey',
  'config.upstreams.*.apiKey',
  'store.url',
  'store.cluster',
  'config.store.url',
  'config.store.cluster',
  // What a learner said: personal content, never needed to run the gateway (a session record's history).
  'history',
  '*.history',
  // URLs and query objects: credentials removed, the rest kept (see `censor`).
  'url',
  '*.url',
  'path',
  'redis',
  'baseUrl',
  '*.baseUrl',
  'href',
  'cluster',
  'query',
  'req.query',
];

/** pino's censor: URLs keep what is not a credential, query objects keep their harmless keys, the rest goes. */
function censor(value: unknown, path: string[]): unknown {
  const field = path[path.length - 1]!;
  if (URL_FIELDS.has(field)) {
    if (typeof value === 'string') return redactUrl(value);
    if (Array.isArray(value)) return value.map((v) => (typeof v === 'string' ? redactUrl(v) : REDACTED));
    return value === undefined || value === null ? value : REDACTED;
  }
  if (QUERY_FIELDS.has(field)) {
    if (typeof value !== 'object' || value === null) return typeof value === 'string' ? redactUrl(value) : value;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = isCredentialName(k) ? REDACTED : v;
    return out;
  }
  return REDACTED;
}

/** Scalar fields of an error worth keeping: none of them carries a command's arguments. */
const ERROR_FIELDS = ['code', 'errno', 'syscall', 'status', 'statusCode', 'address', 'port'] as const;
const MAX_ERROR_DEPTH = 3;
const MAX_NESTED_ERRORS = 10;

/**
 * pino's `err` serializer: type, message, stack, `code` and a few scalar fields of an error, all
 * text redacted, plus its `cause`, the `errors` of an AggregateError and ioredis' `previousErrors`
 * (the refusals that aborted a MULTI), each serialized the same way. Every other field is dropped:
 * ioredis' ReplyError carries `command: {name, args}`, node's parser errors carry `rawPacket`.
 * A string (a message logged in place of an error) is redacted as text.
 */
export function serializeError(err: unknown, depth = 0): unknown {
  if (typeof err === 'string') return redactText(err);
  if (typeof err !== 'object' || err === null) return err;
  const e = err as Record<string, unknown> & { message?: unknown; stack?: unknown; constructor?: { name?: unknown } };
  const type = typeof e.constructor?.name === 'string' && e.constructor.name !== 'Object' ? e.constructor.name : typeof e.name === 'string' ? e.name : 'Error';
  const out: Record<string, unknown> = { type, message: redactText(String(e.message ?? '')) };
  if (typeof e.stack === 'string') out.stack = redactText(e.stack);
  for (const field of ERROR_FIELDS) {
    const v = e[field];
    if (typeof v === 'number' || typeof v === 'boolean') out[field] = v;
    else if (typeof v === 'string') out[field] = redactText(v);
  }
  if (depth < MAX_ERROR_DEPTH) {
    if (e.cause !== undefined) out.cause = serializeError(e.cause, depth + 1);
    for (const list of ['errors', 'previousErrors'] as const) {
      const nested = e[list];
      if (Array.isArray(nested)) out[list] = nested.slice(0, MAX_NESTED_ERRORS).map((n: unknown) => serializeError(n, depth + 1));
    }
  }
  return out;
}

/** pino's `req` serializer: method, URL without credentials, address. Headers are never logged. */
function serializeRequest(req: { method?: string; url?: string; ip?: string; socket?: { remoteAddress?: string } }): Record<string, unknown> {
  return { method: req.method, url: req.url === undefined ? undefined : redactUrl(req.url), remoteAddress: req.ip ?? req.socket?.remoteAddress };
}

/** Parley's token shapes, for the line scrub (the same shapes `redactText` knows). */
const SHAPE_IN_LINE = /(?<![A-Za-z0-9])((?:pt|rt)_)[A-Za-z0-9_-]{16,}/g;

/**
 * A destination that writes each finished line with the given secrets and Parley's token shapes
 * replaced: the last line of defence, for a secret that reached a field nobody foresaw. Its cost
 * per line is in docs/operations.md "Secrets in logs".
 */
function scrubbing(destination: DestinationStream, secrets: readonly string[]): DestinationStream {
  const scrubSecrets = secretRedactor(secrets);
  const inner = destination as DestinationStream & { flush?: (cb?: (err?: Error) => void) => void };
  return {
    write(line: string) {
      inner.write(scrubSecrets(line).replace(SHAPE_IN_LINE, `$1${REDACTED}`));
    },
    // logger.flush() reaches the real destination (pino calls `flush` when the stream has one).
    ...(typeof inner.flush === 'function' ? { flush: (cb?: (err?: Error) => void) => inner.flush!(cb) } : {}),
  } as DestinationStream;
}

export interface LoggerOptions {
  readonly level?: LevelWithSilent;
  readonly destination?: DestinationStream;
  readonly pretty?: boolean;
  /**
   * Literal secrets to replace in every finished line (the configured API keys, upstream keys,
   * Redis passwords: see `configSecrets` in src/config/secrets.ts): the last line of defence.
   */
  readonly secrets?: readonly string[];
  /** The replica's id, written as `replica_id` on every line (pino `base`), so lines from several replicas can be told apart. */
  readonly replicaId?: string;
}

/** The gateway's logger: pino with the redaction above, writing JSON lines to `destination` (default stdout). */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const options: PinoOptions = {
    level: opts.level ?? 'info',
    base: { service: 'parley', ...(opts.replicaId !== undefined ? { replica_id: opts.replicaId } : {}) },
    redact: { paths: redactPaths, censor },
    serializers: {
      req: serializeRequest,
      err: serializeError,
      error: serializeError,
    },
    hooks: {
      // Every string argument of a log call is redacted as text: libraries build messages from URLs.
      logMethod(args, method) {
        for (let i = 0; i < args.length; i++) {
          const arg = args[i];
          if (typeof arg === 'string') args[i] = redactText(arg);
        }
        method.apply(this, args);
      },
    },
  };
  let destination = opts.destination;
  if (opts.secrets && opts.secrets.length > 0) destination = scrubbing(destination ?? pino.destination(1), opts.secrets);
  return destination ? pino(options, destination) : pino(options);
}
