/**
 * The connection-cap probe: a server-side client of the same account (`Authorization: Bearer`
 * with the API key) opens connections straight to each replica, one after another, until the
 * replica refuses three in a row with 4029 `connection_limit` (or an attempt budget runs out).
 * Admitted connections stay open until `release()`, so the run can compare what the account
 * really holds with the cap and with the documented fallback bound, and then with
 * `connections_used`.
 */
import WebSocket from 'ws';
import type { Occupancy } from './occupancy.js';

export interface ProbeTarget {
  readonly name: string;
  /** The replica's http:// URL (dialled directly, not through the balancer). */
  readonly url: string;
}

export interface ProbeResult {
  /** Connections admitted per replica (session.created). */
  readonly admitted: Record<string, number>;
  /** Refusals per replica and code (`4029 connection_limit`, …). */
  readonly refused: Record<string, Record<string, number>>;
}

type Outcome = { admitted: true; ws: WebSocket } | { admitted: false; why: string };

/** Consecutive refusals after which a replica counts as full. */
const FULL_AFTER = 3;
const ATTEMPT_TIMEOUT_MS = 5000;

export class CapProbe {
  private readonly sockets: WebSocket[] = [];

  constructor(
    private readonly apiKey: string,
    private readonly occupancy: Occupancy,
  ) {}

  /** Open probe connections now. */
  get open(): number {
    return this.sockets.filter((s) => s.readyState === WebSocket.OPEN).length;
  }

  /** Fills every target in parallel (each sequentially), at most `maxPerReplica` attempts each. */
  async fill(targets: readonly ProbeTarget[], maxPerReplica: number): Promise<ProbeResult> {
    const admitted: Record<string, number> = {};
    const refused: Record<string, Record<string, number>> = {};
    await Promise.all(
      targets.map(async (t) => {
        admitted[t.name] = 0;
        refused[t.name] = {};
        let inARow = 0;
        for (let i = 0; i < maxPerReplica && inARow < FULL_AFTER; i++) {
          const out = await this.attempt(t);
          if (out.admitted) {
            admitted[t.name]!++;
            inARow = 0;
          } else {
            refused[t.name]![out.why] = (refused[t.name]![out.why] ?? 0) + 1;
            inARow++;
          }
        }
      }),
    );
    return { admitted, refused };
  }

  /** Closes every probe connection; resolves once all are closed. */
  async release(): Promise<void> {
    const all = this.sockets.splice(0);
    await Promise.all(
      all.map(
        (ws) =>
          new Promise<void>((resolve) => {
            if (ws.readyState === WebSocket.CLOSED) return resolve();
            ws.once('close', () => resolve());
            ws.close(1000);
            setTimeout(() => (ws.terminate(), resolve()), 3000).unref();
          }),
      ),
    );
  }

  private attempt(t: ProbeTarget): Promise<Outcome> {
    return new Promise((resolve) => {
      const ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/v1/realtime`, { headers: { Authorization: `Bearer ${this.apiKey}` } });
      let state: 'connecting' | 'transition' | 'admitted' | 'done' = 'connecting';
      let errorCode: string | undefined;
      const finish = (out: Outcome): void => {
        clearTimeout(timer);
        resolve(out);
      };
      const timer = setTimeout(() => {
        ws.terminate();
        finish({ admitted: false, why: 'timeout' });
      }, ATTEMPT_TIMEOUT_MS);
      ws.on('error', () => undefined);
      ws.on('open', () => {
        state = 'transition';
        this.occupancy.transitional++;
        ws.send(JSON.stringify({ type: 'session.start', id: 'probe', language: 'es' }));
      });
      ws.on('message', (data, isBinary) => {
        if (isBinary) return;
        let event: { type?: string; code?: string };
        try {
          event = JSON.parse(String(data)) as { type?: string; code?: string };
        } catch {
          return;
        }
        if (event.type === 'error') errorCode = event.code;
        if (event.type === 'session.created' && state === 'transition') {
          state = 'admitted';
          this.occupancy.transitional--;
          this.occupancy.admitted(t.name);
          this.sockets.push(ws);
          finish({ admitted: true, ws });
        }
      });
      ws.on('close', (code) => {
        if (state === 'transition') this.occupancy.transitional--;
        else if (state === 'admitted') {
          this.occupancy.closed(t.name);
          state = 'done';
          return;
        }
        state = 'done';
        finish({ admitted: false, why: `${code}${errorCode ? ` ${errorCode}` : ''}` });
      });
    });
  }
}
