/**
 * One Parley replica as its own process, started exactly as an operator runs it: `src/main.ts`
 * (under tsx) with PARLEY_CONFIG, PORT, HOST and LOG_LEVEL, nothing injected. Its output (pino
 * JSON lines) is collected so a run can show what the replica warned about, and when.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { forget, track } from './processes.js';

export const PROJECT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A line the replica wrote at warn level or above, or a line that is not JSON (a crash trace). */
export interface LogLine {
  /** Epoch ms when the launcher read it. */
  readonly at: number;
  /** pino level (40 warn, 50 error, 60 fatal); 0 for a line that is not JSON. */
  readonly level: number;
  readonly msg: string;
  readonly raw: string;
}

/** Lines kept per replica; past it only the count grows (a flood of warnings must not eat the launcher's memory). */
const MAX_LINES = 5_000;

export interface ReplicaOptions {
  readonly name: string;
  readonly port: number;
  readonly configFile: string;
  readonly logLevel: string;
}

export class ReplicaProcess {
  readonly lines: LogLine[] = [];
  /** Warn-or-worse lines, including those past MAX_LINES. */
  linesSeen = 0;
  /** Exits that were not asked for (a crash), with their code or signal. */
  readonly crashes: string[] = [];
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private expectingExit = false;
  /** Incremented per start, so a late exit of a previous process is not taken for the current one's. */
  private generation = 0;

  constructor(readonly opts: ReplicaOptions) {}

  get name(): string {
    return this.opts.name;
  }

  get port(): number {
    return this.opts.port;
  }

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    return `http://127.0.0.1:${this.opts.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the process and resolves once `/healthz` answers 200 (alive; `/readyz` may still say 503). */
  async start(timeoutMs = 30_000): Promise<void> {
    if (this.running) throw new Error(`replica ${this.name} is already running`);
    const gen = ++this.generation;
    this.expectingExit = false;
    const env: NodeJS.ProcessEnv = { ...process.env, PARLEY_CONFIG: this.opts.configFile, PORT: String(this.opts.port), HOST: '127.0.0.1', LOG_LEVEL: this.opts.logLevel };
    // REDIS_URL in the caller's shell would replace the configured store.
    delete env.REDIS_URL;
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: PROJECT_DIR, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    track(child.pid);
    this.collect(child.stdout);
    this.collect(child.stderr);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        forget(child.pid);
        if (gen === this.generation && !this.expectingExit) this.crashes.push(`exited unasked (code ${code}, signal ${signal})`);
        resolve();
      }),
    );
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) throw new Error(`replica ${this.name} exited before listening:\n${this.tail()}`);
      try {
        if ((await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1000) })).status === 200) return;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`replica ${this.name} did not answer /healthz within ${timeoutMs} ms:\n${this.tail()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGKILL (a crash: no drain, leases left in Redis until they expire); resolves once it is gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.expectingExit = true;
    this.child!.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (a drain), then SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.running) return;
    this.expectingExit = true;
    this.child!.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** The last lines of output, for an error message. */
  tail(n = 20): string {
    return this.lines.slice(-n).map((l) => l.raw).join('\n');
  }

  private collect(stream: NodeJS.ReadableStream | null): void {
    if (!stream) return;
    let buffered = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const raw = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (raw) this.line(raw);
      }
    });
  }

  private line(raw: string): void {
    let level = 0;
    let msg = raw;
    try {
      const parsed = JSON.parse(raw) as { level?: unknown; msg?: unknown };
      if (typeof parsed.level === 'number') level = parsed.level;
      if (typeof parsed.msg === 'string') msg = parsed.msg;
    } catch {
      /* not JSON: kept as it is (a stack trace, a tsx error) */
    }
    if (level !== 0 && level < 40) return;
    this.linesSeen++;
    if (this.lines.length < MAX_LINES) this.lines.push({ at: Date.now(), level, msg, raw });
  }
}
