/**
 * The probe of the scale phase: one extra session on a server that holds N idle ones, sending
 * `ping` at a steady rate and timing each pong. An event-loop stall anywhere in the server (a
 * renewal round, a GC, a heartbeat sweep) shows up as pongs that come late; the percentiles say how
 * often, the max how long. Pings are sent on a timer, not one after the other's pong, so a stall
 * delays every ping sent during it (coordinated omission would otherwise hide it).
 */
import WebSocket from 'ws';

export interface ProbeFigures {
  /** Pongs received in the window. */
  readonly n: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Pings of the window still unanswered at its end (counted into maxMs with their age). */
  readonly unanswered: number;
  /** Error events or an unexpected close during the window. */
  readonly problems: readonly string[];
  /**
   * Stalls: runs of consecutive pings answered later than STALL_MS (or not at all), each with when
   * its first ping was sent (seconds into the window) and the longest wait in it. Their spacing
   * tells what they follow: every 10 s is the lease renewal, every 30 s the heartbeat.
   */
  readonly stalls: readonly { readonly atSeconds: number; readonly worstMs: number; readonly pings: number }[];
}

/** A ping answered later than this counts toward a stall (bare ws on an idle machine: p99 1-2 ms). */
export const STALL_MS = 50;

const PONG_ID = /"request_id":(\d+)/;

export class Probe {
  private readonly sent = new Map<number, number>();
  private readonly rtts: number[] = [];
  /** Per answered ping: when it was sent and how long it waited, for the stall list. */
  private readonly samples: { at: number; rtt: number }[] = [];
  private startedAt = 0;
  private readonly problems: string[] = [];
  private nextId = 1;
  private timer: NodeJS.Timeout | undefined;
  private closing = false;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const text = String(data);
      if (text.startsWith('{"type":"pong"')) {
        const id = Number(PONG_ID.exec(text)?.[1]);
        const at = this.sent.get(id);
        if (at !== undefined) {
          this.sent.delete(id);
          const rtt = performance.now() - at;
          this.rtts.push(rtt);
          this.samples.push({ at, rtt });
        }
      } else if (text.includes('"type":"error"')) {
        this.problems.push(text.slice(0, 200));
      }
    });
    ws.on('close', (code) => {
      if (!this.closing) this.problems.push(`closed with ${code}`);
    });
  }

  /**
   * Opens the probe's session: Parley with the API key and session.start (the probe is a session
   * like the others); bare `ws` and the floor with a plain socket and one ping.
   */
  static async open(url: string, apiKey?: string): Promise<Probe> {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...(apiKey ? { headers: { Authorization: `Bearer ${apiKey}` } } : {}) });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('probe did not open within 30 s')), 30_000);
      ws.once('error', reject);
      ws.once('open', () => ws.send(apiKey ? '{"type":"session.start","id":"probe","language":"es"}' : '{"type":"ping","id":0}'));
      ws.on('message', function first(data) {
        const text = String(data);
        if (text.includes('"session.created"') || text.startsWith('{"type":"pong"')) {
          clearTimeout(timer);
          ws.off('message', first);
          resolve();
        } else if (text.includes('"type":"error"')) {
          clearTimeout(timer);
          reject(new Error(`probe refused: ${text.slice(0, 200)}`));
        }
      });
    });
    return new Probe(ws);
  }

  /** Starts sending `ratePerSecond` pings a second; figures count from here. */
  start(ratePerSecond: number): void {
    this.rtts.length = 0;
    this.samples.length = 0;
    this.sent.clear();
    this.startedAt = performance.now();
    this.timer = setInterval(() => {
      const id = this.nextId++;
      this.sent.set(id, performance.now());
      this.ws.send(`{"type":"ping","id":${id}}`);
    }, 1000 / ratePerSecond);
  }

  /**
   * Stops sending, gives the pings in flight up to 2 s to come back, and returns the window's
   * figures (the wait is outside the window: nothing is sent during it).
   */
  async stop(): Promise<ProbeFigures> {
    clearInterval(this.timer);
    for (let waited = 0; this.sent.size > 0 && waited < 2000; waited += 10) await new Promise((r) => setTimeout(r, 10));
    const now = performance.now();
    // A ping still unanswered is at least this late: leaving it out would hide the worst stall.
    const ages = [...this.sent.values()].map((at) => now - at);
    const sorted = [...this.rtts].sort((a, b) => a - b);
    const at = (q: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : Number.NaN);
    const worst = [...sorted.slice(-1), ...ages];
    const timeline = [...this.samples, ...[...this.sent.values()].map((at) => ({ at, rtt: now - at }))].sort((a, b) => a.at - b.at);
    const stalls: { atSeconds: number; worstMs: number; pings: number }[] = [];
    let current: { atSeconds: number; worstMs: number; pings: number } | undefined;
    for (const x of timeline) {
      if (x.rtt < STALL_MS) {
        current = undefined;
        continue;
      }
      if (!current) {
        current = { atSeconds: (x.at - this.startedAt) / 1000, worstMs: 0, pings: 0 };
        stalls.push(current);
      }
      current.worstMs = Math.max(current.worstMs, x.rtt);
      current.pings++;
    }
    return {
      n: sorted.length,
      p50Ms: at(0.5),
      p99Ms: at(0.99),
      maxMs: worst.length ? Math.max(...worst) : Number.NaN,
      unanswered: ages.length,
      problems: [...this.problems],
      stalls,
    };
  }

  close(): void {
    this.closing = true;
    clearInterval(this.timer);
    this.ws.terminate();
  }
}
