/**
 * Bad input gets its documented error and loses nothing: the connection (or at least the process)
 * keeps serving.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startApp, until, type TestApp } from '../helpers/app.js';
import { gatedProviders } from '../helpers/gated-providers.js';

let t: TestApp;
afterEach(async () => {
  await t?.close();
});

describe('malformed frames', () => {
  it.each([
    ['non-JSON', 'hello there', 'invalid_message', 'not valid JSON'],
    ['a JSON array', '[1,2]', 'invalid_message', 'JSON object'],
    ['an empty text frame', '', 'invalid_message', 'not valid JSON'],
    ['a missing type', '{"id":"1"}', 'invalid_message', '"type" must be a string'],
    ['an unknown type', '{"type":"dance","id":"u"}', 'unknown_type', 'unknown type "dance"'],
    ['a wrong field type', '{"type":"turn.text","id":"w","text":42}', 'invalid_message', '"text"'],
    ['a missing field', '{"type":"translate","id":"m","text":"hi"}', 'invalid_message', '"target_language" is required'],
    ['an unknown field', '{"type":"ping","idd":1}', 'invalid_message', 'unknown field "idd"'],
    ['a bad enum', '{"type":"input_audio.commit","id":"e","purpose":"song"}', 'invalid_message', '"purpose" must be one of "turn", "assessment"'],
  ])('%s gets %s and the connection stays', async (_name, frame, code, text) => {
    t = await startApp();
    const c = await t.session();
    c.send(frame);
    const err = await c.waitFor('error');
    expect(err.code).toBe(code);
    expect(err.message).toContain(text);
    expect(err.close_code).toBeUndefined();
    c.send({ type: 'ping', id: 'still-here' });
    await c.waitFor('pong');
  });

  it('echoes the request id of an invalid request', async () => {
    t = await startApp();
    const c = await t.session();
    c.send('{"type":"turn.text","id":"r-7","text":false}');
    expect((await c.waitFor('error')).request_id).toBe('r-7');
  });

  it('invalid UTF-8 in a text frame gets invalid_message, not a bare close', async () => {
    t = await startApp();
    const c = await t.session();
    c.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    expect((await c.waitFor('error')).message).toContain('UTF-8');
    expect(c.closeInfo).toBeUndefined();
  });

  it('an empty binary frame gets invalid_message', async () => {
    t = await startApp();
    const c = await t.session();
    c.sendBinary(Buffer.alloc(0));
    expect((await c.waitFor('error')).message).toContain('empty binary frame');
  });
});

describe('out-of-order requests', () => {
  it('binary audio before session.start gets session_not_started', async () => {
    t = await startApp();
    const c = await t.client();
    c.sendBinary(Buffer.alloc(320));
    expect((await c.waitFor('error')).code).toBe('session_not_started');
  });

  it.each(['turn.text', 'translate', 'input_audio.commit'])('%s before session.start gets session_not_started with its id', async (type) => {
    t = await startApp();
    const c = await t.client();
    const msg: Record<string, unknown> = { type, id: 'early' };
    if (type === 'turn.text') msg.text = 'hola';
    if (type === 'translate') Object.assign(msg, { text: 'hola', target_language: 'en' });
    if (type === 'input_audio.commit') msg.purpose = 'turn';
    c.send(msg);
    expect(await c.waitFor('error')).toMatchObject({ code: 'session_not_started', request_id: 'early' });
  });

  it('a second session.start gets session_already_started', async () => {
    t = await startApp();
    const c = await t.session();
    c.send({ type: 'session.start', id: 'again', language: 'es' });
    expect(await c.waitFor('error')).toMatchObject({ code: 'session_already_started', request_id: 'again' });
  });

  it('session.start without language (and no resume_token) gets invalid_message', async () => {
    t = await startApp();
    const c = await t.client();
    c.send({ type: 'session.start', id: 's' });
    expect((await c.waitFor('error')).message).toContain('"language" is required');
  });

  it('audio and a commit sent right behind session.start wait for the session', async () => {
    t = await startApp();
    const c = await t.client();
    c.send({ type: 'session.start', language: 'es' });
    c.sendBinary(Buffer.alloc(16000, 3));
    c.send({ type: 'input_audio.commit', id: 'quick', purpose: 'turn' });
    expect((await c.waitFor('transcript')).request_id).toBe('quick');
    expect(c.of('error')).toHaveLength(0);
  });
});

describe('repeated invalid messages', () => {
  it('tolerates 10 within 60 s and closes with 1008 on the 11th', async () => {
    t = await startApp();
    const c = await t.session();
    for (let i = 0; i < 10; i++) c.send('garbage');
    c.send({ type: 'ping', id: 'ok' });
    await c.waitFor('pong');
    expect(c.of('error')).toHaveLength(10);
    c.send('garbage');
    const closed = await c.waitClose();
    expect(closed.code).toBe(1008);
    expect(c.of('error').at(-1)).toMatchObject({ code: 'invalid_message', close_code: 1008 });
  });

  it.each([
    ['empty commits', (i: number) => ({ type: 'input_audio.commit', id: `e${i}`, purpose: 'turn' })],
    ['assessments without reference_text', (i: number) => ({ type: 'input_audio.commit', id: `a${i}`, purpose: 'assessment' })],
  ])('counts %s (found invalid by the session) toward the 1008 close', async (_name, message) => {
    t = await startApp();
    const c = await t.session();
    for (let i = 0; i < 10; i++) c.send(message(i));
    c.send({ type: 'ping', id: 'ok' });
    await c.waitFor('pong');
    expect(c.of('error').map((e) => e.code)).toEqual(Array(10).fill('invalid_message'));
    c.send(message(10));
    expect((await c.waitClose()).code).toBe(1008);
    expect(c.of('error').at(-1)).toMatchObject({ code: 'invalid_message', close_code: 1008 });
  });

  it('counts a request id already in flight toward the 1008 close', async () => {
    // The first turn waits at a gated upstream, so every later turn with its id is a duplicate.
    const gate = gatedProviders();
    t = await startApp({ providers: gate.providers });
    const c = await t.session();
    c.send({ type: 'turn.text', id: 'dup', text: 'hola' });
    await gate.started;
    for (let i = 0; i < 10; i++) c.send({ type: 'turn.text', id: 'dup', text: 'hola' });
    await until(() => c.of('error').length === 10, 3000, '10 errors');
    expect(c.closeInfo).toBeUndefined();
    c.send({ type: 'turn.text', id: 'dup', text: 'hola' });
    expect((await c.waitClose()).code).toBe(1008);
    gate.open();
  });

  it('forgets invalid messages older than 60 s', async () => {
    t = await startApp({ plan: { idleTimeoutSeconds: 600 } });
    const c = await t.session();
    for (let i = 0; i < 10; i++) c.send('garbage');
    await until(() => c.of('error').length === 10, 3000, '10 errors');
    t.scheduler!.advanceBy(60_000);
    for (let i = 0; i < 10; i++) c.send('garbage');
    await until(() => c.of('error').length === 20, 3000, '20 errors');
    c.send({ type: 'ping', id: 'alive' });
    await c.waitFor('pong');
    expect(c.closeInfo).toBeUndefined();
  });

  it('request errors other than invalid messages never close the connection', async () => {
    t = await startApp();
    const c = await t.client();
    for (let i = 0; i < 15; i++) c.send({ type: 'turn.text', id: i, text: 'hola' });
    await until(() => c.of('error').length === 15, 3000, '15 errors');
    expect(c.of('error').every((e) => e.code === 'session_not_started')).toBe(true);
    c.send({ type: 'ping', id: 'alive' });
    await c.waitFor('pong');
  });
});

describe('isolation', () => {
  it('a connection flooded with garbage does not disturb another session\'s turn', async () => {
    t = await startApp({ plan: { messagesPerSecond: 1000, messageBurst: 1000, messageQueue: 1000 } });
    const good = await t.session();
    const bad = await t.session();
    good.send({ type: 'turn.text', id: 'good-turn', text: 'Hola, ¿qué tal?' });
    for (let i = 0; i < 500; i++) bad.send(i % 2 ? '{"type":' : Buffer.alloc(0).toString());
    const end = await good.waitFor('reply.audio.end');
    expect(end.request_id).toBe('good-turn');
    expect((await bad.waitClose()).code).toBe(1008);
    expect(good.closeInfo).toBeUndefined();
    expect(good.of('error')).toHaveLength(0);
  });
});

describe('secrets', () => {
  it('never writes API keys, tokens or resume tokens to the logs', async () => {
    t = await startApp();
    const token = await t.token();
    const c = await t.client({ token, via: 'query' });
    c.send({ type: 'session.start', language: 'es' });
    const created = await c.waitFor('session.created');
    const bad = await t.client({ token, via: 'query' }); // reused: logged as refused
    await bad.waitClose();
    await t.rest('GET', '/v1/usage');
    await t.rest('GET', '/v1/usage', undefined, 'sk_wrong_but_secret_value');
    const all = t.logs.raw.join('\n');
    expect(t.logs.lines.length).toBeGreaterThan(3);
    expect(all).not.toContain(token);
    expect(all).not.toContain(created.resume_token);
    expect(all).not.toContain('sk_test_0123456789abcdef');
    expect(all).not.toContain('sk_wrong_but_secret_value');
  });
});

describe('invalid request ids (never echoed)', () => {
  it.each([
    ['an empty id', ''],
    ['a 200,000-character id', 'x'.repeat(200_000)],
    ['a fractional id', 1.5],
    ['an id beyond the safe integers', 2 ** 60],
    ['an object id', { nested: true }],
  ])('%s gets invalid_message without request_id, and every event keeps to the schema', async (_name, id) => {
    t = await startApp({ plan: { maxFrameBytes: 1_000_000 } });
    const c = await t.session();
    c.send({ type: 'turn.text', id, text: 'hola' });
    const err = await c.waitFor('error');
    expect(err.code).toBe('invalid_message');
    expect(err).not.toHaveProperty('request_id');
    expect(c.invalid).toEqual([]);
  });
});

describe('WebSocket framing errors (RFC 6455)', () => {
  /** A masked client frame written straight to the socket (ws will not send a broken one itself). */
  function rawFrame(firstByte: number, payload: Buffer = Buffer.alloc(0)): Buffer {
    const mask = Buffer.from([1, 2, 3, 4]);
    const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
    return Buffer.concat([Buffer.from([firstByte, 0x80 | payload.length]), mask, body]);
  }
  const write = (c: { ws: unknown }, frame: Buffer): void => {
    (c.ws as { _socket: { write(b: Buffer): void } })._socket.write(frame);
  };

  it.each([
    ['an unknown opcode', 1002, 'protocol_error', rawFrame(0x80 | 0x3)],
    ['RSV bits set', 1002, 'protocol_error', rawFrame(0x80 | 0x40 | 0x1, Buffer.from('{}'))],
    ['a fragmented ping', 1002, 'protocol_error', rawFrame(0x9)],
    ['a close frame with an invalid code', 1002, 'protocol_error', rawFrame(0x88, Buffer.from([0x03, 0xe7]))],
    ['a close frame whose reason is not UTF-8', 1007, 'protocol_error', rawFrame(0x88, Buffer.from([0x03, 0xe8, 0xff, 0xfe]))],
  ])('%s: close %s after error %s with that close_code', async (_name, close, code, frame) => {
    t = await startApp();
    const c = await t.session();
    write(c, frame);
    expect((await c.waitClose()).code).toBe(close);
    expect(c.of('error').at(-1)).toMatchObject({ code, close_code: close });
    expect(c.invalid).toEqual([]);
    // The gateway decided this close: it is counted as its own, not as a client close.
    await until(() => t.app.gateway.metrics.totals().closes[String(close)] === 1, 3000, 'the close counted');
  });

  it('a ping flood (more than 60 pings waiting for their pong) drops the peer, logged and counted as the gateway\'s 1006', async () => {
    t = await startApp();
    const c = await t.session();
    (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    write(c, Buffer.concat(Array.from({ length: 500 }, () => rawFrame(0x89))));
    await until(() => t.logs.find((l) => l.msg === 'peer dropped: ping flood') !== undefined, 5000, 'the flood log line');
    await until(() => t.app.gateway.metrics.totals().closes['1006'] === 1, 5000, 'the close counted');
    expect(t.app.gateway.connections.size).toBe(0);
  });
});

describe('slow requests', () => {
  it('an upgrade whose headers never end gets 408 and its socket closed after server.headersTimeoutSeconds', async () => {
    t = await startApp({ server: { headersTimeoutSeconds: 1 } });
    const { connect: tcp } = await import('node:net');
    const port = Number(new URL(t.url).port);
    const started = Date.now();
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = tcp(port, '127.0.0.1', () => socket.write('GET /v1/realtime HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n'));
      let got = '';
      socket.on('data', (d) => (got += d.toString()));
      socket.on('close', () => resolve(got));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(Date.now() - started).toBeLessThan(30_000); // Node's defaults would hold it 60-90 s
  }, 40_000);
});
