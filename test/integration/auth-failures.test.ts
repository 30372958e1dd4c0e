/**
 * Failed authentication is throttled per client address (CONTRACT §4): past
 * `server.authFailuresPerMinute` failures within a minute, that address gets 429 `rate_limited`
 * with `Retry-After` (on the WebSocket: the `error` event, then close 4029) whatever it presents,
 * until the minute has passed; other addresses are not affected; `X-Forwarded-For` names the
 * address only with `server.trustProxy`. Virtual time moves the minute.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startApp, TEST_KEY, type TestApp } from '../helpers/app.js';
import { connect } from '../helpers/client.js';

let t: TestApp;
afterEach(async () => {
  await t?.close();
});

const get = (app: TestApp, key: string, from?: string): Promise<Response> =>
  fetch(`${app.url}/v1/usage`, { headers: { Authorization: `Bearer ${key}`, ...(from ? { 'X-Forwarded-For': from } : {}) } });

describe('failed authentication, per client address', () => {
  it('REST: past the limit the address gets 429 with Retry-After, even with a good key, until the minute has passed', async () => {
    t = await startApp({ server: { authFailuresPerMinute: 5 } });
    for (let i = 0; i < 5; i++) expect((await get(t, 'sk_wrong_key_0000')).status).toBe(401);
    const blocked = await get(t, TEST_KEY);
    expect(blocked.status).toBe(429);
    expect(blocked.headers.get('retry-after')).toBe('60');
    expect(((await blocked.json()) as { error: { code: string; retry_after: number } }).error).toMatchObject({ code: 'rate_limited', retry_after: 60 });
    t.scheduler!.advanceBy(59_000);
    expect((await get(t, TEST_KEY)).status).toBe(429);
    t.scheduler!.advanceBy(1_000);
    expect((await get(t, TEST_KEY)).status).toBe(200);
  });

  it('WebSocket: a blocked address gets the error event, then close 4029 with retry_after_ms', async () => {
    t = await startApp({ server: { authFailuresPerMinute: 3 } });
    const token = await t.token(); // minted before the address is blocked (REST is blocked too)
    for (let i = 0; i < 3; i++) {
      const bad = await connect(t.url, { token: 'pt_not_a_real_token_000000000000' });
      expect((await bad.waitClose()).code).toBe(4001);
    }
    const good = await connect(t.url, { token });
    expect((await good.waitClose()).code).toBe(4029);
    expect(good.of('error')[0]).toMatchObject({ code: 'rate_limited', close_code: 4029, retry_after_ms: 60_000 });
  });

  it('other addresses are not affected (behind a proxy, with server.trustProxy)', async () => {
    t = await startApp({ server: { authFailuresPerMinute: 2, trustProxy: true } });
    for (let i = 0; i < 2; i++) expect((await get(t, 'sk_wrong_key_0000', '203.0.113.7')).status).toBe(401);
    expect((await get(t, TEST_KEY, '203.0.113.7')).status).toBe(429);
    expect((await get(t, TEST_KEY, '203.0.113.8')).status).toBe(200);
  });

  it('without server.trustProxy, X-Forwarded-For does not move a blocked client to another address', async () => {
    t = await startApp({ server: { authFailuresPerMinute: 2 } });
    for (let i = 0; i < 2; i++) expect((await get(t, 'sk_wrong_key_0000', '203.0.113.7')).status).toBe(401);
    expect((await get(t, TEST_KEY, '203.0.113.8')).status).toBe(429);
  });
});
