/**
 * The load client, the same code for both servers: plain `ws` client sockets in the orchestrator's
 * process. The client is deliberately lean (no JSON on the hot path) because it shares the machine
 * with the server under test: every microsecond it spends is one the server cannot have, and a
 * client-bound run would make both servers look alike. The orchestrator prints the client's own CPU
 * use so a reader can tell which side was the limit.
 */
import WebSocket from 'ws';

/** What both servers answer to `{"type":"ping","id":N}`, up to N: Parley and the baseline send the same bytes. */
const PONG_PREFIX = Buffer.from('{"type":"pong","request_id":');
/** Every SAMPLE_EVERY-th pong's request_id is checked against the one expected (pongs come in order). */
const SAMPLE_EVERY = 64;

export interface ClientTarget {
  readonly url: string;
  /** Parley: `Authorization: Bearer <key>` (server-side client auth); the baseline needs none. */
  readonly headers?: Record<string, string>;
  /** Subprotocols to offer (Parley's token path: `parley.v1` and `parley.token.<token>`). */
  readonly protocols?: readonly string[];
  /**
   * How a connection proves it is open, so both kinds have done one request/answer before they count:
   * Parley sends session.start and waits for session.created; the baseline sends one ping and waits
   * for its pong.
   */
  readonly startSession: boolean;
}

/** What went wrong during a run; all zero in a valid run. */
export interface Anomalies {
  /** `error` events (e.g. a limit that did bite), by code. */
  readonly errors: Record<string, number>;
  /** Closes the bench did not ask for, by close code. */
  readonly closes: Record<string, number>;
  /** Sampled pongs whose request_id was not the one expected. */
  mismatches: number;
}

const isPong = (data: Buffer): boolean => data.length > PONG_PREFIX.length && PONG_PREFIX.compare(data, 0, PONG_PREFIX.length) === 0;

const bump = (rec: Record<string, number>, key: string): void => {
  rec[key] = (rec[key] ?? 0) + 1;
};

/**
 * One client socket. `open()` connects (and starts a session when the target says so); afterwards
 * it can run a ping window (`startPinging`) or just sit idle (memory phase).
 */
export class BenchConn {
  readonly ws: WebSocket;
  /** Pongs received since startPinging (read by the load's totals). */
  pongs = 0;
  /** Events other than pong (Parley's quota.updated, once a second per session). */
  others = 0;
  private nextId = 1;
  private expectId = 1;
  private pinging = false;
  private stopping = false;
  private ready: ((err?: Error) => void) | undefined;

  /**
   * `localAddress` binds the socket to one loopback source address (127.0.0.2, ...): one source
   * address has only the ephemeral port range (about 28,000 ports), and the scale phase opens
   * more sockets than that (VERIFIED.md, "Open files").
   */
  constructor(
    target: ClientTarget,
    private readonly anomalies: Anomalies,
    localAddress?: string,
  ) {
    this.ws = new WebSocket(target.url, target.protocols ? [...target.protocols] : [], {
      headers: target.headers ?? {},
      ...(localAddress ? { localAddress } : {}),
      perMessageDeflate: false,
      // The client checks pong bytes itself; UTF-8 validation would be client CPU spent on nothing.
      skipUTF8Validation: true,
    });
    this.ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    this.ws.on('error', (err) => this.ready?.(err));
    this.ws.on('close', (code) => {
      if (!this.stopping) bump(this.anomalies.closes, String(code));
      this.ready?.(new Error(`closed with ${code} while opening`));
    });
  }

  /** Resolves once the socket is open and has had its first answer (session.created, or a pong). */
  open(startSession: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ready = (err) => {
        this.ready = undefined;
        if (err) reject(err);
        else resolve();
      };
      this.ws.once('open', () => {
        if (startSession) this.ws.send('{"type":"session.start","id":"start","language":"es"}');
        else this.ws.send('{"type":"ping","id":0}');
      });
    });
  }

  /** Starts keeping `window` pings in flight: one new ping per pong received. */
  startPinging(window: number): void {
    this.pinging = true;
    for (let i = 0; i < window; i++) this.ping();
  }

  /** Stops sending (pongs still in flight are ignored) and closes the socket without a handshake. */
  stop(): void {
    this.pinging = false;
    this.stopping = true;
    this.ws.terminate();
  }

  private ping(): void {
    // A template string, not JSON.stringify: the id is an integer, nothing needs escaping.
    this.ws.send(`{"type":"ping","id":${this.nextId++}}`);
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (!isBinary && isPong(data)) {
      if (this.ready) {
        this.ready(); // the opening ping's pong
        return;
      }
      this.pongs++;
      const expected = this.expectId++;
      if (this.pongs % SAMPLE_EVERY === 0) {
        const id = Number(data.toString('latin1', PONG_PREFIX.length, data.length - 1));
        if (id !== expected) this.anomalies.mismatches++;
      }
      if (this.pinging) this.ping();
      return;
    }
    // Rare (quota.updated, session.created, error): parse and look.
    this.others++;
    let event: { type?: string; code?: string };
    try {
      event = JSON.parse(data.toString()) as typeof event;
    } catch {
      bump(this.anomalies.errors, 'unparseable_event');
      return;
    }
    if (event.type === 'session.created') this.ready?.();
    else if (event.type === 'error') {
      bump(this.anomalies.errors, event.code ?? 'unknown');
      this.ready?.(new Error(`error event while opening: ${data.toString()}`));
    }
  }
}

export function newAnomalies(): Anomalies {
  return { errors: {}, closes: {}, mismatches: 0 };
}

/** Whether a run saw anything that makes its figures suspect. */
export function anomalyCount(a: Anomalies): number {
  const sum = (r: Record<string, number>): number => Object.values(r).reduce((x, y) => x + y, 0);
  return sum(a.errors) + sum(a.closes) + a.mismatches;
}

/**
 * Opens `count` connections, at most `concurrency` handshakes at a time: 5,000 simultaneous
 * handshakes would measure the accept queue, not the steady state, and could overflow the backlog.
 */
export async function openMany(target: ClientTarget, count: number, anomalies: Anomalies, concurrency = 200): Promise<BenchConn[]> {
  const conns: BenchConn[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      const conn = new BenchConn(target, anomalies);
      conns.push(conn);
      await conn.open(target.startSession);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  } catch (err) {
    closeAll(conns);
    throw err;
  }
  return conns;
}

export function closeAll(conns: readonly BenchConn[]): void {
  for (const c of conns) c.stop();
}

export function totalPongs(conns: readonly BenchConn[]): number {
  let n = 0;
  for (const c of conns) n += c.pongs;
  return n;
}
