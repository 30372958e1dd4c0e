/**
 * Runs the simulated upstream server (`server.ts`) from the command line:
 *
 *   npm run upstream:sim -- --port 9000 --rps 5 --burst 5 --rpm 60 --concurrency 2 --tpm 40000 \
 *     --profile reference --api-key X
 *
 * Prints the base URL to put in an upstream's `baseUrl` (`provider: "openai"`). The key can also
 * come from SIM_UPSTREAM_API_KEY, which keeps it out of the process list. `--profile reference`
 * answers with issue 13's ordinary upstream latencies (REFERENCE_TIMING); the timing flags set or
 * override single values.
 */
import { parseArgs } from 'node:util';
import { startSimUpstream, type SimUpstreamOptions } from './server.js';
import { REFERENCE_TIMING } from './timing.js';

const USAGE = `Usage: upstream:sim [--port 9000] [--host 127.0.0.1] [--rps N] [--burst N] [--rpm N]
                    [--concurrency N] [--tpm N] [--fail-rate 0..1] [--api-key KEY]
                    [--profile reference|instant] [--latency-ms N] [--first-token-ms N]
                    [--tokens-per-second N] [--first-byte-ms N] [--real-time-factor N]`;

/** A numeric option, or a message naming the option and the bad value. */
function num(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) throw new Error(`--${name} must be a number, got "${raw}"`);
  return n;
}

function profile(name: string | undefined): Partial<typeof REFERENCE_TIMING> {
  if (name === undefined || name === 'instant') return {};
  if (name === 'reference') return REFERENCE_TIMING;
  throw new Error(`--profile must be "reference" or "instant", got "${name}"`);
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
      tpm: { type: 'string' },
      profile: { type: 'string' },
      'latency-ms': { type: 'string' },
      'first-token-ms': { type: 'string' },
      'tokens-per-second': { type: 'string' },
      'first-byte-ms': { type: 'string' },
      'real-time-factor': { type: 'string' },
      'fail-rate': { type: 'string' },
      'api-key': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const base = profile(values.profile);
  const opts: SimUpstreamOptions = {
    port: num('port', values.port),
    host: values.host,
    rps: num('rps', values.rps),
    burst: num('burst', values.burst),
    rpm: num('rpm', values.rpm),
    concurrency: num('concurrency', values.concurrency),
    tokensPerMinute: num('tpm', values.tpm),
    latencyMs: num('latency-ms', values['latency-ms']) ?? base.latencyMs,
    firstTokenMs: num('first-token-ms', values['first-token-ms']) ?? base.firstTokenMs,
    tokensPerSecond: num('tokens-per-second', values['tokens-per-second']) ?? base.tokensPerSecond,
    firstByteMs: num('first-byte-ms', values['first-byte-ms']) ?? base.firstByteMs,
    realTimeFactor: num('real-time-factor', values['real-time-factor']) ?? base.realTimeFactor,
    failRate: num('fail-rate', values['fail-rate']),
    apiKey: values['api-key'] ?? process.env.SIM_UPSTREAM_API_KEY,
  };
  const sim = await startSimUpstream(opts);
  const limits = [
    opts.rps !== undefined ? `rps ${opts.rps} burst ${opts.burst ?? Math.ceil(opts.rps)}` : '',
    opts.rpm !== undefined ? `rpm ${opts.rpm}` : '',
    opts.concurrency !== undefined ? `concurrency ${opts.concurrency}` : '',
    opts.tokensPerMinute !== undefined ? `${opts.tokensPerMinute} tokens/min` : '',
    opts.failRate ? `fail rate ${opts.failRate}` : '',
    opts.apiKey ? 'API key required' : '',
  ].filter(Boolean);
  const timing = [
    opts.latencyMs ? `latency ${opts.latencyMs} ms` : '',
    opts.firstTokenMs !== undefined ? `first token ${opts.firstTokenMs} ms` : '',
    opts.tokensPerSecond !== undefined ? `${opts.tokensPerSecond} tokens/s` : '',
    opts.firstByteMs !== undefined ? `first audio ${opts.firstByteMs} ms` : '',
    opts.realTimeFactor !== undefined ? `speech at ${opts.realTimeFactor}x real time` : '',
  ].filter(Boolean);
  console.log(`simulated upstream listening: ${sim.url}${limits.length ? ` (${limits.join(', ')})` : ' (no limits)'}`);
  console.log(`timing: ${timing.length ? timing.join(', ') : 'instant'}`);
  console.log(`stats: GET ${sim.url.replace(/\/v1$/, '')}/stats and /stats/tokens`);

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    console.log(`final stats: ${JSON.stringify(sim.stats())}`);
    console.log(`tokens: ${JSON.stringify(sim.tokens())}`);
    void sim.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(`upstream:sim: ${(err as Error).message}\n${USAGE}`);
  process.exit(1);
});
