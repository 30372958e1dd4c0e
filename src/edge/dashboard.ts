/**
 * The operator live view (`server.dashboard`): the page at `GET /dashboard`, and its data behind an
 * API key (`Authorization: Bearer`, the same guard and `rest` quota as `/v1/*`):
 *
 * - `GET /dashboard/events`: server-sent events, one `figures` event a second with every replica's
 *   figures summed (`ClusterFigures`), the first at once;
 * - `GET /dashboard/stats`: the same figures once, as JSON.
 *
 * The figures are aggregate (counts and rates per replica and upstream; no account, key, session or
 * learner ids), so any account's key may read them.
 */
import { randomBytes } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { ClusterFigures, LiveTelemetry } from '../telemetry/live.js';
import { dashboardPage } from './dashboard-page.js';
import type { Gateway } from './gateway.js';
import { API_KEY_SECURITY, RateLimitHeaders, RetryAfterHeader, apiKeyErrors, errorResponse, limitedJson, textResponse } from './api-schemas.js';
import { setConcurrencyRefusal } from './rate-limit-headers.js';
import { restAuthenticator, sendError } from './rest.js';

/** The figures (`ClusterFigures`) are an operator's view that grows with the gateway: documented open. */
const FIGURES = Type.Object({}, { additionalProperties: true });

/** A stream whose reader stopped reading is dropped past this many unsent bytes. */
const MAX_STREAM_BUFFER_BYTES = 256 * 1024;

function sseEvent(figures: ClusterFigures): string {
  return `event: figures\ndata: ${JSON.stringify(figures)}\n\n`;
}

export function registerDashboard(app: FastifyInstance, gateway: Gateway, live: LiveTelemetry): void {
  const authenticate = restAuthenticator(gateway);
  /** Open streams and how to stop feeding each. */
  const streams = new Map<ServerResponse, () => void>();
  /**
   * Open streams per account: each costs a socket and ~1 KB a second, so one account's key must not
   * take them all and leave other accounts with 503 (D11).
   */
  const perAccount = new Map<string, number>();
  let open = 0;
  const { dashboardStreams, dashboardStreamsPerAccount } = gateway.config.server;

  app.get('/dashboard', { schema: { summary: 'The operator live view (HTML)', tags: ['dashboard'], response: { 200: textResponse('The page; its data comes from /dashboard/events with an API key', 'text/html') } } }, async (_req, reply) => {
    const nonce = randomBytes(16).toString('base64');
    reply.header('Content-Type', 'text/html; charset=utf-8');
    reply.header('Cache-Control', 'no-store');
    reply.header('Referrer-Policy', 'no-referrer');
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header(
      'Content-Security-Policy',
      `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    );
    return reply.send(dashboardPage(nonce));
  });

  app.get(
    '/dashboard/stats',
    {
      preHandler: authenticate,
      schema: {
        summary: "Every replica's live figures, summed, once",
        tags: ['dashboard'],
        security: API_KEY_SECURITY,
        response: { 200: limitedJson('The figures (docs/operations.md "The dashboard")', FIGURES), ...apiKeyErrors() },
      },
    },
    async (_req, reply) => {
      reply.header('Cache-Control', 'no-store');
      return reply.send(await live.cluster());
    },
  );

  app.get(
    '/dashboard/events',
    {
      preHandler: authenticate,
      schema: {
        summary: 'The live figures as server-sent events',
        description: 'One `figures` event a second (the JSON of /dashboard/stats), the first at once.',
        tags: ['dashboard'],
        security: API_KEY_SECURITY,
        response: {
          200: textResponse('An event stream that does not end', 'text/event-stream', RateLimitHeaders),
          ...apiKeyErrors(),
          429: errorResponse(
            "Over the key's rest quota, too many failed authentications, or past server.dashboardStreamsPerAccount open streams (its own RateLimit item, t = Retry-After)",
            { ...RateLimitHeaders, 'Retry-After': RetryAfterHeader },
          ),
          503: errorResponse('Past server.dashboardStreams open streams on this replica (`server_full`)', { ...RateLimitHeaders, 'Retry-After': RetryAfterHeader }),
        },
      },
    },
    async (req, reply) => {
      const account = req.principal!.account.id;
      if ((perAccount.get(account) ?? 0) >= dashboardStreamsPerAccount) {
        // This 429 is the stream cap's, not the rest quota's: its RateLimit item says so (t = Retry-After).
        setConcurrencyRefusal(reply, 'dashboard-streams', dashboardStreamsPerAccount, 5);
        return sendError(reply, 'rate_limited', `at most ${dashboardStreamsPerAccount} dashboard streams per account on a replica`, { retry_after: 5 });
      }
      if (open >= dashboardStreams) {
        reply.header('Retry-After', 5);
        return sendError(reply, 'server_full', `at most ${dashboardStreams} dashboard streams per replica`, { retry_after: 5 });
      }
      // Counted before the first await, so streams opened together cannot all pass the checks.
      perAccount.set(account, (perAccount.get(account) ?? 0) + 1);
      open++;
      let counted = true;
      const uncount = (): void => {
        if (!counted) return;
        counted = false;
        open--;
        const n = (perAccount.get(account) ?? 1) - 1;
        if (n > 0) perAccount.set(account, n);
        else perAccount.delete(account);
      };
      let first: ClusterFigures | undefined;
      try {
        first = await live.cluster();
      } catch {
        first = undefined;
      }
      if (req.raw.destroyed) {
        uncount();
        return;
      }
      // The rate-limit headers set by the guard go out with the stream's head.
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) headers[k] = String(v);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        ...headers,
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-store',
        // nginx and similar proxies buffer responses unless told not to.
        'X-Accel-Buffering': 'no',
        Connection: 'keep-alive',
      });
      res.write('retry: 2000\n\n');
      if (first) res.write(sseEvent(first));
      const stop = live.listen((figures) => {
        // Ended or gone: a write now would raise an unhandled 'error' on the response.
        if (res.writableEnded || res.destroyed) return;
        if (res.writableLength > MAX_STREAM_BUFFER_BYTES) {
          res.destroy();
          return;
        }
        res.write(sseEvent(figures));
      });
      const done = (): void => {
        stop();
        streams.delete(res);
        uncount();
      };
      streams.set(res, done);
      req.raw.on('close', done);
      res.on('close', done);
      req.log.debug({ streams: streams.size }, 'dashboard stream opened');
    },
  );

  // Open streams never end by themselves: end them so `close()` does not wait for them.
  app.addHook('preClose', async () => {
    for (const [res, done] of [...streams]) {
      done();
      // Destroyed, not ended: an ended stream leaves a keep-alive socket the close then waits for.
      res.destroy();
    }
  });
}
