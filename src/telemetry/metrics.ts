/**
 * Prometheus metrics (prom-client), one registry per app so several apps can live in one test
 * process. Label values are bounded: close codes come from the contract, limit names from code,
 * account ids from the configuration.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Governor, GovernorHooks } from '../upstream/governor.js';

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
  private readonly upstreamResults: Counter<'upstream' | 'outcome'>;
  private readonly upstreamLatency: Histogram<'upstream'>;
  private readonly upstreamRetries: Counter<'upstream' | 'reason'>;
  private readonly upstream429: Counter<'upstream'>;
  private readonly upstreamWait: Histogram<'upstream'>;
  private governors: ReadonlyMap<string, Governor> = new Map();

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
    this.upstreamResults = new Counter({ name: 'parley_upstream_requests_total', help: 'Upstream attempts by upstream account and outcome', labelNames: ['upstream', 'outcome'], registers });
    this.upstreamLatency = new Histogram({
      name: 'parley_upstream_latency_seconds',
      help: 'Upstream attempt latency',
      labelNames: ['upstream'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers,
    });
    this.upstreamRetries = new Counter({ name: 'parley_upstream_retries_total', help: 'Upstream retries by reason', labelNames: ['upstream', 'reason'], registers });
    this.upstream429 = new Counter({ name: 'parley_upstream_429_total', help: 'Upstream 429 answers (should stay 0: admission keeps under the limits)', labelNames: ['upstream'], registers });
    this.upstreamWait = new Histogram({
      name: 'parley_upstream_queue_wait_seconds',
      help: 'Time a call waited in the fair queue before admission',
      labelNames: ['upstream'],
      buckets: [0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 30],
      registers,
    });
    const self = this;
    new Gauge({
      name: 'parley_upstream_queue_depth',
      help: 'Calls waiting for upstream capacity',
      labelNames: ['upstream'],
      registers,
      collect() {
        for (const [name, g] of self.governors) this.set({ upstream: name }, g.queued);
      },
    });
    new Gauge({
      name: 'parley_upstream_in_flight',
      help: 'Upstream calls in flight',
      labelNames: ['upstream'],
      registers,
      collect() {
        for (const [name, g] of self.governors) this.set({ upstream: name }, g.inFlight);
      },
    });
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

  watchUpstreams(governors: ReadonlyMap<string, Governor>): void {
    this.governors = governors;
  }

  upstreamHooks(upstream: string): GovernorHooks {
    return {
      onAdmitted: (waitMs) => this.upstreamWait.observe({ upstream }, waitMs / 1000),
      onRetry: (reason) => this.upstreamRetries.inc({ upstream, reason }),
      onUpstream429: () => this.upstream429.inc({ upstream }),
      onResult: (ok, latencyMs) => {
        this.upstreamResults.inc({ upstream, outcome: ok ? 'ok' : 'error' });
        this.upstreamLatency.observe({ upstream }, latencyMs / 1000);
      },
    };
  }

  rest(route: string, status: number): void {
    this.restRequests.inc({ route, status: String(status) });
  }
}
