/**
 * A real `ws` client that records every event, validates each against the contract's server
 * event schemas, and lets tests wait for a specific event or the close.
 */
import WebSocket from 'ws';
import { serverValidators, type ServerEvent, type ServerEventType } from '../../src/protocol/messages.js';

export interface Closed {
  readonly code: number;
  readonly reason: string;
}

export class TestClient {
  readonly events: ServerEvent[] = [];
  readonly audio: Buffer[] = [];
  readonly invalid: string[] = [];
  /** Every event and binary frame, in the order they arrived (binary frames carry no request id). */
  readonly order: (ServerEvent | Buffer)[] = [];
  readonly closed: Promise<Closed>;
  readonly opened: Promise<void>;
  private waiters: { pred: (e: ServerEvent) => boolean; resolve: (e: ServerEvent) => void }[] = [];
  closeInfo: Closed | undefined;

  constructor(readonly ws: WebSocket) {
    this.opened = new Promise((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
      });
    });
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        this.audio.push(data as Buffer);
        this.order.push(data as Buffer);
        return;
      }
      const event = JSON.parse(data.toString()) as ServerEvent;
      const check = serverValidators[event.type as ServerEventType];
      if (!check || !check.Check(event)) this.invalid.push(data.toString());
      this.events.push(event);
      this.order.push(event);
      this.waiters = this.waiters.filter((w) => {
        if (w.pred(event)) {
          w.resolve(event);
          return false;
        }
        return true;
      });
    });
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  sendBinary(buf: Buffer): void {
    this.ws.send(buf, { binary: true });
  }

  /** Resolves with the first event (already received or future) that matches. */
  waitFor<T extends ServerEventType>(type: T, pred: (e: Extract<ServerEvent, { type: T }>) => boolean = () => true, timeoutMs = 5000): Promise<Extract<ServerEvent, { type: T }>> {
    const match = (e: ServerEvent): boolean => e.type === type && pred(e as Extract<ServerEvent, { type: T }>);
    const found = this.events.find(match);
    if (found) return Promise.resolve(found as Extract<ServerEvent, { type: T }>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${type}; got ${this.events.map((e) => e.type).join(',')}`)), timeoutMs);
      this.waiters.push({
        pred: match,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e as Extract<ServerEvent, { type: T }>);
        },
      });
    });
  }

  /** Bytes of reply audio received so far. */
  audioBytes(): number {
    return this.audio.reduce((n, b) => n + b.length, 0);
  }

  of<T extends ServerEventType>(type: T): Extract<ServerEvent, { type: T }>[] {
    return this.events.filter((e) => e.type === type) as Extract<ServerEvent, { type: T }>[];
  }

  /** Resolves with the close, failing the test if it does not come within timeoutMs. */
  async waitClose(timeoutMs = 5000): Promise<Closed> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no close within ${timeoutMs} ms; events: ${this.events.map((e) => e.type).join(',')}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(code = 1000): void {
    this.ws.close(code);
  }
}

export interface ConnectOptions {
  readonly token?: string;
  readonly via?: 'subprotocol' | 'query' | 'key';
  readonly apiKey?: string;
  readonly origin?: string;
  readonly protocols?: string[];
}

/** Opens a WebSocket to the app and waits for the handshake. */
export async function connect(baseUrl: string, opts: ConnectOptions = {}): Promise<TestClient> {
  const wsBase = baseUrl.replace(/^http/, 'ws');
  const via = opts.via ?? (opts.apiKey ? 'key' : 'subprotocol');
  let url = `${wsBase}/v1/realtime`;
  let protocols: string[] | undefined = opts.protocols;
  const headers: Record<string, string> = {};
  if (opts.origin) headers.Origin = opts.origin;
  if (via === 'subprotocol' && opts.token) protocols ??= ['parley.v1', `parley.token.${opts.token}`];
  if (via === 'query' && opts.token) url += `?token=${encodeURIComponent(opts.token)}`;
  if (via === 'key' && opts.apiKey) headers.Authorization = `Bearer ${opts.apiKey}`;
  const ws = new WebSocket(url, protocols, { headers });
  const client = new TestClient(ws);
  await client.opened;
  return client;
}
