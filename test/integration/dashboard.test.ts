/**
 * The operator live view: the page, the key guard on its data, the server-sent events (one a
 * second on virtual time), and the figures summed across two replicas sharing one Redis.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisStore } from '../../src/store/redis.js';
import type { ClusterFigures } from '../../src/telemetry/live.js';
import { OTHER_KEY, startApp, TEST_KEY, until, type TestApp } from '../helpers/app.js';
import { startRedis, type RedisHandle } from '../helpers/redis.js';

const apps: TestApp[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

async function start(opts: Parameters<typeof startApp>[0] = {}): Promise<TestApp> {
  const a = await startApp({ ...opts, server: { dashboard: true, ...opts.server } });
  apps.push(a);
  return a;
}

/** A reader of `/dashboard/events`: parses the stream as it arrives. */
interface Stream {
  readonly res: Response;
  readonly events: ClusterFigures[];
  /** Resolves with the first event (seen or future) that matches; fails after timeoutMs. */
  next(pred: (f: ClusterFigures) => boolean, what: string, timeoutMs?: number): Promise<ClusterFigures>;
  close(): void;
}

async function openStream(base: string, key = TEST_KEY): Promise<Stream> {
  const ctl = new AbortController();
  const res = await fetch(`${base}/dashboard/events`, { headers: { Authorization: `Bearer ${key}` }, signal: ctl.signal });
  const events: ClusterFigures[] = [];
  if (res.ok && res.body) {
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    void (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buf += dec.decode(value, { stream: true });
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const lines = block.split('\n');
            const event = lines.find((l) => l.startsWith('event:'))?.slice(6).trim();
            const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('');
            if (event === 'figures') events.push(JSON.parse(data) as ClusterFigures);
          }
        }
      } catch {
        /* aborted */
      }
    })();
  }
  return {
    res,
    events,
    async next(pred, what, timeoutMs = 5000) {
      let found: ClusterFigures | undefined;
      await until(() => (found = events.find(pred)) !== undefined, timeoutMs, what);
      return found!;
    },
    close: () => ctl.abort(),
  };
}

describe('/dashboard', () => {
  it('is not served unless server.dashboard is on', async () => {
    const a = await startApp();
    apps.push(a);
    expect((await a.rest('GET', '/dashboard', undefined, '')).status).toBe(404);
    expect((await a.rest('GET', '/dashboard/events')).status).toBe(404);
  });

  it('serves the page without a key, with a script nonce matching its CSP and no data in it', async () => {
    const a = await start();
    const res = await a.rest('GET', '/dashboard', undefined, '');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = res.headers.get('content-security-policy')!;
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    const html = await res.text();
    expect(nonce).toBeDefined();
    expect(html).toContain(`<script nonce="${nonce}">`);
    expect(csp).toContain("connect-src 'self'");
    expect(html).not.toContain(TEST_KEY);
  });

  it('answers 401 unauthorized to its data endpoints without a valid key', async () => {
    const a = await start();
    for (const path of ['/dashboard/events', '/dashboard/stats']) {
      for (const key of ['', 'sk_not_a_key_at_all']) {
        const res = await a.rest('GET', path, undefined, key);
        expect(res.status).toBe(401);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
      }
    }
  });

  it('streams one figures event a second with live values, under the rest quota headers', async () => {
    const a = await start();
    const stream = await openStream(a.url);
    expect(stream.res.status).toBe(200);
    expect(stream.res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(stream.res.headers.get('x-ratelimit-limit')).toBe('60');
    // The first event comes at once (before any replica has published: nothing yet).
    const first = await stream.next(() => true, 'the first event');
    expect(first.replicas).toEqual([]);
    const c = await a.session();
    for (let i = 0; i < 4; i++) c.send({ type: 'ping', id: i });
    await c.waitFor('pong', (e) => e.request_id === 3);
    a.scheduler!.advanceBy(1000);
    const live = await stream.next((f) => f.connections === 1, 'an event with the session');
    expect(live).toMatchObject({ connections: 1, sessions: 1, queueDepth: 0 });
    expect(live.replicas.map((r) => r.id)).toEqual([a.app.gateway.replicaId]);
    // session.start and four pings in the virtual second.
    expect(live.messagesInPerSecond).toBe(5);
    expect(live.messagesOutPerSecond).toBeGreaterThanOrEqual(6);
    expect(live.upstreams.map((u) => u.name)).toEqual(['conversation', 'pronunciation', 'stt', 'translation', 'tts']);
    const n = stream.events.length;
    for (let i = 0; i < 3; i++) {
      a.scheduler!.advanceBy(1000);
      await stream.next((_) => stream.events.length >= n + i + 1, `event ${i + 1} after the advance`);
    }
    c.send({ type: 'session.end' });
    await c.waitClose();
    // The close is counted when the socket's close completes, after the client saw it.
    await until(() => a.app.gateway.metrics.totals().closes['1000'] === 1, 5000, 'the close counted');
    a.scheduler!.advanceBy(1000);
    const closed = await stream.next((f) => f.connections === 0 && f.closesTotal['1000'] === 1, 'the close');
    expect(closed.closesPerSecond).toEqual({ '1000': 1 });
    expect(stream.events.length).toBe(n + 4);
    stream.close();
    // The key went in a header on every call; it never reaches the logs.
    expect(a.logs.raw.length).toBeGreaterThan(0);
    expect(a.logs.raw.some((l) => l.includes(TEST_KEY))).toBe(false);
  });
});

describe('/dashboard stream caps', () => {
  it('refuses the stream past server.dashboardStreams with 503 server_full and Retry-After, and frees a slot when one closes', async () => {
    const a = await start({ plan: { requestsPerMinute: { rest: 200 } }, server: { dashboardStreams: 6, dashboardStreamsPerAccount: 6 } });
    const streams: Stream[] = [];
    for (let i = 0; i < 6; i++) streams.push(await openStream(a.url));
    expect(streams.every((s) => s.res.status === 200)).toBe(true);
    const over = await a.rest('GET', '/dashboard/events', undefined, 'sk_test_b_0123456789');
    expect(over.status).toBe(503);
    expect(over.headers.get('retry-after')).toBe('5');
    expect(((await over.json()) as { error: { code: string } }).error.code).toBe('server_full');
    streams[0]!.close();
    let again: Stream | undefined;
    for (const deadline = Date.now() + 5000; Date.now() < deadline; ) {
      again = await openStream(a.url);
      if (again.res.status === 200) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(again?.res.status).toBe(200);
    for (const s of [...streams, again!]) s.close();
  });

  it('one account cannot take every stream: past dashboardStreamsPerAccount it gets 429, and another account still gets one', async () => {
    const a = await start({ plan: { requestsPerMinute: { rest: 200 } } }); // defaults: 32 per replica, 4 per account
    // acct_a's two keys together hold its four.
    const held = await Promise.all([openStream(a.url), openStream(a.url), openStream(a.url, OTHER_KEY), openStream(a.url, OTHER_KEY)]);
    expect(held.map((s) => s.res.status)).toEqual([200, 200, 200, 200]);
    const fifth = await openStream(a.url, OTHER_KEY);
    expect(fifth.res.status).toBe(429);
    expect(fifth.res.headers.get('retry-after')).toBe('5');
    // The RateLimit item is the stream cap's, whose t is the Retry-After (not the rest quota's).
    expect(fifth.res.headers.get('ratelimit')).toBe('"dashboard-streams";r=0;t=5');
    expect(fifth.res.headers.get('ratelimit-policy')).toBe('"rest";q=200;w=61, "dashboard-streams";q=4;qu="concurrent-requests"');
    expect(((await fifth.res.json()) as { error: { code: string } }).error.code).toBe('rate_limited');
    const other = await openStream(a.url, 'sk_test_b_0123456789');
    expect(other.res.status).toBe(200);
    await other.next(() => true, 'a figures event for the other account');
    for (const s of [...held, other]) s.close();
  });
});

describe('/dashboard across replicas on one Redis', () => {
  let redis: RedisHandle;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('sums both replicas, and /v1/usage counts connections on both', async () => {
    const prefix = `dash:${randomUUID()}:`;
    const replica = async (): Promise<TestApp> => {
      const store = new RedisStore({ url: redis.url, prefix });
      await store.ready();
      return start({ realTime: true, store });
    };
    const a = await replica();
    const b = await replica();
    const ca = await a.session();
    const cb = await b.session();
    await b.session();
    ca.send({ type: 'ping', id: 1 });
    cb.send({ type: 'ping', id: 1 });
    const stream = await openStream(a.url);
    expect(stream.res.status).toBe(200);
    const both = await stream.next((f) => f.replicas.length === 2 && f.connections === 3, 'both replicas summed', 10_000);
    expect(both.sessions).toBe(3);
    expect(both.replicas.map((r) => r.id).sort()).toEqual([a.app.gateway.replicaId, b.app.gateway.replicaId].sort());
    expect(both.replicas.find((r) => r.id === b.app.gateway.replicaId)).toMatchObject({ connections: 2, sessions: 2 });
    const stats = (await (await b.rest('GET', '/dashboard/stats')).json()) as ClusterFigures;
    expect(stats.connections).toBe(3);
    const usage = (await (await a.rest('GET', '/v1/usage')).json()) as { connections_used: number };
    expect(usage.connections_used).toBe(3);
    stream.close();
  });
});
