/**
 * `npm run chaos`: two Parley replicas and Redis under a steady load of learners doing turns, then
 * Redis killed and restarted, Redis paused (SIGSTOP) and resumed, one replica SIGKILLed and
 * restarted (issue 12, item 5; docs/operations.md "Chaos run"). It prints what the clients saw
 * (lost turns, errors by code), how long each replica's /readyz said 503, the connection cap
 * against the documented fallback bound, and how long `connections_used` took to be true again;
 * it exits 1 when a promise is broken. Not part of `npm test`: it runs for a few minutes.
 */
import { writeFileSync } from 'node:fs';
import { Cluster } from './cluster.js';
import { chaosConfig } from './config.js';
import { parseOptions } from './options.js';
import { killTracked } from './processes.js';
import { formatReport, reportJson } from './report.js';
import { runScenario } from './scenario.js';

const started = Date.now();
const say = (line: string): void => {
  process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 23)} +${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${line}\n`);
};

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    say(`${sig}: stopping everything`);
    killTracked();
    process.exit(130);
  });
}

async function main(): Promise<number> {
  let opts;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n(npm run chaos -- --help)\n`);
    return 2;
  }
  if (!opts) return 0;
  const o = opts;
  say(`starting redis-server, 2 replicas (src/main.ts) and HAProxy`);
  const cluster = await Cluster.start({
    replicas: 2,
    logLevel: 'warn',
    config: (redisUrl, replicas) => chaosConfig({ redisUrl, sessions: o.sessions, cap: o.cap, leaseSeconds: o.leaseSeconds, replicas }),
  });
  say(`ready: HAProxy ${cluster.entryUrl}, ${cluster.replicas.map((r) => `${r.name} ${r.url}`).join(', ')}, Redis ${cluster.redis.url}`);
  let result;
  try {
    result = await runScenario(cluster, o, say);
  } finally {
    say('stopping the cluster');
    await cluster.stop().catch((err: unknown) => say(`stop failed: ${String(err)}`));
  }
  const commandLine = `npm run chaos${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  process.stdout.write(formatReport(result, cluster.replicas, commandLine, o.verbose));
  if (o.json) {
    writeFileSync(o.json, JSON.stringify(reportJson(result, cluster.replicas), null, 2));
    say(`report written to ${o.json}`);
  }
  return result.problems.length === 0 ? 0 : 1;
}

main().then(
  (code) => {
    killTracked();
    process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`chaos run failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    killTracked();
    process.exit(2);
  },
);
