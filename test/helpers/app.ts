/**
 * The real app on port 0 with a virtual clock, a log sink and a test account, for integration
 * tests (STYLE.md §11, second tier).
 */
import { buildApp, type ParleyApp } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import type { Store } from '../../src/store/store.js';
import type { Providers } from '../../src/upstream/provider.js';
import { connect, type ConnectOptions, type TestClient } from './client.js';
import { logSink, type LogSink } from './log-sink.js';
import { ManualScheduler } from './scheduler.js';

export const TEST_KEY = 'sk_test_0123456789abcdef';
export const OTHER_KEY = 'sk_test_other_0123456789';
export const ORIGIN = 'http://app.example';

export interface TestAppOptions {
  readonly plan?: Record<string, unknown>;
  readonly server?: Record<string, unknown>;
  readonly upstreams?: Record<string, unknown>;
  readonly store?: Store;
  /** The `store` section of the config (e.g. `{kind: 'redis', url}`), built by the app itself. */
  readonly storeConfig?: Record<string, unknown>;
  readonly providers?: Providers;
  /** Real time instead of the virtual scheduler. */
  readonly realTime?: boolean;
  readonly replicaId?: string;
}

export interface TestApp {
  readonly app: ParleyApp;
  readonly url: string;
  readonly scheduler: ManualScheduler | undefined;
  readonly logs: LogSink;
  /** Mints a connection token through the REST API. */
  token(body?: Record<string, unknown>, key?: string): Promise<string>;
  /** Connects with a fresh token (subprotocol auth) unless options say otherwise. */
  client(opts?: ConnectOptions): Promise<TestClient>;
  /** Connects and starts a session; resolves when session.created arrives. */
  session(start?: Record<string, unknown>, opts?: ConnectOptions): Promise<TestClient>;
  rest(method: string, path: string, body?: unknown, key?: string): Promise<Response>;
  close(): Promise<void>;
}

export function testConfig(opts: TestAppOptions = {}) {
  return parseConfig(
    {
      // The heartbeat is long unless a test is about it: advancing virtual time past two pings in one
      // step would drop every client as a dead peer before its pong could be read.
      server: { host: '127.0.0.1', port: 0, drainSeconds: 2, heartbeatSeconds: 3600, ...opts.server },
      logLevel: 'info',
      plans: { test: { ...opts.plan } },
      accounts: [
        { id: 'acct_a', plan: 'test', origins: [ORIGIN], keys: [{ id: 'key_a', secret: TEST_KEY }, { id: 'key_a2', secret: OTHER_KEY }] },
        { id: 'acct_b', plan: 'test', origins: ['*'], keys: [{ id: 'key_b', secret: 'sk_test_b_0123456789' }] },
      ],
      upstreams: opts.upstreams ?? {},
      ...(opts.storeConfig ? { store: opts.storeConfig } : {}),
    },
    {},
  );
}

export async function startApp(opts: TestAppOptions = {}): Promise<TestApp> {
  const config = testConfig(opts);
  const scheduler = opts.realTime ? undefined : new ManualScheduler();
  const logs = logSink('info');
  const app = await buildApp({
    config,
    logger: logs.logger,
    ...(scheduler ? { scheduler } : {}),
    ...(opts.store ? { store: opts.store } : {}),
    ...(opts.providers ? { providers: opts.providers } : {}),
    ...(opts.replicaId ? { replicaId: opts.replicaId } : {}),
  });
  const { url } = await app.listen(0, '127.0.0.1');
  const clients: TestClient[] = [];

  const rest = (method: string, path: string, body?: unknown, key = TEST_KEY): Promise<Response> =>
    fetch(`${url}${path}`, {
      method,
      headers: { ...(key ? { Authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });

  const token = async (body: Record<string, unknown> = {}, key = TEST_KEY): Promise<string> => {
    const res = await rest('POST', '/v1/tokens', body, key);
    if (res.status !== 201) throw new Error(`token mint failed: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { token: string }).token;
  };

  const client = async (o: ConnectOptions = {}): Promise<TestClient> => {
    const c = await connect(url, o.token || o.apiKey || o.protocols ? o : { ...o, token: await token() });
    clients.push(c);
    return c;
  };

  return {
    app,
    url,
    scheduler,
    logs,
    rest,
    token,
    client,
    async session(start = {}, o = {}) {
      const c = await client(o);
      c.send({ type: 'session.start', language: 'es', ...start });
      await c.waitFor('session.created');
      return c;
    },
    async close() {
      for (const c of clients) c.ws.terminate();
      await app.close();
    },
  };
}

/** Resolves once `pred` holds, polling the event loop (not virtual time); fails after timeoutMs. */
export async function until(pred: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!pred()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
