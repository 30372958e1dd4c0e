/**
 * A throwaway `redis-server` for the Redis phase: a free local port (never the system Redis on
 * 6379), no persistence, killed when the bench exits however it exits. Its pid lets the bench read
 * the server's own CPU time (/proc), so a reader can tell whether Redis or the client was the limit.
 */
import fs from 'node:fs';
import os from 'node:os';
import { startRedis } from '../../test/helpers/redis.js';

export interface BenchRedis {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** The server's cumulative CPU (user + system) in µs; NaN where /proc is unavailable. */
  cpuUs(): number;
  stop(): Promise<void>;
}

const live = new Set<number>();

/** Kills every redis-server this process started (SIGKILL: synchronous, fine in an 'exit' handler). */
export function killAllRedis(): void {
  for (const pid of live) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
}

// Clock ticks per second of /proc/<pid>/stat's utime and stime; 100 on every Linux this runs on.
const CLK_TCK = 100;

function procCpuUs(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the ")" that closes the command name: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1e6;
  } catch {
    return Number.NaN;
  }
}

export async function startBenchRedis(): Promise<BenchRedis> {
  if (os.platform() === 'win32') throw new Error('the Redis phase needs redis-server (Linux or macOS)');
  // The same throwaway server the tests use (free port, no persistence); the bench adds its CPU
  // reading and the kill on exit.
  const server = await startRedis();
  const pid = server.pid;
  live.add(pid);
  return {
    url: server.url,
    port: server.port,
    pid,
    cpuUs: () => procCpuUs(pid),
    async stop() {
      live.delete(pid);
      await server.stop();
    },
  };
}
