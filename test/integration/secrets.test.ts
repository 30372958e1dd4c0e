/**
 * CONTRACT.md §10, first promise: no secret (API key, token, resume token, upstream key, a password
 * inside REDIS_URL or store.url) appears in any log line at any level, in any error sent to a
 * client, or in any HTTP answer.
 *
 * Two real apps, configured the way an operator would (`loadConfig` over an env map: a config file
 * in PARLEY_CONFIG, `env:NAME` secrets, REDIS_URL, LOG_LEVEL=debug), each logging to a sink:
 * - A: REDIS_URL with a password, on a real `redis-server --requirepass`;
 * - B: `store.url` in the file with a password, on a port where nothing listens.
 * Every upstream is a real HTTP server on port 0 that answers errors echoing the upstream key
 * (in a short message, across the 200-character cut of the error text, in a Content-Type).
 * The clients use every credential path (REST with a wrong and a right key, credentials in query
 * strings, tokens minted, used, reused and sent as ?token=, keys on the upgrade, resumes good and
 * bad) and every error path (invalid messages, upstream errors, store errors, the close codes).
 * Then every log line, every event and close reason a client received, and every HTTP status
 * line, header and body the gateway sent are searched for each secret and its first 12 characters.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type ParleyApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import type { ServerEvent } from '../../src/protocol/messages.js';
import { until } from '../helpers/app.js';
import { TestClient } from '../helpers/client.js';
import { logSink, type LogSink } from '../helpers/log-sink.js';
import { freePort, startRedis, type RedisHandle } from '../helpers/redis.js';
import { json, normalAnswer, startScriptedUpstream, type ScriptedUpstream } from '../helpers/upstream.js';

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

// Configured secrets have no recognisable shape on purpose (an operator may choose any string of
// 8 characters or more): only the redaction of the places they pass through can hide them.
const KEY_FILE = `acme${hex(16)}`;
const KEY_ENV = `envkey${hex(16)}`;
const KEY_TINY = `tiny${hex(16)}`;
const WRONG_KEY = `typo${hex(16)}`;
const UPSTREAM_KEY = `up${hex(24)}`;
const REDIS_PASSWORD = hex(16);
const REDIS_PASSWORD_B = hex(16);

/** Secrets learnt while the test runs: minted tokens and resume tokens. */
const tokens: string[] = [];
const resumeTokens: string[] = [];

const ORIGIN = 'http://app.example';

interface Gateway {
  readonly name: string;
  readonly app: ParleyApp;
  readonly base: string;
  readonly logs: LogSink;
  /** Every client of this gateway, with what it received. */
  readonly clients: TestClient[];
  /** What the gateway sent over HTTP: status, headers and body, with the fields whose job is to carry a secret taken out. */
  readonly answers: { what: string; text: string }[];
}

let redis: RedisHandle;
let admin: Redis;
let upstream: ScriptedUpstream;
let dir: string;
let a: Gateway;
let b: Gateway;

/** The upstream: normal answers, except for the markers that make it echo its key back. */
async function upstreamScript(req: Parameters<typeof normalAnswer>[0], res: Parameters<typeof normalAnswer>[1]): Promise<void> {
  const asked = JSON.stringify(req.json ?? {});
  if (req.path.endsWith('/chat/completions') && asked.includes('ECHO401')) {
    // OpenAI's own wording for a bad key quotes the key.
    json(res, 401, { error: { message: `Incorrect API key provided: ${UPSTREAM_KEY}. You can find your API key at https://platform.example/account/api-keys.` } });
    return;
  }
  if (req.path.endsWith('/chat/completions') && asked.includes('STRADDLE')) {
    // The key starts at character 185 of the reason: a cut at 200 keeps its first 14 characters.
    res.writeHead(500, { 'Content-Type': 'text/plain' });
    res.end(`${'x'.repeat(170)} upstream said: ${UPSTREAM_KEY} and more`);
    return;
  }
  if (req.path.endsWith('/chat/completions') && asked.includes('CTYPE')) {
    normalAnswer(req, res, 'CTYPE ok');
    return;
  }
  if (req.path.endsWith('/audio/speech') && asked.includes('CTYPE')) {
    // A 2xx answer of the wrong type, whose Content-Type (quoted, cut at 60) carries the key.
    res.writeHead(200, { 'Content-Type': `text/plain; charset=utf-8; note=${UPSTREAM_KEY}` });
    res.end('not audio');
    return;
  }
  normalAnswer(req, res);
}

function configFile(name: string, store: Record<string, unknown>): string {
  const upstreams: Record<string, unknown> = {};
  for (const kind of ['conversation', 'stt', 'tts', 'translation', 'pronunciation']) {
    upstreams[kind] = { provider: 'openai', baseUrl: upstream.url, apiKey: 'env:UPSTREAM_KEY', limits: { maxRetries: 0 } };
  }
  const config = {
    server: { host: '127.0.0.1', port: 0, dashboard: true, heartbeatSeconds: 3600 },
    logLevel: 'info',
    store,
    plans: { standard: { maxFrameBytes: 8192 }, tiny: { connectionsPerKey: 1 } },
    accounts: [
      { id: 'acct_s', plan: 'standard', origins: [ORIGIN], keys: [{ id: 'key_file', secret: KEY_FILE }, { id: 'key_env', secret: 'env:PARLEY_KEY' }] },
      { id: 'acct_tiny', plan: 'tiny', origins: ['*'], keys: [{ id: 'key_tiny', secret: KEY_TINY }] },
    ],
    upstreams,
  };
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(config));
  return path;
}

async function start(name: string, env: NodeJS.ProcessEnv): Promise<Gateway> {
  const { config, source } = loadConfig(env);
  expect(source).toBe(env.PARLEY_CONFIG);
  expect(config.logLevel).toBe('debug');
  const logs = logSink('debug');
  const app = await buildApp({ config, logger: logs.logger, replicaId: `replica_${name}`, defaultMetrics: false });
  const { url } = await app.listen(0, '127.0.0.1');
  return { name, app, base: url, logs, clients: [], answers: [] };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'parley-secrets-'));
  [redis, upstream] = await Promise.all([startRedis(undefined, { password: REDIS_PASSWORD }), startScriptedUpstream(upstreamScript)]);
  expect(redis.url).toContain(REDIS_PASSWORD);
  admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  const deadPort = await freePort();
  const common = { LOG_LEVEL: 'debug', PARLEY_KEY: KEY_ENV, UPSTREAM_KEY };
  [a, b] = await Promise.all([
    start('a', { ...common, PARLEY_CONFIG: configFile('a', { kind: 'memory' }), REDIS_URL: redis.url }),
    start('b', { ...common, PARLEY_CONFIG: configFile('b', { kind: 'redis', url: `redis://parley:${REDIS_PASSWORD_B}@127.0.0.1:${deadPort}` }) }),
  ]);
}, 30_000);

afterAll(async () => {
  for (const c of [...(a?.clients ?? []), ...(b?.clients ?? [])]) c.ws.terminate();
  await Promise.all([a?.app.close(), b?.app.close()]);
  admin?.disconnect();
  await Promise.all([redis?.stop(), upstream?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Clients that record everything the gateway sends them
// ---------------------------------------------------------------------------------------------

interface HttpOptions {
  readonly key?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
}

/** Every header of an answer, as text. */
function headerText(headers: Headers): string {
  const out: string[] = [];
  headers.forEach((value, name) => out.push(`${name}: ${value}`));
  return out.join('\n');
}

async function http(g: Gateway, method: string, path: string, opts: HttpOptions = {}): Promise<{ status: number; body: string }> {
  const res = await fetch(`${g.base}${path}`, {
    method,
    headers: {
      ...(opts.key !== undefined ? { Authorization: `Bearer ${opts.key}` } : {}),
      ...(opts.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      ...opts.headers,
    },
    ...(opts.body !== undefined ? { body: opts.body } : {}),
  });
  let body = await res.text();
  // The token is what POST /v1/tokens exists to hand out: everything else in its answer is checked.
  if (path.startsWith('/v1/tokens') && res.status === 201) {
    const minted = JSON.parse(body) as { token: string };
    tokens.push(minted.token);
    body = JSON.stringify({ ...minted, token: undefined });
  }
  g.answers.push({ what: `${method} ${path}`, text: `${res.status} ${headerText(res.headers)} ${body}` });
  return { status: res.status, body };
}

async function mint(g: Gateway, key = KEY_FILE): Promise<string> {
  const res = await http(g, 'POST', '/v1/tokens', { key, body: JSON.stringify({ learner_id: 'learner-42' }) });
  expect(res.status).toBe(201);
  return tokens.at(-1)!;
}

/** Opens a WebSocket; resolves once it is open (or closed, for an upgrade the gateway refuses outright). */
async function ws(g: Gateway, path: string, opts: { protocols?: string[]; headers?: Record<string, string> } = {}): Promise<TestClient> {
  const socket = new WebSocket(`${g.base.replace(/^http/, 'ws')}${path}`, opts.protocols, { headers: opts.headers ?? {} });
  const client = new TestClient(socket);
  g.clients.push(client);
  await Promise.race([client.opened.catch(() => undefined), client.closed]);
  return client;
}

async function withToken(g: Gateway, token: string, origin = ORIGIN): Promise<TestClient> {
  return ws(g, '/v1/realtime', { protocols: ['parley.v1', `parley.token.${token}`], headers: { Origin: origin } });
}

async function started(c: TestClient, start: Record<string, unknown> = { language: 'es' }): Promise<Extract<ServerEvent, { type: 'session.created' | 'session.resumed' }>> {
  c.send({ type: 'session.start', ...start });
  const event = await Promise.race([c.waitFor('session.created'), c.waitFor('session.resumed')]);
  resumeTokens.push(event.resume_token);
  return event;
}

async function errorFor(c: TestClient, requestId: string): Promise<Extract<ServerEvent, { type: 'error' }>> {
  return c.waitFor('error', (e) => e.request_id === requestId);
}

// ---------------------------------------------------------------------------------------------
// The search
// ---------------------------------------------------------------------------------------------

/** Every place a secret must not be, as text: the gateway's log lines, HTTP answers and client events. */
function haystacks(g: Gateway): { what: string; text: string }[] {
  const out = [...g.answers];
  g.logs.raw.forEach((line, i) => out.push({ what: `log line ${i}`, text: line }));
  g.clients.forEach((c, i) => {
    for (const e of c.events) {
      // The resume token is what session.created / session.resumed exist to hand out.
      const shown = e.type === 'session.created' || e.type === 'session.resumed' ? { ...e, resume_token: undefined } : e;
      out.push({ what: `client ${i}: ${e.type}`, text: JSON.stringify(shown) });
    }
    out.push({ what: `client ${i}: close reason`, text: c.closeInfo?.reason ?? '' });
  });
  return out;
}

/** Each secret (or its first 12 characters) found in what gateway `g` logged or sent, with where. */
function leaks(g: Gateway): string[] {
  const secrets: [string, string][] = [
    ['API key (in the file)', KEY_FILE],
    ['API key (env:)', KEY_ENV],
    ['API key (tiny plan)', KEY_TINY],
    ['wrong API key', WRONG_KEY],
    ['upstream key', UPSTREAM_KEY],
    ['REDIS_URL password', REDIS_PASSWORD],
    ['store.url password', REDIS_PASSWORD_B],
    ...tokens.map((t, i): [string, string] => [`token ${i}`, t]),
    ...resumeTokens.map((t, i): [string, string] => [`resume token ${i}`, t]),
  ];
  const found: string[] = [];
  for (const { what, text } of haystacks(g)) {
    for (const [name, secret] of secrets) {
      if (text.includes(secret)) found.push(`${name} in ${what}: ${text.slice(0, 400)}`);
      else if (text.includes(secret.slice(0, 12))) found.push(`first 12 characters of ${name} in ${what}: ${text.slice(0, 400)}`);
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

describe('no secret in any log line, client error or HTTP answer (CONTRACT §10)', () => {
  it('A (REDIS_URL with a password, reachable): credentials, error paths, store errors and close codes leave no secret behind', async () => {
    // Health, readiness, metrics, usage, sessions, the dashboard's data: with a right and a wrong key.
    expect((await http(a, 'GET', '/readyz')).status).toBe(200);
    expect((await http(a, 'GET', '/healthz')).status).toBe(200);
    expect((await http(a, 'GET', '/metrics')).status).toBe(200);
    expect((await http(a, 'POST', '/v1/tokens', { key: WRONG_KEY, body: '{}' })).status).toBe(401);
    expect((await http(a, 'GET', '/v1/usage', { key: WRONG_KEY })).status).toBe(401);
    expect((await http(a, 'GET', '/v1/usage', { key: KEY_FILE })).status).toBe(200);
    expect((await http(a, 'GET', '/dashboard/stats', { key: KEY_ENV })).status).toBe(200);
    expect((await http(a, 'GET', '/dashboard/stats', { key: WRONG_KEY })).status).toBe(401);
    // Credentials where they do not belong: in query strings, and in a malformed body.
    expect((await http(a, 'GET', `/v1/usage?secret=${KEY_FILE}`)).status).toBe(401);
    expect((await http(a, 'GET', `/v1/usage?api_key=${KEY_ENV}&password=${REDIS_PASSWORD}`)).status).toBe(401);
    expect((await http(a, 'GET', `/v1/sessions?key=${KEY_FILE}&apiKey=${KEY_ENV}&Access_Token=${WRONG_KEY}`, { key: KEY_FILE })).status).toBe(200);
    expect((await http(a, 'GET', `/nowhere?password=${REDIS_PASSWORD}&auth=${KEY_FILE}`)).status).toBe(404);
    expect((await http(a, 'GET', `/v1/nowhere?sig=${KEY_ENV}`, { key: KEY_ENV })).status).toBe(404);
    expect((await http(a, 'POST', '/v1/tokens', { key: KEY_FILE, body: `{"learner_id": "${KEY_ENV}",` })).status).toBe(400);
    // Logged, with what is not a credential kept.
    const urls = a.logs.lines.map((l) => (l.req as { url?: string } | undefined)?.url);
    expect(urls).toContain('/v1/usage?secret=[REDACTED]');
    expect(urls).toContain('/v1/sessions?key=[REDACTED]&apiKey=[REDACTED]&Access_Token=[REDACTED]');

    // Tokens: minted and used (subprotocol), reused, sent as ?token=, with a wrong origin; keys on the upgrade.
    const t1 = await mint(a);
    const s1 = await withToken(a, t1);
    const created1 = await started(s1, { language: 'es', scenario: 'ordering coffee' });
    const reused = await withToken(a, t1);
    expect((await reused.waitClose()).code).toBe(4001);
    const t2 = await mint(a, KEY_ENV);
    const s2 = await ws(a, `/v1/realtime?token=${t2}`, { headers: { Origin: ORIGIN } });
    await started(s2);
    const wrongOrigin = await withToken(a, await mint(a), 'http://evil.example');
    expect((await wrongOrigin.waitClose()).code).toBe(1008);
    const serverSide = await ws(a, '/v1/realtime', { headers: { Authorization: `Bearer ${KEY_ENV}` } });
    await started(serverSide);
    const wrongKey = await ws(a, '/v1/realtime', { headers: { Authorization: `Bearer ${WRONG_KEY}` } });
    expect((await wrongKey.waitClose()).code).toBe(4001);
    const badToken = await ws(a, `/v1/realtime?token=pt_${hex(20)}`);
    expect((await badToken.waitClose()).code).toBe(4001);
    // An upgrade to a route that is not a WebSocket, with credentials in its query string.
    const t3 = await mint(a);
    await (await ws(a, `/v1/usage?token=${t3}&secret=${KEY_FILE}`)).waitClose();
    // The tiny plan allows one connection per key: the second is closed with 4029.
    const tiny1 = await ws(a, '/v1/realtime', { headers: { Authorization: `Bearer ${KEY_TINY}` } });
    await started(tiny1);
    const tiny2 = await ws(a, '/v1/realtime', { headers: { Authorization: `Bearer ${KEY_TINY}` } });
    expect((await tiny2.waitClose()).code).toBe(4029);

    // A session through its error paths: invalid messages, upstream errors that echo the key.
    s1.send('{"type":');
    await s1.waitFor('error', (e) => e.code === 'invalid_message');
    s1.send({ type: 'turn.text', id: 'ok', text: 'Hola, quiero un café' });
    await s1.waitFor('reply.audio.end', (e) => e.request_id === 'ok');
    s1.send({ type: 'turn.text', id: 'echo', text: 'ECHO401' });
    expect((await errorFor(s1, 'echo')).code).toBe('upstream_error');
    s1.send({ type: 'turn.text', id: 'straddle', text: 'STRADDLE' });
    expect((await errorFor(s1, 'straddle')).code).toBe('upstream_error');
    s1.send({ type: 'turn.text', id: 'ctype', text: 'CTYPE' });
    expect((await errorFor(s1, 'ctype')).code).toBe('upstream_error');
    s1.send({ type: 'translate', id: 'tr', text: 'ECHO401', target_language: 'en' });
    expect((await errorFor(s1, 'tr')).code).toBe('upstream_error');
    s1.send({ type: 'input_audio.commit', id: 'empty', purpose: 'turn' });
    expect((await errorFor(s1, 'empty')).code).toBe('invalid_message');
    s1.send({ type: 'session.start', language: 'es', id: 'again' });
    expect((await errorFor(s1, 'again')).code).toBe('session_already_started');

    // Resume: a bad resume token, then the right one on a new connection (the old one gets 4030).
    const bad = await withToken(a, await mint(a));
    bad.send({ type: 'session.start', resume_token: `rt_${hex(24)}`, id: 'bad' });
    expect((await errorFor(bad, 'bad')).code).toBe('session_expired');
    const s1b = await withToken(a, await mint(a));
    const resumed = await started(s1b, { resume_token: created1.resume_token });
    expect(resumed.session_id).toBe(created1.session_id);
    expect((await s1.waitClose()).code).toBe(4030);

    // Close codes: frame too large (1009), repeated invalid messages (1008), the operator's DELETE (4003).
    const big = await withToken(a, await mint(a));
    await started(big);
    big.send(JSON.stringify({ type: 'turn.text', id: 'big', text: 'x'.repeat(10_000) }));
    expect((await big.waitClose()).code).toBe(1009);
    const noisy = await withToken(a, await mint(a));
    for (let i = 0; i < 11; i++) noisy.send(`{"type": "turn.text", "id": "n${i}", "text": 1}`);
    expect((await noisy.waitClose()).code).toBe(1008);
    expect((await http(a, 'DELETE', `/v1/sessions/${resumed.session_id}`, { key: KEY_FILE })).status).toBe(204);
    expect((await s1b.waitClose()).code).toBe(4003);

    // Store errors that carry a session record (resume token, history, learner id) in the command's
    // arguments: Redis refuses SET, so the session write after a turn fails (EXECABORT, with the
    // refused SETs as previousErrors) and the store falls back to in-process limits.
    await admin.call('ACL', 'SETUSER', 'default', '-set');
    s2.send({ type: 'turn.text', id: 'during', text: 'Hola otra vez' });
    await s2.waitFor('reply.audio.end', (e) => e.request_id === 'during');
    await until(() => a.logs.raw.some((l) => l.includes('store unreachable')), 10_000, 'the store outage in the log');
    const outage = a.logs.find((l) => String(l.msg).includes('store unreachable'))!;
    expect(JSON.stringify(outage.err)).toMatch(/EXECABORT|NOPERM/);
    expect((await http(a, 'GET', '/v1/sessions', { key: KEY_FILE })).status).toBe(200);
    await admin.call('ACL', 'SETUSER', 'default', '+set');
    await until(() => a.logs.raw.some((l) => l.includes('store reachable again')), 10_000, 'the store recovery in the log');
    s2.send({ type: 'session.end' });
    expect((await s2.waitClose()).code).toBe(1000);

    // The dashboard's live stream: read its first event.
    const ctl = new AbortController();
    const res = await fetch(`${a.base}/dashboard/events`, { headers: { Authorization: `Bearer ${KEY_FILE}` }, signal: ctl.signal });
    const reader = res.body!.getReader();
    let sse = '';
    while (!sse.includes('data:')) {
      const chunk = await reader.read();
      if (chunk.done) break;
      sse += new TextDecoder().decode(chunk.value);
    }
    expect(sse).toContain('data:');
    ctl.abort();
    a.answers.push({ what: 'GET /dashboard/events', text: `${res.status} ${headerText(res.headers)} ${sse}` });
    expect((await http(a, 'GET', '/metrics')).status).toBe(200);

    // The upstream got the key from env:, so the echoes above were of the real key.
    expect(upstream.seen.some((r) => r.headers.authorization === `Bearer ${UPSTREAM_KEY}`)).toBe(true);
    expect(leaks(a)).toEqual([]);
  });

  it('B (store.url with a password, nothing listening): start-up, readiness and a session on the fallback leave no secret behind', async () => {
    const warned = b.logs.find((l) => String(l.msg).includes('redis not reachable at start'));
    // Which server it could not reach is kept; who it would have logged in as is not.
    expect(warned?.redis).toMatch(/^redis:\/\/\[REDACTED\]@127\.0\.0\.1:\d+$/);
    expect((await http(b, 'GET', '/readyz')).status).toBe(503);
    expect((await http(b, 'GET', '/v1/usage', { key: KEY_FILE })).status).toBe(200);
    const client = await withToken(b, await mint(b));
    await started(client);
    client.send({ type: 'turn.text', id: 'echo', text: 'ECHO401' });
    expect((await errorFor(client, 'echo')).code).toBe('upstream_error');
    client.send({ type: 'session.end' });
    expect((await client.waitClose()).code).toBe(1000);
    expect((await http(b, 'GET', '/metrics')).status).toBe(200);
    expect(leaks(b)).toEqual([]);
  });
});
