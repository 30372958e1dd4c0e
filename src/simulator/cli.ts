/**
 * Runs the simulated upstream server (`server.ts`) from the command line:
 *
 *   npm run upstream:sim -- --port 9000 --rps 5 --burst 5 --rpm 60 --concurrency 2 --latency-ms 300 --api-key X
 *
 * Prints the base URL to put in an upstream's `baseUrl` (`provider: "openai"`). The key can also
 * come from SIM_UPSTREAM_API_KEY, which keeps it out of the process list.
 */
import { parseArgs } from 'node:util';
import { startSimUpstream, type SimUpstreamOptions } from './server.js';

const USAGE = `Usage: upstream:sim [--port 9000] [--host 127.0.0.1] [--rps N] [--burst N] [--rpm N]
                    [--concurrency N] [--latency-ms N] [--fail-rate 0..1] [--api-key KEY]`;

/** A numeric option, or a message naming the option and the bad value. */
function num(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) throw new Error(`--${name} must be a number, got "${raw}"`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    strict: true,
    options: {
      port: { type: 'string', default: '9000' },
      host: { type: 'string', default: '127.0.0.1' },
      rps: { type: 'string' },
      burst: { type: 'string' },
      rpm: { type: 'string' },
      concurrency: { type: 'string' },
      'latency-ms': { type: 'string' },
      'fail-rate': { type: 'string' },
      'api-key': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const opts: SimUpstreamOptions = {
    port: num('port', values.port),
    host: values.host,
    rps: num('rps', values.rps),
    burst: num('burst', values.burst),
    rpm: num('rpm', values.rpm),
    concurrency: num('concurrency', values.concurrency),
    latencyMs: num('latency-ms', values['latency-ms']),
    failRate: num('fail-rate', values['fail-rate']),
    apiKey: values['api-key'] ?? process.env.SIM_UPSTREAM_API_KEY,
  };
  const sim = await startSimUpstream(opts);
  const limits = [
    opts.rps !== undefined ? `rps ${opts.rps} burst ${opts.burst ?? Math.ceil(opts.rps)}` : '',
    opts.rpm !== undefined ? `rpm ${opts.rpm}` : '',
    opts.concurrency !== undefined ? `concurrency ${opts.concurrency}` : '',
    opts.latencyMs ? `latency ${opts.latencyMs} ms` : '',
    opts.failRate ? `fail rate ${opts.failRate}` : '',
    opts.apiKey ? 'API key required' : '',
  ].filter(Boolean);
  console.log(`simulated upstream listening: ${sim.url}${limits.length ? ` (${limits.join(', ')})` : ' (no limits)'}`);
  console.log(`stats: GET ${sim.url.replace(/\/v1$/, '')}/stats`);

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    console.log(`final stats: ${JSON.stringify(sim.stats())}`);
    void sim.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(`upstream:sim: ${(err as Error).message}\n${USAGE}`);
  process.exit(1);
});
