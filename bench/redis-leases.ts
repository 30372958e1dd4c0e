/**
 * Lease bookkeeping on Redis with one key of many holders (issue 18 item 1): one account's
 * connection-cap sorted set at 10 and at 100,000 members. For each operation the connection uses
 * (acquire through lua/admit.lua, count, release, the replica's batched renewal) it prints the
 * client's round trip (p50 / max) and Redis' own time per command (INFO commandstats), and for the
 * renewal the longest a PING from another client waited meanwhile: how long Redis was blocked.
 *
 *   npx tsx bench/redis-leases.ts [holdersPerRenewal=20000]
 *
 * Standalone (not part of `npm run bench`); a throwaway redis-server on a free port.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { LeaseSpec } from '../src/limits/spec.js';
import { RedisStore } from '../src/store/redis.js';
import type { LeaseHolder } from '../src/store/store.js';
import { startBenchRedis } from './lib/redis-server.js';

const TTL = 30_000;
const renewal = Number(process.argv[2] ?? 20_000);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function commandUsec(admin: Redis, cmd: string): Promise<number> {
  const m = new RegExp(`cmdstat_${cmd}:calls=(\\d+),usec=(\\d+)`).exec(await admin.info('commandstats'));
  return m ? Number(m[2]) / Number(m[1]) : NaN;
}

/**
 * Runs `op` while a client in another process PINGs back to back (in this process the wait would
 * include this process's own work building the renewal); returns the op's ms and the longest PING.
 */
async function withProbe(port: number, op: () => Promise<unknown>): Promise<{ ms: number; maxPingMs: number }> {
  const script = `
    const { Redis } = require('ioredis');
    const r = new Redis(${port}, '127.0.0.1');
    let max = 0, running = true;
    process.on('message', () => { running = false; });
    (async () => {
      await r.ping();
      process.send('ready');
      while (running) { const t = performance.now(); await r.ping(); max = Math.max(max, performance.now() - t); }
      process.send(max, () => { r.disconnect(); process.exit(0); });
    })();`;
  const child = spawn(process.execPath, ['-e', script], { cwd: process.cwd(), stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const next = (): Promise<unknown> => new Promise((resolve) => child.once('message', resolve));
  await next();
  const t = performance.now();
  await op();
  const ms = performance.now() - t;
  const done = next();
  child.send('stop');
  const maxPingMs = Number(await done);
  return { ms, maxPingMs };
}

async function main(): Promise<void> {
  const redis = await startBenchRedis();
  const admin = new Redis(redis.url);
  const rows: string[][] = [['holders', 'operation', 'client p50 ms', 'client max ms', 'redis µs/call']];
  try {
    for (const n of [10, 100_000]) {
      const store = new RedisStore({ url: redis.url, prefix: `bench:${randomUUID().slice(0, 8)}:`, commandTimeoutMs: 10_000 });
      await store.ready();
      const lease: LeaseSpec = { key: 'conns:{acct}', name: 'account', limit: 1_000_000 };
      const holders: LeaseHolder[] = Array.from({ length: n }, () => ({ leases: [lease], holderId: randomUUID() }));
      for (let i = 0; i < n; i += 5000) await store.renew(holders.slice(i, i + 5000), TTL, 'restore');
      if ((await store.countLeases(lease.key)) !== n) throw new Error('fill failed');

      const time = async (name: string, cmd: string, op: (i: number) => Promise<unknown>, reps = 200): Promise<void> => {
        await admin.config('RESETSTAT');
        const ms: number[] = [];
        for (let i = 0; i < reps; i++) {
          const t = performance.now();
          await op(i);
          ms.push(performance.now() - t);
        }
        rows.push([String(n), name, pct(ms, 50).toFixed(3), Math.max(...ms).toFixed(3), (await commandUsec(admin, cmd)).toFixed(1)]);
      };
      await time('acquire (admit.lua)', 'evalsha', (i) => store.acquire([lease], `new${i}`, TTL));
      await time('count (ZCOUNT)', 'zcount', () => store.countLeases(lease.key));
      await time('release (ZREM)', 'zrem', (i) => store.release([lease], `new${i}`));
      // A replica's renewal round: its own holders (all of them, up to `renewal`) in one call.
      const own = holders.slice(0, Math.min(n, renewal));
      await admin.config('RESETSTAT');
      const r = await withProbe(redis.port, () => store.renew(own, TTL));
      rows.push([String(n), `renew ${own.length} (one round)`, r.ms.toFixed(1), `PING waited ≤ ${r.maxPingMs.toFixed(1)}`, `${(await commandUsec(admin, 'zadd')).toFixed(0)} per ZADD`]);
      // The same probe over an idle stretch as long: what the machine's own noise gives.
      const idle = await withProbe(redis.port, () => new Promise((resolve) => setTimeout(resolve, r.ms)));
      rows.push([String(n), 'idle, as long', idle.ms.toFixed(1), `PING waited ≤ ${idle.maxPingMs.toFixed(1)}`, '']);
      if (n === 100_000) {
        // The same renewal as raw commands, alternated: one ZADD of every member against ZADDs of
        // 1,000 in a pipeline (what RedisStore.renew sends), each with the probe in another process.
        const key = `${store === undefined ? '' : 'bench:raw'}:{acct}`;
        const members: (string | number)[] = [];
        for (const h of own) members.push(0, h.holderId);
        await admin.zadd(key, ...members.slice(0, 2000));
        for (let rep = 0; rep < 3; rep++) {
          for (const chunk of [own.length, 1000]) {
            const exp = Date.now() + TTL;
            for (let i = 0; i < members.length; i += 2) members[i] = exp;
            await admin.config('RESETSTAT');
            const res = await withProbe(redis.port, async () => {
              const p = admin.pipeline();
              for (let i = 0; i < members.length; i += 2 * chunk) p.zadd(key, ...members.slice(i, i + 2 * chunk));
              await p.exec();
            });
            rows.push([String(n), `raw: ZADDs of ${chunk}`, res.ms.toFixed(1), `PING waited ≤ ${res.maxPingMs.toFixed(1)}`, `${(await commandUsec(admin, 'zadd')).toFixed(0)} per ZADD`]);
          }
        }
      }
      await store.close();
    }
  } finally {
    admin.disconnect();
    await redis.stop();
  }
  for (const row of rows) console.log(row.join(' | '));
}

void main();
