/**
 * pino, with every place a secret can appear redacted (API keys, tokens, resume tokens, the
 * subprotocol header that carries a token, `?token=` in URLs). Tests pass a `destination` sink and
 * assert on the fields.
 */
import { pino, type Logger, type DestinationStream, type LevelWithSilent } from 'pino';

export type { Logger };

/** Paths pino censors in every log line (fast-redact syntax). */
export const redactPaths = [
  'secret',
  'token',
  'apiKey',
  'resume_token',
  'resumeToken',
  'authorization',
  '*.secret',
  '*.token',
  '*.apiKey',
  '*.resume_token',
  '*.resumeToken',
  '*.authorization',
  'req.headers.authorization',
  'req.headers["sec-websocket-protocol"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["sec-websocket-protocol"]',
];

const TOKEN_IN_URL = /([?&](?:token|key|api_key|access_token)=)[^&#]*/gi;

/** Removes credentials from a URL's query string before it is logged. */
export function redactUrl(url: string | undefined): string | undefined {
  return url === undefined ? undefined : url.replace(TOKEN_IN_URL, '$1[REDACTED]');
}

export interface LoggerOptions {
  readonly level?: LevelWithSilent;
  readonly destination?: DestinationStream;
  readonly pretty?: boolean;
  /** The replica's id, written as `replica_id` on every line (pino `base`), so lines from several replicas can be told apart. */
  readonly replicaId?: string;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const options = {
    level: opts.level ?? 'info',
    base: { service: 'parley', ...(opts.replicaId !== undefined ? { replica_id: opts.replicaId } : {}) },
    redact: { paths: redactPaths, censor: '[REDACTED]' },
    serializers: {
      req(req: { method?: string; url?: string; ip?: string; socket?: { remoteAddress?: string } }) {
        return { method: req.method, url: redactUrl(req.url), remoteAddress: req.ip ?? req.socket?.remoteAddress };
      },
      err: pino.stdSerializers.err,
    },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
