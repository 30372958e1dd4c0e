/**
 * Socket holders: child processes that open and hold client sockets for the scale phase
 * (bench/scale.ts), and the orchestrator's handle on them.
 *
 * Why child processes: these machines cap open files at 20,000 per process and the limit cannot be
 * raised (VERIFIED.md, "Open files"), so 100,000 client sockets need at least six processes besides
 * the servers. Each holder binds its sockets to loopback source addresses (127.0.0.2 ...) so the
 * ephemeral port range of one address (about 28,000 ports) does not run out either.
 *
 * The child's side is bench/clients/holder.ts; both speak the messages below over the IPC channel.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { BENCH_DIR, PROJECT_DIR } from './child.js';
import type { Anomalies } from './clients.js';

/** How sessions are opened. */
export type OpenAuth =
  /** bare `ws` and the floor: connect, one ping, its pong. */
  | 'none'
  /** Parley, server-side client: `Authorization: Bearer <key>`, then session.start → session.created. */
  | 'key'
  /**
   * Parley, as a browser app does it: its back end mints a single-use token over REST
   * (`POST /v1/tokens`, with the API key), then the learner's socket presents it as the
   * subprotocol `parley.token.<token>`, then session.start → session.created.
   */
  | 'token';

export interface OpenSpec {
  /** ws://host:port/path of the server. */
  readonly wsUrl: string;
  /** http://host:port of the server (token path: where tokens are minted). */
  readonly httpUrl: string;
  readonly auth: OpenAuth;
  /** The API key (auth 'key' and 'token'). */
  readonly key?: string;
  /** Sessions to open (successes, not attempts). */
  readonly count: number;
  /** Handshakes (and token mints) in flight at once. */
  readonly concurrency: number;
  /** Loopback source addresses the sockets are spread over, round robin. */
  readonly localAddresses: readonly string[];
  /** Learner ids are `${learnerPrefix}${i}` (token path). */
  readonly learnerPrefix: string;
  /** No new handshake starts after this many seconds: a server that opens a few a second must not hold the bench for an hour. */
  readonly deadlineSeconds: number;
}

export interface OpenResult {
  readonly opened: number;
  readonly failed: number;
  readonly firstError?: string;
  /** Why it stopped short of `count`: too many failures, or the deadline. */
  readonly stopped?: 'failures' | 'deadline';
  /** From the first handshake to the last session.created (or pong). */
  readonly seconds: number;
  /** Seconds since the start when 10 %, 20 %, ... 100 % of `count` were open. */
  readonly deciles: readonly number[];
  /** The holder's own CPU over the open (µs): tells whether the clients were the limit. */
  readonly holderCpuUs: number;
  readonly anomalies: Anomalies;
}

/** Parent → holder. */
export type HolderRequest =
  | { readonly type: 'open'; readonly id: number; readonly spec: OpenSpec }
  | { readonly type: 'close'; readonly id: number }
  | { readonly type: 'status'; readonly id: number }
  | { readonly type: 'exit' };

/** Holder → parent. */
export type HolderReply =
  | { readonly type: 'ready' }
  | { readonly type: 'opened'; readonly id: number; readonly result: OpenResult }
  | { readonly type: 'closed'; readonly id: number; readonly count: number }
  | { readonly type: 'status'; readonly id: number; readonly held: number; readonly anomalies: Anomalies }
  | { readonly type: 'failed'; readonly id: number; readonly message: string };

const live = new Set<ChildProcess>();

/** Kills every holder still running (SIGKILL: synchronous, fine in an 'exit' handler). */
export function killAllHolders(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  live.clear();
}

/** The orchestrator's handle on one holder process. */
export class Holder {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (m: HolderReply) => void; reject: (e: Error) => void }>();
  private exited: Error | undefined;
  /** Sockets this holder has open (as of its last answer). */
  held = 0;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    child.on('message', (msg: HolderReply) => {
      if (msg.type === 'ready') return;
      const w = this.waiting.get(msg.id);
      this.waiting.delete(msg.id);
      if (!w) return;
      if (msg.type === 'failed') w.reject(new Error(`${name}: ${msg.message}`));
      else w.resolve(msg);
    });
    child.on('exit', (code, signal) => {
      live.delete(child);
      this.exited = new Error(`${name} exited (code ${code}, signal ${signal})`);
      for (const w of this.waiting.values()) w.reject(this.exited);
      this.waiting.clear();
    });
  }

  static start(name: string): Promise<Holder> {
    const child = fork(path.join(BENCH_DIR, 'clients', 'holder.ts'), [], {
      cwd: PROJECT_DIR,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    live.add(child);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${name} did not start within 30 s`));
      }, 30_000);
      child.once('message', (msg: HolderReply) => {
        clearTimeout(timer);
        if (msg.type === 'ready') resolve(new Holder(name, child));
        else reject(new Error(`${name} failed to start`));
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        live.delete(child);
        reject(new Error(`${name} exited before it was ready (code ${code}, signal ${signal})`));
      });
    });
  }

  /** Opens `spec.count` more sessions and keeps them open. */
  async open(spec: OpenSpec): Promise<OpenResult> {
    // The holder stops starting handshakes at the deadline; the ones in flight then finish or fail.
    const timeoutMs = (spec.deadlineSeconds + 120) * 1000;
    const reply = (await this.request({ type: 'open', id: this.nextId++, spec }, timeoutMs)) as Extract<HolderReply, { type: 'opened' }>;
    this.held += reply.result.opened;
    return reply.result;
  }

  /** Closes every socket it holds (no close handshake: ws.terminate()). */
  async closeAll(): Promise<number> {
    const reply = (await this.request({ type: 'close', id: this.nextId++ }, 60_000)) as Extract<HolderReply, { type: 'closed' }>;
    this.held = 0;
    return reply.count;
  }

  /** Sockets still open and what went wrong while holding them (closes the bench did not ask for). */
  async status(): Promise<{ held: number; anomalies: Anomalies }> {
    const reply = (await this.request({ type: 'status', id: this.nextId++ }, 30_000)) as Extract<HolderReply, { type: 'status' }>;
    return { held: reply.held, anomalies: reply.anomalies };
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    try {
      this.child.send({ type: 'exit' } satisfies HolderRequest);
    } catch {
      /* the IPC channel is already gone */
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  private request(msg: Extract<HolderRequest, { id: number }>, timeoutMs: number): Promise<HolderReply> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(msg.id);
        reject(new Error(`${this.name} did not answer "${msg.type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(msg.id, {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send(msg);
    });
  }
}
