/**
 * `GET /v1/realtime` (CONTRACT.md §5). Admission runs as a fastify hook before the 101 (STYLE.md
 * §2): auth → origin → replica cap → connection leases. A refusal still completes the handshake and
 * is then reported with an `error` event and a close, because a browser cannot read the HTTP
 * status of a failed handshake.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyRequest, RouteShorthandOptions } from 'fastify';
import type { WebSocket } from 'ws';
import { connectionLeases } from '../limits/account-limits.js';
import { CloseCode, ParleyError, closeReason } from '../protocol/codes.js';
import { errorEvent } from '../protocol/messages.js';
import type { LeaseSpec } from '../limits/spec.js';
import { LazyRequestLogger } from '../telemetry/lazy-log.js';
import { redactUrl } from '../util/redact.js';
import type { Principal } from '../identity/principal.js';
import { bearer, hostAllowed, originAllowed, tokenKey, TOKEN_PATTERN } from './auth.js';
import { randomHex } from '../sessions/ids.js';
import { Connection } from './connection.js';
import type { Gateway } from './gateway.js';

export const SUBPROTOCOL = 'parley.v1';
const TOKEN_PROTOCOL_PREFIX = 'parley.token.';

type Admission =
  | {
      ok: true;
      principal: Principal;
      connId: string;
      leases: readonly LeaseSpec[];
      /** Hands the leases to the Connection: the socket's close no longer releases them. */
      own?: () => void;
    }
  | { ok: false; error: ParleyError };

/** A key's connection leases and their names (for the decision metrics), kept per key. */
interface KeyLeases {
  readonly leases: readonly LeaseSpec[];
  readonly names: readonly string[];
}

declare module 'fastify' {
  interface FastifyRequest {
    parleyAdmission?: Admission;
  }
}

/** The credential a handshake presents, in the contract's order of preference. */
export function presentedCredential(req: FastifyRequest): { kind: 'token' | 'key'; value: string } | undefined {
  const protocols = req.headers['sec-websocket-protocol'];
  if (typeof protocols === 'string') {
    for (const p of protocols.split(',')) {
      const name = p.trim();
      if (name.startsWith(TOKEN_PROTOCOL_PREFIX)) return { kind: 'token', value: name.slice(TOKEN_PROTOCOL_PREFIX.length) };
    }
  }
  const query = req.query as Record<string, unknown> | undefined;
  if (query && typeof query.token === 'string') return { kind: 'token', value: query.token };
  const key = bearer(req.headers.authorization);
  if (key) return { kind: 'key', value: key };
  return undefined;
}

/** Origin of this gateway as the browser sees it (for the demo account). */
export function ownOrigin(req: FastifyRequest): string {
  return `${req.protocol}://${req.headers.host ?? req.hostname}`;
}

export function registerRealtime(app: FastifyInstance, gateway: Gateway): void {
  const server = gateway.config.server;
  const demoAccount = server.demo ? (server.demoAccount ?? gateway.config.accounts[0]?.id) : undefined;

  /**
   * The connection slots of a key, made once per key and shared by its connections (each used to
   * carry its own copy of the same two specs; a kept key string is also cheaper for the store to
   * look up, see sessions/limit-specs.ts).
   */
  const leaseCache = new Map<string, Map<string, KeyLeases>>();
  function leasesOf(principal: Principal): KeyLeases {
    let byKey = leaseCache.get(principal.account.id);
    if (byKey === undefined) leaseCache.set(principal.account.id, (byKey = new Map()));
    let kept = byKey.get(principal.key.id);
    if (kept === undefined) {
      const leases = Object.freeze(connectionLeases(principal.plan, principal.account.id, principal.key.id));
      kept = { leases, names: Object.freeze(leases.map((l) => l.name)) };
      byKey.set(principal.key.id, kept);
    }
    return kept;
  }

  async function admit(req: FastifyRequest): Promise<Admission> {
    if (gateway.isDraining) return { ok: false, error: new ParleyError('server_draining', 'this replica is shutting down; connect to another') };
    const now = gateway.scheduler.now();
    // With no failures on record nothing can be blocked: the client's address (a getpeername call,
    // then cached on the socket for its whole life) is read only when there is something to match.
    const blockedMs = gateway.authFailures.size === 0 ? 0 : gateway.authFailures.retryAfterMs(req.ip, now);
    if (blockedMs > 0) {
      return {
        ok: false,
        error: new ParleyError('rate_limited', 'too many failed authentications from this address', { closeCode: CloseCode.rateLimited, retryAfterMs: blockedMs }),
      };
    }
    const cred = presentedCredential(req);
    if (!cred) {
      gateway.authFailures.fail(req.ip, now);
      return { ok: false, error: new ParleyError('unauthorized', 'no token: use the subprotocol "parley.token.<token>", ?token= or Authorization: Bearer') };
    }
    let principal: Principal | undefined;
    if (cred.kind === 'key') {
      principal = gateway.keyRing.authenticate(cred.value);
    } else if (TOKEN_PATTERN.test(cred.value)) {
      const record = await gateway.store.takeToken(tokenKey(cred.value));
      if (record) principal = gateway.keyRing.principalFor(record.accountId, record.keyId, record.learnerId);
    }
    if (!principal) {
      gateway.authFailures.fail(req.ip, now);
      return { ok: false, error: new ParleyError('unauthorized', cred.kind === 'key' ? 'invalid API key' : 'invalid, expired or already used token') };
    }
    const origin = req.headers.origin;
    // The demo page's own origin, only under a Host the operator allows (server.allowedHosts): else
    // any site could send a matching Origin and Host and pass for the demo page.
    const extra = principal.account.id === demoAccount && hostAllowed(req.headers.host, server.allowedHosts) ? ownOrigin(req) : undefined;
    if (!originAllowed(principal.account, origin, extra)) {
      return { ok: false, error: new ParleyError('forbidden', `origin ${String(origin).slice(0, 80)} is not allowed for this account`, { closeCode: CloseCode.policyViolation }) };
    }
    if (gateway.connections.size >= server.maxConnections) {
      return { ok: false, error: new ParleyError('server_full', 'this replica is at its connection limit', { retryAfterMs: 5000 }) };
    }
    const connId = `conn_${randomHex(10)}`;
    const { leases, names } = leasesOf(principal);
    const decision = await gateway.store.acquire(leases, connId, gateway.leaseMs);
    gateway.metrics.decided(names, decision);
    if (!decision.allowed) {
      const which = decision.limitName === 'key.connections' ? `connectionsPerKey (${principal.plan.connectionsPerKey})` : `connectionsPerAccount (${principal.plan.connectionsPerAccount})`;
      return { ok: false, error: new ParleyError('connection_limit', `too many connections: ${which}`, { retryAfterMs: decision.retryAfterMs }) };
    }
    return { ok: true, principal, connId, leases };
  }

  /**
   * Between admission and the handler the leases belong to no Connection. A socket reset in that
   * gap never reaches the handler (ws drops an upgrade whose socket is gone), so its close must
   * release them: without this, anyone with a key could fill an account's caps with reset upgrades
   * until the leases expired (D1).
   */
  function holdUntilOwned(req: FastifyRequest, admission: Extract<Admission, { ok: true }>): void {
    const socket = req.raw.socket;
    const release = (): void => {
      gateway.store.release(admission.leases, admission.connId).catch((err: unknown) => gateway.logger.warn({ err }, 'could not release the leases of a reset upgrade'));
    };
    if (socket.destroyed) {
      release();
      return;
    }
    socket.once('close', release);
    admission.own = () => socket.off('close', release);
  }

  app.get(
    '/v1/realtime',
    {
      websocket: true,
      logLevel: 'warn',
      // An upgrade that goes well logs nothing: no pino child per request unless a line is written.
      childLoggerFactory: LazyRequestLogger.factory as unknown as NonNullable<RouteShorthandOptions['childLoggerFactory']>,
      preValidation: async (req) => {
        try {
          const admission = await admit(req);
          if (admission.ok) holdUntilOwned(req, admission);
          req.parleyAdmission = admission;
        } catch (err) {
          req.log.error({ err, url: redactUrl(req.url) }, 'admission failed');
          req.parleyAdmission = { ok: false, error: new ParleyError('internal_error', 'could not admit the connection; try again') };
        }
      },
    },
    (socket: WebSocket, req: FastifyRequest) => {
      releaseUpgradeRequest(socket, req);
      const admission = req.parleyAdmission;
      if (admission?.ok) admission.own?.();
      if (!admission || !admission.ok) {
        const error = admission?.error ?? new ParleyError('internal_error');
        refuse(socket, error, gateway);
        return;
      }
      if (gateway.isDraining) {
        gateway.store.release(admission.leases, admission.connId).catch(() => undefined);
        refuse(socket, new ParleyError('server_draining', 'this replica is shutting down; connect to another'), gateway);
        return;
      }
      const conn = new Connection(socket, admission.principal, gateway.connectionDeps, admission.connId, admission.leases);
      gateway.add(conn);
      conn.start();
    },
  );
}

/**
 * After the upgrade nothing needs the HTTP request any more, but @fastify/websocket's socket
 * `error` listener closes over the fastify Request and Reply, and the TCP socket still points at
 * the upgrade's ServerResponse: together ~3 KB per connection (including the raw headers) kept
 * for the socket's whole life. Drop both. The socket is left with no `error` listener only until
 * the handler, in the same synchronous run, gives it the Connection's (or the refusal's) own.
 */
function releaseUpgradeRequest(socket: WebSocket, req: FastifyRequest): void {
  socket.removeAllListeners('error');
  // `_httpMessage` is node's link from a socket to its response (no public getter exists);
  // `detachSocket` is the public way to cut it.
  const tcp = req.raw.socket as (typeof req.raw.socket & { _httpMessage?: ServerResponse | null }) | null;
  const res = tcp?._httpMessage;
  if (tcp && res && typeof res.detachSocket === 'function') res.detachSocket(tcp);
}

function refuse(socket: WebSocket, error: ParleyError, gateway: Gateway): void {
  socket.on('error', ignore); // a reset while the refusal is sent must not throw
  const code = error.closeCode ?? CloseCode.internalError;
  gateway.logger.info({ code: error.code, close_code: code }, 'connection refused');
  gateway.metrics.closed(code);
  socket.send(JSON.stringify(errorEvent(error.code, error.message, { retryAfterMs: error.retryAfterMs, closeCode: code })));
  socket.close(code, closeReason(error.code));
}

const ignore = (): void => undefined;

/** ws option: answer `parley.v1` when offered (the token subprotocol is never echoed). */
export function handleProtocols(protocols: Set<string>): string | false {
  return protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false;
}
