/**
 * Telemetry end to end on the real app: /v1/usage and the rate-limit headers moving with requests
 * and connections, quota.updated at the contract's moments (driven on virtual time), and /metrics
 * as strict Prometheus text whose counters follow a scripted session.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerEvent } from '../../src/protocol/messages.js';
import type { Providers } from '../../src/upstream/provider.js';
import { createSimulatedProviders } from '../../src/simulator/index.js';
import { startApp, until, type TestApp } from '../helpers/app.js';
import type { TestClient } from '../helpers/client.js';
import { parsePrometheusText, valueOf } from '../unit/telemetry/prometheus-text.js';

let t: TestApp;
afterEach(async () => {
  await t?.close();
});

type Usage = {
  account_id: string;
  requests_used: number;
  requests_limit: number;
  requests_reset: string;
  connections_used: number;
  connections_limit: number;
  daily_minutes_used: number;
  daily_minutes_limit: number;
  limits: { name: string; limit: number; remaining: number; reset_seconds: number }[];
};

async function usage(): Promise<{ body: Usage; headers: Headers }> {
  const res = await t.rest('GET', '/v1/usage');
  expect(res.status).toBe(200);
  return { body: (await res.json()) as Usage, headers: res.headers };
}

const limitOf = (u: Usage, name: string) => u.limits.find((l) => l.name === name);

/** Every event of the client sent before a pong to this ping: the socket keeps order. */
async function barrier(c: TestClient, id: string): Promise<void> {
  c.send({ type: 'ping', id });
  await c.waitFor('pong', (e) => e.request_id === id);
}

/** Lets promise callbacks scheduled by virtual-time actions (store reads) run. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

async function advance(ms: number, stepMs = 250): Promise<void> {
  for (let done = 0; done < ms; done += stepMs) {
    t.scheduler!.advanceBy(Math.min(stepMs, ms - done));
    await settle();
  }
}

type Quota = Extract<ServerEvent, { type: 'quota.updated' }>;
const remainingOf = (q: Quota, name: string): number | undefined => q.limits.find((l) => l.name === name)?.remaining;

describe('GET /v1/usage and the rate-limit headers', () => {
  it('move with requests and connections', async () => {
    t = await startApp({ plan: { requestsPerMinute: { rest: 30 } } });
    const first = await usage();
    expect(first.body).toMatchObject({ account_id: 'acct_a', requests_used: 1, requests_limit: 30, connections_used: 0, connections_limit: 50, daily_minutes_used: 0, daily_minutes_limit: 500 });
    // The call's 1 s bucket leaves the 60 s window at 61 s.
    expect(Date.parse(first.body.requests_reset)).toBe(t.scheduler!.now() + 61_000);
    expect(first.headers.get('x-ratelimit-remaining')).toBe('29');
    expect(limitOf(first.body, 'key.rest')).toEqual({ name: 'key.rest', limit: 30, remaining: 29, reset_seconds: 61 });

    const c = await t.session(); // one token mint (rest) and one conversation.start
    c.send({ type: 'turn.text', id: 'hola', text: 'Hola' });
    await c.waitFor('reply.audio.end');
    const during = await usage();
    expect(during.body.requests_used).toBe(3);
    expect(during.headers.get('x-ratelimit-remaining')).toBe('27');
    expect(during.headers.get('ratelimit')).toBe('"rest";r=27;t=61');
    expect(during.body.connections_used).toBe(1);
    expect(limitOf(during.body, 'account.connections')).toMatchObject({ limit: 50, remaining: 49 });
    expect(limitOf(during.body, 'account.conversation.start')).toMatchObject({ limit: 20, remaining: 19 });
    expect(limitOf(during.body, 'account.conversation.turn')).toMatchObject({ limit: 60, remaining: 59 });

    c.close();
    await until(() => t.app.gateway.connections.size === 0, 5000, 'teardown');
    t.scheduler!.advanceBy(61_000);
    const after = await usage();
    expect(after.body.connections_used).toBe(0);
    // The window slid past the earlier calls: only this one counts.
    expect(after.body.requests_used).toBe(1);
    expect(limitOf(after.body, 'account.conversation.turn')).toMatchObject({ remaining: 60 });
  });

  it('ride on 400, 404 and 429 answers too; a 401 has no key and so no quota to report', async () => {
    t = await startApp({ plan: { requestsPerMinute: { rest: 3 } } });
    const bad = await t.rest('POST', '/v1/tokens', { ttl_seconds: 1 });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('x-ratelimit-remaining')).toBe('2');
    const missing = await t.rest('GET', '/v1/no-such-route');
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('not_found');
    expect(missing.headers.get('x-ratelimit-limit')).toBe('3');
    expect(missing.headers.get('x-ratelimit-remaining')).toBe('1');
    expect(missing.headers.get('ratelimit-policy')).toBe('"rest";q=3;w=61');
    const gone = await t.rest('DELETE', '/v1/sessions/sess_nope');
    expect(gone.status).toBe(404);
    expect(gone.headers.get('x-ratelimit-remaining')).toBe('0');
    const over = await t.rest('GET', '/v1/no-such-route');
    expect(over.status).toBe(429);
    expect(over.headers.get('retry-after')).toBe('61');
    expect(over.headers.get('ratelimit')).toBe('"rest";r=0;t=61');
    expect(((await over.json()) as { error: { code: string; retry_after: number } }).error).toMatchObject({ code: 'rate_limited', retry_after: 61 });
    const unauth = await t.rest('GET', '/v1/usage', undefined, 'sk_unknown_key_123456');
    expect(unauth.status).toBe(401);
    expect(unauth.headers.get('x-ratelimit-limit')).toBeNull();
  });
});

describe('quota.updated', () => {
  it('comes after session.created, then at most once a second while a value changes, then stops', async () => {
    // A slow message bucket: 50 pings take it from 99 to 49 and it needs 6 s to fill up again.
    t = await startApp({ plan: { messagesPerSecond: 10, messageBurst: 100, messageQueue: 100 } });
    const c = await t.session();
    const created = await c.waitFor('quota.updated');
    expect(c.events.findIndex((e) => e.type === 'session.created')).toBeLessThan(c.events.indexOf(created));
    expect(remainingOf(created, 'connection.messages')).toBe(99);
    for (let i = 0; i < 50; i++) c.send({ type: 'ping', id: i });
    await c.waitFor('pong', (e) => e.request_id === 49);
    await advance(20_000);
    await barrier(c, 'end');
    const quotas = c.of('quota.updated');
    // The session clock in each event tells the virtual second it was sent at.
    const seconds = quotas.map((q) => 1800 - remainingOf(q, 'session.seconds')!);
    expect(seconds).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(quotas.map((q) => remainingOf(q, 'connection.messages'))).toEqual([99, 59, 69, 79, 89, 99, 100]);
    // Idle: nothing changes, nothing is sent, however long (short of the idle warning).
    const before = c.of('quota.updated').length;
    await advance(60_000, 1000);
    await barrier(c, 'idle');
    // The barrier pings themselves each took a token, refilled within the second after: one event.
    expect(c.of('quota.updated').length - before).toBeLessThanOrEqual(1);
    expect(c.invalid).toEqual([]);
  });

  it('is not sent to an idle session because other sessions of the account spend its quotas', async () => {
    t = await startApp();
    const idle = await t.session();
    const busy = await t.session();
    await advance(3000);
    await barrier(idle, 'settled');
    const settled = idle.of('quota.updated').length;
    for (let i = 0; i < 10; i++) {
      busy.send({ type: 'translate', id: i, text: 'hola', target_language: 'en' });
      await busy.waitFor('translation.result', (e) => e.request_id === i);
      await advance(1000);
    }
    await barrier(idle, 'end');
    expect(idle.of('quota.updated').length).toBe(settled);
    // The busy session got one after each accepted request, and the account value moved for both.
    expect(busy.of('quota.updated').filter((q) => remainingOf(q, 'account.translate') !== undefined).map((q) => remainingOf(q, 'account.translate')).slice(-1)).toEqual([110]);
  });

  it('comes after each accepted request, not after a refused one', async () => {
    t = await startApp({ plan: { requestsPerMinute: { translate: 1 } } });
    const c = await t.session();
    await c.waitFor('quota.updated');
    c.send({ type: 'translate', id: 'ok', text: 'hola', target_language: 'en' });
    await c.waitFor('translation.result');
    c.send({ type: 'translate', id: 'no', text: 'hola', target_language: 'en' });
    await c.waitFor('error', (e) => e.request_id === 'no');
    await barrier(c, 'b');
    const quotas = c.of('quota.updated');
    expect(quotas.map((q) => remainingOf(q, 'account.translate'))).toEqual([1, 0]);
    // The accepted request's quota.updated precedes its answer.
    expect(c.events.indexOf(quotas[1]!)).toBeLessThan(c.events.findIndex((e) => e.type === 'translation.result'));
  });

  it('lists the upstream queue the session waits in while it waits, and drops it after', async () => {
    const sim = createSimulatedProviders();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    const providers: Providers = {
      ...sim,
      conversation: {
        reply: async (req, o) => {
          calls++;
          await gate;
          return sim.conversation.reply(req, o);
        },
      },
    };
    t = await startApp({ providers, upstreams: { conversation: { limits: { concurrency: 1, maxQueueWaitSeconds: 20 } } } });
    const a = await t.session();
    const b = await t.session();
    a.send({ type: 'turn.text', id: 'first', text: 'Hola' });
    await until(() => calls === 1, 3000, 'the first turn holding the only conversation slot');
    b.send({ type: 'turn.text', id: 'second', text: 'Hola' });
    await b.waitFor('request.queued', (e) => e.request_id === 'second');
    await advance(1000);
    const waiting = await b.waitFor('quota.updated', (q) => q.limits.some((l) => l.name === 'upstream.conversation.queue'));
    expect(waiting.limits.find((l) => l.name === 'upstream.conversation.queue')).toEqual({ name: 'upstream.conversation.queue', limit: 20, remaining: 19, reset_seconds: 19 });
    expect(waiting.limits[waiting.limits.length - 1]!.name).toBe('upstream.conversation.queue');
    release();
    await b.waitFor('reply.text', (e) => e.request_id === 'second');
    const n = b.of('quota.updated').length;
    await advance(1000);
    const after = await b.waitFor('quota.updated', (q) => b.of('quota.updated').indexOf(q) >= n);
    expect(after.limits.some((l) => l.name.endsWith('.queue'))).toBe(false);
    expect(a.of('quota.updated').every((q) => !q.limits.some((l) => l.name.endsWith('.queue')))).toBe(true);
  });
});

describe('GET /metrics', () => {
  it('is strict Prometheus text whose counters move with a scripted session', async () => {
    t = await startApp();
    const scrape = async () => parsePrometheusText(await (await t.rest('GET', '/metrics', undefined, '')).text());
    const before = await scrape();
    const c = await t.session();
    for (let i = 0; i < 5; i++) c.send({ type: 'ping', id: i });
    c.send({ type: 'turn.text', id: 't', text: 'Hola, ¿qué tal?' });
    await c.waitFor('reply.audio.end');
    const during = await scrape();
    expect(valueOf(during, 'parley_connections')).toBe(1);
    expect(valueOf(during, 'parley_account_connections', { account: 'acct_a' })).toBe(1);
    expect(valueOf(during, 'parley_account_connections', { account: 'acct_b' })).toBe(0);
    expect(valueOf(during, 'parley_account_sessions', { account: 'acct_a' })).toBe(1);
    expect(valueOf(during, 'parley_sessions_started_total', { account: 'acct_a' })).toBe(1);
    // session.start, five pings, one turn.
    expect(valueOf(during, 'parley_messages_received_total')! - valueOf(before, 'parley_messages_received_total')!).toBe(7);
    expect(valueOf(during, 'parley_received_bytes_total')).toBeGreaterThan(100);
    expect(valueOf(during, 'parley_sent_bytes_total')).toBeGreaterThan(1000);
    expect(valueOf(during, 'parley_limit_decisions_total', { limit: 'account.conversation.start', outcome: 'allowed' })).toBe(1);
    expect(valueOf(during, 'parley_limit_decisions_total', { limit: 'account.conversation.turn', outcome: 'allowed' })).toBe(1);
    expect(valueOf(during, 'parley_limit_decisions_total', { limit: 'account.connections', outcome: 'allowed' })).toBe(1);
    expect(valueOf(during, 'parley_upstream_requests_total', { upstream: 'conversation', outcome: 'ok' })).toBe(1);
    // The reply's first sentence alone, then the rest: one TTS attempt per TTS request of the turn.
    const turnMetrics = await c.waitFor('turn.metrics');
    expect(valueOf(during, 'parley_upstream_latency_seconds_count', { upstream: 'tts' })).toBe(turnMetrics.tts_requests);
    expect(valueOf(during, 'parley_turn_first_audio_seconds_count')).toBe(1);
    expect(valueOf(during, 'parley_turn_duration_seconds_count')).toBe(1);
    expect(valueOf(during, 'parley_upstream_first_byte_seconds_count', { upstream: 'conversation' })).toBe(1);
    expect(valueOf(during, 'parley_upstream_queue_depth', { upstream: 'conversation' })).toBe(0);
    expect(during.get('parley_event_loop_lag_max_seconds')?.type).toBe('gauge');
    expect(during.get('parley_store_fallback_total')?.type).toBe('counter');
    c.send({ type: 'session.end' });
    await c.waitClose();
    // The close is counted when the server's side of the close completes.
    await until(() => t.app.gateway.metrics.totals().closes['1000'] === 1, 5000, 'the close counted');
    const after = await scrape();
    expect(valueOf(after, 'parley_closes_total', { code: '1000' })).toBe(1);
    expect(valueOf(after, 'parley_connections')).toBe(0);
    expect(valueOf(after, 'parley_account_connections', { account: 'acct_a' })).toBe(0);
  });
});

describe('close codes a client chooses', () => {
  it('are counted apart from the gateway\'s own closes, in a bounded label set', async () => {
    t = await startApp();
    const scrape = async (): Promise<ReturnType<typeof parsePrometheusText>> => parsePrometheusText(await (await fetch(`${t.url}/metrics`)).text());
    for (const code of [1011, 4321, 3999, 1000]) {
      const c = await t.session();
      c.close(code);
      await c.waitClose();
    }
    await until(() => t.app.gateway.metrics.totals().closes.client === 4, 5000, 'four client closes counted');
    const m = await scrape();
    expect(valueOf(m, 'parley_client_closes_total', { code: 'other' })).toBe(3);
    expect(valueOf(m, 'parley_client_closes_total', { code: '1000' })).toBe(1);
    // A client's 1011 is not a server fault, and its own codes never become labels of the gateway's closes.
    expect(valueOf(m, 'parley_closes_total', { code: '1011' })).toBeUndefined();
    expect(valueOf(m, 'parley_closes_total', { code: '4321' })).toBeUndefined();
    expect(valueOf(m, 'parley_client_closes_total', { code: '4321' })).toBeUndefined();
  });
});
