/**
 * One attack connection, through either of two clients behind one interface: `ws` (a conforming
 * client: the frames are well formed by a library that is not ours) or the raw client (frames
 * written by hand, all the frames of a step in one TCP write). The runner and the oracle do not
 * care which; the generator only gives raw cases the frames `ws` would refuse to send.
 */
import WebSocket from 'ws';
import { parseServerEvent } from './events.js';
import { RawClient, standardHeaders, upgradeRequest, type Item } from './raw-client.js';
import { encodeFrame, Opcode, type FrameSpec } from './wire.js';

/** How the connection ended, as far as the client can tell. */
export type Closed = { readonly frame: true; readonly code: number | null; readonly reason: string } | { readonly frame: false };

export interface Transport {
  readonly items: readonly Item[];
  /** The server's close (a close frame, or just the end of TCP), once it happened. */
  readonly closed: Closed | undefined;
  /** Whether the TCP connection is gone. */
  readonly tcpEnded: boolean;
  /** Opens the connection; resolves with the HTTP status of the upgrade's answer (101 on success). */
  open(): Promise<number>;
  send(frames: readonly FrameSpec[]): void;
  sendText(text: string): void;
  waitUntil(pred: () => boolean, timeoutMs: number): Promise<boolean>;
  /** FIN without a close frame. */
  fin(): void;
  /** TCP reset. */
  reset(): void;
  /** Frees the socket whatever state it is in. */
  destroy(): void;
}

export interface TransportOptions {
  readonly port: number;
  readonly apiKey: string;
  readonly onItem: (item: Item) => void;
}

export class RawTransport implements Transport {
  private client: RawClient | undefined;
  constructor(private readonly opts: TransportOptions) {}

  get items(): readonly Item[] {
    return this.client?.items ?? [];
  }

  get closed(): Closed | undefined {
    const c = this.client;
    if (!c) return undefined;
    if (c.closeFrame) return { frame: true, code: c.closeFrame.code ?? null, reason: c.closeFrame.reason };
    return c.isEnded ? { frame: false } : undefined;
  }

  get tcpEnded(): boolean {
    return this.client?.isEnded ?? false;
  }

  async open(): Promise<number> {
    const c = new RawClient({ port: this.opts.port, onItem: this.opts.onItem });
    this.client = c;
    await c.connected;
    c.write(upgradeRequest({ headers: standardHeaders(this.opts.apiKey) }));
    const head = await c.response(10_000);
    return head?.status ?? 0;
  }

  send(frames: readonly FrameSpec[]): void {
    if (frames.length === 0) return;
    this.client?.write(Buffer.concat(frames.map((f) => encodeFrame(f))));
  }

  sendText(text: string): void {
    this.client?.send(Opcode.text, text);
  }

  waitUntil(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    return this.client ? this.client.waitUntil(pred, timeoutMs) : Promise.resolve(pred());
  }

  fin(): void {
    this.client?.end();
  }

  reset(): void {
    this.client?.reset();
  }

  destroy(): void {
    this.client?.socket.destroy();
  }
}

export class WsTransport implements Transport {
  readonly items: Item[] = [];
  closed: Closed | undefined;
  private ws: WebSocket | undefined;
  private waiters: { pred: () => boolean; resolve: () => void }[] = [];
  private fragmentBinary = false;

  constructor(private readonly opts: TransportOptions) {}

  /** ws reports the close once the socket is closed. */
  get tcpEnded(): boolean {
    return this.closed !== undefined;
  }

  open(): Promise<number> {
    const ws = new WebSocket(`ws://127.0.0.1:${this.opts.port}/v1/realtime`, {
      headers: { Authorization: `Bearer ${this.opts.apiKey}` },
      perMessageDeflate: false,
      // The attacks send frames up to the app's ceiling and more; the client must not refuse the answers.
      maxPayload: 64 * 1024 * 1024,
    });
    this.ws = ws;
    ws.on('message', (data: Buffer, isBinary) => {
      const item: Item = isBinary ? { kind: 'audio', bytes: data.length } : { kind: 'event', parsed: parseServerEvent(data.toString('utf8')), raw: data.toString('utf8') };
      this.items.push(item);
      this.opts.onItem(item);
      this.notify();
    });
    ws.on('pong', (data: Buffer) => {
      const item: Item = { kind: 'pong', payload: Buffer.from(data) };
      this.items.push(item);
      this.opts.onItem(item);
      this.notify();
    });
    ws.on('close', (code, reason) => {
      // ws reports 1005 for a close frame without a code and 1006 when no close frame came.
      this.closed = code === 1006 ? { frame: false } : { frame: true, code: code === 1005 ? null : code, reason: reason.toString() };
      this.notify();
    });
    ws.on('error', () => undefined);
    return new Promise((resolve) => {
      ws.once('open', () => resolve(101));
      ws.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
      });
      ws.once('error', () => resolve(0));
    });
  }

  send(frames: readonly FrameSpec[]): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const ignore = (): void => undefined;
    for (const f of frames) {
      const payload = f.payload ?? Buffer.alloc(0);
      switch (f.opcode) {
        case Opcode.text:
        case Opcode.binary:
          this.fragmentBinary = f.opcode === Opcode.binary;
          ws.send(payload, { binary: this.fragmentBinary, fin: f.fin ?? true }, ignore);
          break;
        case Opcode.continuation:
          ws.send(payload, { binary: this.fragmentBinary, fin: f.fin ?? true }, ignore);
          break;
        case Opcode.ping:
          ws.ping(payload, undefined, ignore);
          break;
        case Opcode.pong:
          ws.pong(payload, undefined, ignore);
          break;
        case Opcode.close:
          ws.close(payload.length >= 2 ? payload.readUInt16BE(0) : undefined, payload.length > 2 ? payload.subarray(2).toString() : undefined);
          break;
        default:
          throw new Error(`ws cannot send opcode ${f.opcode}`);
      }
    }
  }

  sendText(text: string): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(text, () => undefined);
  }

  waitUntil(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    if (pred() || this.closed) return Promise.resolve(pred());
    return new Promise((resolve) => {
      const waiter = {
        pred: () => pred() || this.closed !== undefined,
        resolve: () => {
          clearTimeout(timer);
          resolve(pred());
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(pred());
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  fin(): void {
    this.ws?.terminate();
  }

  reset(): void {
    this.ws?.terminate();
  }

  destroy(): void {
    this.ws?.terminate();
  }

  private notify(): void {
    const ready = this.waiters.filter((w) => w.pred());
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  }
}
