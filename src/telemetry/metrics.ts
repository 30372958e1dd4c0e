/**
 * Prometheus metrics (prom-client), one registry per app so several apps can live in one test
 * process. Label values are bounded: close codes come from the contract, limit names from code,
 * account ids from the configuration.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface MetricsSources {
  connections(): number;
  sessions(): number;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly closes: Counter<'code'>;
  private readonly throttle: Histogram<'limit'>;
  private readonly sessionsStarted: Counter<'account'>;
  private readonly decisions: Counter<'limit' | 'outcome'>;
  private readonly restRequests: Counter<'route' | 'status'>;

  constructor(sources: MetricsSources, opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    new Gauge({ name: 'parley_connections', help: 'Open WebSocket connections on this replica', registers, collect() { this.set(sources.connections()); } });
    new Gauge({ name: 'parley_sessions', help: 'Live sessions on this replica (attached or waiting for a resume)', registers, collect() { this.set(sources.sessions()); } });
    this.closes = new Counter({ name: 'parley_closes_total', help: 'WebSocket closes by close code', labelNames: ['code'], registers });
    this.throttle = new Histogram({
      name: 'parley_throttle_delay_seconds',
      help: 'Time a frame waited for a token of the per-connection buckets',
      labelNames: ['limit'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
      registers,
    });
    this.sessionsStarted = new Counter({ name: 'parley_sessions_started_total', help: 'Sessions created', labelNames: ['account'], registers });
    this.decisions = new Counter({ name: 'parley_limit_decisions_total', help: 'Shared-limit decisions by limit and outcome', labelNames: ['limit', 'outcome'], registers });
    this.restRequests = new Counter({ name: 'parley_rest_requests_total', help: 'REST requests by route and status', labelNames: ['route', 'status'], registers });
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'parley_' });
  }

  closed(code: number): void {
    this.closes.inc({ code: String(code) });
  }

  throttleDelay(limit: 'messages' | 'bytes', ms: number): void {
    this.throttle.observe({ limit }, ms / 1000);
  }

  sessionStarted(account: string): void {
    this.sessionsStarted.inc({ account });
  }

  decision(limit: string, allowed: boolean): void {
    this.decisions.inc({ limit, outcome: allowed ? 'allowed' : 'refused' });
  }

  rest(route: string, status: number): void {
    this.restRequests.inc({ route, status: String(status) });
  }
}
