/**
 * Admission at the WebSocket upgrade against a real Redis: the connection leases an admission takes
 * belong to the socket until a Connection owns them, so upgrades reset in between free their slots
 * at once (D1: before, 70 reset upgrades held an account's 60 slots for the lease's 30 s).
 */
import { randomUUID } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startApp, until, TEST_KEY, type TestApp } from '../helpers/app.js';
import { startRedis, type RedisHandle } from '../helpers/redis.js';

let redis: RedisHandle;
let t: TestApp | undefined;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** Sends a WebSocket upgrade with the API key, then resets the TCP connection at once (RST). */
function resetUpgrade(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, '127.0.0.1', () => {
      const request = [
        'GET /v1/realtime HTTP/1.1',
        `Host: 127.0.0.1:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${Buffer.from(randomUUID().slice(0, 16)).toString('base64')}`,
        'Sec-WebSocket-Version: 13',
        `Authorization: Bearer ${TEST_KEY}`,
        '',
        '',
      ].join('\r\n');
      socket.write(request, () => {
        socket.resetAndDestroy();
        resolve();
      });
    });
    socket.on('error', reject);
  });
}

async function connectionsUsed(app: TestApp): Promise<number> {
  const res = await app.rest('GET', '/v1/usage');
  expect(res.status).toBe(200);
  return ((await res.json()) as { connections_used: number }).connections_used;
}

describe('upgrades reset before the handler', () => {
  it('free their connection slots at once, so learners of the account can still connect', async () => {
    t = await startApp({
      realTime: true,
      plan: { connectionsPerKey: 60, connectionsPerAccount: 60, requestsPerMinute: { rest: 1000 } },
      storeConfig: { kind: 'redis', url: redis.url, prefix: `t:${randomUUID().slice(0, 8)}:` },
    });
    const port = Number(new URL(t.url).port);
    await Promise.all(Array.from({ length: 70 }, () => resetUpgrade(port)));
    // Every admission that ran has either been released by the reset or (if the handler won the
    // race) by the Connection's own close: none is left holding a slot. Well before the 30 s lease.
    await until(() => t!.app.gateway.connections.size === 0, 5000, 'no open connection');
    let used = await connectionsUsed(t);
    for (let i = 0; used !== 0 && i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100)); // a release in flight lands within a round trip
      used = await connectionsUsed(t);
    }
    expect(used).toBe(0);
    const learner = await t.session();
    expect(learner.closeInfo).toBeUndefined();
  });
});
