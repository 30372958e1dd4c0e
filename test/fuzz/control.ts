/**
 * The control session: a well-behaved learner on its own account and source address, doing a turn
 * every second (text and spoken turns in turn) for as long as the fuzzer runs. Every turn must be
 * answered in full and in order (transcript for spoken turns, reply.text, reply.audio.start, the
 * audio, reply.audio.end with its byte count) within the deadline; any error event, any close, any
 * event that breaks its schema is a failure. CONTRACT §10: the fuzzing must not hurt another session.
 */
import http from 'node:http';
import WebSocket from 'ws';
import { CONTROL_KEY, CONTROL_ORIGIN } from './config.js';
import { parseServerEvent, showEvent } from './events.js';

export interface ControlOptions {
  readonly port: number;
  /** Source address (a loopback alias of its own, so per-address throttles of the attackers never touch it). */
  readonly localAddress: string;
  readonly intervalMs: number;
  /** A turn not answered in full within this is a failure. */
  readonly deadlineMs: number;
}

export interface ControlReport {
  readonly turns: number;
  readonly completed: number;
  readonly failures: number;
  readonly failureExamples: readonly string[];
  readonly latencyMs: { readonly p50: number; readonly p95: number; readonly max: number };
  /** The close code, if the server closed the control connection before the end. */
  readonly closedWith: number | undefined;
}

interface Turn {
  readonly id: string;
  readonly spoken: boolean;
  readonly sentAt: number;
  transcript: boolean;
  /** The reply.text.delta texts so far, concatenated. */
  deltas: string;
  text: string | undefined;
  audioStarted: boolean;
  audioBytes: number;
  audioEnded: boolean;
  done: boolean;
}

/** A token through REST, as an app back end mints one (Connection: close: no idle keep-alive socket left on the server). */
function mintToken(port: number, localAddress: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/v1/tokens', localAddress, agent: false, headers: { Authorization: `Bearer ${CONTROL_KEY}`, 'Content-Type': 'application/json', Connection: 'close' } },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => (res.statusCode === 201 ? resolve((JSON.parse(body) as { token: string }).token) : reject(new Error(`token: HTTP ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end('{"learner_id":"control"}');
  });
}

/** Half a second of a 440 Hz tone, PCM16 little-endian 16 kHz mono (the session's default format). */
function tone(): Buffer {
  const out = Buffer.alloc(16_000);
  for (let i = 0; i < 8000; i++) out.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 16_000)), i * 2);
  return out;
}

export class ControlSession {
  private ws: WebSocket | undefined;
  private readonly turns = new Map<string, Turn>();
  private readonly order: Turn[] = [];
  private readonly latencies: number[] = [];
  private readonly failureList: string[] = [];
  private failureCount = 0;
  private timer: NodeJS.Timeout | undefined;
  private n = 0;
  private speaking: Turn | undefined;
  private stopping = false;
  private closedWith: number | undefined;
  private readonly audio = tone();

  constructor(private readonly opts: ControlOptions) {}

  private fail(why: string): void {
    this.failureCount++;
    if (this.failureList.length < 10) this.failureList.push(why);
  }

  /** Connects, starts the session and begins a turn every `intervalMs`. */
  async start(): Promise<void> {
    const token = await mintToken(this.opts.port, this.opts.localAddress);
    const ws = new WebSocket(`ws://127.0.0.1:${this.opts.port}/v1/realtime`, ['parley.v1', `parley.token.${token}`], {
      headers: { Origin: CONTROL_ORIGIN },
      localAddress: this.opts.localAddress,
      perMessageDeflate: false,
    });
    this.ws = ws;
    ws.on('error', (err) => this.fail(`socket error: ${err.message}`));
    ws.on('close', (code) => {
      if (this.stopping) return;
      this.closedWith = code;
      this.fail(`closed with ${code}`);
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const created = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('control: no session.created within 10 s')), 10_000);
      ws.on('message', (data: Buffer, binary) => {
        if (binary) {
          this.onAudio(data.length);
          return;
        }
        const p = parseServerEvent(data.toString('utf8'));
        if (p.problem) this.fail(`event breaks its schema: ${p.problem}`);
        if (p.event?.type === 'session.created') {
          clearTimeout(t);
          resolve();
        }
        if (p.event) this.onEvent(p.event as { type: string; request_id?: unknown; code?: string; bytes?: number });
      });
    });
    ws.send(JSON.stringify({ type: 'session.start', language: 'es', scenario: 'ordering coffee' }));
    await created;
    this.timer = setInterval(() => this.tick(), this.opts.intervalMs);
  }

  private checkDeadlines(now: number): void {
    for (const t of this.order) {
      if (!t.done && now - t.sentAt > this.opts.deadlineMs) {
        t.done = true;
        this.fail(`turn ${t.id} not answered in full within ${this.opts.deadlineMs} ms (${this.progress(t)})`);
      }
    }
  }

  private tick(): void {
    const now = Date.now();
    this.checkDeadlines(now);
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const spoken = this.n % 2 === 1;
    const turn: Turn = { id: `control-${++this.n}`, spoken, sentAt: now, transcript: false, deltas: '', text: undefined, audioStarted: false, audioBytes: 0, audioEnded: false, done: false };
    this.turns.set(turn.id, turn);
    this.order.push(turn);
    if (spoken) {
      for (let off = 0; off < this.audio.length; off += 4000) ws.send(this.audio.subarray(off, off + 4000));
      ws.send(JSON.stringify({ type: 'input_audio.commit', id: turn.id, purpose: 'turn' }));
    } else {
      ws.send(JSON.stringify({ type: 'turn.text', id: turn.id, text: 'Hola, quiero un café con leche, por favor.' }));
    }
  }

  private progress(t: Turn): string {
    return [t.spoken ? `transcript ${t.transcript ? 'yes' : 'no'}` : '', `reply.text ${t.text !== undefined ? 'yes' : 'no'}`, `audio ${t.audioStarted ? (t.audioEnded ? 'ended' : 'started') : 'not started'}`].filter(Boolean).join(', ');
  }

  /**
   * One event of a turn, checked against protocol.md's order: the transcript first (spoken turns),
   * reply.text.delta… and reply.audio.start with the audio in any interleaving, reply.text once
   * (the deltas concatenated), reply.audio.end (its byte count), then turn.metrics, which
   * completes the turn.
   */
  private onEvent(e: { type: string; request_id?: unknown; code?: string; bytes?: number; delta?: string; text?: string }): void {
    if (e.type === 'error') {
      this.fail(`error ${e.code}: ${showEvent(e as never)}`);
      return;
    }
    if (e.type === 'session.ended' || e.type === 'quota.updated' || e.type === 'session.created' || e.type === 'pong') return;
    const turn = typeof e.request_id === 'string' ? this.turns.get(e.request_id) : undefined;
    if (!turn || turn.done) {
      this.fail(`unexpected ${showEvent(e as never)}`);
      return;
    }
    const wrong = (why: string): void => {
      this.fail(`turn ${turn.id}: ${e.type} ${why}`);
      turn.done = true;
    };
    const replyBegun = turn.deltas !== '' || turn.text !== undefined || turn.audioStarted;
    switch (e.type) {
      case 'request.queued':
        return;
      case 'transcript':
        if (!turn.spoken || turn.transcript || replyBegun) return wrong('out of order');
        turn.transcript = true;
        return;
      case 'reply.text.delta':
        if ((turn.spoken && !turn.transcript) || turn.text !== undefined) return wrong('out of order');
        turn.deltas += e.delta ?? '';
        return;
      case 'reply.text':
        if ((turn.spoken && !turn.transcript) || turn.text !== undefined || turn.audioEnded) return wrong('out of order');
        if (turn.deltas !== '' && turn.deltas !== e.text) return wrong('differs from its deltas');
        turn.text = e.text ?? '';
        return;
      case 'reply.audio.start':
        if ((turn.spoken && !turn.transcript) || turn.audioStarted) return wrong('out of order');
        turn.audioStarted = true;
        this.speaking = turn;
        return;
      case 'reply.audio.end':
        if (!turn.audioStarted || turn.audioEnded || turn.text === undefined) return wrong('out of order');
        turn.audioEnded = true;
        this.speaking = undefined;
        if (e.bytes !== turn.audioBytes) return wrong(`says ${e.bytes} bytes, ${turn.audioBytes} came`);
        return;
      case 'turn.metrics':
        if (!turn.audioEnded) return wrong('before reply.audio.end');
        turn.done = true;
        this.latencies.push(Date.now() - turn.sentAt);
        return;
      default:
        wrong('is not an answer to a turn');
    }
  }

  private onAudio(bytes: number): void {
    if (!this.speaking) {
      this.fail(`${bytes} bytes of audio outside a reply`);
      return;
    }
    this.speaking.audioBytes += bytes;
  }

  /** Stops sending, waits for the turns in flight, ends the session (session.ended, close 1000). */
  async stop(): Promise<ControlReport> {
    clearInterval(this.timer);
    const ws = this.ws;
    const deadline = Date.now() + this.opts.deadlineMs;
    while (this.order.some((t) => !t.done) && Date.now() < deadline && ws?.readyState === WebSocket.OPEN) await new Promise((r) => setTimeout(r, 20));
    this.checkDeadlines(Number.POSITIVE_INFINITY);
    if (ws && ws.readyState === WebSocket.OPEN) {
      this.stopping = true;
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      ws.send(JSON.stringify({ type: 'session.end' }));
      const code = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 10_000))]);
      if (code !== 1000) this.fail(`session.end answered with close ${code}`);
      ws.terminate();
    }
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const q = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
    return {
      turns: this.order.length,
      completed: this.latencies.length,
      failures: this.failureCount,
      failureExamples: this.failureList,
      latencyMs: { p50: q(0.5), p95: q(0.95), max: sorted[sorted.length - 1] ?? 0 },
      closedWith: this.closedWith,
    };
  }
}
