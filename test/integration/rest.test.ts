/** The REST API of CONTRACT §4 against the real app on port 0. */
import { afterEach, describe, expect, it } from 'vitest';
import { encodeWav } from '../../src/audio/wav.js';
import { synthesizeSpeech } from '../../src/simulator/speech-synth.js';
import { startApp, TEST_KEY, type TestApp } from '../helpers/app.js';

let t: TestApp;
afterEach(async () => {
  await t?.close();
});

describe('POST /v1/tokens', () => {
  it('mints a single-use token with expiry and the WebSocket URL', async () => {
    t = await startApp();
    const res = await t.rest('POST', '/v1/tokens', { learner_id: 'learner-1', ttl_seconds: 120 });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { token: string; expires_at: string; url: string };
    expect(body.token).toMatch(/^pt_[A-Za-z0-9_-]+$/);
    expect(Date.parse(body.expires_at) - t.scheduler!.now()).toBe(120_000);
    expect(body.url).toBe(`${t.url.replace('http', 'ws')}/v1/realtime`);
  });

  it('defaults ttl_seconds to 60 and accepts an empty body', async () => {
    t = await startApp();
    const res = await t.rest('POST', '/v1/tokens');
    expect(res.status).toBe(201);
    const body = (await res.json()) as { expires_at: string };
    expect(Date.parse(body.expires_at) - t.scheduler!.now()).toBe(60_000);
  });

  it.each([
    [{ ttl_seconds: 5 }, 'ttl_seconds'],
    [{ ttl_seconds: 601 }, 'ttl_seconds'],
    [{ ttl_seconds: 'long' }, 'ttl_seconds'],
    [{ learner_id: 7 }, 'learner_id'],
    [{ colour: 'blue' }, 'colour'],
  ])('answers 400 invalid_request naming the field for %j', async (body, field) => {
    t = await startApp();
    const res = await t.rest('POST', '/v1/tokens', body);
    expect(res.status).toBe(400);
    const json = (await res.json()) as { error: { code: string; message: string } };
    expect(json.error.code).toBe('invalid_request');
    expect(json.error.message).toContain(field);
  });

  it('answers 400 invalid_request for a body that is not JSON', async () => {
    t = await startApp();
    const res = await t.rest('POST', '/v1/tokens', '{"ttl_seconds":');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_request');
  });

  it('answers 401 unauthorized for a missing or bad key', async () => {
    t = await startApp();
    for (const key of ['', 'sk_nope_nope_nope']) {
      const res = await t.rest('POST', '/v1/tokens', {}, key);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    }
  });
});

describe('rest quota and rate-limit headers', () => {
  it('carries X-RateLimit-* and RateLimit headers, then 429 with Retry-After and the error body', async () => {
    t = await startApp({ plan: { requestsPerMinute: { rest: 3 } } });
    const first = await t.rest('GET', '/v1/usage');
    expect(first.status).toBe(200);
    expect(first.headers.get('x-ratelimit-limit')).toBe('3');
    expect(first.headers.get('x-ratelimit-remaining')).toBe('2');
    expect(Number(first.headers.get('x-ratelimit-reset'))).toBe(Math.ceil((t.scheduler!.now() + 61_000) / 1000));
    // A call counts with its 1 s bucket, so it leaves the 60 s window 60-61 s later: w is 61 s, the
    // longest a unit is held, so that pacing at q per w is never refused.
    expect(first.headers.get('ratelimit-policy')).toBe('"rest";q=3;w=61');
    expect(first.headers.get('ratelimit')).toBe('"rest";r=2;t=61');
    await t.rest('GET', '/v1/usage');
    await t.rest('POST', '/v1/tokens');
    const over = await t.rest('GET', '/v1/usage');
    expect(over.status).toBe(429);
    expect(over.headers.get('retry-after')).toBe('61');
    expect(over.headers.get('ratelimit')).toBe('"rest";r=0;t=61');
    expect(over.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(await over.json()).toEqual({ error: { code: 'rate_limited', message: expect.stringContaining('rest'), retry_after: 61 } });
    t.scheduler!.advanceBy(61_000);
    expect((await t.rest('GET', '/v1/usage')).status).toBe(200);
  });

  it('on a 429, RateLimit t is the Retry-After: the wait until the oldest call leaves the window, never above w', async () => {
    t = await startApp({ plan: { requestsPerMinute: { rest: 3 } } });
    const s = t.scheduler!;
    const answers: Response[] = [];
    for (let i = 0; i < 3; i++) {
      answers.push(await t.rest('GET', '/v1/usage')); // at 0, 20 and 40 s
      s.advanceBy(i < 2 ? 20_000 : 0);
    }
    const over = await t.rest('GET', '/v1/usage');
    expect(over.status).toBe(429);
    // The call at 0 s counts until 61 s (its 1 s bucket), 21 s from now.
    expect(over.headers.get('retry-after')).toBe('21');
    expect(over.headers.get('ratelimit')).toBe('"rest";r=0;t=21');
    for (const res of [...answers, over]) {
      const t = Number(/;t=(\d+)/.exec(res.headers.get('ratelimit')!)![1]);
      const w = Number(/;w=(\d+)/.exec(res.headers.get('ratelimit-policy')!)![1]);
      expect(t).toBeLessThanOrEqual(w);
    }
    s.advanceBy(20_999);
    expect((await t.rest('GET', '/v1/usage')).status).toBe(429);
    s.advanceBy(1);
    expect((await t.rest('GET', '/v1/usage')).status).toBe(200);
  });

  it('a client pacing at q per w is never refused', async () => {
    t = await startApp({ plan: { requestsPerMinute: { rest: 3 } } });
    const first = await t.rest('GET', '/v1/usage');
    const [, q, w] = /q=(\d+);w=(\d+)/.exec(first.headers.get('ratelimit-policy')!)!.map(Number);
    // Odd start offsets inside the 1 s buckets are the hard case for a bucketed window.
    t.scheduler!.advanceBy(999);
    for (let i = 0; i < 4 * q!; i++) {
      t.scheduler!.advanceBy((w! * 1000) / q!);
      expect((await t.rest('GET', '/v1/usage')).status).toBe(200);
    }
  });

  it('counts the rest quota per key', async () => {
    t = await startApp({ plan: { requestsPerMinute: { rest: 1 } } });
    expect((await t.rest('GET', '/v1/usage')).status).toBe(200);
    expect((await t.rest('GET', '/v1/usage')).status).toBe(429);
    expect((await t.rest('GET', '/v1/usage', undefined, 'sk_test_other_0123456789')).status).toBe(200);
  });
});

describe('GET /v1/usage', () => {
  it('reports requests, connections and audio minutes', async () => {
    t = await startApp();
    const c = await t.session();
    c.sendBinary(Buffer.alloc(16000 * 2 * 3)); // 3 s = 0.05 min
    c.send({ type: 'input_audio.commit', id: 1, purpose: 'turn' });
    await c.waitFor('reply.audio.end');
    const usage = (await (await t.rest('GET', '/v1/usage')).json()) as Record<string, unknown>;
    expect(usage).toMatchObject({
      account_id: 'acct_a',
      requests_limit: 60,
      connections_used: 1,
      connections_limit: 50,
      daily_minutes_used: 0.05,
      daily_minutes_limit: 500,
    });
    // The token mint and this call.
    expect(usage.requests_used).toBe(2);
    expect((usage.limits as { name: string }[]).map((l) => l.name)).toContain('account.conversation.turn');
  });
});

describe('audio minutes of a WAV', () => {
  /** A 16 kHz mono WAV of `seconds` of speech with a 28-byte JUNK chunk before "fmt " (legal RIFF). */
  function wavWithJunk(seconds: number): Buffer {
    const pcm = Buffer.alloc(16000 * 2 * seconds); // speech, then silence, to exactly `seconds`
    synthesizeSpeech('hola, quiero un café', { sampleRate: 16000 }).copy(pcm);
    const plain = encodeWav(pcm, 16000);
    const junk = Buffer.alloc(8 + 28);
    junk.write('JUNK', 0, 'latin1');
    junk.writeUInt32LE(28, 4);
    const out = Buffer.concat([plain.subarray(0, 12), junk, plain.subarray(12)]);
    out.writeUInt32LE(out.length - 8, 4);
    return out;
  }

  it('bills a WAV with a chunk before "fmt " by its real duration, and transcribes it', async () => {
    t = await startApp();
    const c = await t.session({ audio: { format: 'wav', sample_rate: 16000 } });
    const wav = wavWithJunk(3);
    expect(wav.toString('latin1', 12, 16)).toBe('JUNK');
    c.sendBinary(wav);
    c.send({ type: 'input_audio.commit', id: 'w', purpose: 'turn' });
    expect((await c.waitFor('transcript')).text.length).toBeGreaterThan(0);
    await c.waitFor('reply.audio.end');
    const usage = (await (await t.rest('GET', '/v1/usage')).json()) as { daily_minutes_used: number };
    expect(usage.daily_minutes_used).toBe(0.05); // 3 s
  });

  it('refuses a WAV it cannot read with invalid_message, before any quota or upstream call', async () => {
    t = await startApp();
    const c = await t.session({ audio: { format: 'wav', sample_rate: 16000 } });
    const broken = wavWithJunk(1);
    broken.write('RIFX', 0, 'latin1');
    c.sendBinary(broken);
    c.send({ type: 'input_audio.commit', id: 'bad', purpose: 'turn' });
    const err = await c.waitFor('error');
    expect(err).toMatchObject({ code: 'invalid_message', request_id: 'bad' });
    expect(err.message).toContain('RIFX');
    const usage = (await (await t.rest('GET', '/v1/usage')).json()) as { daily_minutes_used: number; limits: { name: string; remaining: number; limit: number }[] };
    expect(usage.daily_minutes_used).toBe(0);
    const turns = usage.limits.find((l) => l.name === 'account.conversation.turn')!;
    expect(turns.remaining).toBe(turns.limit);
    expect(c.of('transcript')).toEqual([]);
  });
});

describe('health', () => {
  it('/healthz is 200 and /readyz is 200 with the store kind', async () => {
    t = await startApp();
    expect((await t.rest('GET', '/healthz', undefined, '')).status).toBe(200);
    const ready = await t.rest('GET', '/readyz', undefined, '');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', store: 'memory' });
  });

  it('/metrics is Prometheus text with parley_connections and parley_closes_total', async () => {
    t = await startApp();
    const c = await t.session();
    c.send({ type: 'session.end' });
    await c.waitClose();
    const text = await (await t.rest('GET', '/metrics', undefined, '')).text();
    expect(text).toMatch(/^# TYPE parley_connections gauge$/m);
    expect(text).toMatch(/^parley_closes_total\{code="1000"\} 1$/m);
    // One token mint so far (the session's), counted by route pattern and status.
    expect(text).toMatch(/^parley_rest_requests_total\{route="\/v1\/tokens",status="201"\} 1$/m);
  });

  it('unknown routes answer 404 with the error body', async () => {
    t = await startApp();
    const res = await t.rest('GET', '/v1/nothing', undefined, TEST_KEY);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });
});
