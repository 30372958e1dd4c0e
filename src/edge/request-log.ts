/**
 * How an HTTP request is named and logged (CONTRACT §9 "Logs"):
 *
 * - its id is the caller's `X-Request-Id` when that is a plausible id (1-128 characters of
 *   letters, digits and `-_.:+/=`, which covers UUIDs, ULIDs, base64 and the ids load balancers
 *   and tracing proxies add), else a fresh UUID; the answer echoes it in `X-Request-Id`, so a
 *   client, a proxy and the gateway's log line can be matched;
 * - the probes (`/healthz`, `/readyz`, `/metrics`), which an orchestrator and Prometheus call every
 *   few seconds, log their access lines at debug, not info, so they do not drown the log.
 *
 * The access lines themselves are fastify's ("incoming request", "request completed"): only their
 * level changes, through fastify's `LogController` (its documented extension point, fastify 5.12).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';

/** The header a request id is read from and echoed in. */
export const REQUEST_ID_HEADER = 'x-request-id';

const VALID_REQUEST_ID = /^[A-Za-z0-9._:+/=-]{1,128}$/;

/** Routes whose access lines are logged at debug. */
export const PROBE_ROUTES: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * fastify's `genReqId`: the caller's `X-Request-Id` when valid, else a fresh UUID. An invalid one
 * (too long, a control character, a quote that would break a log query) is ignored, not echoed.
 */
export function requestIdOf(req: IncomingMessage): string {
  const header = req.headers[REQUEST_ID_HEADER];
  const given = Array.isArray(header) ? header[0] : header;
  return given !== undefined && VALID_REQUEST_ID.test(given) ? given : randomUUID();
}

function isProbe(request: FastifyRequest): boolean {
  const route = request.routeOptions.url;
  return route !== undefined && PROBE_ROUTES.has(route);
}

/** fastify's access lines, at debug for the probes and as fastify writes them for the rest. */
export class AccessLog extends LogController {
  override incomingRequest(request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    if (!isProbe(request)) return super.incomingRequest(request, reply, metadata);
    if (!this.isLogDisabled(request)) request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    if (error || !isProbe(request)) return super.requestCompleted(error, request, reply, metadata);
    if (!this.isLogDisabled(request)) reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}
