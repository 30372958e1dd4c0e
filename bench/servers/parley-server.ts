/**
 * Parley itself, built exactly as an operator would run it (buildApp + parseConfig, the in-memory
 * store, the simulated upstreams), with the bench plan of bench/lib/config.ts and warn-level logs,
 * on 127.0.0.1 port 0. Run as a child of bench/run.ts (IPC), never on its own.
 *
 * BENCH_PARLEY_CONFIG (set by the orchestrator, JSON): overrides of the bench configuration (see
 * ParleyOverrides), e.g. the scale phase's Redis store and connection caps.
 */
import { buildApp, type ParleyApp } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { withOverrides, type ParleyOverrides } from '../lib/config.js';
import { runChild } from '../lib/ipc.js';

let app: ParleyApp | undefined;

await runChild(
  async () => {
    const raw = process.env.BENCH_PARLEY_CONFIG;
    const overrides = raw ? (JSON.parse(raw) as ParleyOverrides) : {};
    // env {}: PORT / HOST / LOG_LEVEL / REDIS_URL in the shell must not change what is measured.
    const config = parseConfig(withOverrides(overrides), {});
    app = await buildApp({ config, logger: createLogger({ level: 'warn' }) });
    const { port } = await app.listen(0, '127.0.0.1');
    return port;
  },
  async () => {
    await app?.close();
  },
);
