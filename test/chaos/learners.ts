/**
 * The steady load: learners using the project's own SDK (`ParleyClient`) as a real app does. Each
 * learner's token provider asks `POST /v1/tokens` with the API key (the app back end's part), its
 * socket goes through HAProxy, and it does one `turn.text` about every second, waiting for each
 * reply before the next (turns of a session run one at a time anyway). The SDK reconnects and
 * resumes by itself; a learner whose session ends for good starts a new one after a second, as
 * an app would.
 *
 * Each learner connects from its own loopback address (127.0.0.2 …), so the replicas, behind
 * HAProxy's X-Forwarded-For, see distinct clients as in production, not one address for all.
 */
import { Agent, request } from 'undici';
import WebSocket from 'ws';
import { ParleyClient, ParleyClientError, type WebSocketConstructor } from '../../src/client/index.js';
import { REPLICA_HEADER } from './haproxy.js';
import type { Ledger, TurnEntry } from './ledger.js';
import type { Occupancy } from './occupancy.js';

export interface FleetOptions {
  /** HAProxy's (or a replica's) http:// URL. */
  readonly entryUrl: string;
  readonly apiKey: string;
  readonly sessions: number;
  readonly lostAfterMs: number;
  readonly ledger: Ledger;
  readonly occupancy: Occupancy;
}

/** What the run knows about one socket of a learner. */
interface SocketState {
  replica: string | undefined;
  state: 'connecting' | 'transition' | 'admitted' | 'closed';
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** A function, not an inline comparison: TypeScript would keep `state` narrowed across the await in between. */
const closed = (c: ParleyClient): boolean => c.state === 'closed';

class Learner {
  client: ParleyClient | undefined;
  private socket: WebSocket | undefined;
  private readonly sockets = new Map<WebSocket, SocketState>();
  /** Turn request ids that left this learner's current client (the SDK's ids are unique per client). */
  private sentIds = new Set<string>();
  /** Request ids named by a server `error` event. */
  private erroredIds = new Set<string>();
  /** Terminal server events (reply.audio.end, error) per request id, to catch double answers. */
  private terminals = new Map<string, number>();
  private stopping = false;
  private wake: (() => void) | undefined;
  private sessionNo = 0;
  private loop: Promise<void> | undefined;
  private readonly agent: Agent;
  private readonly address: string;
  /** Sessions opened (created or resumed) by this learner so far. */
  opens = 0;
  /** The replica of the socket whose session is open now. */
  replica: string | undefined;
  /** What happened to this learner lately, for the report of a lost turn. */
  private readonly history: { at: number; what: string }[] = [];

  constructor(
    readonly index: number,
    private readonly o: FleetOptions,
  ) {
    // 127.0.0.2 … 127.0.0.201: every learner its own source address (Linux routes all of 127/8 to lo).
    this.address = `127.0.0.${2 + (index % 200)}`;
    this.agent = new Agent({ connect: { localAddress: this.address } });
  }

  /** The learner's session is open now (state `open`). */
  get open(): boolean {
    return this.client?.state === 'open';
  }

  start(): void {
    this.loop = this.run();
  }

  /** Cuts the current socket without a close frame (the network vanished); the SDK resumes. */
  drop(): boolean {
    if (!this.open || !this.socket) return false;
    this.note('socket cut by the run');
    this.socket.terminate();
    return true;
  }

  private note(what: string): void {
    this.history.push({ at: Date.now(), what });
    if (this.history.length > 40) this.history.shift();
  }

  /** The learner's history since `from` (epoch ms), as one line. */
  historySince(from: number): string {
    return this.history
      .filter((h) => h.at >= from)
      .map((h) => `${new Date(h.at).toISOString().slice(17, 23)} ${h.what}`)
      .join('; ');
  }

  /** Stops asking for turns; resolves once the loop has left (the current turn settled or the caller gave up on it). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
  }

  /** Closes the client at once (the end of the run). */
  close(): void {
    this.stopping = true;
    this.wake?.();
    this.client?.close();
    void this.agent.close();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const client = this.newClient();
      try {
        await client.connect();
      } catch {
        // connect() rejects only when the client gives up before a session opened; the `closed` handler counted it.
        await this.pause(1000);
        continue;
      }
      while (!this.stopping && !closed(client)) {
        const started = Date.now();
        await this.turn(client);
        if (closed(client)) break;
        // About one turn a second, jittered so 40 learners do not tick together.
        await this.pause(800 + Math.random() * 400 - (Date.now() - started));
      }
      if (!this.stopping) await this.pause(1000);
    }
  }

  private pause(ms: number): Promise<void> {
    if (ms <= 0 || this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  private async turn(client: ParleyClient): Promise<void> {
    const { ledger } = this.o;
    const entry: TurnEntry = ledger.turnSent(this.index);
    this.note('turn asked');
    try {
      await client.turnText(`Hola, quiero un café con leche, por favor (${this.index}).`);
      ledger.answered(entry);
    } catch (err) {
      if (!(err instanceof ParleyClientError)) {
        ledger.lost(entry, undefined, err instanceof Error ? err.message : String(err), false);
        return;
      }
      const id = err.requestId === undefined ? undefined : String(err.requestId);
      if (id !== undefined && this.erroredIds.has(id)) ledger.errored(entry, err.code);
      else ledger.lost(entry, id, err.code, id !== undefined && this.sentIds.has(id), this.historySince(entry.at - 1000));
    }
  }

  private newClient(): ParleyClient {
    const { ledger } = this.o;
    this.sessionNo++;
    this.sentIds = new Set();
    this.erroredIds = new Set();
    this.terminals = new Map();
    const client = new ParleyClient({
      url: `${this.o.entryUrl.replace(/^http/, 'ws')}/v1/realtime`,
      token: () => this.mintToken(),
      session: { language: 'es', scenario: 'ordering coffee' },
      WebSocket: this.socketClass(),
      idPrefix: `l${this.index}s${this.sessionNo}-`,
      // 20 s of silence about a request after a resume: the simulated turns take under a second.
      reconnect: { lostRequestTimeoutMs: this.o.lostAfterMs },
    });
    this.client = client;
    ledger.sessionStarted();
    client.on('state', ({ state }) => {
      if (state !== 'open' || !this.socket) return;
      const s = this.sockets.get(this.socket);
      if (s?.state !== 'transition') return;
      s.state = 'admitted';
      this.o.occupancy.transitional--;
      this.o.occupancy.admitted(s.replica ?? 'direct');
      this.replica = s.replica ?? 'direct';
      this.opens++;
      this.note(`session ${client.session?.resumed ? 'resumed' : 'created'} on ${this.replica}`);
    });
    client.on('resumed', (e) => this.note(`${e.pending} request(s) pending after the resume`));
    client.on('reconnect', (e) => this.note(`reconnect attempt ${e.attempt} in ${e.delayMs} ms`));
    client.on('error', (e) => {
      ledger.serverError(e.code);
      this.note(`error ${e.code}${e.request_id !== undefined ? ` for ${String(e.request_id)}` : ''}`);
      if (e.request_id !== undefined) {
        const id = String(e.request_id);
        this.erroredIds.add(id);
        this.terminal(id);
      }
    });
    client.on('reply.audio.end', (e) => {
      this.note(`answer to ${String(e.request_id)}`);
      this.terminal(String(e.request_id));
    });
    client.on('closed', (e) => {
      this.note(`closed ${e.code} ${e.error?.code ?? e.reason}`.trim());
      if (e.blockedBy === 'client_closed') return; // the run's own close at the end
      ledger.close(e.code, e.error?.code);
      if (!e.willReconnect) {
        ledger.sessionLost(`${e.code} ${e.error?.code ?? e.blockedBy ?? e.reason}`.trim());
      }
    });
    return client;
  }

  private terminal(id: string): void {
    const n = (this.terminals.get(id) ?? 0) + 1;
    this.terminals.set(id, n);
    if (n === 2) this.o.ledger.duplicate();
  }

  private async mintToken(): Promise<string> {
    let res;
    try {
      res = await request(`${this.o.entryUrl}/v1/tokens`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.o.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ learner_id: `learner-${this.index}` }),
        dispatcher: this.agent,
        headersTimeout: 5000,
        bodyTimeout: 5000,
      });
    } catch (err) {
      this.o.ledger.tokenFailed(err instanceof Error ? (err as Error & { code?: string }).code ?? err.message : String(err));
      throw err;
    }
    if (res.statusCode !== 201) {
      await res.body.dump();
      // No replica header: HAProxy answered itself (no server up in either backend).
      const by = res.headers[REPLICA_HEADER];
      this.o.ledger.tokenFailed(`HTTP ${res.statusCode} from ${typeof by === 'string' ? by : 'HAProxy'}`);
      throw new Error(`POST /v1/tokens answered ${res.statusCode}`);
    }
    return ((await res.body.json()) as { token: string }).token;
  }

  /** `ws`'s WebSocket bound to this learner's address, reporting each socket's replica and admission. */
  private socketClass(): WebSocketConstructor {
    const learner = this;
    const occupancy = this.o.occupancy;
    return class LearnerSocket extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { localAddress: learner.address });
        const s: SocketState = { replica: undefined, state: 'connecting' };
        learner.sockets.set(this, s);
        learner.socket = this;
        this.on('upgrade', (res) => {
          const h = res.headers[REPLICA_HEADER];
          s.replica = typeof h === 'string' ? h : undefined;
          learner.note(`socket to ${s.replica ?? 'a replica'}`);
        });
        this.on('open', () => {
          s.state = 'transition';
          occupancy.transitional++;
        });
        this.on('close', () => {
          if (s.state === 'transition') occupancy.transitional--;
          else if (s.state === 'admitted') {
            occupancy.closed(s.replica ?? 'direct');
            if (learner.socket === this) learner.replica = undefined;
          }
          s.state = 'closed';
          learner.sockets.delete(this);
        });
      }

      override send(data: unknown, ...rest: unknown[]): void {
        if (typeof data === 'string' && data.includes('"turn.text"')) {
          try {
            const id = (JSON.parse(data) as { id?: unknown }).id;
            if (id !== undefined) learner.sentIds.add(String(id));
          } catch {
            /* not ours to judge */
          }
        }
        (super.send as (...a: unknown[]) => void)(data, ...rest);
      }
    };
  }
}

/** Some learners, remembered with how many sessions each had opened, to tell when each has opened another. */
export class Marked {
  private readonly opensBefore: number[];

  constructor(readonly learners: readonly Learner[]) {
    this.opensBefore = learners.map((l) => l.opens);
  }

  get indexes(): number[] {
    return this.learners.map((l) => l.index);
  }

  /** Every one of them has a session open again (resumed, or a new one) since it was marked. */
  get allReopened(): boolean {
    return this.learners.every((l, i) => l.open && l.opens > this.opensBefore[i]!);
  }
}

/** All the learners. */
export class Fleet {
  readonly learners: Learner[];

  constructor(private readonly o: FleetOptions) {
    this.learners = Array.from({ length: o.sessions }, (_, i) => new Learner(i, o));
  }

  /** Starts the learners spread over `rampMs` (a burst of simultaneous connects is not the steady state). */
  async start(rampMs = 2000): Promise<void> {
    for (const l of this.learners) {
      l.start();
      await sleep(rampMs / this.learners.length);
    }
  }

  /** Learners whose session is open now. */
  get openCount(): number {
    return this.learners.filter((l) => l.open).length;
  }

  /** Cuts the sockets of `n` open learners, starting at learner `from` (so successive faults hit different ones). */
  drop(n: number, from: number): Marked {
    const dropped: Learner[] = [];
    for (let k = 0; k < this.learners.length && dropped.length < n; k++) {
      const l = this.learners[(from + k) % this.learners.length]!;
      if (l.drop()) dropped.push(l);
    }
    return new Marked(dropped);
  }

  /** The learners whose open session is on `replica` now. */
  on(replica: string): Marked {
    return new Marked(this.learners.filter((l) => l.open && l.replica === replica));
  }

  /** Stops new turns, waits up to `settleMs` for the turns in flight to be answered, then closes every client. */
  async stop(settleMs: number): Promise<void> {
    const stopped = Promise.all(this.learners.map((l) => l.stop()));
    await Promise.race([stopped, sleep(settleMs)]);
    this.o.ledger.loseUnsettled();
    for (const l of this.learners) l.close();
    await Promise.race([stopped, sleep(2000)]);
  }
}
