/**
 * A WebSocket client over a bare TCP socket: it writes whatever bytes it is given (a malformed
 * upgrade, a hand-made frame, half a frame) and reads the server's answer as it really is: the HTTP
 * status line, the frames after a 101, the close frame, the TCP close. `ws` cannot be used here:
 * it validates what it sends and hides what it receives.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { parseServerEvent, type Parsed } from './events.js';

/** One thing the server sent: an event (parsed and checked), a pong's payload, or reply audio. */
export type Item = { readonly kind: 'event'; readonly parsed: Parsed; readonly raw: string } | { readonly kind: 'pong'; readonly payload: Buffer } | { readonly kind: 'audio'; readonly bytes: number };
import { closePayload, encodeFrame, FrameReader, Opcode } from './wire.js';

export interface HttpHead {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
}

export interface RawClientOptions {
  readonly port: number;
  readonly host?: string;
  /** Source address (loopback aliases keep attack traffic apart from the control session). */
  readonly localAddress?: string;
  /** Answer the server's pings (default true; a dead peer does not). */
  readonly autoPong?: boolean;
  /** Called with everything the server sends after the 101, as it arrives. */
  readonly onItem?: (item: Item) => void;
}

/** An upgrade request, headers in order (a header may repeat); `\r\n` line ends unless the caller lies. */
export function upgradeRequest(opts: { path?: string; key?: string; headers?: [string, string][]; method?: string; version?: string } = {}): Buffer {
  const lines = [`${opts.method ?? 'GET'} ${opts.path ?? '/v1/realtime'} ${opts.version ?? 'HTTP/1.1'}`];
  const headers = opts.headers ?? standardHeaders(opts.key);
  for (const [k, v] of headers) lines.push(`${k}: ${v}`);
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

/** The headers of a conforming upgrade (RFC 6455 §4.1), with an API key for a server-side client. */
export function standardHeaders(apiKey?: string, extra: [string, string][] = []): [string, string][] {
  return [
    ['Host', '127.0.0.1'],
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Key', randomBytes(16).toString('base64')],
    ['Sec-WebSocket-Version', '13'],
    ...(apiKey ? ([['Authorization', `Bearer ${apiKey}`]] as [string, string][]) : []),
    ...extra,
  ];
}

export class RawClient {
  readonly socket: net.Socket;
  readonly connected: Promise<void>;
  /** Resolves when the TCP connection is gone (either side, any way). */
  readonly ended: Promise<void>;
  head: HttpHead | undefined;
  /** Bytes after the head of a non-101 answer. */
  body = '';
  /** Everything the server sent after the 101, in order. */
  readonly items: Item[] = [];
  /** The server's close frame, if one came. */
  closeFrame: { code: number | undefined; reason: string } | undefined;
  /** What went wrong on the server's side of the wire (a masked frame, an unknown opcode). */
  wireProblem: string | undefined;
  /** A socket error (ECONNRESET when the server resets, EPIPE when it is gone). */
  error: string | undefined;
  isEnded = false;
  private headBuf: Buffer = Buffer.alloc(0);
  private readonly frames = new FrameReader();
  private waiters: { pred: () => boolean; resolve: () => void }[] = [];
  /** Answer the server's pings; a dead peer stops. */
  autoPong: boolean;
  /**
   * While we write a frame a piece at a time, a pong written in between would land inside it:
   * pongs wait until `releasePongs()`.
   */
  private heldPongs: Buffer[] | undefined;

  private readonly onItem: ((item: Item) => void) | undefined;

  constructor(opts: RawClientOptions) {
    this.autoPong = opts.autoPong ?? true;
    this.onItem = opts.onItem;
    this.socket = net.connect({ port: opts.port, host: opts.host ?? '127.0.0.1', ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    this.socket.setNoDelay(true);
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
    this.ended = new Promise((resolve) => {
      this.socket.once('close', () => {
        this.isEnded = true;
        this.notify();
        resolve();
      });
    });
    this.socket.on('error', (err: NodeJS.ErrnoException) => {
      this.error = err.code ?? err.message;
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  /** Writes bytes if the socket still takes them (a write after the server's reset is not an error of ours). */
  write(bytes: Buffer): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    this.socket.write(bytes);
  }

  /** Sends one well-formed, masked client frame. */
  send(opcode: number, payload: Buffer | string): void {
    this.write(encodeFrame({ opcode, payload: typeof payload === 'string' ? Buffer.from(payload) : payload }));
  }

  sendJson(msg: unknown): void {
    this.send(Opcode.text, JSON.stringify(msg));
  }

  /** Resolves once `pred` holds or the connection is gone; false on timeout. */
  waitUntil(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    if (pred()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(pred());
      }, timeoutMs);
      const waiter = {
        pred: () => pred() || this.isEnded,
        resolve: () => {
          clearTimeout(timer);
          resolve(pred());
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** Waits for the HTTP answer's head (or the end of the connection). */
  async response(timeoutMs: number): Promise<HttpHead | undefined> {
    await this.waitUntil(() => this.head !== undefined, timeoutMs);
    return this.head;
  }

  /** Waits for the TCP connection to end; false if it is still open after `timeoutMs`. */
  async closed(timeoutMs: number): Promise<boolean> {
    await this.waitUntil(() => this.isEnded, timeoutMs);
    return this.isEnded;
  }

  /** A clean end from our side: FIN (the server may still answer). */
  end(): void {
    if (!this.socket.destroyed) this.socket.end();
  }

  /** An abrupt end: TCP RST, no close frame, no FIN. */
  reset(): void {
    if (this.socket.destroyed) return;
    try {
      this.socket.resetAndDestroy();
    } catch {
      this.socket.destroy();
    }
  }

  /** Stops reading: the kernel buffers fill and the server's writes stall (a peer that went away). */
  stall(): void {
    this.socket.pause();
  }

  /** Holds our pongs while a frame is written a piece at a time (see heldPongs). */
  holdPongs(): void {
    this.heldPongs ??= [];
  }

  /** Whether a pong is waiting for releasePongs() (the server pinged while a frame was half written). */
  get pongsHeld(): boolean {
    return (this.heldPongs?.length ?? 0) > 0;
  }

  releasePongs(): void {
    const held = this.heldPongs ?? [];
    this.heldPongs = undefined;
    for (const p of held) this.write(p);
  }

  /** Reads again after stall(). */
  unstall(): void {
    this.socket.resume();
  }

  private onData(chunk: Buffer): void {
    if (!this.head) {
      this.headBuf = Buffer.concat([this.headBuf, chunk]);
      const end = this.headBuf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.headBuf.length > 65536) this.wireProblem = 'HTTP answer head over 64 KiB';
        return;
      }
      const lines = this.headBuf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      this.head = { status, headers };
      chunk = this.headBuf.subarray(end + 4);
      this.headBuf = Buffer.alloc(0);
      if (status !== 101) {
        this.body += chunk.toString('latin1');
        this.notify();
        return;
      }
    } else if (this.head.status !== 101) {
      this.body += chunk.toString('latin1');
      this.notify();
      return;
    }
    if (chunk.length === 0) {
      this.notify();
      return;
    }
    for (const f of this.frames.push(chunk)) this.onFrame(f.opcode, f.payload);
    if (this.frames.problem) this.wireProblem = this.frames.problem;
    this.notify();
  }

  private record(item: Item): void {
    this.items.push(item);
    this.onItem?.(item);
  }

  private onFrame(opcode: number, payload: Buffer): void {
    switch (opcode) {
      case Opcode.text: {
        const raw = payload.toString('utf8');
        this.record({ kind: 'event', parsed: parseServerEvent(raw), raw });
        return;
      }
      case Opcode.binary:
        this.record({ kind: 'audio', bytes: payload.length });
        return;
      case Opcode.close: {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : undefined;
        this.closeFrame = { code, reason: payload.subarray(2).toString('utf8') };
        // Answer the close as a conforming client does (§5.5.1), then end our side.
        this.write(encodeFrame({ opcode: Opcode.close, payload: code === undefined ? Buffer.alloc(0) : closePayload(code) }));
        this.end();
        return;
      }
      case Opcode.ping:
        if (this.autoPong) {
          const pong = encodeFrame({ opcode: Opcode.pong, payload });
          if (this.heldPongs) this.heldPongs.push(pong);
          else this.write(pong);
        }
        return;
      case Opcode.pong:
        this.record({ kind: 'pong', payload: Buffer.from(payload) });
        return;
      default:
        this.wireProblem = `server sent opcode ${opcode}`;
    }
  }

  private notify(): void {
    const ready = this.waiters.filter((w) => w.pred());
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  }
}
