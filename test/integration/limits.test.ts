/**
 * Per-connection limits against the real app on port 0, with virtual time: each test asserts the
 * exact close code and the `error` event that precedes it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startApp, until, type TestApp } from '../helpers/app.js';
import type { TestClient } from '../helpers/client.js';

let t: TestApp;
afterEach(async () => {
  await t?.close();
});

async function expectClose(c: TestClient, code: number, errorCode: string): Promise<void> {
  const closed = await c.waitClose();
  expect(closed.code).toBe(code);
  const err = c.of('error').at(-1);
  expect(err?.code).toBe(errorCode);
  expect(err?.close_code).toBe(code);
  expect(c.invalid).toEqual([]);
}

describe('message rate (token bucket, throttles then 4029)', () => {
  it('answers the burst at once, throttles the rest in order, and never drops them', async () => {
    t = await startApp({ plan: { messagesPerSecond: 10, messageBurst: 10, messageQueue: 5 } });
    const c = await t.client();
    // session.start is not sent: ping works before it, and keeps the test about the bucket alone.
    for (let i = 1; i <= 15; i++) c.send({ type: 'ping', id: i });
    await until(() => c.of('pong').length === 10, 3000, '10 pongs');
    t.scheduler!.advanceBy(100);
    await until(() => c.of('pong').length === 11, 3000, '11th pong');
    t.scheduler!.advanceBy(400);
    await until(() => c.of('pong').length === 15, 3000, '15 pongs');
    expect(c.of('pong').map((p) => p.request_id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    expect(c.closeInfo).toBeUndefined();
  });

  it('closes with 4029 message_rate when one more than messageQueue waits', async () => {
    t = await startApp({ plan: { messagesPerSecond: 10, messageBurst: 10, messageQueue: 5 } });
    const c = await t.client();
    for (let i = 1; i <= 16; i++) c.send({ type: 'ping', id: i });
    await expectClose(c, 4029, 'message_rate');
    expect(c.of('pong')).toHaveLength(10);
    const err = c.of('error')[0]!;
    expect(err.retry_after_ms).toBe(600);
  });

  it('holds a throttling stage only while messages wait: none before, none once the queue has drained', async () => {
    t = await startApp({ plan: { messagesPerSecond: 10, messageBurst: 10, messageQueue: 5 } });
    const c = await t.client();
    const conn = [...t.app.gateway.connections][0]!;
    c.send({ type: 'ping', id: 0 });
    await c.waitFor('pong', (p) => p.request_id === 0);
    expect(conn.holdings().subscribed).toBe(false);
    for (let i = 1; i <= 14; i++) c.send({ type: 'ping', id: i });
    await until(() => c.of('pong').length === 10, 3000, '10 pongs');
    await until(() => conn.holdings().subscribed, 3000, 'the stage built for the waiting pings');
    t.scheduler!.advanceBy(500);
    await until(() => c.of('pong').length === 15, 3000, '15 pongs');
    expect(c.of('pong').map((p) => p.request_id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    expect(conn.holdings().subscribed).toBe(false);
    // Back on the direct path, the buckets still count: a burst over the bucket waits again.
    for (let i = 15; i <= 30; i++) c.send({ type: 'ping', id: i });
    await expectClose(c, 4029, 'message_rate');
  });
});

describe('byte rate', () => {
  it('closes with 4029 byte_rate when more than byteBurst bytes wait', async () => {
    t = await startApp({ plan: { bytesPerSecond: 4096, byteBurst: 4096, maxFrameBytes: 2048 } });
    const c = await t.session();
    const frame = Buffer.alloc(2048, 1);
    for (let i = 0; i < 5; i++) c.sendBinary(frame);
    await expectClose(c, 4029, 'byte_rate');
  });

  it('throttles bytes within the burst without closing', async () => {
    t = await startApp({ plan: { bytesPerSecond: 4096, byteBurst: 4096, maxFrameBytes: 2048 } });
    const c = await t.session();
    const frame = Buffer.alloc(2048, 1);
    // session.start spent a few bytes, so one frame passes at once; the other and the ping wait.
    for (let i = 0; i < 2; i++) c.sendBinary(frame);
    c.send({ type: 'ping', id: 'after' });
    const conn = [...t.app.gateway.connections][0]!;
    const bytesLeft = (): number => conn.connectionLimits().find((l) => l.name === 'connection.bytes')!.remaining;
    // session.start spent a few bytes too, so the second frame already waits.
    await until(() => bytesLeft() < 2048, 3000, 'the burst spent');
    expect(c.of('pong')).toHaveLength(0);
    t.scheduler!.advanceBy(1000);
    await c.waitFor('pong', (p) => p.request_id === 'after');
    expect(c.closeInfo).toBeUndefined();
  });
});

describe('frame size', () => {
  it('closes with 1009 frame_too_large for a frame over maxFrameBytes', async () => {
    t = await startApp({ plan: { maxFrameBytes: 1024 } });
    const c = await t.session();
    c.sendBinary(Buffer.alloc(1025));
    await expectClose(c, 1009, 'frame_too_large');
  });

  it('accepts a frame of exactly maxFrameBytes', async () => {
    t = await startApp({ plan: { maxFrameBytes: 1024 } });
    const c = await t.session();
    c.sendBinary(Buffer.alloc(1024));
    c.send({ type: 'ping', id: 1 });
    await c.waitFor('pong');
    expect(c.closeInfo).toBeUndefined();
  });
});

describe('session length', () => {
  it('warns expiryWarningSeconds before maxSessionSeconds, then closes with 4008', async () => {
    t = await startApp({ plan: { maxSessionSeconds: 120, expiryWarningSeconds: 60, idleTimeoutSeconds: 600 } });
    const c = await t.session();
    t.scheduler!.advanceBy(59_999);
    c.send({ type: 'ping', id: 'p' });
    await c.waitFor('pong');
    expect(c.of('session.expiring')).toHaveLength(0);
    t.scheduler!.advanceBy(1);
    const warning = await c.waitFor('session.expiring');
    expect(warning).toEqual({ type: 'session.expiring', reason: 'max_duration', closes_in_ms: 60_000 });
    t.scheduler!.advanceBy(60_000);
    await expectClose(c, 4008, 'session_expired');
  });
});

describe('idle timeout', () => {
  it('warns min(15 s, half) before, then closes with 4031; ping is not activity', async () => {
    t = await startApp({ plan: { idleTimeoutSeconds: 40 } });
    const c = await t.session();
    t.scheduler!.advanceBy(10_000);
    c.send({ type: 'ping', id: 1 });
    await c.waitFor('pong');
    t.scheduler!.advanceBy(15_000);
    const warning = await c.waitFor('session.expiring');
    expect(warning).toEqual({ type: 'session.expiring', reason: 'idle', closes_in_ms: 15_000 });
    t.scheduler!.advanceBy(15_000);
    await expectClose(c, 4031, 'idle_timeout');
  });

  it('a request resets the idle clock', async () => {
    // Timeout 20 s: the warning comes min(15 s, 10 s) = 10 s before the close.
    t = await startApp({ plan: { idleTimeoutSeconds: 20 } });
    const c = await t.session();
    t.scheduler!.advanceBy(9_000);
    c.send({ type: 'translate', id: 'tr', text: 'thank you', target_language: 'es' });
    await c.waitFor('translation.result');
    t.scheduler!.advanceBy(9_999);
    c.send({ type: 'ping', id: 'alive' });
    await c.waitFor('pong');
    expect(c.of('session.expiring')).toHaveLength(0);
    t.scheduler!.advanceBy(1);
    expect(await c.waitFor('session.expiring')).toEqual({ type: 'session.expiring', reason: 'idle', closes_in_ms: 10_000 });
    t.scheduler!.advanceBy(9_999);
    c.send({ type: 'ping', id: 'still' });
    await c.waitFor('pong', (p) => p.request_id === 'still');
    expect(c.closeInfo).toBeUndefined();
    t.scheduler!.advanceBy(1);
    await expectClose(c, 4031, 'idle_timeout');
  });

  it('closes with 4031 when no session.start arrives within 10 s', async () => {
    t = await startApp();
    const c = await t.client();
    t.scheduler!.advanceBy(9_999);
    c.send({ type: 'ping', id: 1 });
    await c.waitFor('pong');
    t.scheduler!.advanceBy(1);
    await expectClose(c, 4031, 'idle_timeout');
  });
});

describe('dead peers and slow consumers', () => {
  it('drops a peer that does not answer protocol pings', async () => {
    t = await startApp({ server: { heartbeatSeconds: 5 } });
    const c = await t.session();
    expect(t.app.gateway.connections.size).toBe(1);
    // The client stops reading: it can no longer answer pings.
    (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    t.scheduler!.advanceBy(5_000);
    t.scheduler!.advanceBy(5_000);
    await until(() => t.app.gateway.connections.size === 0, 3000, 'dead peer dropped');
    const metrics = await (await t.rest('GET', '/metrics', undefined, '')).text();
    expect(metrics).toMatch(/parley_closes_total\{code="1006"\} 1/);
  });

  it('keeps a live peer that answers pings', async () => {
    t = await startApp({ server: { heartbeatSeconds: 5 } });
    const c = await t.session();
    for (let i = 0; i < 3; i++) {
      t.scheduler!.advanceBy(5_000);
      await until(() => !t.app.gateway.connections.values().next().value!.awaitingPong, 3000, 'pong');
    }
    expect(t.app.gateway.connections.size).toBe(1);
    expect(c.closeInfo).toBeUndefined();
  });

  it('closes a client that stops reading with 1008 slow_consumer and stops queueing for it', async () => {
    t = await startApp({ server: { maxBufferedBytes: 256 * 1024 }, plan: { requestsPerMinute: { 'conversation.turn': 1000 } } });
    const c = await t.session();
    (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    // 90 turns: within the message burst (virtual time is frozen, so no token refills), and each
    // reply is a few hundred KB of audio, far past what the kernel's socket buffers absorb.
    for (let i = 0; i < 90; i++) c.send({ type: 'turn.text', id: i, text: 'Hola, quiero practicar mi español hoy por la mañana con usted.' });
    // The kernel's socket buffers absorb a few MB first; each turn synthesises speech, which takes a
    // while on a loaded 2-core machine, so the wait is generous.
    await until(() => t.logs.find((l) => l.msg === 'slow consumer') !== undefined, 50_000, 'slow consumer log');
    const line = t.logs.find((l) => l.msg === 'slow consumer')!;
    expect(line.buffered_bytes as number).toBeGreaterThan(256 * 1024);
    (c.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    await expectClose(c, 1008, 'slow_consumer');
  }, 60_000);
});

describe('account quotas', () => {
  it('refuses a turn over requestsPerMinute with rate_limited and keeps the connection', async () => {
    t = await startApp({ plan: { requestsPerMinute: { 'conversation.turn': 2 } } });
    const c = await t.session();
    for (const id of ['a', 'b', 'c']) c.send({ type: 'turn.text', id, text: 'Hola' });
    const err = await c.waitFor('error', (e) => e.request_id === 'c');
    expect(err.code).toBe('rate_limited');
    // The first turns' 1 s bucket leaves the 60 s window at 61 s (the shared window counts in 60 buckets).
    expect(err.retry_after_ms).toBe(61_000);
    expect(err.close_code).toBeUndefined();
    await c.waitFor('reply.audio.end', (e) => e.request_id === 'b');
    expect(c.of('reply.text').map((e) => e.request_id)).toEqual(['a', 'b']);
    t.scheduler!.advanceBy(61_000);
    c.send({ type: 'turn.text', id: 'd', text: 'Hola otra vez' });
    await c.waitFor('reply.text', (e) => e.request_id === 'd');
  });

  it('refuses audio over dailyAudioMinutes with quota_exhausted until the next UTC day', async () => {
    t = await startApp({ plan: { dailyAudioMinutes: 0.02 } });
    const c = await t.session();
    c.sendBinary(Buffer.alloc(16000 * 2)); // 1 s of PCM16 16 kHz = 0.0167 min
    c.send({ type: 'input_audio.commit', id: 'one', purpose: 'turn' });
    await c.waitFor('reply.audio.end', (e) => e.request_id === 'one');
    c.sendBinary(Buffer.alloc(16000 * 2));
    c.send({ type: 'input_audio.commit', id: 'two', purpose: 'turn' });
    const err = await c.waitFor('error', (e) => e.request_id === 'two');
    expect(err.code).toBe('quota_exhausted');
    // The virtual clock starts at 12:00 UTC: twelve hours to midnight.
    expect(err.retry_after_ms).toBe(12 * 3600 * 1000);
    expect(c.closeInfo).toBeUndefined();
  });

  it('refuses session.start over conversation.start with rate_limited', async () => {
    t = await startApp({ plan: { requestsPerMinute: { 'conversation.start': 1 } } });
    await t.session();
    const c = await t.client();
    c.send({ type: 'session.start', id: 's', language: 'fr' });
    const err = await c.waitFor('error');
    expect(err).toMatchObject({ code: 'rate_limited', request_id: 's', retry_after_ms: 61_000 });
  });
});

describe('connection caps', () => {
  it('closes a connection over connectionsPerKey with 4029 connection_limit, and frees the slot on close', async () => {
    t = await startApp({ plan: { connectionsPerKey: 2 } });
    const a = await t.client();
    await t.client();
    const c = await t.client();
    await expectClose(c, 4029, 'connection_limit');
    expect(c.of('error')[0]!.retry_after_ms).toBeGreaterThan(0);
    a.close();
    await a.waitClose();
    await until(() => t.app.gateway.connections.size === 1, 3000, 'release');
    const d = await t.client();
    d.send({ type: 'ping', id: 1 });
    await d.waitFor('pong');
  });

  it('counts connectionsPerAccount across the account\'s keys', async () => {
    t = await startApp({ plan: { connectionsPerKey: 5, connectionsPerAccount: 2 } });
    await t.client();
    await t.client({ token: await t.token({}, 'sk_test_other_0123456789') });
    const c = await t.client({ token: await t.token({}, 'sk_test_other_0123456789') });
    await expectClose(c, 4029, 'connection_limit');
    expect(c.of('error')[0]!.message).toContain('connectionsPerAccount');
  });

  it('closes connections beyond server.maxConnections with 1013 server_full', async () => {
    t = await startApp({ server: { maxConnections: 1 } });
    await t.client();
    const c = await t.client();
    await expectClose(c, 1013, 'server_full');
    expect(c.of('error')[0]!.retry_after_ms).toBe(5000);
  });
});
