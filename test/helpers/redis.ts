/** Spawns a throwaway `redis-server` on a free local port for integration tests. */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';

export interface RedisHandle {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
  /** SIGKILL: the server vanishes mid-conversation, like a crash. */
  kill(): Promise<void>;
  /** Sends a signal (SIGSTOP / SIGCONT: a server that hangs with its connections open). */
  signal(sig: NodeJS.Signals): void;
}

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

async function ping(url: string, opts: RedisOptions = {}): Promise<boolean> {
  const r = new Redis(url, { ...opts, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
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

export interface StartRedisOptions {
  /** More `redis-server` arguments, after the port (e.g. `['--maxmemory', '1mb']`). */
  readonly extraArgs?: readonly string[];
  /**
   * Runs the server with `--requirepass`; the handle's `url` then carries it
   * (`redis://default:<password>@127.0.0.1:<port>`), as an operator's `REDIS_URL` would.
   */
  readonly password?: string;
}

/** Starts redis-server on a free port, or on `port` (to restart one that was stopped). */
export async function startRedis(port?: number, opts: StartRedisOptions = {}): Promise<RedisHandle> {
  port ??= await freePort();
  const auth = opts.password !== undefined ? `default:${encodeURIComponent(opts.password)}@` : '';
  const args = ['--port', String(port), ...(opts.password !== undefined ? ['--requirepass', opts.password] : []), ...(opts.extraArgs ?? [])];
  return spawnRedis(port, args, `redis://${auth}127.0.0.1:${port}`);
}

/**
 * A `redis-server` that speaks TLS only (`--port 0 --tls-port`), with a certificate for 127.0.0.1
 * signed by a throwaway self-signed CA made with openssl; `caFile` is that CA's PEM.
 */
export async function startRedisTls(): Promise<RedisHandle & { readonly caFile: string; stopAndClean(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const made = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
    { encoding: 'utf8', timeout: 20_000 },
  );
  if (made.status !== 0) throw new Error(`openssl req failed: ${made.stderr}`);
  const port = await freePort();
  const handle = await spawnRedis(
    port,
    ['--port', '0', '--tls-port', String(port), '--tls-cert-file', cert, '--tls-key-file', key, '--tls-ca-cert-file', cert, '--tls-auth-clients', 'no'],
    `rediss://127.0.0.1:${port}`,
    { tls: { ca: readFileSync(cert) } },
  );
  return {
    ...handle,
    caFile: cert,
    async stopAndClean() {
      await handle.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function spawnRedis(port: number, listen: string[], url: string, pingOpts: RedisOptions = {}): Promise<RedisHandle> {
  const child = spawn('redis-server', [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let exited = false;
  const exitP = new Promise<void>((resolve) => child.once('exit', () => { exited = true; resolve(); }));
  child.stdout?.resume();
  child.stderr?.resume();
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (exited) throw new Error(`redis-server exited before answering on port ${port}`);
    if (await ping(url, pingOpts)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not answer PING on port ${port}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    port,
    pid: child.pid!,
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

export interface RedisClusterHandle {
  /** One URL per node (masters and replicas). */
  readonly urls: readonly string[];
  stop(): Promise<void>;
  /** SIGKILL the node on this port (a crash; its ports may then be reused by other tests). */
  kill(port: number): Promise<void>;
  /**
   * Sends a signal to the node on this port: SIGSTOP makes it stop answering like a dead node, for
   * the cluster and for clients, while its ports stay taken (stop() kills it).
   */
  signal(port: number, sig: NodeJS.Signals): void;
}

/** A free port whose cluster-bus port (port + 10000) is free too. */
async function freeClusterPort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port > 55_000) continue;
    const srv = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      srv.once('error', () => resolve(false));
      srv.listen(port + 10_000, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (ok) return port;
  }
}

/**
 * A local Redis Cluster of 3 masters, with `replicasPerMaster` replicas each (default 0):
 * `redis-server --cluster-enabled yes` on free ports, joined by `redis-cli --cluster create`;
 * resolves once CLUSTER INFO says `cluster_state:ok` on every node. With replicas, a node that stops
 * answering is failed over after `cluster-node-timeout` (`nodeTimeoutMs`, default 1 s).
 */
export async function startRedisCluster(opts: { replicasPerMaster?: number; nodeTimeoutMs?: number } = {}): Promise<RedisClusterHandle> {
  const replicas = opts.replicasPerMaster ?? 0;
  const nodeTimeout = String(opts.nodeTimeoutMs ?? 1000);
  const dir = mkdtempSync(join(tmpdir(), 'parley-cluster-'));
  const nodes: { port: number; child: ReturnType<typeof spawn>; exited: Promise<void> }[] = [];
  const stop = async (): Promise<void> => {
    for (const n of nodes) n.child.kill('SIGKILL');
    await Promise.all(nodes.map((n) => n.exited));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3 * (1 + replicas); i++) {
      const port = await freeClusterPort();
      const child = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--cluster-enabled', 'yes',
          '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir, '--cluster-node-timeout', nodeTimeout],
        { stdio: ['ignore', 'ignore', 'ignore'] },
      );
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      nodes.push({ port, child, exited });
    }
    const urls = nodes.map((n) => `redis://127.0.0.1:${n.port}`);
    for (const url of urls) {
      const deadline = Date.now() + 10_000;
      while (!(await ping(url))) {
        if (Date.now() > deadline) throw new Error(`cluster node ${url} did not answer PING`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    const deadline = Date.now() + 15_000;
    for (;;) {
      const states = await Promise.all(
        urls.map(async (url) => {
          const r = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
          r.on('error', () => undefined);
          try {
            return String(await r.cluster('INFO')).includes('cluster_state:ok');
          } catch {
            return false;
          } finally {
            r.disconnect();
          }
        }),
      );
      if (states.every(Boolean)) break;
      if (Date.now() > deadline) throw new Error('the cluster did not reach cluster_state:ok');
      await new Promise((r) => setTimeout(r, 100));
    }
    const kill = async (port: number): Promise<void> => {
      const n = nodes.find((x) => x.port === port);
      if (!n) throw new Error(`no cluster node on port ${port}`);
      n.child.kill('SIGKILL');
      await n.exited;
    };
    const signal = (port: number, sig: NodeJS.Signals): void => {
      const n = nodes.find((x) => x.port === port);
      if (!n) throw new Error(`no cluster node on port ${port}`);
      n.child.kill(sig);
    };
    return { urls, stop, kill, signal };
  } catch (err) {
    await stop();
    throw err;
  }
}
