/**
 * The REST API (CONTRACT.md §4): API-key auth, the `rest` quota per key with rate-limit headers on
 * every answer, tokens, usage, sessions, health and metrics. Errors are always
 * `{"error": {"code", "message", ...}}`.
 */
import { randomUUID } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { accountLimits, connectionLeases, requestLimit } from '../limits/account-limits.js';
import { ParleyError, ErrorCodes, type ErrorCode } from '../protocol/codes.js';
import type { Principal } from '../identity/principal.js';
import { bearer, newToken, tokenKey } from './auth.js';
import type { Gateway } from './gateway.js';
import { API_KEY_SECURITY, OPTIONAL_BODY, RateLimitHeaders, RequestIdHeader, TokenResponse, apiKeyErrors, errorResponse, limitedJson, textResponse } from './api-schemas.js';
import { setRateLimitHeaders, setRateLimitRefusal } from './rate-limit-headers.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

const TokenBody = Type.Object(
  {
    learner_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: "Your app's id for the learner; shown in GET /v1/sessions" })),
    ttl_seconds: Type.Optional(Type.Integer({ minimum: 10, maximum: 600, default: 60, description: 'Seconds the token stays valid for opening its one connection' })),
  },
  { additionalProperties: false },
);

const LimitStateBody = Type.Object(
  {
    name: Type.String({ description: 'e.g. key.rest, account.conversation.turn, account.audio_minutes, account.connections' }),
    limit: Type.Number(),
    remaining: Type.Number(),
    reset_seconds: Type.Integer({ minimum: 0, description: 'Seconds until the limit is fully reset' }),
  },
  { additionalProperties: false },
);

const UsageBody = Type.Object(
  {
    account_id: Type.String(),
    requests_used: Type.Number({ description: "Calls of this key's rest quota in the current window" }),
    requests_limit: Type.Integer(),
    requests_reset: Type.String({ format: 'date-time' }),
    connections_used: Type.Integer({ description: "The account's open WebSocket connections, on every replica" }),
    connections_limit: Type.Integer(),
    daily_minutes_used: Type.Number({ description: 'Committed input audio today (UTC), fractional minutes' }),
    daily_minutes_limit: Type.Number(),
    limits: Type.Array(LimitStateBody),
  },
  { additionalProperties: false },
);

const SessionsBody = Type.Object(
  {
    sessions: Type.Array(
      Type.Object(
        {
          session_id: Type.String(),
          learner_id: Type.Union([Type.String(), Type.Null()]),
          key_id: Type.String(),
          language: Type.String(),
          connected: Type.Boolean({ description: 'false while waiting for a resume' }),
          replica_id: Type.String(),
          created_at: Type.String({ format: 'date-time' }),
          expires_at: Type.String({ format: 'date-time' }),
          turns: Type.Integer({ minimum: 0 }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

const SessionParams = Type.Object({ id: Type.String({ minLength: 1, description: 'A session_id' }) });

const Health = Type.Object({ status: Type.Literal('ok') }, { additionalProperties: false });
const Ready = Type.Object({ status: Type.Literal('ready'), store: Type.Union([Type.Literal('memory'), Type.Literal('redis')]) }, { additionalProperties: false });
const NotReady = Type.Object(
  { status: Type.Union([Type.Literal('draining'), Type.Literal('store_unreachable')]) },
  { additionalProperties: false, description: 'Draining (SIGTERM) or the store unreachable: take the replica out of the load balancer' },
);

export function sendError(reply: FastifyReply, code: ErrorCode, message?: string, extra: Record<string, unknown> = {}): FastifyReply {
  const status = (ErrorCodes[code] as { httpStatus?: number }).httpStatus ?? 500;
  return reply.code(status).send({ error: { code, message: message ?? ErrorCodes[code].message, ...extra } });
}

/**
 * The REST guard: API key, then the per-key `rest` quota; both answer with the contract's error
 * body, and every answer past the key check carries the quota's rate-limit headers (a 401 has no
 * key, hence no quota to report). Used as an `onRequest`/`preHandler` hook by `/v1/*` and the
 * dashboard's data endpoints.
 */
export function restAuthenticator(gateway: Gateway): (req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  // Async hooks that answer early must return the reply, or fastify runs the handler as well.
  return async function authenticate(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    if (req.principal) return undefined; // already checked by an outer hook (a /v1 404 runs both)
    const now = gateway.scheduler.now();
    const blockedMs = gateway.authFailures.retryAfterMs(req.ip, now);
    if (blockedMs > 0) {
      const retryAfter = Math.ceil(blockedMs / 1000);
      reply.header('Retry-After', retryAfter);
      await sendError(reply, 'rate_limited', `too many failed authentications from this address; retry after ${retryAfter} s`, { retry_after: retryAfter });
      return reply;
    }
    const secret = bearer(req.headers.authorization);
    const principal = secret ? gateway.keyRing.authenticate(secret) : undefined;
    if (!principal) {
      gateway.authFailures.fail(req.ip, now);
      await sendError(reply, 'unauthorized', secret ? 'invalid API key' : 'missing Authorization: Bearer <api key>');
      return reply;
    }
    req.principal = principal;
    const limit = requestLimit(principal.plan, principal.account.id, 'rest', principal.key.id);
    // The decision's id is the server's own: `req.id` may come from the client's X-Request-Id.
    const decision = await gateway.store.consume([limit], `rest:${gateway.replicaId}:${randomUUID()}`);
    gateway.metrics.decision('key.rest', decision.allowed);
    const state = decision.states[0];
    const nowMs = gateway.scheduler.now();
    if (!decision.allowed) {
      const retryAfter = setRateLimitRefusal(reply, limit, state, nowMs, decision.retryAfterMs);
      await sendError(reply, 'rate_limited', `rest rate limit of ${principal.plan.requestsPerMinute.rest} requests per minute exceeded`, { retry_after: retryAfter });
      return reply;
    }
    if (state) setRateLimitHeaders(reply, limit, state, nowMs);
    return undefined;
  };
}

export function registerRest(app: FastifyInstance, gateway: Gateway): void {
  const now = (): number => gateway.scheduler.now();
  const authenticate = restAuthenticator(gateway);

  app.addHook('onResponse', async (req, reply) => {
    // The route pattern, not the URL, keeps the label bounded (`/v1/sessions/:id`).
    const route = req.routeOptions.url ?? 'unmatched';
    if (route !== '/v1/realtime') gateway.metrics.rest(route, reply.statusCode);
  });

  const api = app.withTypeProvider<TypeBoxTypeProvider>();

  api.get(
    '/healthz',
    { schema: { summary: 'Liveness', tags: ['operations'], response: { 200: { ...Health, description: 'The process serves', headers: RequestIdHeader } } } },
    async () => ({ status: 'ok' as const }),
  );

  api.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness',
        tags: ['operations'],
        response: { 200: { ...Ready, description: 'Ready for traffic', headers: RequestIdHeader }, 503: { ...NotReady, headers: RequestIdHeader } },
      },
    },
    async (_req, reply) => {
      if (gateway.isDraining) return reply.code(503).send({ status: 'draining' });
      if (!gateway.store.healthy()) return reply.code(503).send({ status: 'store_unreachable' });
      return { status: 'ready' as const, store: gateway.store.kind };
    },
  );

  api.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics',
        description: 'Text exposition format 0.0.4; docs/operations.md lists every metric.',
        tags: ['operations'],
        response: { 200: textResponse('The metrics', 'text/plain; version=0.0.4', RequestIdHeader) },
      },
    },
    async (_req, reply) => {
      reply.header('Content-Type', gateway.metrics.registry.contentType);
      return gateway.metrics.registry.metrics();
    },
  );

  // An unknown /v1 route is still a REST answer: authenticate it so it carries the key's headers
  // (and spends the quota, so probing routes is rate limited like any call).
  app.register(
    async (v1) => {
      v1.setNotFoundHandler({ preHandler: authenticate }, async (req, reply) =>
        sendError(reply, 'not_found', `no route ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}`),
      );
    },
    { prefix: '/v1' },
  );

  app.register(async (scope) => {
    const v1 = scope.withTypeProvider<TypeBoxTypeProvider>();
    v1.addHook('onRequest', authenticate);

    v1.post(
      '/v1/tokens',
      {
        schema: {
          summary: 'Mint a connection token',
          description: 'Call from your back end with an API key; give the token to the browser, which opens one WebSocket with it (see /asyncapi.json).',
          tags: ['tokens'],
          security: API_KEY_SECURITY,
          body: TokenBody,
          [OPTIONAL_BODY]: true,
          response: {
            201: limitedJson('The token', TokenResponse),
            400: errorResponse('Invalid body (`invalid_request`, naming the field)', RateLimitHeaders),
            ...apiKeyErrors(),
          },
        },
        // No body at all is the same as {}: every field is optional.
        preValidation: async (req) => {
          req.body ??= {};
        },
      },
      async (req, reply) => {
        const p = req.principal!;
        const body = req.body ?? {};
        const ttlSeconds = body.ttl_seconds ?? 60;
        const token = newToken();
        const expiresAt = now() + ttlSeconds * 1000;
        await gateway.store.putToken(tokenKey(token), { accountId: p.account.id, keyId: p.key.id, learnerId: body.learner_id, expiresAt });
        const scheme = req.protocol === 'https' ? 'wss' : 'ws';
        return reply.code(201).send({ token, expires_at: new Date(expiresAt).toISOString(), url: `${scheme}://${req.headers.host ?? req.hostname}/v1/realtime` });
      },
    );

    v1.get(
      '/v1/usage',
      { schema: { summary: "The account's usage and limits", tags: ['usage'], security: API_KEY_SECURITY, response: { 200: limitedJson('Usage', UsageBody), ...apiKeyErrors() } } },
      async (req, reply) => {
        const p = req.principal!;
        const rest = requestLimit(p.plan, p.account.id, 'rest', p.key.id);
        const [restState] = await gateway.store.peek([rest]);
        const states = await gateway.store.peek(accountLimits(p.plan, p.account.id));
        const leases = connectionLeases(p.plan, p.account.id, p.key.id);
        const connectionsUsed = await gateway.store.countLeases(leases[1]!.key);
        const audio = states.find((s) => s.name === 'account.audio_minutes')!;
        const all = [restState!, ...states, { name: 'account.connections', limit: p.plan.connectionsPerAccount, remaining: p.plan.connectionsPerAccount - connectionsUsed, resetMs: 0 }];
        return reply.send({
          account_id: p.account.id,
          requests_used: restState!.limit - restState!.remaining,
          requests_limit: restState!.limit,
          requests_reset: new Date(now() + restState!.resetMs).toISOString(),
          connections_used: connectionsUsed,
          connections_limit: p.plan.connectionsPerAccount,
          daily_minutes_used: Math.round((audio.limit - audio.remaining) * 1000) / 1000,
          daily_minutes_limit: audio.limit,
          limits: all.map((s) => ({ name: s.name, limit: s.limit, remaining: Math.max(0, s.name === 'account.audio_minutes' ? Math.round(s.remaining * 1000) / 1000 : Math.floor(s.remaining)), reset_seconds: Math.ceil(s.resetMs / 1000) })),
        });
      },
    );

    v1.get(
      '/v1/sessions',
      {
        schema: {
          summary: "The account's live sessions, on every replica",
          tags: ['sessions'],
          security: API_KEY_SECURITY,
          response: { 200: limitedJson('Live sessions', SessionsBody), ...apiKeyErrors() },
        },
      },
      async (req) => {
        const p = req.principal!;
        const sessions = await gateway.store.listSessions(p.account.id);
        return {
          sessions: sessions.map((s) => ({
            session_id: s.sessionId,
            learner_id: s.learnerId ?? null,
            key_id: s.keyId,
            language: s.language,
            connected: s.connected,
            replica_id: s.replicaId,
            created_at: new Date(s.createdAt).toISOString(),
            expires_at: new Date(s.expiresAt).toISOString(),
            turns: s.counters.turns,
          })),
        };
      },
    );

    v1.delete(
      '/v1/sessions/:id',
      {
        schema: {
          summary: 'End a session',
          description: 'Closes the session with 4003 wherever it is held.',
          tags: ['sessions'],
          security: API_KEY_SECURITY,
          params: SessionParams,
          response: {
            204: { type: 'null', description: 'Ended', headers: RateLimitHeaders },
            404: errorResponse('No live session with that id for this account (`not_found`)', RateLimitHeaders),
            ...apiKeyErrors(),
          },
        },
      },
      async (req, reply) => {
        const p = req.principal!;
        const id = req.params.id;
        const local = gateway.registry.get(id);
        if (local && local.principal.account.id === p.account.id) {
          local.terminate(new ParleyError('forbidden', 'the session was ended by the operator'), 'operator');
          return reply.code(204).send();
        }
        const record = await gateway.store.loadSession(id);
        if (!record || record.accountId !== p.account.id) return sendError(reply, 'not_found', `no live session ${id.slice(0, 64)} for this account`);
        // Wherever it is held, that replica closes it with 4003; the record goes now either way.
        await gateway.store.publish({ type: 'session.delete', sessionId: id, from: gateway.replicaId });
        await gateway.store.deleteSession(id);
        return reply.code(204).send();
      },
    );
  });
}
