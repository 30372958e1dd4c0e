/**
 * The fuzzer's handle on the app child: starts it, reads its readings over IPC, tallies its log
 * lines, and notices when it dies (a crash is any exit the fuzzer did not ask for).
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { FromChild, Probe, ToChild } from './ipc.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PROJECT_DIR = path.resolve(HERE, '..', '..');

export interface Crash {
  readonly code: number | null;
  readonly signal: string | null;
  readonly stderrTail: string;
}

export interface LogTally {
  /** Lines by pino level name. */
  readonly byLevel: Record<string, number>;
  /** Lines by message, for the report's "what the app logged" table. */
  readonly byMessage: Record<string, number>;
  /** Error and fatal lines (a fault inside the app), first few kept. */
  readonly errors: string[];
  errorCount: number;
  /** Lines that contain one of the secrets the fuzzer knows (must stay 0). */
  secretLines: number;
}

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const live = new Set<ChildProcess>();

/** Kills every app child still running (synchronous: safe in an 'exit' handler). */
export function killAppChildren(): void {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  live.clear();
}

export class AppProcess {
  crash: Crash | undefined;
  readonly logs: LogTally = { byLevel: {}, byMessage: {}, errors: [], errorCount: 0, secretLines: 0 };
  private stderrTail = '';
  private stopping = false;
  private nextId = 1;
  private readonly waiting = new Map<number, (p: Probe) => void>();
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    secrets: readonly string[],
  ) {
    createInterface({ input: child.stdout! }).on('line', (line) => this.tally(line, secrets));
    child.stderr!.on('data', (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString()).slice(-8000);
    });
    child.on('message', (msg: FromChild) => {
      if (msg.type === 'probe') {
        this.waiting.get(msg.id)?.(msg);
        this.waiting.delete(msg.id);
      }
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(child);
        if (!this.stopping) this.crash = { code, signal, stderrTail: this.stderrTail };
        resolve();
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Starts the app child and resolves once it listens. */
  static start(opts: { heartbeatSeconds: number; secrets: readonly string[] }): Promise<AppProcess> {
    const child = fork(path.join(HERE, 'app-child.ts'), [String(opts.heartbeatSeconds)], {
      cwd: PROJECT_DIR,
      // Our flags, not the parent's: --expose-gc so readings are taken after a full collection.
      execArgv: ['--import', 'tsx', '--expose-gc'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    live.add(child);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error('the app child did not listen within 60 s'));
      }, 60_000);
      const onMessage = (msg: FromChild): void => {
        if (msg.type === 'ready') {
          cleanup();
          resolve(new AppProcess(child, msg.port, opts.secrets));
        } else if (msg.type === 'failed') {
          cleanup();
          reject(new Error(`the app child failed to start: ${msg.message}`));
        }
      };
      const onExit = (code: number | null, signal: string | null): void => {
        cleanup();
        live.delete(child);
        reject(new Error(`the app child exited before listening (code ${code}, signal ${signal}): ${stderr}`));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Handles, connections and sessions, and memory after settled GC when `settle`, read inside the app. */
  probe(settle = true, timeoutMs = 30_000): Promise<Probe> {
    if (!this.alive) return Promise.reject(new Error('the app child is not running'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`the app child did not answer a probe within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, (p) => {
        clearTimeout(timer);
        resolve(p);
      });
      this.child.send({ type: 'probe', id, settle } satisfies ToChild);
    });
  }

  /** Asks the app to close and exit; kills it after 5 s. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (!this.alive) return;
    try {
      this.child.send({ type: 'exit' } satisfies ToChild);
    } catch {
      /* the IPC channel is already gone */
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await this.exited;
    clearTimeout(timer);
  }

  private tally(line: string, secrets: readonly string[]): void {
    if (secrets.some((s) => line.includes(s))) this.logs.secretLines++;
    let rec: { level?: number; msg?: string };
    try {
      rec = JSON.parse(line) as { level?: number; msg?: string };
    } catch {
      this.logs.byLevel.text = (this.logs.byLevel.text ?? 0) + 1;
      return;
    }
    const level = LEVELS[rec.level ?? 0] ?? String(rec.level);
    this.logs.byLevel[level] = (this.logs.byLevel[level] ?? 0) + 1;
    const key = `${level}: ${rec.msg ?? '(no msg)'}`;
    this.logs.byMessage[key] = (this.logs.byMessage[key] ?? 0) + 1;
    if ((rec.level ?? 0) >= 50) {
      this.logs.errorCount++;
      if (this.logs.errors.length < 5) this.logs.errors.push(line.slice(0, 600));
    }
  }
}
