/**
 * Builds the gateway from a configuration and injected parts (store, logger, scheduler,
 * providers), so tests run the real app on port 0 with a virtual clock (ARCHITECTURE.md).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { asyncScheduler, type SchedulerLike } from 'rxjs';
import { createAdapters } from './adapters.js';
import type { Config } from './config/schema.js';
import { registerApiDocs } from './edge/api-docs.js';
import { configSecrets } from './config/secrets.js';
import { registerDashboard } from './edge/dashboard.js';
import { registerDemo } from './edge/demo.js';
import { Gateway } from './edge/gateway.js';
import { handleProtocols, registerRealtime } from './edge/realtime.js';
import { AccessLog, requestIdOf } from './edge/request-log.js';
import { registerRest, sendError } from './edge/rest.js';
import { MemoryStore } from './store/memory.js';
import { RedisStore } from './store/redis.js';
import { ResilientStore } from './store/resilient.js';
import type { Store } from './store/store.js';
import { LiveTelemetry } from './telemetry/live.js';
import { createLogger, type Logger } from './telemetry/logger.js';
import type { Providers } from './upstream/provider.js';
import { createGovernedProviders } from './upstream/governed.js';
import { redactUrl } from './util/redact.js';

export interface AppOptions {
  readonly config: Config;
  readonly store?: Store;
  readonly logger?: Logger;
  /** Timers and the clock of every limit and session (default: RxJS asyncScheduler, i.e. Date.now). */
  readonly scheduler?: SchedulerLike;
  /** Upstream adapters to use instead of the configured ones; they still run behind the governors. */
  readonly providers?: Partial<Providers>;
  /** The replica's id (default: a fresh {@link newReplicaId}); on every log line as `replica_id`. */
  readonly replicaId?: string;
  /** Process metrics in /metrics (off in tests that build many apps). */
  readonly defaultMetrics?: boolean;
}

export interface ParleyApp {
  readonly fastify: FastifyInstance;
  readonly gateway: Gateway;
  /** Listens on `server.host`/`server.port` (or the given port; 0 picks one). */
  listen(port?: number, host?: string): Promise<{ port: number; url: string }>;
  /** SIGTERM behaviour: stop accepting, finish or hand off sessions, close with 1012. */
  drain(): Promise<void>;
  close(): Promise<void>;
}

interface AjvError {
  readonly instancePath: string;
  readonly keyword: string;
  readonly message?: string;
  readonly params: Record<string, unknown>;
}

/** One line naming the field and what was wrong (STYLE.md §7), e.g. `body: unknown field "colour"`. */
export function formatValidation(errors: readonly AjvError[], dataVar: string): string {
  const e = errors[0];
  if (!e) return `${dataVar} is invalid`;
  const field = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const where = field ? `"${field}"` : dataVar;
  switch (e.keyword) {
    case 'additionalProperties':
      return `${dataVar}: unknown field "${field ? `${field}.` : ''}${String(e.params.additionalProperty)}"`;
    case 'required':
      return `${dataVar}: "${field ? `${field}.` : ''}${String(e.params.missingProperty)}" is required`;
    default:
      return `${dataVar}: ${where} ${e.message ?? 'is invalid'}`;
  }
}

/** The hard frame ceiling of the WebSocket layer; frames up to it get the contract's 1009 path. */
export function maxPayloadBytes(config: Config): number {
  if (config.server.maxPayloadBytes !== undefined) return config.server.maxPayloadBytes;
  const largest = Math.max(65536, ...Object.values(config.plans).map((p) => p.maxFrameBytes));
  return largest * 4;
}

/**
 * The configured store. Redis is wrapped in the failure policy (in-process fallback, recovery);
 * start-up waits briefly for the first connection but never fails for want of Redis: the replica
 * serves on the fallback and `/readyz` says 503 until Redis answers.
 */
async function createStore(config: Config, scheduler: SchedulerLike, logger: Logger, onFallback: (op: string) => void): Promise<Store> {
  if (config.store.kind === 'memory') return new MemoryStore({ now: () => scheduler.now() });
  const s = config.store;
  const primary = new RedisStore({
    url: s.url,
    prefix: s.prefix,
    commandTimeoutMs: s.commandTimeoutMs,
    ...(s.cluster ? { cluster: s.cluster } : {}),
    ...(s.tls
      ? { tls: { ...(s.tls.caFile !== undefined ? { ca: readFileSync(s.tls.caFile) } : {}), ...(s.tls.rejectUnauthorized !== undefined ? { rejectUnauthorized: s.tls.rejectUnauthorized } : {}) } }
      : {}),
  });
  const store = new ResilientStore({ primary, expectedReplicas: s.expectedReplicas, logger, onFallback });
  const connected = await Promise.race([
    primary.ready().then(() => true, () => false),
    new Promise<boolean>((r) => setTimeout(() => r(false), 3000).unref()),
  ]);
  if (!connected) logger.warn({ redis: s.cluster ? s.cluster.map(redactUrl) : redactUrl(s.url) }, 'redis not reachable at start; serving on in-process limits until it is');
  return store;
}

/** A replica id: `replica_` and 8 hex digits, fresh at every start. */
export function newReplicaId(): string {
  return `replica_${randomUUID().slice(0, 8)}`;
}

/**
 * The app's logger with the replica id on every line: a logger made by `createLogger({replicaId})`
 * already has it in its `base`; any other gets it bound as a child's field.
 */
function withReplicaId(logger: Logger, replicaId: string): Logger {
  return logger.bindings().replica_id === undefined ? logger.child({ replica_id: replicaId }) : logger;
}

export async function buildApp(opts: AppOptions): Promise<ParleyApp> {
  const config = opts.config;
  const scheduler = opts.scheduler ?? asyncScheduler;
  const replicaId = opts.replicaId ?? newReplicaId();
  const logger = withReplicaId(opts.logger ?? createLogger({ level: config.logLevel, replicaId, secrets: configSecrets(config) }), replicaId);
  let countFallback: (op: string) => void = () => undefined;
  const store = opts.store ?? (await createStore(config, scheduler, logger, (op) => countFallback(op)));
  let upstreamHooks: Parameters<typeof createGovernedProviders>[0]['hooks'];
  const upstreams = createGovernedProviders({
    config,
    store,
    scheduler,
    logger,
    adapters: { ...createAdapters(config), ...opts.providers },
    hooks: (name) => upstreamHooks!(name),
  });
  const gateway = new Gateway({ config, store, logger, scheduler, providers: upstreams.providers, replicaId, defaultMetrics: opts.defaultMetrics });
  upstreamHooks = (name) => gateway.metrics.upstreamHooks(name);
  countFallback = (op) => gateway.metrics.storeFallback(op);
  if (store instanceof ResilientStore) store.onRecovered(() => gateway.reregister());
  gateway.metrics.watchUpstreams(upstreams.governors);
  const live = new LiveTelemetry(gateway, upstreams.governors, config);

  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // X-Request-Id honoured when valid, else a fresh id; probes' access lines at debug (edge/request-log.ts).
    genReqId: requestIdOf,
    logController: new AccessLog(),
    trustProxy: config.server.trustProxy,
    bodyLimit: 64 * 1024,
    // A request (an upgrade included) whose headers do not arrive within headersTimeoutSeconds gets
    // 408 and loses its socket: slowloris cannot hold file descriptors (20,000 a process here) for
    // Node's default 60 s, checked only every 30 s (fuzz finding F4).
    http: {
      headersTimeout: config.server.headersTimeoutSeconds * 1000,
      connectionsCheckingInterval: Math.min(30_000, Math.max(250, (config.server.headersTimeoutSeconds * 1000) / 4)),
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    schemaErrorFormatter: (errors, dataVar) => new Error(formatValidation(errors, dataVar)),
  });

  // Echoed on every answer, errors and 404s included (onRequest runs before any of them is sent).
  app.addHook('onRequest', (req, reply, done) => {
    reply.header('X-Request-Id', req.id);
    done();
  });

  app.setErrorHandler((err: Error & { validation?: unknown; validationContext?: string; statusCode?: number; code?: string }, req, reply) => {
    if (err.validation) {
      return sendError(reply, 'invalid_request', err.message);
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      // Fastify's own client errors: bad JSON, wrong content type, body too large.
      return sendError(reply, 'invalid_request', err.message);
    }
    req.log.error({ err }, 'request failed');
    return sendError(reply, 'internal_error');
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 'not_found', `no route ${req.method} ${req.url.split('?')[0]}`));

  // Before any route: @fastify/swagger collects the routes as they are added (GET /openapi.json).
  await registerApiDocs(app);
  await app.register(websocket, {
    options: {
      maxPayload: maxPayloadBytes(config),
      handleProtocols,
      // UTF-8 is checked by the connection so invalid text gets an `error` event, not a bare 1007.
      skipUTF8Validation: true,
      perMessageDeflate: false,
      clientTracking: false,
    },
    // Our own drain closes sessions with 1012; fastify's default would close them with 1001 first.
    preClose: async () => undefined,
  });
  registerRest(app, gateway);
  registerRealtime(app, gateway);
  if (config.server.demo) registerDemo(app, gateway);
  if (config.server.dashboard) registerDashboard(app, gateway, live);
  gateway.start();
  live.start();

  let closed = false;
  return {
    fastify: app,
    gateway,
    async listen(port = config.server.port, host = config.server.host) {
      await app.listen({ port, host });
      const addr = app.server.address();
      const actual = typeof addr === 'object' && addr ? addr.port : port;
      return { port: actual, url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${actual}` };
    },
    async drain() {
      await gateway.drain();
    },
    async close() {
      if (closed) return;
      closed = true;
      live.stop();
      gateway.metrics.close();
      gateway.stop();
      upstreams.close();
      await app.close();
      await store.close();
    },
  };
}
