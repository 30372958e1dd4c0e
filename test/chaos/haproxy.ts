/**
 * Debian's HAProxy in front of the replicas, as docs/operations.md describes a deployment:
 * WebSocket upgrades proxied, readiness checked on `/readyz`, least-connections balancing,
 * `X-Forwarded-For` added (the replicas run with `server.trustProxy`).
 *
 * One choice beyond the docs: when NO replica is ready (a Redis outage makes every replica answer
 * 503), traffic goes to the live ones (`/healthz`) instead of HAProxy answering 503 itself. The
 * replicas keep serving on their in-process fallback during an outage, and a balancer that turned
 * every client away would make that fallback pointless. Each response carries
 * `X-Parley-Replica: <server name>`, so a client (and this run) knows which replica it reached.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { forget, track } from './processes.js';

export const HAPROXY_BIN = process.env.HAPROXY_BIN ?? '/usr/sbin/haproxy';
/** The response header naming the replica that served a request (set by HAProxy). */
export const REPLICA_HEADER = 'x-parley-replica';

/** Health-check interval: a replica's readiness change reaches the balancer within about 2 × this. */
export const CHECK_INTERVAL_MS = 500;

export interface Backend {
  readonly name: string;
  readonly port: number;
}

/** The haproxy.cfg text for a frontend on `port` and these replicas. */
export function haproxyConfig(port: number, backends: readonly Backend[]): string {
  const servers = (check: string): string =>
    backends.map((b) => `  server ${b.name} 127.0.0.1:${b.port} check inter ${CHECK_INTERVAL_MS} fall 2 rise 2 # ${check}`).join('\n');
  // maxconn: HAProxy needs about two descriptors per connection and this machine allows 20,000 per process.
  return `global
  maxconn 4000

defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  # WebSockets: once upgraded, the tunnel timeout applies (longer than the gateway's 30 s ping).
  timeout tunnel 1h
  # A check waits up to 2 s (the default is the check interval): on a starved machine a replica
  # whose event loop lags a second is slow, not dead, and the balancer must not answer 503 itself.
  timeout check 2s
  # A connection refused by a dead replica is retried on another one.
  retries 3
  option redispatch
  option forwardfor

frontend parley
  bind 127.0.0.1:${port}
  use_backend ready if { nbsrv(ready) gt 0 }
  default_backend live

backend ready
  balance leastconn
  option httpchk GET /readyz
  http-check expect status 200
  http-response set-header X-Parley-Replica %[srv_name]
${servers('/readyz')}

backend live
  balance leastconn
  option httpchk GET /healthz
  http-check expect status 200
  http-response set-header X-Parley-Replica %[srv_name]
${servers('/healthz')}
`;
}

export class HaproxyProcess {
  private child: ChildProcess | undefined;
  private output = '';
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly port: number,
    readonly configFile: string,
  ) {}

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Writes the config into `dir`, checks it (`haproxy -c`), starts HAProxy in the foreground and waits for its port. */
  static async start(dir: string, port: number, backends: readonly Backend[]): Promise<HaproxyProcess> {
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(file, haproxyConfig(port, backends));
    const checked = spawnSync(HAPROXY_BIN, ['-c', '-q', '-f', file], { encoding: 'utf8', timeout: 10_000 });
    if (checked.error) throw new Error(`cannot run ${HAPROXY_BIN} (set HAPROXY_BIN): ${checked.error.message}`);
    if (checked.status !== 0) throw new Error(`haproxy rejected ${file}:\n${checked.stdout}${checked.stderr}`);
    const h = new HaproxyProcess(port, file);
    // -db: stay in the foreground, so this process owns it (and kills it on exit).
    const child = spawn(HAPROXY_BIN, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    h.child = child;
    track(child.pid);
    child.stdout?.on('data', (d: Buffer) => (h.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (h.output += d.toString()));
    h.exited = new Promise((resolve) => child.once('exit', () => (forget(child.pid), resolve())));
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`haproxy exited at start:\n${h.output}`);
      try {
        // Any HTTP answer (503 while no replica is up yet) means it listens.
        await fetch(`${h.url}/healthz`, { signal: AbortSignal.timeout(1000) });
        return h;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`haproxy did not listen on ${port} within 10 s:\n${h.output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await this.exited;
    clearTimeout(timer);
  }
}
