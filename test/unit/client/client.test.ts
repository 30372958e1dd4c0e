/**
 * ParleyClient's state machine with a scripted fake socket and injected timers and random:
 * reconnect policy per close code, retry_after_ms, stable-connection reset, requests across a
 * resume, the lost-request timeout, pacing of queued frames. Real-socket behaviour is covered by
 * test/integration/sdk.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { ParleyClient, type ClientTimers, type ClosedEvent, type ParleyClientOptions, type ReconnectEvent, type SessionLimits, type WebSocketLike } from '../../../src/client/index.js';
import { rejection } from '../../helpers/client-rejection.js';

class FakeTimers implements ClientTimers {
  private t = 1_000_000;
  private seq = 0;
  private readonly queue = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.queue.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.queue.delete(handle as number);
  }
  /** Runs every timer due within ms, in time order (then creation order), and leaves the clock at now + ms. */
  advance(ms: number): void {
    const target = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.queue) if (e[1].at <= target && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.queue.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = target;
  }
  get pending(): number {
    return this.queue.size;
  }
}

class FakeSocket implements WebSocketLike {
  readyState = 0;
  protocol = '';
  bufferedAmount = 0;
  binaryType = 'blob';
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  readonly sent: (string | Uint8Array)[] = [];
  closedWith: { code?: number; reason?: string } | undefined;
  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {}
  send(data: string | ArrayBuffer | ArrayBufferView): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(typeof data === 'string' ? data : new Uint8Array((data as Uint8Array).slice()));
  }
  close(code?: number, reason?: string): void {
    this.readyState = 3;
    this.closedWith = { code, reason };
  }
  // ---- the server's side ----
  accept(): void {
    this.readyState = 1;
    this.protocol = 'parley.v1';
    this.onopen?.({});
  }
  emit(event: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(event) });
  }
  binary(bytes: number[]): void {
    this.onmessage?.({ data: new Uint8Array(bytes).buffer });
  }
  drop(code: number, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  /** The JSON messages the client sent. */
  get json(): Record<string, unknown>[] {
    return this.sent.filter((d): d is string => typeof d === 'string').map((d) => JSON.parse(d) as Record<string, unknown>);
  }
  get audio(): Uint8Array[] {
    return this.sent.filter((d): d is Uint8Array => typeof d !== 'string');
  }
  /** The last request of a type the client sent. */
  last(type: string): Record<string, unknown> {
    const m = this.json.filter((j) => j.type === type).at(-1);
    if (m === undefined) throw new Error(`no ${type} sent; sent ${this.json.map((j) => j.type).join(',')}`);
    return m;
  }
}

const LIMITS: SessionLimits = {
  messages_per_second: 100,
  message_burst: 100,
  message_queue: 100,
  bytes_per_second: 1_048_576,
  byte_burst: 1_048_576,
  max_frame_bytes: 262_144,
  max_session_seconds: 1800,
  idle_timeout_seconds: 120,
  resume_window_seconds: 60,
  max_utterance_bytes: 26_214_400,
  max_text_chars: 2000,
  audio: { format: 'pcm16', sample_rate: 16000 },
};

/** Lets the token provider's promise and the client's awaits run (no timers involved). */
const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

function setup(opts: Partial<ParleyClientOptions> = {}) {
  const timers = new FakeTimers();
  const sockets: FakeSocket[] = [];
  let tokens = 0;
  class WS extends FakeSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols as string[]);
      sockets.push(this);
    }
  }
  const client = new ParleyClient({
    url: 'wss://gw.example/v1/realtime',
    token: async () => `pt_token${++tokens}`,
    session: { language: 'es', scenario: 'coffee' },
    WebSocket: WS,
    timers,
    random: () => 0.5,
    reconnect: { baseMs: 100, capMs: 10_000 },
    ...opts,
  });
  const closed: ClosedEvent[] = [];
  const reconnects: ReconnectEvent[] = [];
  const states: string[] = [];
  client.on('closed', (e) => closed.push(e));
  client.on('reconnect', (e) => reconnects.push(e));
  client.on('state', (e) => states.push(e.state));
  const sock = (i = -1): FakeSocket => {
    const s = sockets.at(i);
    if (s === undefined) throw new Error(`no socket ${i}`);
    return s;
  };
  /** Accepts the latest socket and answers its session.start. */
  const open = async (type: 'session.created' | 'session.resumed' = 'session.created', limits: SessionLimits = LIMITS): Promise<FakeSocket> => {
    await flush();
    const s = sock();
    s.accept();
    const start = s.last('session.start');
    s.emit({ type, request_id: start.id, session_id: 'sess_1', resume_token: 'rt_1', expires_at: '2026-11-23T12:30:00.000Z', limits });
    await flush();
    return s;
  };
  return { client, timers, sockets, sock, open, closed, reconnects, states, tokenCount: () => tokens };
}

describe('ParleyClient: connecting', () => {
  it('offers the token as a subprotocol, sends session.start, and resolves on session.created', async () => {
    const h = setup();
    const p = h.client.connect();
    await h.open();
    const info = await p;
    expect(h.sock().protocols).toEqual(['parley.v1', 'parley.token.pt_token1']);
    expect(h.sock().url).toBe('wss://gw.example/v1/realtime');
    expect(h.sock().binaryType).toBe('arraybuffer');
    expect(h.sock().json[0]).toEqual({ type: 'session.start', id: 'r1', language: 'es', scenario: 'coffee' });
    expect(info).toEqual({ sessionId: 'sess_1', resumeToken: 'rt_1', expiresAt: '2026-11-23T12:30:00.000Z', limits: LIMITS, resumed: false });
    expect(h.states).toEqual(['connecting', 'open']);
  });

  it('requests made while connecting wait, then go out in order after session.start', async () => {
    const h = setup();
    void h.client.connect();
    const t = h.client.turnText('Hola');
    const tr = h.client.translate('thanks', 'es');
    await flush();
    expect(h.sock().sent).toEqual([]); // not open yet: nothing goes
    await h.open();
    expect(h.sock().json.map((j) => j.type)).toEqual(['session.start', 'turn.text', 'translate']);
    expect(h.client.pendingRequests).toBe(2);
    h.sock().emit({ type: 'translation.result', request_id: h.sock().last('translate').id, text: 'gracias' });
    expect(await tr).toBe('gracias');
    void t;
  });

  it('requests before connect() or after a final close are refused with not_connected', async () => {
    const h = setup();
    expect((await rejection(h.client.ping())).code).toBe('not_connected');
    await expect(h.client.sendAudio(new Uint8Array(4))).rejects.toMatchObject({ code: 'not_connected' });
  });

  it('a first token provider failure rejects connect() with token_error and closes', async () => {
    const h = setup({
      token: async () => {
        throw new Error('backend down');
      },
    });
    const err = await rejection(h.client.connect());
    expect(err.code).toBe('token_error');
    expect(err.message).toContain('backend down');
    expect(h.client.state).toBe('closed');
    expect(h.sockets).toHaveLength(0);
  });

  it('a token a subprotocol cannot carry is refused before any socket opens', async () => {
    const h = setup({ token: 'pt bad/token' });
    const err = await rejection(h.client.connect());
    expect(err.code).toBe('token_error');
    expect(err.message).toContain('subprotocol');
    expect(h.sockets).toHaveLength(0);
  });

  it('a token provider failing during a reconnect counts as a failed attempt and is retried', async () => {
    let calls = 0;
    const h = setup({
      token: async () => {
        calls += 1;
        if (calls === 2) throw new Error('backend blip');
        return `pt_ok${calls}`;
      },
    });
    void h.client.connect();
    await h.open();
    h.sock().drop(1006);
    h.timers.advance(50);
    await flush();
    expect(h.reconnects.map((r) => r.attempt)).toEqual([1, 2]);
    expect(h.client.state).toBe('reconnecting');
    h.timers.advance(100);
    await h.open('session.resumed');
    expect(h.sock().protocols).toEqual(['parley.v1', 'parley.token.pt_ok3']);
  });

  it('connect() refuses a URL that is not ws(s):// and a missing WebSocket implementation', () => {
    expect(() => new ParleyClient({ url: 'https://x/v1/realtime', token: 't', session: { language: 'es' } })).toThrow(/ws:\/\//);
    const saved = (globalThis as { WebSocket?: unknown }).WebSocket;
    (globalThis as { WebSocket?: unknown }).WebSocket = undefined;
    try {
      expect(() => new ParleyClient({ url: 'ws://x/v1/realtime', token: 't', session: { language: 'es' } })).toThrow(/WebSocket/);
    } finally {
      (globalThis as { WebSocket?: unknown }).WebSocket = saved;
    }
  });
});

describe('ParleyClient: requests', () => {
  it('a turn collects transcript, text and the binary audio between reply.audio.start and end', async () => {
    const h = setup();
    void h.client.connect();
    const s = await h.open();
    const audio: number[] = [];
    h.client.on('audio', (e) => audio.push(e.chunk.length));
    await h.client.sendAudio(new Uint8Array([1, 2, 3, 4]));
    const turn = h.client.commitAudio({ purpose: 'turn' });
    const id = s.last('input_audio.commit').id;
    s.emit({ type: 'transcript', request_id: id, text: 'hola' });
    s.emit({ type: 'reply.text', request_id: id, text: '¡Hola!' });
    s.emit({ type: 'reply.audio.start', request_id: id, format: 'pcm16', sample_rate: 24000 });
    s.binary([1, 2]);
    s.binary([3, 4, 5]);
    s.emit({ type: 'reply.audio.end', request_id: id, bytes: 5 });
    const r = await turn;
    expect(r).toMatchObject({ requestId: id, transcript: 'hola', text: '¡Hola!', audio: { format: 'pcm16', sample_rate: 24000, bytes: 5 } });
    expect(r.audio.chunks.map((c) => [...c])).toEqual([[1, 2], [3, 4, 5]]);
    expect(audio).toEqual([2, 3]);
    expect(s.audio.map((a) => [...a])).toEqual([[1, 2, 3, 4]]);
    expect(s.last('input_audio.commit')).toEqual({ type: 'input_audio.commit', id, purpose: 'turn' });
  });

  it('an error with the request_id rejects only that request, with every field', async () => {
    const h = setup();
    void h.client.connect();
    const s = await h.open();
    const a = h.client.translate('x', 'es');
    const b = h.client.translate('y', 'es');
    const [ida, idb] = s.json.filter((j) => j.type === 'translate').map((j) => j.id);
    s.emit({ type: 'error', code: 'rate_limited', message: 'translate rate limit exceeded', request_id: ida, retry_after_ms: 1234 });
    const err = await rejection(a);
    expect(err).toMatchObject({ code: 'rate_limited', message: 'translate rate limit exceeded', requestId: ida, retryAfterMs: 1234, closeCode: undefined });
    s.emit({ type: 'translation.result', request_id: idb, text: 'y!' });
    expect(await b).toBe('y!');
    // A late answer to the rejected request changes nothing.
    s.emit({ type: 'translation.result', request_id: ida, text: 'late' });
    expect(h.client.pendingRequests).toBe(0);
  });

  it('request ids are unique across requests and connections', async () => {
    const h = setup();
    void h.client.connect();
    const s = await h.open();
    for (let i = 0; i < 5; i++) void h.client.ping().catch(() => undefined);
    s.drop(1006);
    h.timers.advance(50);
    const s2 = await h.open('session.resumed');
    for (let i = 0; i < 5; i++) void h.client.ping().catch(() => undefined);
    expect(s2).not.toBe(s);
    const ids = [...s.json, ...s2.json].map((j) => j.id);
    expect(ids).toHaveLength(12);
    expect(new Set(ids).size).toBe(12);
    h.client.close();
  });

  it('end() resolves with the usage; the 1000 close that follows is final', async () => {
    const h = setup();
    void h.client.connect();
    const s = await h.open();
    const end = h.client.end();
    const usage = { duration_seconds: 3, turns: 0, assessments: 0, translations: 0, audio_seconds: 0, messages_in: 2, bytes_in: 100 };
    s.emit({ type: 'session.ended', request_id: s.last('session.end').id, reason: 'client_ended', usage });
    expect(await end).toEqual(usage);
    s.drop(1000);
    expect(h.client.state).toBe('closed');
    expect(h.closed).toEqual([expect.objectContaining({ code: 1000, action: 'stop', willReconnect: false })]);
    expect(h.timers.pending).toBe(0);
  });

  it('close() rejects pending requests with connection_closed and never reconnects', async () => {
    const h = setup();
    void h.client.connect();
    const s = await h.open();
    const p = h.client.turnText('Hola');
    h.client.close();
    expect((await rejection(p)).code).toBe('connection_closed');
    expect(s.closedWith).toEqual({ code: 1000, reason: 'client done' });
    expect(h.closed).toEqual([expect.objectContaining({ blockedBy: 'client_closed', willReconnect: false })]);
    h.timers.advance(60_000);
    expect(h.sockets).toHaveLength(1);
  });
});

describe('ParleyClient: close codes and reconnect', () => {
  it.each([
    [4003, 'forbidden', 'stop'],
    [4030, 'session_taken_over', 'stop'],
    [4008, 'session_expired', 'new_session'],
    [4031, 'idle_timeout', 'new_session'],
    [1008, 'invalid_message', 'fix_client'],
    [1009, 'frame_too_large', 'fix_client'],
  ] as const)('close %i (%s) is final with action %s; pending requests reject with that error', async (code, errorCode, action) => {
    const h = setup();
    void h.client.connect();
    const s = await h.open();
    const p = h.client.ping();
    s.emit({ type: 'error', code: errorCode, message: 'bye', close_code: code });
    s.drop(code, errorCode);
    const err = await rejection(p);
    expect(err).toMatchObject({ code: errorCode, closeCode: code });
    expect(h.client.state).toBe('closed');
    expect(h.closed).toEqual([expect.objectContaining({ code, action, willReconnect: false, error: expect.objectContaining({ code: errorCode }) })]);
    h.timers.advance(120_000);
    await flush();
    expect(h.sockets).toHaveLength(1);
    expect(h.reconnects).toEqual([]);
  });

  it('after a final 4031 (idle), connect({resume: true}) resumes the same session and connect() starts a new one', async () => {
    const h = setup();
    void h.client.connect();
    const s = await h.open();
    s.emit({ type: 'error', code: 'idle_timeout', message: 'idle', close_code: 4031 });
    s.drop(4031);
    expect(h.client.state).toBe('closed');
    const resumed = h.client.connect({ resume: true });
    await h.open('session.resumed');
    expect((await resumed).resumed).toBe(true);
    expect(h.sock().json[0]).toMatchObject({ type: 'session.start', resume_token: 'rt_1' });
    h.client.close();
    const fresh = h.client.connect();
    await h.open();
    expect((await fresh).resumed).toBe(false);
    expect(h.sock().json[0]).toMatchObject({ type: 'session.start', language: 'es' });
    expect(h.sock().json[0]).not.toHaveProperty('resume_token');
  });

  it('a drop (1006) reconnects with a fresh token after the jittered backoff and resumes with the resume token', async () => {
    const h = setup();
    void h.client.connect();
    await h.open();
    h.sock().drop(1006);
    expect(h.client.state).toBe('reconnecting');
    expect(h.reconnects).toEqual([{ attempt: 1, delayMs: 50, code: 1006, action: 'retry' }]); // 0.5 x 100 ms
    h.timers.advance(49);
    await flush();
    expect(h.sockets).toHaveLength(1);
    h.timers.advance(1);
    const s2 = await h.open('session.resumed');
    expect(s2.protocols).toEqual(['parley.v1', 'parley.token.pt_token2']);
    expect(s2.json[0]).toEqual({ type: 'session.start', id: expect.any(String), resume_token: 'rt_1' });
    expect(h.client.state).toBe('open');
    expect(h.client.session?.resumed).toBe(true);
    expect(h.states).toEqual(['connecting', 'open', 'reconnecting', 'open']);
  });

  it('honours retry_after_ms from the error before a 4029 close', async () => {
    const h = setup();
    void h.client.connect();
    const s = await h.open();
    s.emit({ type: 'error', code: 'byte_rate', message: 'too many bytes waiting', close_code: 4029, retry_after_ms: 2500 });
    s.drop(4029);
    expect(h.reconnects).toEqual([{ attempt: 1, delayMs: 2550, code: 4029, action: 'retry' }]);
    h.timers.advance(2549);
    await flush();
    expect(h.sockets).toHaveLength(1);
    h.timers.advance(1);
    await flush();
    expect(h.sockets).toHaveLength(2);
  });

  it('1012 (draining) resumes at once with a fresh token', async () => {
    const h = setup();
    void h.client.connect();
    const s = await h.open();
    s.emit({ type: 'error', code: 'server_draining', message: 'draining', close_code: 1012 });
    s.drop(1012);
    expect(h.reconnects).toEqual([{ attempt: 1, delayMs: 0, code: 1012, action: 'resume' }]);
    h.timers.advance(0);
    await h.open('session.resumed');
    expect(h.tokenCount()).toBe(2);
    expect(h.sock().json[0]).toMatchObject({ resume_token: 'rt_1' });
  });

  it('4001 fetches a new token and retries with backoff', async () => {
    const h = setup();
    void h.client.connect();
    await flush();
    h.sock().accept();
    h.sock().emit({ type: 'error', code: 'unauthorized', message: 'reused token', close_code: 4001 });
    h.sock().drop(4001);
    expect(h.reconnects).toEqual([{ attempt: 1, delayMs: 50, code: 4001, action: 'new_token' }]);
    h.timers.advance(50);
    await h.open();
    expect(h.tokenCount()).toBe(2);
    expect(h.client.state).toBe('open');
  });

  it('a plain string token cannot reconnect: the close says token_spent', async () => {
    const h = setup({ token: 'pt_once' });
    void h.client.connect();
    await h.open();
    h.sock().drop(1006);
    expect(h.client.state).toBe('closed');
    expect(h.closed).toEqual([expect.objectContaining({ code: 1006, action: 'retry', willReconnect: false, blockedBy: 'token_spent' })]);
    expect((await rejection(h.client.connect())).code).toBe('connection_closed');
    expect(h.sockets).toHaveLength(1);
  });

  it('reconnect disabled or maxAttempts reached: final, with the reason', async () => {
    const off = setup({ reconnect: { enabled: false } });
    void off.client.connect();
    await off.open();
    off.sock().drop(1011);
    expect(off.closed.at(-1)).toMatchObject({ code: 1011, willReconnect: false, blockedBy: 'disabled' });

    const h = setup({ reconnect: { baseMs: 100, maxAttempts: 2 } });
    void h.client.connect();
    await h.open();
    h.sock().drop(1006);
    h.timers.advance(10_000);
    await flush();
    h.sock().drop(1006); // attempt 1 fails before opening
    h.timers.advance(10_000);
    await flush();
    h.sock().drop(1006); // attempt 2 fails
    expect(h.reconnects.map((r) => r.attempt)).toEqual([1, 2]);
    expect(h.closed.at(-1)).toMatchObject({ willReconnect: false, blockedBy: 'max_attempts' });
    expect(h.client.state).toBe('closed');
  });

  it('backoff grows across failed attempts and resets only after 5 s of stable connection', async () => {
    const h = setup({ random: () => 0.999 });
    void h.client.connect();
    await h.open();
    h.sock().drop(1006);
    h.timers.advance(10_000);
    await flush();
    h.sock().drop(1006);
    h.timers.advance(10_000);
    await h.open('session.resumed');
    h.timers.advance(4_999); // up 4.999 s
    h.sock().drop(1006);
    h.timers.advance(10_000);
    await h.open('session.resumed');
    h.timers.advance(5_000); // up 5 s: stable
    h.sock().drop(1006);
    expect(h.reconnects.map((r) => [r.attempt, r.delayMs])).toEqual([
      [1, 99],
      [2, 199],
      [3, 399],
      [1, 99],
    ]);
  });

  it('a resume refused with session_expired (window passed) is final: new_session, pending rejected', async () => {
    const h = setup();
    void h.client.connect();
    const s = await h.open();
    const p = h.client.turnText('Hola');
    s.drop(1006);
    h.timers.advance(100);
    await flush();
    const s2 = h.sock();
    s2.accept();
    s2.emit({ type: 'error', code: 'session_expired', message: 'unknown resume token', request_id: s2.last('session.start').id });
    const err = await rejection(p);
    expect(err.code).toBe('session_expired');
    expect(h.client.state).toBe('closed');
    expect(h.closed.at(-1)).toMatchObject({ action: 'new_session', blockedBy: 'session_gone', willReconnect: false });
    expect(s2.closedWith?.code).toBe(1000);
  });
});

describe('ParleyClient: session.start refused', () => {
  it('rate_limited on session.start retries on a new connection after retry_after_ms', async () => {
    const h = setup();
    const p = h.client.connect();
    await flush();
    const s = h.sock();
    s.accept();
    s.emit({ type: 'error', code: 'rate_limited', message: 'conversation.start rate limit exceeded', request_id: s.last('session.start').id, retry_after_ms: 3000 });
    expect(s.closedWith?.code).toBe(1000);
    expect(h.closed).toEqual([expect.objectContaining({ code: 1000, action: 'retry', willReconnect: true, error: expect.objectContaining({ code: 'rate_limited' }) })]);
    expect(h.reconnects).toEqual([{ attempt: 1, delayMs: 3050, code: 1000, action: 'retry' }]);
    h.timers.advance(3050);
    await h.open();
    expect((await p).sessionId).toBe('sess_1');
    expect(h.sockets).toHaveLength(2);
    expect(h.sock().json[0]).toMatchObject({ type: 'session.start', language: 'es' });
  });

  it('an invalid session.start is final (fix_client) and rejects connect() with the error', async () => {
    const h = setup({ session: { language: 'e' } });
    const p = h.client.connect();
    await flush();
    const s = h.sock();
    s.accept();
    s.emit({ type: 'error', code: 'invalid_message', message: 'session.start: "language" must match', request_id: s.last('session.start').id });
    const err = await rejection(p);
    expect(err.code).toBe('invalid_message');
    expect(h.client.state).toBe('closed');
    expect(h.closed).toEqual([expect.objectContaining({ action: 'fix_client', willReconnect: false })]);
  });
});

describe('ParleyClient: requests across a resume', () => {
  it('a request sent before the drop is answered after the resume, exactly once', async () => {
    const h = setup();
    void h.client.connect();
    const s = await h.open();
    let settled = 0;
    const p = h.client.translate('hello', 'es').then((v) => {
      settled++;
      return v;
    });
    const id = s.last('translate').id;
    s.drop(1006);
    h.timers.advance(50);
    const s2 = await h.open('session.resumed');
    expect(s2.json.map((j) => j.type)).toEqual(['session.start']); // not sent twice
    s2.emit({ type: 'translation.result', request_id: id, text: 'hola' });
    s2.emit({ type: 'translation.result', request_id: id, text: 'hola again' });
    expect(await p).toBe('hola');
    await flush();
    expect(settled).toBe(1);
  });

  it('a request that hears nothing for lostRequestTimeoutMs after the resume rejects with request_lost', async () => {
    const h = setup({ reconnect: { baseMs: 100, lostRequestTimeoutMs: 30_000 } });
    void h.client.connect();
    const s = await h.open();
    const p = h.client.translate('hello', 'es');
    const id = s.last('translate').id;
    s.drop(1006);
    h.timers.advance(50);
    const s2 = await h.open('session.resumed');
    h.timers.advance(20_000);
    s2.emit({ type: 'request.queued', request_id: id, position: 1 }); // alive: the timer restarts
    h.timers.advance(29_999);
    expect(h.client.pendingRequests).toBe(1);
    h.timers.advance(1);
    const err = await rejection(p);
    expect(err).toMatchObject({ code: 'request_lost', requestId: id });
  });

  it('requests made while reconnecting are sent after the resume, in order', async () => {
    const h = setup();
    void h.client.connect();
    await h.open();
    h.sock().drop(1006);
    void h.client.translate('a', 'es').catch(() => undefined);
    void h.client.ping().catch(() => undefined);
    h.timers.advance(50);
    const s2 = await h.open('session.resumed');
    expect(s2.json.map((j) => j.type)).toEqual(['session.start', 'translate', 'ping']);
    h.client.close();
  });

  it('audio of an unfinished utterance is sent again after a resume (the gateway clears its buffer at a drop)', async () => {
    const h = setup();
    void h.client.connect();
    const s = await h.open();
    await h.client.sendAudio(new Uint8Array([1, 1]));
    void h.client.commitAudio({ purpose: 'turn' }).catch(() => undefined);
    await h.client.sendAudio(new Uint8Array([2, 2]));
    await h.client.sendAudio(new Uint8Array([3, 3]));
    s.drop(1006);
    void h.client.sendAudio(new Uint8Array([4, 4]));
    h.timers.advance(50);
    const s2 = await h.open('session.resumed');
    // [1,1] was committed before the drop; [2,2] and [3,3] were not: they go again, before [4,4].
    expect(s2.audio.map((a) => [...a])).toEqual([[2, 2], [3, 3], [4, 4]]);
    h.client.close();
  });

  it('reply audio interrupted by a drop continues on the new connection into the same result', async () => {
    const h = setup();
    void h.client.connect();
    const s = await h.open();
    const p = h.client.turnText('Hola');
    const id = s.last('turn.text').id;
    s.emit({ type: 'reply.text', request_id: id, text: 'Hola' });
    s.emit({ type: 'reply.audio.start', request_id: id, format: 'pcm16', sample_rate: 24000 });
    s.binary([1]);
    s.drop(1006);
    h.timers.advance(50);
    const s2 = await h.open('session.resumed');
    s2.binary([2]);
    s2.emit({ type: 'reply.audio.end', request_id: id, bytes: 2 });
    const r = await p;
    expect(r.audio.chunks.map((c) => [...c])).toEqual([[1], [2]]);
  });
});

describe('ParleyClient: heartbeat', () => {
  it('is off by default: an idle open session sends nothing', async () => {
    const h = setup();
    void h.client.connect();
    const s = await h.open();
    h.timers.advance(300_000);
    expect(s.json.map((j) => j.type)).toEqual(['session.start']);
  });

  it('pings every heartbeatMs; its pong is not emitted; silence past heartbeatTimeoutMs is a drop that resumes', async () => {
    const h = setup({ reconnect: { baseMs: 100, heartbeatMs: 15_000, heartbeatTimeoutMs: 5_000 } });
    const pongs: unknown[] = [];
    h.client.on('pong', (e) => pongs.push(e));
    void h.client.connect();
    const s = await h.open();
    h.timers.advance(15_000);
    const hb = s.last('ping');
    expect(hb.id).toMatch(/hb/);
    h.timers.advance(4_000);
    s.emit({ type: 'pong', request_id: hb.id });
    expect(pongs).toEqual([]);
    expect(h.closed).toEqual([]);
    h.timers.advance(15_000);
    expect(s.json.filter((j) => j.type === 'ping')).toHaveLength(2);
    h.timers.advance(4_999);
    expect(h.closed).toEqual([]);
    h.timers.advance(1);
    expect(h.closed).toEqual([expect.objectContaining({ code: 1006, reason: 'heartbeat timeout', action: 'retry', willReconnect: true })]);
    expect(s.closedWith?.code).toBe(1000);
    h.timers.advance(50);
    await h.open('session.resumed');
    expect(h.client.state).toBe('open');
    expect(h.sockets).toHaveLength(2);
    h.client.close();
  });

  it('the deadline starts when the ping leaves the queue, not while a paced upload holds it back', async () => {
    const h = setup({ reconnect: { baseMs: 100, heartbeatMs: 1_000, heartbeatTimeoutMs: 500 } });
    void h.client.connect();
    const s = await h.open('session.created', { ...LIMITS, bytes_per_second: 10_000, byte_burst: 10_000, max_frame_bytes: 2_000 });
    void h.client.sendAudio(new Uint8Array(30_000)); // about 2.3 s of pacing
    h.timers.advance(2_000); // the heartbeat ping queued at 1 s is still behind the audio
    expect(s.json.filter((j) => j.type === 'ping')).toHaveLength(0);
    expect(h.closed).toEqual([]);
    h.timers.advance(400);
    const hb = s.last('ping');
    h.timers.advance(300);
    s.emit({ type: 'pong', request_id: hb.id });
    h.timers.advance(200);
    expect(h.closed).toEqual([]);
    h.client.close();
  });
});

describe('ParleyClient: pacing', () => {
  it('a large upload is cut into frames of at most max_frame_bytes and released over time at ~90 % of bytes_per_second', async () => {
    const h = setup();
    void h.client.connect();
    const limits = { ...LIMITS, bytes_per_second: 10_000, byte_burst: 10_000, max_frame_bytes: 2_000 };
    const s = await h.open('session.created', limits);
    let done = false;
    const upload = h.client.sendAudio(new Uint8Array(40_000)).then(() => (done = true));
    const sentBytes = (): number => s.audio.reduce((n, a) => n + a.length, 0);
    // The client's burst is 9,000 bytes, minus what session.start cost.
    expect(sentBytes()).toBeLessThanOrEqual(9_000);
    expect(Math.max(...s.audio.map((a) => a.length))).toBe(2_000);
    expect(h.client.queued.bytes).toBe(40_000 - sentBytes());
    h.timers.advance(1_000);
    expect(sentBytes()).toBeLessThanOrEqual(9_000 + 9_000);
    expect(sentBytes()).toBeGreaterThanOrEqual(9_000 + 9_000 - 2_000 - 100);
    // All of it needs (40,000 + session.start - 9,000) / 9,000 B/s, about 3.45 s.
    h.timers.advance(2_400);
    await flush();
    expect(done).toBe(false);
    h.timers.advance(100);
    await upload;
    expect(sentBytes()).toBe(40_000);
    expect(h.client.queued).toEqual({ frames: 0, bytes: 0 });
  });

  it('audio cut before the limits were known is re-cut to max_frame_bytes', async () => {
    const h = setup();
    void h.client.connect();
    void h.client.sendAudio(new Uint8Array(10_000)); // cut at the default 32 KiB: one frame
    await h.open('session.created', { ...LIMITS, max_frame_bytes: 4_000 });
    expect(h.sock().audio.map((a) => a.length)).toEqual([4_000, 4_000, 2_000]);
  });
});

describe('ParleyClient: cancel and barge-in', () => {
  it('cancel() goes out ahead of queued frames, and the turn resolves with what request.cancelled says', async () => {
    const h = setup();
    void h.client.connect();
    const s = await h.open();
    const turn = h.client.turnText('Hola');
    await flush();
    const id = s.last('turn.text').id as string;
    s.emit({ type: 'reply.text.delta', request_id: id, delta: 'Hola. ' });
    s.emit({ type: 'reply.text.delta', request_id: id, delta: '¿Qué' });
    h.client.cancel(id, { playedMs: 420.5 });
    await flush();
    expect(s.last('cancel')).toEqual({ type: 'cancel', request_id: id, played_ms: 420.5 });
    s.emit({ type: 'request.cancelled', request_id: id, stage: 'speaking', audio_bytes_sent: 9600, kept_text: 'Hola.' });
    const result = await turn;
    expect(result).toMatchObject({ requestId: id, text: 'Hola. ¿Qué', cancelled: { stage: 'speaking', keptText: 'Hola.', audioBytesSent: 9600 } });
    expect(h.client.pendingRequests).toBe(0);
  });

  it('a cancelled translation rejects with code cancelled', async () => {
    const h = setup();
    void h.client.connect();
    const s = await h.open();
    const tr = h.client.translate('thanks', 'es');
    await flush();
    const id = s.last('translate').id as string;
    h.client.cancel(id);
    s.emit({ type: 'request.cancelled', request_id: id, stage: 'queued', audio_bytes_sent: 0, kept_text: '' });
    expect((await rejection(tr)).code).toBe('cancelled');
  });

  it('bargeIn: true cancels the reply still arriving when the learner starts a new turn, before the new turn goes out', async () => {
    const h = setup({ bargeIn: true });
    void h.client.connect();
    const s = await h.open();
    void h.client.turnText('Hola');
    await flush();
    const first = s.last('turn.text').id;
    void h.client.sendAudio(new Uint8Array(320));
    void h.client.commitAudio({ purpose: 'turn' });
    await flush();
    const types = s.json.map((j) => j.type);
    expect(types).toEqual(['session.start', 'turn.text', 'cancel', 'input_audio.commit']);
    expect(s.last('cancel')).toEqual({ type: 'cancel', request_id: first });
    expect(s.audio).toHaveLength(1);
  });

  it('bargeIn with playedMs sends the playback position, and cancels nothing once playback is over', async () => {
    let position: number | undefined = 1234;
    const h = setup({ bargeIn: { playedMs: () => position } });
    void h.client.connect();
    const s = await h.open();
    void h.client.turnText('Hola');
    await flush();
    const first = s.last('turn.text').id;
    void h.client.turnText('Otra cosa');
    await flush();
    expect(s.last('cancel')).toEqual({ type: 'cancel', request_id: first, played_ms: 1234 });
    position = undefined;
    void h.client.turnText('Y otra');
    await flush();
    expect(s.json.filter((j) => j.type === 'cancel')).toHaveLength(1);
  });
});
