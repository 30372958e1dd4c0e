/**
 * The multi-replica topology on one machine: one `redis-server`, N Parley replicas as their own
 * processes (`src/main.ts`, store on that Redis) and, optionally, HAProxy in front. `npm run chaos`
 * runs its load against it and injects faults through the handles here; issue 15's
 * `npm run cluster` is meant to start the same topology with it.
 *
 * Everything started is killed when the launcher process exits (processes.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startRedis, type RedisHandle } from '../helpers/redis.js';
import { HaproxyProcess } from './haproxy.js';
import { forget, track } from './processes.js';
import { ReplicaProcess } from './replica.js';

/** The shared Redis, with the faults a run injects. Restarts reuse the port, so every configured URL stays valid. */
export class RedisControl {
  private paused = false;

  private constructor(private handle: RedisHandle | undefined, readonly port: number) {}

  static async start(): Promise<RedisControl> {
    const handle = await startRedis();
    track(handle.pid);
    return new RedisControl(handle, handle.port);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.handle !== undefined;
  }

  /** SIGKILL: Redis vanishes mid-conversation, with everything it held (no persistence). */
  async kill(): Promise<void> {
    const h = this.handle;
    if (!h) return;
    this.handle = undefined;
    this.paused = false;
    await h.kill();
    forget(h.pid);
  }

  /** Starts an empty redis-server on the same port (resolves once it answers PING). */
  async restart(): Promise<void> {
    if (this.handle) throw new Error('redis-server is still running');
    this.handle = await startRedis(this.port);
    track(this.handle.pid);
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
    forget(h.pid);
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
    writeFileSync(configFile, JSON.stringify(opts.config(redis.url, n), null, 2));
    const replicas: ReplicaProcess[] = [];
    for (let i = 1; i <= n; i++) {
      replicas.push(new ReplicaProcess({ name: `r${i}`, port: await freePort(), configFile, logLevel: opts.logLevel ?? 'warn' }));
    }
    let haproxy: HaproxyProcess | undefined;
    try {
      haproxy = opts.haproxy === false ? undefined : await HaproxyProcess.start(dir, await freePort(), replicas.map((r) => ({ name: r.name, port: r.port })));
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
