/**
 * `npm run cluster`: the topology of deploy/compose.yaml without containers, on one machine: a
 * spawned `redis-server`, two replicas (`src/main.ts`, config deploy/parley.yaml on that Redis) and
 * Debian's HAProxy in front (WebSocket upgrades, readiness on /readyz). It prints where to point a
 * browser (the demo page through HAProxy) and stops everything on Ctrl-C: HAProxy first, then the
 * replicas drain (SIGTERM, as an orchestrator stops them), then Redis. A second Ctrl-C kills at once.
 *
 * Options: `--port` (HAProxy's, default 8080; 0 picks a free one), `--replicas` (2), `--config`
 * (deploy/parley.yaml), `--log-level` of the replicas (warn: their warnings are printed here).
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '../../src/config/load.js';
import { Cluster } from './cluster.js';
import { DEPLOY_CONFIG, onLocalRedis, readClusterConfig } from './config.js';
import { killTracked } from './processes.js';
import { freePort } from './redis.js';
import type { LogLine } from './replica.js';

const USAGE = `npm run cluster [-- --port 8080] [--replicas 2] [--config deploy/parley.yaml] [--log-level warn]

Starts redis-server, the replicas and HAProxy on this machine (docs/operations.md, "Deployment").
PARLEY_API_KEY, when set, is the account's API key; otherwise a fresh one is made and printed.
Needs redis-server and haproxy (/usr/sbin/haproxy, or HAPROXY_BIN).`;

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace']);
const LEVEL_NAMES: Record<number, string> = { 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

interface Options {
  readonly port: number;
  readonly replicas: number;
  readonly config: string;
  readonly logLevel: string;
}

function integer(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}, got "${value}"`);
  return n;
}

/** The options, or undefined for --help. Throws naming the bad option. */
function parseOptions(argv: readonly string[]): Options | undefined {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      port: { type: 'string', default: '8080' },
      replicas: { type: 'string', default: '2' },
      config: { type: 'string', default: DEPLOY_CONFIG },
      'log-level': { type: 'string', default: 'warn' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;
  const logLevel = values['log-level'].toLowerCase();
  if (!LEVELS.has(logLevel)) throw new Error(`--log-level must be one of ${[...LEVELS].join(', ')}, got "${values['log-level']}"`);
  return {
    port: integer('port', values.port, 0, 65_535),
    replicas: integer('replicas', values.replicas, 1, 8),
    config: path.resolve(values.config),
    logLevel,
  };
}

/** True when nothing listens on 127.0.0.1:port (HAProxy's own error for a taken port is less plain). */
async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

const say = (line: string): void => {
  process.stderr.write(`[cluster] ${line}\n`);
};

async function main(): Promise<number> {
  let opts: Options | undefined;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}\n`);
    return 2;
  }
  if (!opts) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const apiKey = process.env.PARLEY_API_KEY || `sk_cluster_${randomBytes(18).toString('base64url')}`;
  const env = { PARLEY_API_KEY: apiKey };
  let raw: Record<string, unknown>;
  try {
    raw = readClusterConfig(opts.config, { ...process.env, ...env });
  } catch (err) {
    process.stderr.write(`${err instanceof ConfigError || err instanceof Error ? err.message : String(err)}\n`);
    return 78; // EX_CONFIG, as `npm start` exits on a bad config
  }
  const port = opts.port === 0 ? await freePort() : opts.port;
  if (!(await portFree(port))) {
    process.stderr.write(`port ${port} on 127.0.0.1 is taken (is \`npm start\` running?); choose another with --port\n`);
    return 1;
  }

  // Ctrl-C while starting: nothing to drain yet, so everything started so far is killed.
  const early = (signal: NodeJS.Signals): void => {
    say(`${signal} while starting: killing what was started`);
    killTracked();
    process.exit(130);
  };
  process.on('SIGINT', early);
  process.on('SIGTERM', early);
  const o = opts;
  say(`starting redis-server, ${o.replicas} replicas (src/main.ts, ${path.relative(process.cwd(), o.config) || o.config}) and HAProxy on port ${port}`);
  const cluster = await Cluster.start({
    replicas: o.replicas,
    logLevel: o.logLevel,
    config: (redisUrl, n) => onLocalRedis(raw, redisUrl, n),
    env,
    entryPort: port,
    onLine: (replica: string, line: LogLine) => say(`${replica} ${LEVEL_NAMES[line.level] ?? 'OUTPUT'} ${line.level === 0 ? line.raw : line.msg}`),
  });
  const url = cluster.entryUrl;
  process.stdout.write(
    [
      '',
      `  Parley cluster: ${cluster.replicas.length} replicas on Redis behind HAProxy, the topology of deploy/compose.yaml.`,
      `  Demo page:     ${url}/demo/          <- point a browser here (through HAProxy)`,
      `  Dashboard:     ${url}/dashboard#key=${encodeURIComponent(apiKey)}`,
      `  API key:       ${apiKey}`,
      `  Try:           curl -s -X POST ${url}/v1/tokens -H "Authorization: Bearer ${apiKey}"`,
      ...cluster.replicas.map((r, i) => `  ${i === 0 ? 'Replicas:' : '         '}     ${r.name} ${r.url} (pid ${r.pid}; ${r.url}/metrics)`),
      `  Redis:         ${cluster.redis.url} (pid ${cluster.redis.pid})`,
      `  HAProxy:       ${url} (pid ${cluster.haproxy?.pid}; config ${cluster.haproxy?.configFile})`,
      `  Ctrl-C stops everything.`,
      '',
    ].join('\n') + '\n',
  );

  // A replica that exits by itself is reported (HAProxy takes it out of rotation; the others serve).
  const reported = new Set<string>();
  const watch = setInterval(() => {
    for (const r of cluster.replicas) {
      const crash = r.crashes.at(-1);
      if (crash && !reported.has(`${r.name}:${r.crashes.length}`)) {
        reported.add(`${r.name}:${r.crashes.length}`);
        say(`${r.name} ${crash}; HAProxy sends its clients to the others`);
      }
    }
  }, 500);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        say(`${signal} again: killing everything`);
        killTracked();
        resolve(130);
        return;
      }
      stopping = true;
      clearInterval(watch);
      say(`${signal}: stopping HAProxy, draining the replicas, stopping Redis (Ctrl-C again kills at once)`);
      cluster.stop().then(
        () => {
          say('stopped');
          resolve(0);
        },
        (err: unknown) => {
          say(`stop failed: ${err instanceof Error ? err.message : String(err)}`);
          resolve(1);
        },
      );
    };
    process.off('SIGINT', early);
    process.off('SIGTERM', early);
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

main().then(
  (code) => {
    killTracked();
    process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`cluster failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
    killTracked();
    process.exit(1);
  },
);
