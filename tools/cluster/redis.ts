/**
 * The cluster's `redis-server`: Debian's binary on a local port, no persistence (`--save ''
 * --appendonly no`), as docs/operations.md runs it for replicas on one machine. A product command
 * (`npm run cluster`) starts it, so this lives here and not in test/helpers/redis.ts (which the
 * integration tests keep for their own, richer needs: passwords, TLS, Redis Cluster).
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { forget, track } from './processes.js';

export const REDIS_BIN = process.env.REDIS_SERVER_BIN ?? 'redis-server';

/** A free TCP port on 127.0.0.1 (the OS picks it; it is free when this resolves, not reserved). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** True when a Redis at `url` answers PING (one attempt, no retries). */
export async function redisAnswers(url: string): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/** One running `redis-server`. */
export interface RedisServer {
  readonly port: number;
  readonly pid: number;
  readonly url: string;
  /** SIGTERM, then SIGKILL after 3 s; resolves once it has exited. */
  stop(): Promise<void>;
  /** SIGKILL: it vanishes with everything it held. */
  kill(): Promise<void>;
  /** Sends a signal (SIGSTOP / SIGCONT: a server that hangs with its connections open). */
  signal(sig: NodeJS.Signals): void;
}

/** Starts `redis-server` on `port` (default: a free one) and resolves once it answers PING. */
export async function startRedisServer(port?: number): Promise<RedisServer> {
  port ??= await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const child = spawn(REDIS_BIN, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  let exited = false;
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  const exitP = new Promise<void>((resolve) =>
    child.once('close', () => {
      exited = true;
      forget(child.pid);
      resolve();
    }),
  );
  track(child.pid);
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (spawnError) throw new Error(`cannot run ${REDIS_BIN} (install Debian's redis-server, or set REDIS_SERVER_BIN): ${spawnError.message}`);
    if (exited) throw new Error(`redis-server exited before answering on port ${port}:\n${output}`);
    if (await redisAnswers(url)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not answer PING on port ${port} within 10 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    pid: child.pid!,
    url,
    signal(sig) {
      child.kill(sig);
    },
    async kill() {
      if (exited) return;
      child.kill('SIGKILL');
      await exitP;
    },
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exitP;
      clearTimeout(t);
    },
  };
}
