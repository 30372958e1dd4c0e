/**
 * The demo page at `/demo/` and `POST /demo/token` (CONTRACT §4), only when `server.demo` is on.
 * Static files come from `client-demo/` (a handful of small files, read once and kept in memory).
 * `/demo/parley-client.js` is the SDK bundle: `client-demo/dist/parley-client.js` when
 * `npm run build` (build:client) made it, otherwise built once in this process with esbuild (a dev
 * dependency, so this works for `npm start` from source and not in a production install).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { FastifyInstance, FastifyBaseLogger } from 'fastify';
import { requestLimit } from '../limits/account-limits.js';
import { hostAllowed, newToken, tokenKey } from './auth.js';
import type { Gateway } from './gateway.js';
import { RateLimitHeaders, RequestIdHeader, RetryAfterHeader, TokenResponse, errorResponse, limitedJson, textResponse } from './api-schemas.js';
import { setRateLimitHeaders, setRateLimitRefusal } from './rate-limit-headers.js';
import { sendError } from './rest.js';

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

/** The SDK bundle's URL under /demo/ and its build output under client-demo/. */
export const CLIENT_BUNDLE = 'parley-client.js';
const BUNDLE_OUTPUT = join('dist', CLIENT_BUNDLE);

interface BuildClientModule {
  buildClient(opts?: { outfile?: string; write?: boolean }): { code: string } | Promise<{ code: string }>;
}

export type BundleSource = { readonly code: Buffer; readonly from: 'file' | 'build' } | { readonly error: string };

/**
 * Finds the SDK bundle: the build output if present (read at every request, so a rebuild shows
 * without a restart), else one in-process esbuild run, whose outcome (success or failure) is kept.
 */
export function clientBundle(root: string, log: FastifyBaseLogger): () => Promise<BundleSource> {
  let built: Promise<BundleSource> | undefined;
  const script = join(dirname(root), 'scripts', 'build-client.ts');
  const buildOnce = async (): Promise<BundleSource> => {
    try {
      // A computed specifier: tsc must not pull scripts/ into the production build, and plain
      // node (start:prod) refuses .ts files, which lands in the catch below as intended.
      const mod = (await import(pathToFileURL(script).href)) as BuildClientModule;
      const { code } = await mod.buildClient({ write: false });
      log.info({ bytes: Buffer.byteLength(code) }, 'demo: built the client bundle in-process');
      return { code: Buffer.from(code), from: 'build' };
    } catch (err) {
      const error = `the demo client bundle is missing: client-demo/${BUNDLE_OUTPUT} does not exist and building it in-process failed (${(err as Error).message.split('\n')[0]}); run npm run build:client`;
      log.error(error);
      return { error };
    }
  };
  return async () => {
    try {
      return { code: await readFile(join(root, BUNDLE_OUTPUT)), from: 'file' };
    } catch {
      built ??= buildOnce();
      return built;
    }
  };
}

function loadFiles(root: string, prefix = ''): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const name of readdirSync(join(root, prefix))) {
    const rel = prefix ? `${prefix}/${name}` : name;
    // Build output is served through clientBundle(), never as a stale snapshot.
    if (rel === 'dist') continue;
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
  const bundle = root ? clientBundle(root, app.log) : undefined;

  const allowedHosts = gateway.config.server.allowedHosts;
  // The demo answers only under the hosts the operator allows: a rebound name (evil.example
  // resolving to this gateway) gets neither the page nor a token.
  app.addHook('onRequest', async (req, reply) => {
    if (req.url !== '/demo' && !req.url.startsWith('/demo/') && !req.url.startsWith('/demo?')) return undefined;
    if (hostAllowed(req.headers.host, allowedHosts)) return undefined;
    await sendError(reply, 'forbidden', `host ${String(req.headers.host).slice(0, 80)} is not in server.allowedHosts`);
    return reply;
  });

  const hostRefused = errorResponse('The request\'s Host is not in server.allowedHosts (`forbidden`)', RequestIdHeader);
  app.get(
    '/demo',
    { schema: { summary: 'The demo page', tags: ['demo'], response: { 302: { type: 'null', description: 'To /demo/' }, 403: hostRefused } } },
    async (_req, reply) => reply.redirect('/demo/'),
  );
  app.get(
    '/demo/*',
    {
      schema: {
        summary: "The demo page's files",
        description: '`/demo/` is the page; `/demo/parley-client.js` the SDK bundle.',
        tags: ['demo'],
        response: {
          200: textResponse('A file (HTML, JavaScript, CSS, SVG, WAV)', 'text/html'),
          403: hostRefused,
          404: errorResponse('No such demo file (`not_found`)', RequestIdHeader),
          503: errorResponse('The SDK bundle is missing and could not be built (`internal_error`)', RequestIdHeader),
        },
      },
    },
    async (req, reply) => {
      const rel = (req.params as { '*': string })['*'] || 'index.html';
      if (rel === CLIENT_BUNDLE && bundle) {
        const found = await bundle();
        if ('error' in found) return reply.code(503).send({ error: { code: 'internal_error', message: found.error } });
        reply.header('Content-Type', TYPES['.js']!);
        reply.header('Cache-Control', 'no-cache');
        return reply.send(found.code);
      }
      const body = files.get(rel);
      if (!body) return sendError(reply, 'not_found', `no demo file ${rel.slice(0, 80)}`);
      reply.header('Content-Type', TYPES[extname(rel)] ?? 'application/octet-stream');
      reply.header('Cache-Control', 'no-cache');
      return reply.send(body);
    },
  );

  app.post(
    '/demo/token',
    {
      schema: {
        summary: "A token for the demo account (server.demoAccount), spending its key's rest quota",
        tags: ['demo'],
        response: {
          201: limitedJson('The token', TokenResponse),
          403: errorResponse('No demo account, or the Host is not in server.allowedHosts (`forbidden`)', RequestIdHeader),
          429: errorResponse("Over the demo key's rest quota (`rate_limited`)", { ...RateLimitHeaders, 'Retry-After': RetryAfterHeader }),
        },
      },
    },
    async (req, reply) => {
      const key = account?.keys.find((k) => !k.disabled);
      if (!account || !key) return sendError(reply, 'forbidden', 'no demo account configured');
      const plan = gateway.keyRing.plan(account);
      // The demo endpoint needs no key, so it spends the demo key's `rest` quota.
      const limit = requestLimit(plan, account.id, 'rest', key.id);
      // The decision's id is the server's own: `req.id` may come from the client's X-Request-Id.
      const decision = await gateway.store.consume([limit], `demo:${gateway.replicaId}:${randomUUID()}`);
      const state = decision.states[0];
      const nowMs = gateway.scheduler.now();
      if (!decision.allowed) {
        const retryAfter = setRateLimitRefusal(reply, limit, state, nowMs, decision.retryAfterMs);
        return sendError(reply, 'rate_limited', 'demo token rate limit exceeded', { retry_after: retryAfter });
      }
      if (state) setRateLimitHeaders(reply, limit, state, nowMs);
      const token = newToken();
      const expiresAt = gateway.scheduler.now() + 60_000;
      await gateway.store.putToken(tokenKey(token), { accountId: account.id, keyId: key.id, learnerId: 'demo', expiresAt });
      const scheme = req.protocol === 'https' ? 'wss' : 'ws';
      return reply.code(201).send({ token, expires_at: new Date(expiresAt).toISOString(), url: `${scheme}://${req.headers.host ?? req.hostname}/v1/realtime` });
    },
  );
}
