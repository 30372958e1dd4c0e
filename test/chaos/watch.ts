/**
 * Observers that run beside the load: each replica's `/readyz` polled every 100 ms (straight to
 * the replica, not through the balancer), and `connections_used` from `GET /v1/usage` compared
 * with the connections the clients really hold.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { readyz } from './cluster.js';
import { REPLICA_HEADER } from './haproxy.js';
import type { Occupancy } from './occupancy.js';

const POLL_MS = 100;

/** One /readyz poll. */
export interface Sample {
  readonly at: number;
  /** HTTP status, or undefined when nothing answered (the process is gone). */
  readonly status: number | undefined;
}

/** How a replica's readiness looked over an interval. */
export interface ReadinessSpan {
  /** Milliseconds answered 503. */
  readonly notReadyMs: number;
  /** Milliseconds with no answer at all (process dead or not listening yet). */
  readonly unreachableMs: number;
  /** Epoch ms of the first 503 in the interval, if any. */
  readonly first503At: number | undefined;
  /** Epoch ms of the last non-200 sample, if any. */
  readonly lastNotReadyAt: number | undefined;
  /** Times it turned from 200 to 503 within the interval. */
  readonly episodes503: number;
}

/**
 * Readiness over [from, to] from polls in time order: each sample's status stands until the next
 * sample (the last until `to`). A spell of 503 is counted where a 503 follows a 200.
 */
export function readinessSpan(samples: readonly Sample[], from: number, to: number): ReadinessSpan {
  let notReadyMs = 0;
  let unreachableMs = 0;
  let first503At: number | undefined;
  let lastNotReadyAt: number | undefined;
  let episodes503 = 0;
  for (let i = 0; i < samples.length; i++) {
    const cur = samples[i]!;
    if (cur.at >= from && cur.at < to && cur.status === 503 && samples[i - 1]?.status === 200) episodes503++;
    const next = samples[i + 1]?.at ?? to;
    const a = Math.max(cur.at, from);
    const b = Math.min(next, to);
    if (b <= a) continue;
    if (cur.status === 503) {
      notReadyMs += b - a;
      first503At ??= cur.at;
    } else if (cur.status === undefined) unreachableMs += b - a;
    if (cur.status !== 200) lastNotReadyAt = b;
  }
  return { notReadyMs, unreachableMs, first503At, lastNotReadyAt, episodes503 };
}

export class ReadyMonitor {
  private readonly samples = new Map<string, Sample[]>();
  private running = true;
  private readonly loops: Promise<void>[] = [];

  constructor(replicas: readonly { name: string; url: string }[]) {
    for (const r of replicas) {
      this.samples.set(r.name, []);
      this.loops.push(this.poll(r.name, r.url));
    }
  }

  /** The latest status of a replica. */
  latest(name: string): number | undefined {
    const s = this.samples.get(name);
    return s?.[s.length - 1]?.status;
  }

  /** Time answered 503 / not at all within [from, to], from the samples (each stands until the next). */
  span(name: string, from: number, to: number): ReadinessSpan {
    return readinessSpan(this.samples.get(name) ?? [], from, to);
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async poll(name: string, url: string): Promise<void> {
    const list = this.samples.get(name)!;
    while (this.running) {
      const at = Date.now();
      const status = await readyz(url);
      list.push({ at, status });
      const spent = Date.now() - at;
      if (spent < POLL_MS) await new Promise((r) => setTimeout(r, POLL_MS - spent));
    }
  }
}

/** Polls a condition every `intervalMs`; resolves with the ms it took, or undefined on timeout. */
export async function timeUntil(pred: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 100): Promise<number | undefined> {
  const start = Date.now();
  for (;;) {
    if (await pred()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) return undefined;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** `connections_used` from GET /v1/usage and the replica that answered (HAProxy's header), or undefined when the answer is not a 200. */
export async function connectionsUsed(entryUrl: string, apiKey: string): Promise<{ used: number; replica: string | undefined } | undefined> {
  try {
    const res = await fetch(`${entryUrl}/v1/usage`, { headers: { Authorization: `Bearer ${apiKey}` }, signal: AbortSignal.timeout(3000) });
    if (res.status !== 200) {
      await res.arrayBuffer();
      return undefined;
    }
    const used = ((await res.json()) as { connections_used: number }).connections_used;
    return { used, replica: res.headers.get(REPLICA_HEADER) ?? undefined };
  } catch {
    return undefined;
  }
}

export interface UsageConvergence {
  /** Ms from the start of waiting until the first of two successive readings that equalled the clients' count; undefined if never within the timeout. */
  readonly ms: number | undefined;
  /** The last reading and the clients' count at that moment. */
  readonly lastUsed: number | undefined;
  readonly lastTruth: number;
}

/**
 * Waits until `connections_used` equals the connections the clients hold, on two successive
 * readings 250 ms apart, each taken while no socket was in transition and the clients' count did
 * not move during the request, and answered by a replica that `ready(name, from, to)` says was
 * ready throughout the request (a replica on its fallback counts only its own connections).
 */
export async function waitUsageTrue(
  entryUrl: string,
  apiKey: string,
  occupancy: Occupancy,
  timeoutMs: number,
  ready: (replica: string | undefined, from: number, to: number) => boolean,
): Promise<UsageConvergence> {
  const start = Date.now();
  let firstMatchAt: number | undefined;
  let lastUsed: number | undefined;
  let lastTruth = occupancy.total;
  for (;;) {
    const before = occupancy.total;
    const quiet = occupancy.transitional === 0;
    const askedAt = Date.now();
    const reading = await connectionsUsed(entryUrl, apiKey);
    const after = occupancy.total;
    lastUsed = reading?.used;
    lastTruth = after;
    const trusted = reading !== undefined && ready(reading.replica, askedAt, Date.now());
    if (quiet && trusted && occupancy.transitional === 0 && before === after && reading.used === after) {
      if (firstMatchAt !== undefined) return { ms: firstMatchAt - start, lastUsed, lastTruth };
      firstMatchAt = Date.now();
    } else firstMatchAt = undefined;
    if (Date.now() - start > timeoutMs) return { ms: undefined, lastUsed, lastTruth };
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Event-loop lag, to tell a hung Redis from a starved process on a shared machine: each replica's
 * `parley_event_loop_lag_max_seconds` (the maximum over its last 5 s window) read every
 * 2.5 s from its /metrics, and the launcher's own (perf_hooks.monitorEventLoopDelay).
 */
export class LagMonitor {
  private readonly samples = new Map<string, { at: number; maxMs: number }[]>();
  private running = true;
  private readonly loops: Promise<void>[] = [];
  private readonly own: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });
  private readonly ownMax: { at: number; maxMs: number }[] = [];
  private readonly ownTimer: NodeJS.Timeout;

  constructor(replicas: readonly { name: string; url: string }[]) {
    this.own.enable();
    this.ownTimer = setInterval(() => {
      this.ownMax.push({ at: Date.now(), maxMs: this.own.max / 1e6 });
      this.own.reset();
    }, 2500);
    for (const r of replicas) {
      this.samples.set(r.name, []);
      this.loops.push(this.poll(r.name, r.url));
    }
  }

  /** The largest lag a replica reported within [from, to] (its readings cover the 5 s before each), in ms. */
  replicaMaxMs(name: string, from: number, to: number): number | undefined {
    return maxIn(this.samples.get(name) ?? [], from, to + 5000);
  }

  /** The launcher's own largest lag within [from, to], in ms. */
  launcherMaxMs(from: number, to: number): number | undefined {
    return maxIn(this.ownMax, from, to + 2500);
  }

  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.ownTimer);
    this.own.disable();
    await Promise.all(this.loops);
  }

  private async poll(name: string, url: string): Promise<void> {
    const list = this.samples.get(name)!;
    while (this.running) {
      try {
        const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2000) });
        const text = await res.text();
        const m = /^parley_event_loop_lag_max_seconds ([0-9.eE+-]+)$/m.exec(text);
        if (m) list.push({ at: Date.now(), maxMs: Number(m[1]) * 1000 });
      } catch {
        /* the replica is down: no reading */
      }
      await new Promise((r) => setTimeout(r, 2500));
    }
  }
}

function maxIn(samples: readonly { at: number; maxMs: number }[], from: number, to: number): number | undefined {
  let max: number | undefined;
  for (const s of samples) if (s.at >= from && s.at <= to && (max === undefined || s.maxMs > max)) max = s.maxMs;
  return max;
}
