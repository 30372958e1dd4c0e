/**
 * Redis over TLS: a real `redis-server` that speaks TLS only, with a certificate from a throwaway CA
 * (test/helpers/redis.ts). The store connects with `rediss://` and the CA; without the CA it refuses
 * the certificate and the app serves on in-process limits, saying so on /readyz.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisStore } from '../../src/store/redis.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { startRedisTls } from '../helpers/redis.js';

let server: Awaited<ReturnType<typeof startRedisTls>>;
beforeAll(async () => {
  server = await startRedisTls();
}, 30_000);
afterAll(async () => {
  await server?.stopAndClean();
});

const w = { kind: 'window', key: 'rpm:{acct_t}:turn', name: 'turn', limit: 1, windowMs: 60_000 } as const;

describe('redis over TLS', () => {
  it('decides over rediss:// with the CA that signed the server certificate', async () => {
    const s = new RedisStore({ url: server.url, prefix: `tls:${randomUUID()}:`, tls: { ca: readFileSync(server.caFile) } });
    await s.ready();
    expect(server.url.startsWith('rediss://')).toBe(true);
    expect((await s.consume([w], 'a')).allowed).toBe(true);
    expect(await s.consume([w], 'b')).toMatchObject({ allowed: false, limitName: 'turn' });
    await s.close();
  });

  it('refuses a certificate it cannot verify: the first connection attempt ends closed, and no decision goes there', async () => {
    const s = new RedisStore({ url: server.url, prefix: `tls:${randomUUID()}:` });
    // The first state the store reports: true once a connection is ready, false when one closed.
    const first = await new Promise<boolean>((resolve) => s.onStateChange(resolve));
    expect(first).toBe(false);
    await expect(s.consume([w], 'a')).rejects.toThrow(/not ready/);
    expect(s.healthy()).toBe(false);
    await s.close();
  });

  describe('the app', () => {
    let t: TestApp | undefined;
    afterEach(async () => {
      await t?.close();
      t = undefined;
    });

    it('without the CA: serves on in-process limits, and /readyz says the store is unreachable', async () => {
      t = await startApp({ storeConfig: { kind: 'redis', url: server.url, prefix: `tls:${randomUUID()}:` } });
      const ready = await t.rest('GET', '/readyz');
      expect([ready.status, ((await ready.json()) as { status: string }).status]).toEqual([503, 'store_unreachable']);
      expect((await t.rest('GET', '/v1/usage')).status).toBe(200);
    });

    it('with store.tls.caFile: is ready on the TLS Redis and counts a REST call there', async () => {
      const prefix = `tls:${randomUUID()}:`;
      t = await startApp({ storeConfig: { kind: 'redis', url: server.url, prefix, tls: { caFile: server.caFile } } });
      const ready = await t.rest('GET', '/readyz');
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { store: string }).store).toBe('redis');
      const usage = await t.rest('GET', '/v1/usage');
      expect(usage.headers.get('x-ratelimit-remaining')).toBe(String(Number(usage.headers.get('x-ratelimit-limit')) - 1));
    });
  });
});
