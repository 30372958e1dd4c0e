/**
 * The two measurements, each a function of (server child, client target, settings), so the
 * baseline and Parley go through literally the same code.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ServerChild } from './child.js';
import { closeAll, newAnomalies, openMany, totalPongs, type Anomalies, type ClientTarget } from './clients.js';
import type { MemSnapshot } from './ipc.js';
import { machineCores, machineCpu } from './machine.js';

export interface ThroughputSettings {
  readonly connections: number;
  /** Pings each connection keeps in flight. */
  readonly window: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

export interface ThroughputResult {
  readonly messages: number;
  readonly seconds: number;
  readonly msgsPerSec: number;
  /** Server CPU (user + system) over the measured interval. */
  readonly serverCpuUs: number;
  readonly serverCpuUsPerMsg: number;
  /** Server CPU / wall time: ~1.0 means the server's one thread was the limit. */
  readonly serverCpuShare: number;
  /** The load client's (this process's) CPU / wall time: near 1.0 means the client was the limit. */
  readonly clientCpuShare: number;
  /**
   * Cores busy with anything else (machine busy − server − client) and stolen by the hypervisor.
   * Near 0 in a clean run; a noticeable value means a noisy neighbour slowed this run.
   */
  readonly otherCores: number;
  readonly stealCores: number;
  readonly anomalies: Anomalies;
}

/**
 * N connections each keep W pings in flight (a closed loop: one new ping per pong). After the
 * warm-up (JIT, socket buffers, Parley's first quota.updated), the counters and both processes'
 * CPU are read at the start and end of the measured interval. The server's CPU is read inside the
 * server child; the pong count is read when that reading arrives, so both cover the same interval
 * up to one IPC round trip (well under a millisecond against 5 s).
 */
export async function measureThroughput(server: ServerChild, target: ClientTarget, s: ThroughputSettings): Promise<ThroughputResult> {
  const anomalies = newAnomalies();
  const conns = await openMany(target, s.connections, anomalies, 50);
  try {
    for (const c of conns) c.startPinging(s.window);
    await sleep(s.warmupMs);

    const cpu0 = await server.cpu();
    const pongs0 = totalPongs(conns);
    const client0 = process.cpuUsage();
    const machine0 = machineCpu();
    const t0 = process.hrtime.bigint();

    await sleep(s.durationMs);

    const cpu1 = await server.cpu();
    const pongs1 = totalPongs(conns);
    const client1 = process.cpuUsage(client0);
    const machine = machineCores(machine0, machineCpu());
    const wallUs = Number((process.hrtime.bigint() - t0) / 1000n);

    const messages = pongs1 - pongs0;
    const serverCpuUs = cpu1.userUs - cpu0.userUs + (cpu1.systemUs - cpu0.systemUs);
    const serverCpuShare = serverCpuUs / (cpu1.atUs - cpu0.atUs);
    const clientCpuShare = (client1.user + client1.system) / wallUs;
    return {
      messages,
      seconds: wallUs / 1e6,
      msgsPerSec: messages / (wallUs / 1e6),
      serverCpuUs,
      serverCpuUsPerMsg: serverCpuUs / messages,
      serverCpuShare,
      clientCpuShare,
      otherCores: Math.max(0, machine.busy - serverCpuShare - clientCpuShare),
      stealCores: machine.steal,
      anomalies,
    };
  } finally {
    closeAll(conns);
    // Let the server see the closes before the next run shares the CPU with it.
    await sleep(300);
  }
}

export interface MemoryResult {
  readonly connections: number;
  readonly before: MemSnapshot;
  readonly after: MemSnapshot;
  readonly rssKbPerConn: number;
  /**
   * The same without the young generation's growth: V8 keeps its new space at the ceiling (32 MiB)
   * while a process allocates, and shrinks it when the memory reducer finds the process idle; a
   * server that allocates at rest pays that once, not per connection.
   */
  readonly rssKbPerConnLessYoung: number;
  /** The JS heap's share of it (heapUsed delta): what a heap snapshot would show. */
  readonly heapKbPerConn: number;
  readonly openSeconds: number;
  readonly anomalies: Anomalies;
}

/**
 * RSS of a FRESH server child (the throughput phase would leave its heap grown) before and after
 * `count` idle connections, each forced-GC'd and settled (V8's memory reducer included: ipc.ts). A few warm-up connections first, opened
 * and closed before the "before" reading, so lazily loaded code and one-time allocations (JIT code,
 * first-use caches) are not charged to the 5,000.
 */
export async function measureMemory(server: ServerChild, target: ClientTarget, count: number, settleMs: number): Promise<MemoryResult> {
  const anomalies = newAnomalies();
  const warm = await openMany(target, 20, anomalies);
  closeAll(warm);
  await sleep(500);
  const before = await server.mem();

  const t0 = performance.now();
  const conns = await openMany(target, count, anomalies, 200);
  const openSeconds = (performance.now() - t0) / 1000;
  try {
    // Idle means idle: let the tail of the opening traffic (Parley's quota.updated) go by first.
    await sleep(settleMs);
    const after = await server.mem();
    return {
      connections: count,
      before,
      after,
      rssKbPerConn: (after.rss - before.rss) / 1024 / count,
      rssKbPerConnLessYoung: (after.rss - before.rss - (after.newSpaceBytes - before.newSpaceBytes)) / 1024 / count,
      heapKbPerConn: (after.heapUsed - before.heapUsed) / 1024 / count,
      openSeconds,
      anomalies,
    };
  } finally {
    closeAll(conns);
  }
}
