/**
 * Machine-wide CPU accounting, to tell a real difference from a noisy neighbour. On a shared or
 * virtual machine another process (or the hypervisor: "steal") can take a core in the middle of a
 * run; the bench then shows it next to the figures instead of silently reporting a slow server.
 * Linux /proc/stat when available (it has steal), os.cpus() otherwise.
 */
import fs from 'node:fs';
import os from 'node:os';

export interface MachineCpu {
  /** Jiffies (or ms) spent busy, idle, and stolen by the hypervisor, all CPUs together. */
  readonly busy: number;
  readonly idle: number;
  readonly steal: number;
}

export function machineCpu(): MachineCpu {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    // cpu  user nice system idle iowait irq softirq steal guest guest_nice
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[];
    return { busy: user! + nice! + system! + irq! + softirq!, idle: idle! + iowait!, steal: steal ?? 0 };
  } catch {
    let busy = 0;
    let idle = 0;
    for (const c of os.cpus()) {
      busy += c.times.user + c.times.nice + c.times.sys + c.times.irq;
      idle += c.times.idle;
    }
    return { busy, idle, steal: 0 };
  }
}

/** Between two readings, in cores: how many were busy, and how many the hypervisor took. */
export function machineCores(a: MachineCpu, b: MachineCpu, cpus = os.cpus().length): { busy: number; steal: number } {
  const busy = b.busy - a.busy;
  const steal = b.steal - a.steal;
  const total = busy + (b.idle - a.idle) + steal;
  if (total <= 0) return { busy: 0, steal: 0 };
  return { busy: (busy / total) * cpus, steal: (steal / total) * cpus };
}
