/**
 * Attacks on the HTTP upgrade and on the TCP connection itself: malformed and hostile upgrade
 * requests, huge headers, garbage, pipelining, slowloris, dead and half-closed peers, resets. Each
 * variant has its allowed answers (the oracle table in oracle.ts names them); anything else is a
 * finding, as is a 5xx, a hang, or a connection the server never lets go.
 */
import { randomBytes } from 'node:crypto';
import type { HttpCase } from './cases.js';
import { ATTACK_ORIGIN } from './config.js';
import { showEvent, truncate } from './events.js';
import { Rng } from './random.js';
import { RawClient, standardHeaders, upgradeRequest } from './raw-client.js';
import type { Stats } from './stats.js';
import { encodeFrame, Opcode, closePayload } from './wire.js';

export interface HttpContext {
  readonly port: number;
  readonly seed: number;
  readonly apiKey: string;
  readonly stats: Stats;
  readonly heartbeatSeconds: number;
  /** Longest a slowloris socket is held (ms). */
  readonly slowlorisMs: number;
  readonly stepTimeoutMs: number;
  /** Source address of attacks that fail authentication (keeps the auth throttle away from others). */
  readonly authFailureAddress: string;
  readonly trace?: ((line: string) => void) | undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A request for a report: the API key never printed. */
function show(req: Buffer | string, key: string): string {
  const s = (typeof req === 'string' ? req : req.toString('latin1')).split(key).join('<api key>');
  return truncate(JSON.stringify(s), 240);
}

interface Expect {
  /** Allowed HTTP statuses; 0 = no answer at all (the server closed, or waited for more input). */
  readonly statuses: readonly number[];
  /** How long to wait for an answer (default: the step timeout); short where none may come. */
  readonly waitMs?: number;
  /** After a 101: the error event and close code that must follow (a refusal), if any. */
  readonly refusal?: { readonly codes: readonly string[]; readonly closeCodes: readonly number[] };
  readonly what: string;
}

export async function runHttpCase(c: HttpCase, ctx: HttpContext): Promise<void> {
  const rng = new Rng(c.seed);
  const problems: string[] = [];
  const observed: string[] = [];
  let input = '';
  let expected = '';
  let frames = 0;
  const clients: RawClient[] = [];
  const open = async (localAddress?: string, autoPong = true): Promise<RawClient> => {
    const cl = new RawClient({ port: ctx.port, autoPong, onItem: ctx.stats.onItem, ...(localAddress ? { localAddress } : {}) });
    clients.push(cl);
    await cl.connected;
    return cl;
  };
  const key = ctx.apiKey;

  /** Sends a request and judges the status (and, after a 101, the refusal or a working session). */
  const request = async (req: Buffer, exp: Expect, localAddress?: string): Promise<RawClient> => {
    input = show(req, key);
    expected = exp.what;
    const cl = await open(localAddress);
    cl.write(req);
    const head = await cl.response(exp.waitMs ?? ctx.stepTimeoutMs);
    const status = head?.status ?? 0;
    observed.push(head ? `HTTP ${status}${cl.body ? ` ${truncate(cl.body, 120)}` : ''}` : cl.isEnded ? 'closed without an answer' : 'no answer yet');
    if (!exp.statuses.includes(status)) problems.push(`HTTP ${status || '(none)'}; allowed ${exp.statuses.map((s) => s || '(none)').join('|')}`);
    if (status >= 500 && status !== 505) problems.push(`a server error (${status}) for a client's bad request`);
    if (status === 101) {
      if (exp.refusal) await judgeRefusal(cl, exp.refusal);
      else await judgeWorking(cl);
    } else if (head && !cl.isEnded) {
      cl.end();
    }
    return cl;
  };

  /** After a 101 that refuses: one error event with close_code, then that close (CONTRACT §5). */
  const judgeRefusal = async (cl: RawClient, r: NonNullable<Expect['refusal']>): Promise<void> => {
    await cl.waitUntil(() => cl.closeFrame !== undefined, ctx.stepTimeoutMs);
    const events = cl.items.flatMap((it) => (it.kind === 'event' && it.parsed.event ? [it.parsed.event] : []));
    observed.push(...events.map((e) => showEvent(e)), cl.closeFrame ? `close ${cl.closeFrame.code}` : 'no close');
    const err = events.find((e) => e.type === 'error') as { code?: string; close_code?: number } | undefined;
    if (!err || !r.codes.includes(err.code ?? '')) problems.push(`expected error ${r.codes.join('|')}`);
    if (!cl.closeFrame || !r.closeCodes.includes(cl.closeFrame.code ?? -1)) problems.push(`expected close ${r.closeCodes.join('|')}`);
    else if (err && err.close_code !== cl.closeFrame.code) problems.push(`error close_code ${err.close_code} but close ${cl.closeFrame.code}`);
  };

  /** After a 101 that admits: a session starts and answers a ping, then a close 1000 is echoed. */
  const judgeWorking = async (cl: RawClient): Promise<void> => {
    cl.sendJson({ type: 'session.start', language: 'es' });
    cl.sendJson({ type: 'ping', id: 'alive' });
    frames += 2;
    const ok = await cl.waitUntil(() => cl.items.some((it) => it.kind === 'event' && it.parsed.event?.type === 'pong'), ctx.stepTimeoutMs);
    const events = cl.items.flatMap((it) => (it.kind === 'event' && it.parsed.event ? [it.parsed.event] : []));
    if (!ok || !events.some((e) => e.type === 'session.created')) {
      observed.push(...events.map((e) => showEvent(e)));
      problems.push('an admitted connection did not start a session and answer a ping');
      return;
    }
    cl.send(Opcode.close, closePayload(1000));
    frames++;
    await cl.waitUntil(() => cl.closeFrame !== undefined, ctx.stepTimeoutMs);
    if (cl.closeFrame?.code !== 1000) problems.push(`close 1000 answered with ${cl.closeFrame?.code ?? 'nothing'}`);
  };

  /** The server must let a connection go once we have ended our side. */
  const mustEnd = async (cl: RawClient, why: string, timeoutMs = 5000): Promise<void> => {
    if (!(await cl.closed(timeoutMs))) problems.push(`${why}: the server kept the connection open ${timeoutMs} ms after our FIN`);
  };

  const headers = (extra: [string, string][] = []): [string, string][] => standardHeaders(key, extra);
  const replace = (name: string, value: string | undefined): [string, string][] =>
    headers().flatMap(([k, v]): [string, string][] => (k.toLowerCase() === name.toLowerCase() ? (value === undefined ? [] : [[k, value]]) : [[k, v]]));
  const FOUR = Array.from({ length: 100 }, (_, i) => 400 + i);

  const deadline = sleep(60_000).then(() => 'timeout' as const);
  const work = (async (): Promise<void> => {
    switch (c.variant) {
      case 'bad-credentials': {
        const sub = rng.int(0, 4);
        const token = `pt_${randomBytes(32).toString('base64url')}`;
        const reqs = [
          upgradeRequest({ headers: standardHeaders() }),
          upgradeRequest({ headers: standardHeaders(`sk_wrong_${randomBytes(12).toString('hex')}`) }),
          upgradeRequest({ headers: standardHeaders(undefined, [['Sec-WebSocket-Protocol', `parley.v1, parley.token.${token}`]]) }),
          upgradeRequest({ path: `/v1/realtime?token=${rng.pick([token, '%00%ZZ', 'a'.repeat(5000), 'pt_' + 'x'.repeat(300), '../../etc/passwd'])}`, headers: standardHeaders() }),
          upgradeRequest({ headers: standardHeaders(undefined, [['Authorization', rng.pick(['Bearer', 'Basic dXNlcjpwYXNz', 'Bearer a b', `Bearer ${'x'.repeat(8000)}`, 'bearer  sk_not_a_key_123'])]]) }),
        ];
        // Throttled failed authentication answers rate_limited + 4029 (CONTRACT §4) instead of 4001.
        await request(reqs[sub]!, { statuses: [101], refusal: { codes: ['unauthorized', 'rate_limited'], closeCodes: [4001, 4029] }, what: '101, error unauthorized + close 4001 (or rate_limited + 4029 once failures are throttled)' }, ctx.authFailureAddress);
        return;
      }
      case 'bad-origin': {
        const origin = rng.pick(['http://evil.example', 'null', `${ATTACK_ORIGIN}.evil.example`, `${ATTACK_ORIGIN}/`, 'x'.repeat(5000), 'file://']);
        await request(upgradeRequest({ headers: headers([['Origin', origin]]) }), { statuses: [101], refusal: { codes: ['forbidden'], closeCodes: [1008] }, what: '101, error forbidden + close 1008' });
        return;
      }
      case 'malformed-upgrade': {
        const sub = rng.int(0, 11);
        const variants: [Buffer, readonly number[], string][] = [
          [upgradeRequest({ headers: replace('Upgrade', undefined) }), FOUR, 'no Upgrade header: 4xx'],
          [upgradeRequest({ headers: replace('Upgrade', rng.pick(['h2c', 'websocketx', '', 'websocket, h2c'])) }), [101, ...FOUR], 'odd Upgrade header: 4xx (or 101 where it still names websocket)'],
          [upgradeRequest({ headers: replace('Connection', 'keep-alive') }), FOUR, 'Connection without "Upgrade": 4xx'],
          [upgradeRequest({ headers: replace('Sec-WebSocket-Key', undefined) }), [400], 'no Sec-WebSocket-Key: 400'],
          [upgradeRequest({ headers: replace('Sec-WebSocket-Key', rng.pick(['abc', '', 'AAAAAAAAAAAAAAAAAAAAAA', '!!!!!!!!!!!!!!!!!!!!!!=='])) }), [400], 'invalid Sec-WebSocket-Key: 400'],
          [upgradeRequest({ headers: replace('Sec-WebSocket-Version', rng.pick(['8', '12', '14', 'abc', '', undefined as unknown as string])) }), [400, 426], 'wrong Sec-WebSocket-Version: 400 or 426 (RFC 6455 §4.4)'],
          [upgradeRequest({ headers: headers([['Sec-WebSocket-Key', randomBytes(16).toString('base64')]]) }), [400], 'two Sec-WebSocket-Key headers: 400'],
          [upgradeRequest({ method: rng.pick(['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']), headers: headers() }), FOUR, 'not GET: 4xx'],
          [upgradeRequest({ version: 'HTTP/1.0', headers: headers() }), [101, ...FOUR], 'HTTP/1.0: 101 or 4xx'],
          [upgradeRequest({ path: rng.pick(['/v1/realtime/', '/v1/realtime?', '//v1/realtime', '/v1/REALTIME', '/v1/%72ealtime', '/v1/realtime/..', '/v1/realtime?token', '*']), headers: headers() }), [101, ...FOUR], 'odd path: 101 or 4xx'],
          [upgradeRequest({ headers: headers([['Sec-WebSocket-Protocol', rng.pick(['parley.token.a b', 'parley.v1,,', '"quoted"', 'parley.token.pt_x/y', ' '])]]) }), [400], 'invalid Sec-WebSocket-Protocol syntax: 400'],
          [upgradeRequest({ headers: headers([['Sec-WebSocket-Extensions', rng.pick(['permessage-deflate; client_max_window_bits=99', ';;;', 'x-unknown', 'permessage-deflate; server_no_context_takeover=1'])]]) }), [101, 400], 'odd Sec-WebSocket-Extensions (none negotiated): 101 or 400'],
        ];
        const [req, statuses, what] = variants[sub]!;
        await request(req, { statuses, what });
        return;
      }
      case 'huge-headers': {
        const sub = rng.int(0, 4);
        const variants: [Buffer, readonly number[], string][] = [
          [upgradeRequest({ headers: headers([['X-Big', 'a'.repeat(20_000)]]) }), [431, 0], 'a 20 KB header: 431'],
          [upgradeRequest({ headers: headers(Array.from({ length: 300 }, (_, i): [string, string] => [`X-H${i}`, 'v'.repeat(80)])) }), [431, 0], '300 headers (24 KB): 431'],
          [upgradeRequest({ path: `/v1/realtime?x=${'a'.repeat(20_000)}`, headers: headers() }), [414, 431, 0], 'a 20 KB URL: 414 or 431'],
          [upgradeRequest({ headers: headers([['X-Huge', 'a'.repeat(100_000)]]) }), [431, 0], 'a 100 KB header: 431 (or the connection cut while we write)'],
          [upgradeRequest({ headers: headers(Array.from({ length: 80 }, (_, i): [string, string] => [`X-H${i}`, 'v'.repeat(90)])) }), [101], '8 KB of headers, under the limit: 101'],
        ];
        const [req, statuses, what] = variants[sub]!;
        const cl = await request(req, { statuses, what });
        if (!cl.isEnded) cl.end();
        return;
      }
      case 'garbage': {
        const sub = rng.int(0, 10);
        const reqLine = 'GET /v1/realtime HTTP/1.1\r\n';
        const valid = upgradeRequest({ headers: headers() }).toString('latin1');
        const variants: Buffer[] = [
          rng.bytes(rng.int(1, 2000)),
          Buffer.from(`${reqLine}${Array.from({ length: rng.int(1, 10) }, () => rng.string(rng.int(1, 60), 'abc:;\t "<>{}\u0001xyz')).join('\r\n')}\r\n\r\n`, 'latin1'),
          Buffer.from(`${reqLine}Host: x\r\nX-A: a\u0000b\r\n\r\n`, 'latin1'),
          Buffer.from(valid.replace(/\r\n/g, '\n'), 'latin1'),
          Buffer.from(`${reqLine}Host: x\r\nno colon here\r\n\r\n`, 'latin1'),
          Buffer.from('G@T /v1/realtime HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1'),
          Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'),
          Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]), rng.bytes(160)]),
          Buffer.from('GET /v1/realtime HTTP/9.9\r\nHost: x\r\n\r\n', 'latin1'),
          Buffer.from(`${reqLine}Host: x\r\nX-A: a\r\n folded\r\n\r\n`, 'latin1'),
          Buffer.from(`POST /v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 'latin1'),
        ];
        // Bare LF (sub 3) may be read as a valid upgrade; anything else must be refused or left unanswered.
        const statuses = sub === 3 ? [101, 400, 0] : [0, 505, ...FOUR];
        // Input the parser is still waiting on gets no answer until we end it: wait 2 s, not the step timeout.
        const cl = await request(variants[sub]!, { statuses, waitMs: 2000, what: 'garbage: 4xx (or 505), or no answer; never 5xx, never 101' });
        cl.end();
        await mustEnd(cl, 'garbage');
        return;
      }
      case 'pipelined': {
        // The upgrade and the first frames in one write: the frames are the 101's "head" bytes.
        const req = Buffer.concat([
          upgradeRequest({ headers: headers() }),
          encodeFrame({ opcode: Opcode.text, payload: Buffer.from(JSON.stringify({ type: 'session.start', language: 'es', id: 'pipelined' })) }),
          encodeFrame({ opcode: Opcode.text, payload: Buffer.from(JSON.stringify({ type: 'ping', id: 'p1' })) }),
        ]);
        frames += 2;
        input = show(req, key);
        expected = '101, session.created (request_id pipelined), pong (request_id p1)';
        const cl = await open();
        cl.write(req);
        const ok = await cl.waitUntil(() => cl.items.some((it) => it.kind === 'event' && it.parsed.event?.type === 'pong'), ctx.stepTimeoutMs);
        const events = cl.items.flatMap((it) => (it.kind === 'event' && it.parsed.event ? [it.parsed.event] : []));
        observed.push(`HTTP ${cl.head?.status ?? '(none)'}`, ...events.map((e) => showEvent(e)));
        const created = events.find((e) => e.type === 'session.created') as { request_id?: unknown } | undefined;
        const pong = events.find((e) => e.type === 'pong') as { request_id?: unknown } | undefined;
        if (cl.head?.status !== 101 || !ok || created?.request_id !== 'pipelined' || pong?.request_id !== 'p1') problems.push('frames pipelined behind the upgrade were not answered in order');
        cl.send(Opcode.close, closePayload(1000));
        frames++;
        await mustEnd(cl, 'pipelined close', ctx.stepTimeoutMs);
        return;
      }
      case 'body-on-upgrade': {
        const chunked = rng.bool();
        const body = chunked ? Buffer.from('5\r\nhello\r\n0\r\n\r\n') : rng.bytes(rng.int(1, 64));
        const req = Buffer.concat([upgradeRequest({ headers: headers([chunked ? ['Transfer-Encoding', 'chunked'] : ['Content-Length', String(body.length)]]) }), body]);
        input = show(req, key);
        expected = '400, or 101 with the body read as (malformed) frames: a close, never internal_error';
        const cl = await open();
        cl.write(req);
        const head = await cl.response(ctx.stepTimeoutMs);
        observed.push(`HTTP ${head?.status ?? '(none)'}`);
        if (head && head.status >= 500) problems.push(`HTTP ${head.status}`);
        await sleep(200);
        cl.end();
        await mustEnd(cl, 'body on upgrade');
        return;
      }
      case 'slowloris':
        await slowloris(rng, ctx, open, (s) => problems.push(s), (s) => observed.push(s), (i, e) => {
          input = i;
          expected = e;
        }, () => frames++);
        return;
      case 'dead-peer': {
        // A peer that stops answering pings (and, half the time, stops reading too): dropped by the heartbeat.
        const stall = rng.bool();
        input = `upgrade, session.start, then no pongs${stall ? ' and no reads' : ''}`;
        const limitMs = 2 * ctx.heartbeatSeconds * 1000 + 3000;
        expected = `TCP closed by the server within 2 heartbeats (+3 s): ${limitMs} ms`;
        const cl = await open();
        cl.write(upgradeRequest({ headers: headers() }));
        await cl.response(ctx.stepTimeoutMs);
        cl.sendJson({ type: 'session.start', language: 'es' });
        frames++;
        await cl.waitUntil(() => cl.items.some((it) => it.kind === 'event' && it.parsed.event?.type === 'session.created'), ctx.stepTimeoutMs);
        cl.autoPong = false;
        const t0 = Date.now();
        if (stall) {
          cl.stall();
          await sleep(limitMs - 1000);
          cl.unstall();
          await cl.closed(2000);
        } else {
          await cl.closed(limitMs);
        }
        observed.push(cl.isEnded ? `dropped after ${Date.now() - t0} ms` : `still open after ${Date.now() - t0} ms`);
        if (!cl.isEnded) problems.push('a peer that answers no ping was not dropped');
        return;
      }
      case 'half-close': {
        const sub = rng.int(0, 2);
        input = ['FIN right after the upgrade request', 'FIN after session.start, no close frame', 'FIN halfway through the upgrade request'][sub]!;
        expected = 'the server closes its side too, within 5 s';
        const cl = await open();
        const req = upgradeRequest({ headers: headers() });
        if (sub === 2) {
          cl.write(req.subarray(0, Math.floor(req.length / 2)));
          cl.end();
        } else {
          cl.write(req);
          if (sub === 1) {
            await cl.response(ctx.stepTimeoutMs);
            cl.sendJson({ type: 'session.start', language: 'es' });
            frames++;
            await cl.waitUntil(() => cl.items.some((it) => it.kind === 'event'), ctx.stepTimeoutMs);
          }
          cl.end();
        }
        await mustEnd(cl, 'half-closed');
        observed.push(cl.isEnded ? 'closed' : 'open');
        return;
      }
      case 'reset-upgrade': {
        const sub = rng.int(0, 3);
        input = ['RST right after the upgrade request', 'RST halfway through the upgrade request', 'RST right after the 101', 'RST right after session.start'][sub]!;
        expected = 'nothing to see from here; the slots it held must be released (checked at the end)';
        const cl = await open();
        const req = upgradeRequest({ headers: headers() });
        if (sub === 1) cl.write(req.subarray(0, rng.int(1, req.length - 1)));
        else cl.write(req);
        if (sub >= 2) await cl.response(ctx.stepTimeoutMs);
        if (sub === 3) {
          cl.sendJson({ type: 'session.start', language: 'es' });
          frames++;
        }
        cl.reset();
        return;
      }
      case 'random-stream': {
        const n = rng.int(1, 4096);
        input = `upgrade, then ${n} random bytes as frames`;
        expected = 'any documented answer or close; the server lets go after our FIN';
        const cl = await open();
        cl.write(upgradeRequest({ headers: headers() }));
        await cl.response(ctx.stepTimeoutMs);
        if (rng.bool()) {
          cl.sendJson({ type: 'session.start', language: 'es' });
          frames++;
        }
        cl.write(rng.bytes(n));
        frames++;
        await sleep(300);
        cl.end();
        await mustEnd(cl, 'random stream');
        observed.push(cl.closeFrame ? `close ${cl.closeFrame.code}` : 'no close frame');
        return;
      }
    }
  })();
  try {
    const r = await Promise.race([work.then(() => 'done' as const), deadline]);
    if (r === 'timeout') problems.push('the case did not finish within 60 s');
  } catch (err) {
    problems.push(`the fuzzer failed: ${String(err)}`);
  } finally {
    for (const cl of clients) cl.socket.destroy();
  }
  ctx.stats.http(c.variant, frames);
  ctx.stats.httpCases++;
  ctx.trace?.(`http [${c.variant}] ${input}\n  expected: ${expected}\n  observed: ${observed.join(' · ')}`);
  if (problems.length > 0) {
    ctx.stats.finding({ seed: ctx.seed, caseIndex: c.index, cls: c.variant, input, expected: [expected], observed, problems }, true);
    ctx.trace?.(`  UNEXPECTED: ${problems.join('; ')}`);
  }
}

/** Slowloris: a request dripped over seconds. Complete: it must still work. Never complete: held, then cut. */
async function slowloris(
  rng: Rng,
  ctx: HttpContext,
  open: () => Promise<RawClient>,
  problem: (s: string) => void,
  observe: (s: string) => void,
  describe: (input: string, expected: string) => void,
  frame: () => void,
): Promise<void> {
  const sub = rng.int(0, 2);
  const cl = await open();
  const req = upgradeRequest({ headers: standardHeaders(ctx.apiKey) });
  if (sub === 0) {
    describe('a valid upgrade dripped a few bytes at a time', '101 once complete, then a working session');
    const gapMs = Math.max(5, Math.floor(ctx.slowlorisMs / (req.length / 4)));
    for (let off = 0; off < req.length && !cl.isEnded; ) {
      const n = rng.int(1, 8);
      cl.write(req.subarray(off, off + n));
      off += n;
      await sleep(gapMs);
    }
    const head = await cl.response(ctx.stepTimeoutMs);
    observe(`HTTP ${head?.status ?? '(none)'}`);
    if (head?.status !== 101) {
      problem(`a slow but valid upgrade got ${head?.status ?? 'no answer'}`);
      return;
    }
    cl.sendJson({ type: 'ping', id: 'slow' });
    frame();
    if (!(await cl.waitUntil(() => cl.items.some((it) => it.kind === 'event' && it.parsed.event?.type === 'pong'), ctx.stepTimeoutMs))) problem('no pong after a slow upgrade');
    return;
  }
  if (sub === 1) {
    describe(`header lines dripped for ${ctx.slowlorisMs} ms, the request never finished`, 'no answer required; other sessions unaffected; the socket is freed when we cut it');
    const end = Date.now() + ctx.slowlorisMs;
    cl.write(Buffer.from('GET /v1/realtime HTTP/1.1\r\nHost: 127.0.0.1\r\n'));
    let i = 0;
    while (Date.now() < end && !cl.isEnded) {
      cl.write(Buffer.from(`X-Slow-${i++}: ${rng.string(rng.int(1, 20))}\r\n`));
      await sleep(rng.int(100, 400));
    }
    ctx.stats.slowlorisHeld++;
    if (cl.isEnded) ctx.stats.slowlorisClosedByServer++;
    observe(cl.isEnded ? `closed by the server after ${i} lines` : `still open after ${i} lines; cut`);
    if (cl.head && cl.head.status >= 500) problem(`HTTP ${cl.head.status}`);
    cl.reset();
    return;
  }
  describe('a ping frame dripped one byte at a time after a normal upgrade', 'the pong, once the frame is complete');
  cl.write(req);
  const head = await cl.response(ctx.stepTimeoutMs);
  if (head?.status !== 101) {
    problem(`upgrade got ${head?.status ?? 'no answer'}`);
    return;
  }
  const f = encodeFrame({ opcode: Opcode.text, payload: Buffer.from('{"type":"ping","id":"drip"}') });
  frame();
  const gapMs = Math.max(5, Math.floor(ctx.slowlorisMs / f.length / 2));
  cl.holdPongs();
  for (let off = 0; off < f.length; off++) {
    // The app pinged while the frame is half written: our pong cannot go inside it, and two
    // unanswered heartbeats make us a dead peer. Finish the frame, then answer.
    if (cl.pongsHeld) {
      cl.write(f.subarray(off));
      break;
    }
    cl.write(f.subarray(off, off + 1));
    await sleep(gapMs);
  }
  cl.releasePongs();
  const ok = await cl.waitUntil(() => cl.items.some((it) => it.kind === 'event' && it.parsed.event?.type === 'pong'), ctx.stepTimeoutMs);
  observe(ok ? 'pong' : 'no pong');
  if (!ok) problem('a frame dripped byte by byte was never answered');
}
