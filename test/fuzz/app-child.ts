/**
 * The fuzzed app in a process of its own, so a crash is seen as an exit and the memory and handles
 * read are the app's alone. Built as an operator runs it (buildApp + parseConfig, in-memory store,
 * simulated upstreams), logging JSON lines to stdout for the fuzzer to tally. Started by
 * test/fuzz/app-process.ts with `--expose-gc`; never run on its own.
 */
import { buildApp, type ParleyApp } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import { fuzzConfig } from './config.js';
import type { FromChild, Probe, ToChild } from './ipc.js';

// Taken before anything else runs: what a clean Object.prototype has in this Node.
const standardPrototype = new Set(Object.getOwnPropertyNames(Object.prototype));

const send = (msg: FromChild): void => {
  process.send?.(msg);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Forces full collections until RSS settles (two readings within 0.5 %, at most 8 rounds), as
 * bench/lib/ipc.ts does: V8 frees pages concurrently after gc() returns, so one call is not enough.
 */
async function probe(app: ParleyApp, id: number, settle: boolean): Promise<Probe> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('app child started without --expose-gc');
  let previous = Number.POSITIVE_INFINITY;
  for (let round = 0; settle && round < 8; round++) {
    gc();
    await sleep(150);
    const rss = process.memoryUsage.rss();
    if (Math.abs(rss - previous) <= previous * 0.005) break;
    previous = rss;
  }
  const m = process.memoryUsage();
  const cpu = process.cpuUsage();
  const handles: Record<string, number> = {};
  for (const h of process.getActiveResourcesInfo()) handles[h] = (handles[h] ?? 0) + 1;
  return {
    type: 'probe',
    id,
    rss: m.rss,
    heapUsed: m.heapUsed,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    handles,
    connections: app.gateway.connections.size,
    sessions: app.gateway.registry.size,
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    prototypeExtras: Object.getOwnPropertyNames(Object.prototype).filter((k) => !standardPrototype.has(k)),
  };
}

async function main(): Promise<void> {
  if (!process.send) {
    process.stderr.write('test/fuzz/app-child.ts is started by the fuzzer (npm run fuzz)\n');
    process.exit(2);
  }
  const heartbeatSeconds = Number(process.argv[2] ?? '3');
  // env {}: PORT / HOST / LOG_LEVEL / REDIS_URL in the shell must not change what is fuzzed.
  const config = parseConfig(fuzzConfig({ heartbeatSeconds }), {});
  const app = await buildApp({ config });
  let exiting = false;
  const exit = (): void => {
    if (exiting) return;
    exiting = true;
    setTimeout(() => process.exit(0), 3000).unref();
    app.close().then(
      () => process.exit(0),
      () => process.exit(0),
    );
  };
  // The fuzzer went away (even killed): do not outlive it.
  process.on('disconnect', exit);
  process.on('message', (msg: ToChild) => {
    if (msg.type === 'exit') exit();
    else if (msg.type === 'probe') probe(app, msg.id, msg.settle).then(send, (err: unknown) => send({ type: 'failed', message: String(err) }));
  });
  const { port } = await app.listen(0, '127.0.0.1');
  send({ type: 'ready', port });
}

main().catch((err: unknown) => {
  send({ type: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exit(1);
});
