/**
 * The demo page at `/demo/` and `POST /demo/token` (CONTRACT §4), only when `server.demo` is on.
 * Static files come from `client-demo/` (a handful of small files, read once and kept in memory).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { requestLimit } from '../limits/account-limits.js';
import { newToken, tokenKey } from './auth.js';
import type { Gateway } from './gateway.js';
import { sendError, setRateLimitHeaders } from './rest.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.wav': 'audio/wav',
};

/** Finds `client-demo/` whether running from `src/` (tsx) or `dist/src/` (built). */
export function demoRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'client-demo');
    try {
      if (statSync(candidate).isDirectory()) return candidate;
    } catch {
      /* keep looking upwards */
    }
    dir = resolve(dir, '..');
  }
  return undefined;
}

function loadFiles(root: string, prefix = ''): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const name of readdirSync(join(root, prefix))) {
    const rel = prefix ? `${prefix}/${name}` : name;
    const full = join(root, rel);
    if (statSync(full).isDirectory()) for (const [k, v] of loadFiles(root, rel)) files.set(k, v);
    else files.set(rel, readFileSync(full));
  }
  return files;
}

export function registerDemo(app: FastifyInstance, gateway: Gateway): void {
  const accountId = gateway.config.server.demoAccount ?? gateway.config.accounts[0]?.id;
  const account = accountId ? gateway.keyRing.account(accountId) : undefined;
  const root = demoRoot();
  const files = root ? loadFiles(root) : new Map<string, Buffer>();

  app.get('/demo', async (_req, reply) => reply.redirect('/demo/'));
  app.get('/demo/*', async (req, reply) => {
    const rel = (req.params as { '*': string })['*'] || 'index.html';
    const body = files.get(rel);
    if (!body) return sendError(reply, 'not_found', `no demo file ${rel.slice(0, 80)}`);
    reply.header('Content-Type', TYPES[extname(rel)] ?? 'application/octet-stream');
    reply.header('Cache-Control', 'no-cache');
    return reply.send(body);
  });

  app.post('/demo/token', async (req, reply) => {
    const key = account?.keys.find((k) => !k.disabled);
    if (!account || !key) return sendError(reply, 'forbidden', 'no demo account configured');
    const plan = gateway.keyRing.plan(account);
    // The demo endpoint needs no key, so it spends the demo key's `rest` quota.
    const limit = requestLimit(plan, account.id, 'rest', key.id);
    const decision = await gateway.store.consume([limit], `demo:${req.id}:${gateway.replicaId}`);
    if (decision.states[0]) setRateLimitHeaders(reply, decision.states[0], gateway.scheduler.now());
    if (!decision.allowed) {
      const retryAfter = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
      reply.header('Retry-After', retryAfter);
      return sendError(reply, 'rate_limited', 'demo token rate limit exceeded', { retry_after: retryAfter });
    }
    const token = newToken();
    const expiresAt = gateway.scheduler.now() + 60_000;
    await gateway.store.putToken(tokenKey(token), { accountId: account.id, keyId: key.id, learnerId: 'demo', expiresAt });
    const scheme = req.protocol === 'https' ? 'wss' : 'ws';
    return reply.code(201).send({ token, expires_at: new Date(expiresAt).toISOString(), url: `${scheme}://${req.headers.host ?? req.hostname}/v1/realtime` });
  });
}
