/**
 * A simulated upstream HTTP server speaking the OpenAI-compatible wire format (CONTRACT.md §3, §6),
 * with answers from the built-in simulated providers (`index.ts`, routes in `server-routes.ts`).
 * It enforces its own limits the way a real provider account does (`server-limits.ts`), answers on
 * a latency profile, streams, and counts what it saw, so the gateway's upstream governor and its
 * streaming turns can be exercised and measured end to end without a network or a key:
 *
 * - `rpm`: at most that many requests in any 60 s window;
 * - `rps` + `burst`: a token bucket (`burst` defaults to `rps` rounded up);
 * - `concurrency`: requests in flight (a stream holds its slot until its body ends);
 * - `tokensPerMinute`: prompt + completion tokens of the chat answers' usage, counted at each
 *   answer's end; a chat request is refused while the last 60 s have reached it;
 * - over any of them: `429` with `Retry-After` (whole seconds, rounded up, at least 1),
 *   `retry-after-ms` (exact) and `{"error": {"message", "type": "rate_limit", "code"}}`;
 * - OpenAI's `x-ratelimit-{limit,remaining,reset}-requests` (with `rpm`) on every answer and
 *   `-tokens` (with `tokensPerMinute`) on chat answers, resets written as durations (`1s`, `6m0s`,
 *   `350ms`);
 * - `apiKey`: a missing or wrong `Authorization: Bearer` gets `401`;
 * - `failRate`: that fraction of admitted requests fails with `503` and `Retry-After: 1`;
 * - timing ({@link SimulatedTiming}): `latencyMs` before every answer, and for chat
 *   `firstTokenMs` + `tokensPerSecond`, for speech `firstByteMs` + `realTimeFactor` (the slot
 *   stays taken meanwhile). A client that closes the connection stops its answer at once and is
 *   counted as `aborted`.
 *
 * `GET /stats` answers the counters ({@link SimUpstreamStats}), `GET /stats/tokens` the tokens
 * ({@link TokenCounts}), `POST /stats/reset` zeroes both (the limiters keep their state, as a real
 * account's would). Routes answer with or without a `/v1` prefix.
 *
 * Run it standalone with `npm run upstream:sim -- --port 9000 --rps 5 --concurrency 2`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UpstreamError } from '../upstream/provider.js';
import { BadRequest, readBody } from './http-body.js';
import { createSimulatedProviders } from './index.js';
import { AccountLimits, type TokenCounts } from './server-limits.js';
import { makeRoutes, type Answer, type BodyOut, type StreamedAnswer, type WholeAnswer } from './server-routes.js';
import { orAbort, type SimulatedTiming } from './timing.js';

export type { TokenCounts } from './server-limits.js';

export interface SimUpstreamOptions {
  /** TCP port (0 or absent: any free port). */
  port?: number;
  /** Interface to bind (default 127.0.0.1). */
  host?: string;
  /** Token bucket refill, requests per second. */
  rps?: number;
  /** Token bucket capacity (default: `rps` rounded up). */
  burst?: number;
  /** Requests in any 60 s window. */
  rpm?: number;
  /** Requests in flight. */
  concurrency?: number;
  /** Chat tokens (prompt + completion, from the usage reported) in any 60 s window. */
  tokensPerMinute?: number;
  /** Added latency per answered request, in ms (default 0); the default of the two below. */
  latencyMs?: number;
  /** Chat: ms to the first token (default `latencyMs`). */
  firstTokenMs?: number;
  /** Chat: tokens per second after the first (default: all at once). */
  tokensPerSecond?: number;
  /** Speech: ms to the first audio (default `latencyMs`). */
  firstByteMs?: number;
  /** Speech: audio made this many times faster than real time, in 100 ms chunks (default: all at once). */
  realTimeFactor?: number;
  /** When set, requests must carry `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Fraction (0..1) of admitted requests answered with 503 (default 0). */
  failRate?: number;
  /** Source of randomness for `failRate` (default Math.random). */
  random?: () => number;
  /** Monotonic clock in ms for the limiters (default performance.now). */
  now?: () => number;
  /** Largest request body, in bytes (default 32 MiB); larger gets 413. */
  maxBodyBytes?: number;
}

export interface SimUpstreamStats {
  /** API requests received (stats routes and unknown paths excluded). */
  requests: number;
  /** Answered with 2xx. */
  ok: number;
  /** Refused with 429 (rate, burst, rpm, tokens or concurrency). */
  rejected429: number;
  /** Refused with 401. */
  unauthorized: number;
  /** Failed on purpose with 503 (`failRate`). */
  failed: number;
  /** Answered with another 4xx/5xx (bad body, bad audio, too large). */
  errors: number;
  /** The client closed the connection before the answer was complete (a cancel reaching the upstream). */
  aborted: number;
  inFlight: number;
  maxInFlight: number;
}

export interface SimUpstream {
  /** Base URL for the adapter's `baseUrl`, e.g. `http://127.0.0.1:9000/v1`. */
  readonly url: string;
  readonly port: number;
  stats(): SimUpstreamStats;
  /** Chat tokens counted (usage reported), and the most counted within one 60 s window. */
  tokens(): TokenCounts;
  close(): Promise<void>;
}

const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024;

const isStreamed = (a: Answer): a is StreamedAnswer => 'stream' in a;

/** Starts the simulated upstream; resolves once it listens. */
export async function startSimUpstream(opts: SimUpstreamOptions = {}): Promise<SimUpstream> {
  const o = validate(opts);
  const now = opts.now ?? (() => performance.now());
  const random = opts.random ?? Math.random;
  const timing: SimulatedTiming = {
    latencyMs: o.latencyMs,
    firstTokenMs: o.firstTokenMs,
    tokensPerSecond: o.tokensPerSecond,
    firstByteMs: o.firstByteMs,
    realTimeFactor: o.realTimeFactor,
  };
  const routes = makeRoutes(createSimulatedProviders(timing), timing);
  const limits = new AccountLimits(o, now());

  const counters: SimUpstreamStats = { requests: 0, ok: 0, rejected429: 0, unauthorized: 0, failed: 0, errors: 0, aborted: 0, inFlight: 0, maxInFlight: 0 };
  const stats = (): SimUpstreamStats => ({ ...counters });

  const send = (res: ServerResponse, answer: WholeAnswer, headers: Record<string, string> = {}): void => {
    if (res.destroyed || res.writableEnded) return;
    const isBuffer = Buffer.isBuffer(answer.body);
    const payload = isBuffer ? (answer.body as Buffer) : Buffer.from(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
    res.writeHead(answer.status, {
      ...headers,
      'content-type': answer.contentType ?? (isBuffer ? 'application/octet-stream' : typeof answer.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json'),
      'content-length': String(payload.length),
    });
    res.end(payload);
  };
  const error = (status: number, message: string, type: string, code: string | null = null): WholeAnswer => ({
    status,
    body: { error: { message, type, param: null, code } },
  });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!.replace(/^\/v1(?=\/)/, '');
    if (path === '/stats' && req.method === 'GET') return send(res, { status: 200, body: stats() });
    if (path === '/stats/tokens' && req.method === 'GET') return send(res, { status: 200, body: limits.tokens(now()) });
    if (path === '/stats/reset' && req.method === 'POST') {
      Object.assign(counters, { requests: 0, ok: 0, rejected429: 0, unauthorized: 0, failed: 0, errors: 0, aborted: 0, maxInFlight: counters.inFlight });
      limits.resetCounts(now());
      return send(res, { status: 200, body: stats() });
    }
    const route = routes[path];
    if (!route) return send(res, error(404, `Unknown route ${req.method ?? ''} ${path}`, 'invalid_request_error', 'unknown_url'));
    if (req.method !== 'POST') return send(res, error(405, `${path} accepts POST only`, 'invalid_request_error', 'method_not_allowed'), { allow: 'POST' });

    counters.requests++;
    if (o.apiKey !== undefined && req.headers.authorization !== `Bearer ${o.apiKey}`) {
      counters.unauthorized++;
      const why = req.headers.authorization ? 'Incorrect API key provided' : 'Missing bearer authentication in header';
      return send(res, error(401, why, 'invalid_request_error', 'invalid_api_key'));
    }

    const chat = path === '/chat/completions';
    const t = now();
    const refusal = limits.admit(t, counters.inFlight, chat, Math.max(100, o.latencyMs));
    if (refusal) {
      counters.rejected429++;
      return send(res, error(429, refusal.message, 'rate_limit', refusal.code), {
        ...limits.headers(t, chat),
        'retry-after': String(Math.max(1, Math.ceil(refusal.retryMs / 1000))),
        'retry-after-ms': String(refusal.retryMs),
      });
    }

    if (o.failRate > 0 && random() < o.failRate) {
      counters.failed++;
      return send(res, error(503, 'The server is overloaded (simulated failure)', 'server_error', 'overloaded'), { 'retry-after': '1' });
    }

    counters.inFlight++;
    if (counters.inFlight > counters.maxInFlight) counters.maxInFlight = counters.inFlight;
    // A call stops counting as in flight the moment its last byte is handed to the socket, not at
    // the response's later 'close': a client that read the whole answer and starts its next call at
    // once (as a concurrency-limited gateway does) must not find the slot still taken.
    let counted = true;
    const leave = (): void => {
      if (!counted) return;
      counted = false;
      counters.inFlight--;
    };
    const ctl = new AbortController();
    res.once('close', () => {
      leave();
      if (!res.writableEnded) {
        counters.aborted++;
        ctl.abort(new Error('client closed the connection'));
      }
    });

    // The client is gone: the 'close' above may fire after the body read fails, so check the socket too.
    const gone = (): boolean => ctl.signal.aborted || !res.socket || res.socket.destroyed;
    let answer: Answer;
    try {
      const body = await readBody(req, o.maxBodyBytes);
      answer = await route({ req, body, signal: ctl.signal, countTokens: (prompt, completion) => limits.countTokens(prompt, completion, now()) });
    } catch (err) {
      if (gone()) return;
      if (err instanceof BadRequest) answer = error(err.status, err.message, 'invalid_request_error');
      else if (err instanceof UpstreamError && err.status !== undefined && err.status < 500) answer = error(err.status, err.message, 'invalid_request_error');
      else answer = error(500, `internal error: ${(err as Error).message}`, 'server_error');
    }
    if (gone()) return;
    if (!isStreamed(answer)) {
      if (answer.status >= 200 && answer.status < 300) counters.ok++;
      else counters.errors++;
      leave();
      return send(res, answer, limits.headers(now(), chat));
    }

    // A streamed body: headers now, the body as it is made, the write side paced by the socket.
    res.writeHead(answer.status, { ...limits.headers(now(), chat), 'content-type': answer.contentType, 'cache-control': 'no-cache' });
    res.flushHeaders();
    const out: BodyOut = {
      write: (chunk) => res.write(chunk),
      drain: () => orAbort(new Promise<void>((resolve) => res.once('drain', resolve)), ctl.signal),
    };
    try {
      await answer.stream(out);
    } catch {
      if (gone()) return;
      // Headers are gone; all that is left is to cut the body short, as a failing upstream would.
      counters.errors++;
      res.destroy();
      return;
    }
    if (gone()) return;
    counters.ok++;
    leave();
    res.end();
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      counters.errors++;
      if (!res.headersSent) send(res, error(500, `internal error: ${(err as Error).message}`, 'server_error'));
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 10_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port, address } = server.address() as AddressInfo;
  const shown = address === '0.0.0.0' || address === '::' ? '127.0.0.1' : address.includes(':') ? `[${address}]` : address;

  return {
    url: `http://${shown}:${port}/v1`,
    port,
    stats,
    tokens: () => limits.tokens(now()),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

interface Resolved {
  port: number;
  host: string;
  rps: number | undefined;
  burst: number | undefined;
  rpm: number | undefined;
  concurrency: number | undefined;
  tokensPerMinute: number | undefined;
  latencyMs: number;
  firstTokenMs: number | undefined;
  tokensPerSecond: number | undefined;
  firstByteMs: number | undefined;
  realTimeFactor: number | undefined;
  apiKey: string | undefined;
  failRate: number;
  maxBodyBytes: number;
}

/** Checks the options, naming the bad one. */
function validate(opts: SimUpstreamOptions): Resolved {
  const check = (name: string, v: number | undefined, ok: (n: number) => boolean, want: string): number | undefined => {
    if (v !== undefined && !ok(v)) throw new RangeError(`startSimUpstream: ${name} must be ${want}, got ${v}`);
    return v;
  };
  const posInt = (n: number): boolean => Number.isInteger(n) && n >= 1;
  const positive = (n: number): boolean => n > 0 && Number.isFinite(n);
  const ms = (n: number): boolean => n >= 0 && Number.isFinite(n);
  const port = check('port', opts.port, (n) => Number.isInteger(n) && n >= 0 && n <= 65535, 'an integer 0-65535') ?? 0;
  const rps = check('rps', opts.rps, positive, 'a finite number > 0');
  const burst = check('burst', opts.burst, posInt, 'an integer >= 1');
  if (burst !== undefined && rps === undefined) throw new RangeError('startSimUpstream: burst needs rps');
  return {
    port,
    host: opts.host ?? '127.0.0.1',
    rps,
    burst,
    rpm: check('rpm', opts.rpm, posInt, 'an integer >= 1'),
    concurrency: check('concurrency', opts.concurrency, posInt, 'an integer >= 1'),
    tokensPerMinute: check('tokensPerMinute', opts.tokensPerMinute, posInt, 'an integer >= 1'),
    latencyMs: check('latencyMs', opts.latencyMs, ms, 'a finite number >= 0') ?? 0,
    firstTokenMs: check('firstTokenMs', opts.firstTokenMs, ms, 'a finite number >= 0'),
    tokensPerSecond: check('tokensPerSecond', opts.tokensPerSecond, positive, 'a finite number > 0'),
    firstByteMs: check('firstByteMs', opts.firstByteMs, ms, 'a finite number >= 0'),
    realTimeFactor: check('realTimeFactor', opts.realTimeFactor, positive, 'a finite number > 0'),
    apiKey: opts.apiKey,
    failRate: check('failRate', opts.failRate, (n) => n >= 0 && n <= 1, 'between 0 and 1') ?? 0,
    maxBodyBytes: check('maxBodyBytes', opts.maxBodyBytes, posInt, 'an integer >= 1') ?? DEFAULT_MAX_BODY_BYTES,
  };
}
