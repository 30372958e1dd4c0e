/**
 * The multi-replica topology on one machine: one `redis-server`, N Parley replicas as their own
 * processes (`src/main.ts`, store on that Redis) and, optionally, HAProxy in front: the topology of
 * deploy/compose.yaml without containers. `npm run cluster` (cli.ts) starts it for a person;
 * `npm run chaos` (test/chaos/) runs its load against it and injects faults through the handles
 * here; test/integration/cluster.test.ts kills a replica behind it.
 *
 * Everything started is killed when the launcher process exits (processes.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HaproxyProcess } from './haproxy.js';
import { freePort, startRedisServer, type RedisServer } from './redis.js';
import { ReplicaProcess, type LogLine } from './replica.js';

/** The shared Redis, with the faults a run injects. Restarts reuse the port, so every configured URL stays valid. */
export class RedisControl {
  private paused = false;

  private constructor(private handle: RedisServer | undefined, readonly port: number) {}

  /** Starts `redis-server` on `port` (default: a free one). */
  static async start(port?: number): Promise<RedisControl> {
    const handle = await startRedisServer(port);
    return new RedisControl(handle, handle.port);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.handle !== undefined;
  }

  /** The running server's pid (undefined while killed). */
  get pid(): number | undefined {
    return this.handle?.pid;
  }

  /** SIGKILL: Redis vanishes mid-conversation, with everything it held (no persistence). */
  async kill(): Promise<void> {
    const h = this.handle;
    if (!h) return;
    this.handle = undefined;
    this.paused = false;
    await h.kill();
  }

  /** Starts an empty redis-server on the same port (resolves once it answers PING). */
  async restart(): Promise<void> {
    if (this.handle) throw new Error('redis-server is still running');
    this.handle = await startRedisServer(this.port);
  }

  /** SIGSTOP: Redis hangs with its connections open (commands time out instead of failing). */
  pause(): void {
    this.handle?.signal('SIGSTOP');
    this.paused = this.handle !== undefined;
  }

  /** SIGCONT after pause(). */
  resume(): void {
    this.handle?.signal('SIGCONT');
    this.paused = false;
  }

  async stop(): Promise<void> {
    const h = this.handle;
    if (!h) return;
    if (this.paused) this.resume();
    this.handle = undefined;
    await h.stop();
  }
}

export interface ClusterOptions {
  /** Replicas (default 2). */
  readonly replicas?: number;
  /** HAProxy in front (default true). */
  readonly haproxy?: boolean;
  /** LOG_LEVEL of the replicas (default warn). */
  readonly logLevel?: string;
  /** The config document of every replica, given the Redis URL and the replica count. */
  readonly config: (redisUrl: string, replicas: number) => Record<string, unknown>;
  /** More environment for every replica (e.g. the variables its config's `env:NAME` secrets read). */
  readonly env?: Readonly<Record<string, string>>;
  /** HAProxy's port on 127.0.0.1 (default: a free one). */
  readonly entryPort?: number;
  /** Called with each warn-or-worse (or non-JSON) line a replica writes, as it arrives. */
  readonly onLine?: (replica: string, line: LogLine) => void;
}

export class Cluster {
  private constructor(
    readonly dir: string,
    readonly redis: RedisControl,
    readonly replicas: readonly ReplicaProcess[],
    readonly haproxy: HaproxyProcess | undefined,
  ) {}

  /** Starts Redis, the replicas (in parallel) and HAProxy; resolves once every replica is ready. */
  static async start(opts: ClusterOptions): Promise<Cluster> {
    const n = opts.replicas ?? 2;
    const dir = mkdtempSync(join(tmpdir(), 'parley-cluster-'));
    const redis = await RedisControl.start();
    const configFile = join(dir, 'parley.json');
    // 0600: the config may hold secrets (docs/configuration.md prefers env:NAME, which opts.env carries).
    writeFileSync(configFile, JSON.stringify(opts.config(redis.url, n), null, 2), { mode: 0o600 });
    const replicas: ReplicaProcess[] = [];
    for (let i = 1; i <= n; i++) {
      const name = `r${i}`;
      const onLine = opts.onLine;
      replicas.push(
        new ReplicaProcess({
          name,
          port: await freePort(),
          configFile,
          logLevel: opts.logLevel ?? 'warn',
          env: opts.env ?? {},
          ...(onLine ? { onLine: (line: LogLine) => onLine(name, line) } : {}),
        }),
      );
    }
    let haproxy: HaproxyProcess | undefined;
    try {
      haproxy = opts.haproxy === false ? undefined : await HaproxyProcess.start(dir, opts.entryPort ?? (await freePort()), replicas.map((r) => ({ name: r.name, port: r.port })));
    } catch (err) {
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    const cluster = new Cluster(dir, redis, replicas, haproxy);
    try {
      await Promise.all(replicas.map((r) => r.start()));
      await cluster.waitReady(replicas, 30_000);
      if (haproxy) await cluster.waitRouted(30_000);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** The replicas' config file (in the temp dir; removed by stop()). */
  get configFile(): string {
    return join(this.dir, 'parley.json');
  }

  /** Where clients go: HAProxy if there is one, else the first replica. */
  get entryUrl(): string {
    return this.haproxy?.url ?? this.replicas[0]!.url;
  }

  replica(name: string): ReplicaProcess {
    const r = this.replicas.find((x) => x.name === name);
    if (!r) throw new Error(`no replica named ${name}`);
    return r;
  }

  /** Resolves once every given replica answers /readyz 200; rejects after timeoutMs naming the laggards. */
  async waitReady(replicas: readonly ReplicaProcess[] = this.replicas, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ready = await Promise.all(replicas.map((r) => readyz(r.url)));
      if (ready.every((s) => s === 200)) return;
      if (Date.now() > deadline) {
        const laggards = replicas.filter((_, i) => ready[i] !== 200).map((r, i) => `${r.name} (${ready[i] ?? 'no answer'})`);
        throw new Error(`not ready within ${timeoutMs} ms: ${laggards.join(', ')}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Resolves once HAProxy has seen a replica ready (its checks need `rise` answers) and routes to it. */
  async waitRouted(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((await readyz(this.entryUrl)) !== 200) {
      if (Date.now() > deadline) throw new Error(`HAProxy routes to no ready replica after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Stops HAProxy, drains the replicas (SIGTERM), stops Redis and removes the temp dir. */
  async stop(): Promise<void> {
    await this.haproxy?.stop();
    await Promise.all(this.replicas.map((r) => r.stop()));
    await this.redis.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * The /readyz status code, or undefined when nothing answers within `timeoutMs` (default 2.5 s:
 * on a starved machine a live replica can take over a second to answer).
 */
export async function readyz(baseUrl: string, timeoutMs = 2500): Promise<number | undefined> {
  try {
    const res = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return undefined;
  }
}
