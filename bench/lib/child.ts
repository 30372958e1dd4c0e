/**
 * The orchestrator's handle on a server child: starts it (node --import tsx --expose-gc), waits for
 * its port, asks it for CPU and memory readings over IPC, and stops it. Every child started here is
 * killed when the orchestrator exits, however it exits (see killAllChildren and bench/run.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildMessage, CpuSnapshot, MemSnapshot, ParentMessage } from './ipc.js';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const PROJECT_DIR = path.resolve(BENCH_DIR, '..');

export type ServerKind = 'bare' | 'floor' | 'parley';

export interface StartOptions {
  /** Write a V8 CPU profile of the child into this directory when it exits (node --cpu-prof). */
  readonly cpuProfDir?: string | undefined;
  /** Extra environment for the child (the Parley child reads BENCH_PARLEY_CONFIG). */
  readonly env?: Record<string, string>;
  /**
   * Read the child's stdout and stderr instead of sharing ours: each line is echoed with this
   * label in front and kept in `output`, so a report can count and show what a server printed
   * (Parley at warn level prints only what an operator must see).
   */
  readonly label?: string;
}

/** What a labelled child printed. */
export interface ChildOutput {
  /** Every line, in order, up to MAX_KEPT_LINES. */
  readonly lines: string[];
  /** All lines, including those beyond MAX_KEPT_LINES. */
  count: number;
}

const MAX_KEPT_LINES = 1000;
/** Echoed lines are cut here: a log line with a long error stack would flood the report. */
const MAX_ECHO_CHARS = 400;

const live = new Set<ChildProcess>();

const PINO_LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/**
 * A pino JSON line as `warn: <msg> {other fields}`, with an error reduced to its message and
 * without time, pid, hostname and service: the message first, so a cut line still says what
 * happened. Any other line is returned as it is.
 */
export function compactLogLine(line: string): string {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (typeof j !== 'object' || j === null || typeof j.msg !== 'string') return line;
  const { level, msg, time: _time, pid: _pid, hostname: _hostname, service: _service, err, ...rest } = j;
  const fields: Record<string, unknown> = { ...rest };
  if (err && typeof err === 'object') fields.err = (err as { message?: unknown }).message;
  const extra = Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : '';
  return `${PINO_LEVELS[level as number] ?? String(level)}: ${msg}${extra}`;
}

/** Kills every child still running (SIGKILL: synchronous, so it works in an 'exit' handler). */
export function killAllChildren(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  live.clear();
}

export class ServerChild {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (m: ChildMessage) => void; reject: (e: Error) => void }>();
  private exited: Error | undefined;

  private constructor(
    readonly kind: ServerKind,
    private readonly child: ChildProcess,
    readonly port: number,
    /** What the child printed (only when started with a label). */
    readonly output: ChildOutput,
    /** The label it was started with (StartOptions.label). */
    readonly label: string | undefined,
  ) {
    child.on('message', (msg: ChildMessage) => {
      if (msg.type === 'cpu' || msg.type === 'mem' || msg.type === 'profiled') {
        const w = this.waiting.get(msg.id);
        this.waiting.delete(msg.id);
        w?.resolve(msg);
      } else if (msg.type === 'failed') {
        this.failAll(new Error(`${kind} server: ${msg.message}`));
      }
    });
    child.on('exit', (code, signal) => {
      live.delete(child);
      this.exited = new Error(`${kind} server exited (code ${code}, signal ${signal})`);
      this.failAll(this.exited);
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** Starts a server child and resolves once it listens. */
  static start(kind: ServerKind, opts: StartOptions = {}): Promise<ServerChild> {
    const script = path.join(BENCH_DIR, 'servers', `${kind}-server.ts`);
    // Our own flags, not the orchestrator's (tsx adds its loader flags to process.execArgv).
    // --expose-gc: the memory readings force GC first. tsx only transpiles at load time; the
    // running code is plain JS for both children alike.
    const execArgv = ['--import', 'tsx', '--expose-gc'];
    // Node's default profile name carries pid and thread id: tsx's loader-hooks thread writes one
    // too, and a fixed --cpu-prof-name would let it overwrite the main thread's.
    if (opts.cpuProfDir) execArgv.push('--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`);
    const label = opts.label;
    const child = fork(script, [], {
      cwd: PROJECT_DIR,
      execArgv,
      ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}),
      // Children log to our stdout/stderr (labelled or not): a Parley warning during the bench must be seen.
      stdio: ['ignore', label ? 'pipe' : 'inherit', label ? 'pipe' : 'inherit', 'ipc'],
    });
    live.add(child);
    const output: ChildOutput = { lines: [], count: 0 };
    if (label) {
      for (const stream of [child.stdout, child.stderr]) {
        if (!stream) continue;
        let partial = '';
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => {
          const parts = (partial + chunk).split('\n');
          partial = parts.pop() ?? '';
          for (const line of parts) {
            if (!line.trim()) continue;
            output.count++;
            if (output.lines.length < MAX_KEPT_LINES) output.lines.push(line);
            const shown = compactLogLine(line);
            process.stdout.write(`    [${label}] ${shown.length > MAX_ECHO_CHARS ? `${shown.slice(0, MAX_ECHO_CHARS)}…` : shown}\n`);
          }
        });
      }
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${kind} server did not start within 30 s`));
      }, 30_000);
      const onMessage = (msg: ChildMessage): void => {
        if (msg.type === 'ready') {
          clearTimeout(timer);
          child.off('message', onMessage);
          child.off('exit', onExit);
          resolve(new ServerChild(kind, child, msg.port, output, label));
        } else if (msg.type === 'failed') {
          clearTimeout(timer);
          reject(new Error(`${kind} server failed to start: ${msg.message}`));
        }
      };
      const onExit = (code: number | null, signal: string | null): void => {
        clearTimeout(timer);
        live.delete(child);
        reject(new Error(`${kind} server exited before listening (code ${code}, signal ${signal})`));
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  }

  /**
   * The child's cumulative CPU, read inside the child. The answer waits for the child's event
   * loop: a server that stalls for seconds (the scale phase measures such stalls) needs a longer
   * `timeoutMs`.
   */
  cpu(timeoutMs = 5_000): Promise<CpuSnapshot> {
    return this.request({ type: 'cpu', id: this.nextId++ }, timeoutMs) as Promise<CpuSnapshot>;
  }

  /**
   * The child's memory once garbage collection and V8's memory reducer have settled (10-30 s; see
   * settledMemory in ipc.ts). `quick`: forced GCs only (about a second), for readings whose RSS
   * does not matter.
   */
  mem(timeoutMs = 60_000, quick = false): Promise<MemSnapshot> {
    return this.request({ type: 'mem', id: this.nextId++, quick }, timeoutMs) as Promise<MemSnapshot>;
  }

  /** Starts the child's CPU profiler (node:inspector), for a window ended by profileStop. */
  async profileStart(timeoutMs = 30_000): Promise<void> {
    await this.request({ type: 'profile-start', id: this.nextId++ }, timeoutMs);
  }

  /** Stops the child's CPU profiler and has it write the profile to `file`. */
  async profileStop(file: string, timeoutMs = 60_000): Promise<void> {
    await this.request({ type: 'profile-stop', id: this.nextId++, file }, timeoutMs);
  }

  /** Asks the child to exit (so --cpu-prof can write its profile), then kills it after 5 s. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    try {
      this.child.send({ type: 'exit' } satisfies ParentMessage);
    } catch {
      /* the IPC channel is already gone */
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  private request(msg: Extract<ParentMessage, { id: number }>, timeoutMs: number): Promise<ChildMessage> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(msg.id);
        reject(new Error(`${this.kind} server did not answer "${msg.type}" within ${timeoutMs} ms`));
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

  private failAll(err: Error): void {
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }
}
