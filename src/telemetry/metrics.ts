/**
 * Prometheus metrics (prom-client), one registry per app so several apps can live in one test
 * process. Label values are bounded: close codes come from the contract, limit names from code,
 * account ids from the configuration (anything else is `other`), store operations from
 * {@link STORE_OPERATIONS}. Every metric is listed in docs/operations.md.
 *
 * Hot-path figures (frames and bytes in and out) are plain number fields bumped by the connection
 * and turned into counters only when scraped: a labelled prom-client `inc` per frame would cost a
 * hash lookup per message for nothing.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { GovernorHooks, UpstreamReadings } from './upstream-readings.js';
import { EventLoopLag, type LagSnapshot } from './event-loop.js';

export interface MetricsSources {
  connections(): number;
  sessions(): number;
}

/** Who holds the open connections and live sessions, by account id (for the per-account gauges). */
export interface AccountSources {
  /** Account ids from the configuration: the only label values besides `other`. */
  readonly accountIds: readonly string[];
  connectionAccounts(): Iterable<string>;
  sessionAccounts(): Iterable<string>;
}

/** An upstream account's configured allowance (undefined: not limited that way). */
export interface UpstreamAllowance {
  /** Requests per second it allows in the long run: min(requestsPerSecond, requestsPerMinute / 60). */
  readonly requestsPerSecond: number | undefined;
  readonly concurrency: number | undefined;
}

/**
 * The store operations a fallback decision can be counted for (`parley_store_fallback_total`): the
 * `Store` methods that touch shared state, plus `stats` (the replica figures).
 */
export const STORE_OPERATIONS = ['consume', 'admit', 'acquire', 'renew', 'release', 'peek', 'count', 'token', 'session', 'publish', 'stats'] as const;
export type StoreOperation = (typeof STORE_OPERATIONS)[number];

/** Client close codes kept as their own label: normal, going away, no status, connection lost. */
const CLIENT_CLOSE_CODES: ReadonlySet<number> = new Set([1000, 1001, 1005, 1006]);

/** Running totals the live view (dashboard, replica figures) turns into per-second rates. */
export interface Totals {
  readonly messagesIn: number;
  readonly bytesIn: number;
  readonly messagesOut: number;
  readonly bytesOut: number;
  readonly closes: Readonly<Record<string, number>>;
  /** Upstream attempts admitted, by upstream account. */
  readonly upstreamAttempts: Readonly<Record<string, number>>;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly closes: Counter<'code'>;
  private readonly clientCloses: Counter<'code'>;
  private readonly throttle: Histogram<'limit'>;
  private readonly sessionsStarted: Counter<'account'>;
  private readonly decisions: Counter<'limit' | 'outcome'>;
  private readonly restRequests: Counter<'route' | 'status'>;
  private readonly upstreamResults: Counter<'upstream' | 'outcome'>;
  private readonly upstreamFirstByte: Histogram<'upstream'>;
  private readonly turnFirstAudio: Histogram;
  private readonly turnDuration: Histogram;
  private readonly turnsCancelled: Counter<'stage'>;
  private readonly upstreamLatency: Histogram<'upstream'>;
  private readonly upstreamRetries: Counter<'upstream' | 'reason'>;
  private readonly upstream429: Counter<'upstream'>;
  private readonly upstreamWait: Histogram<'upstream'>;
  private readonly storeFallbacks: Counter<'operation'>;
  private governors: ReadonlyMap<string, UpstreamReadings> = new Map();
  private allowances: ReadonlyMap<string, UpstreamAllowance> = new Map();
  private accounts: AccountSources | undefined;
  private readonly lag = new EventLoopLag();
  // Plain fields on the hot path (see the file comment).
  private messagesIn = 0;
  private bytesIn = 0;
  private messagesOut = 0;
  private bytesOut = 0;
  private readonly closeCounts: Record<string, number> = {};
  private readonly upstreamAttempts: Record<string, number> = {};

  constructor(sources: MetricsSources, opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const self = this;
    new Gauge({ name: 'parley_connections', help: 'Open WebSocket connections on this replica', registers, collect() { this.set(sources.connections()); } });
    new Gauge({ name: 'parley_sessions', help: 'Live sessions on this replica (attached or waiting for a resume)', registers, collect() { this.set(sources.sessions()); } });
    this.closes = new Counter({ name: 'parley_closes_total', help: 'WebSocket closes the gateway decided, by close code', labelNames: ['code'], registers });
    this.clientCloses = new Counter({
      name: 'parley_client_closes_total',
      help: 'WebSocket closes the client started (or a lost connection), by close code: 1000, 1001, 1005, 1006, or other',
      labelNames: ['code'],
      registers,
    });
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
    this.upstreamFirstByte = new Histogram({
      name: 'parley_upstream_first_byte_seconds',
      help: 'Time from an upstream attempt starting to the first byte of its answer (streamed answers)',
      labelNames: ['upstream'],
      buckets: [0.025, 0.05, 0.1, 0.15, 0.25, 0.35, 0.5, 0.75, 1, 2, 5],
      registers,
    });
    // CONTRACT §6: turns cancelled before reply.audio.end stay out of the two turn histograms.
    this.turnFirstAudio = new Histogram({
      name: 'parley_turn_first_audio_seconds',
      help: 'Time from the gateway accepting a turn to its first reply audio (completed turns)',
      buckets: [0.1, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 3, 5, 10],
      registers,
    });
    this.turnDuration = new Histogram({
      name: 'parley_turn_duration_seconds',
      help: 'Time from the gateway accepting a turn to reply.audio.end (completed turns)',
      buckets: [0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60],
      registers,
    });
    this.turnsCancelled = new Counter({ name: 'parley_turns_cancelled_total', help: 'Turns cancelled, by the stage they were in', labelNames: ['stage'], registers });
    this.upstreamRetries = new Counter({ name: 'parley_upstream_retries_total', help: 'Upstream retries by reason', labelNames: ['upstream', 'reason'], registers });
    this.upstream429 = new Counter({ name: 'parley_upstream_429_total', help: 'Upstream 429 answers (should stay 0: admission keeps under the limits)', labelNames: ['upstream'], registers });
    this.upstreamWait = new Histogram({
      name: 'parley_upstream_queue_wait_seconds',
      help: 'Time a call waited in the fair queue before admission',
      labelNames: ['upstream'],
      buckets: [0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 30],
      registers,
    });
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
    new Gauge({
      name: 'parley_upstream_allowance_requests_per_second',
      help: 'Configured long-run request rate of the upstream account (min of requestsPerSecond and requestsPerMinute / 60)',
      labelNames: ['upstream'],
      registers,
      collect() {
        for (const [name, a] of self.allowances) if (a.requestsPerSecond !== undefined) this.set({ upstream: name }, a.requestsPerSecond);
      },
    });
    new Gauge({
      name: 'parley_upstream_concurrency_limit',
      help: 'Configured concurrency of the upstream account',
      labelNames: ['upstream'],
      registers,
      collect() {
        for (const [name, a] of self.allowances) if (a.concurrency !== undefined) this.set({ upstream: name }, a.concurrency);
      },
    });
    const byAccount = (read: (a: AccountSources) => Iterable<string>) =>
      function (this: Gauge<'account'>): void {
        const a = self.accounts;
        if (!a) return;
        const counts = new Map<string, number>(a.accountIds.map((id) => [id, 0]));
        counts.set('other', 0);
        for (const id of read(a)) {
          const label = counts.has(id) && id !== 'other' ? id : 'other';
          counts.set(label, (counts.get(label) ?? 0) + 1);
        }
        for (const [account, n] of counts) this.set({ account }, n);
      };
    new Gauge({ name: 'parley_account_connections', help: 'Open WebSocket connections on this replica by account', labelNames: ['account'], registers, collect: byAccount((a) => a.connectionAccounts()) });
    new Gauge({ name: 'parley_account_sessions', help: 'Live sessions on this replica by account', labelNames: ['account'], registers, collect: byAccount((a) => a.sessionAccounts()) });
    // Counters fed by plain fields: reset then set to the running total at scrape time.
    const total = (name: string, help: string, read: () => number): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    };
    total('parley_messages_received_total', 'WebSocket frames received (text and binary)', () => self.messagesIn);
    total('parley_received_bytes_total', 'WebSocket frame payload bytes received', () => self.bytesIn);
    total('parley_messages_sent_total', 'WebSocket frames sent (events and audio)', () => self.messagesOut);
    total('parley_sent_bytes_total', 'WebSocket frame payload bytes sent', () => self.bytesOut);
    this.storeFallbacks = new Counter({
      name: 'parley_store_fallback_total',
      help: 'Decisions taken by the in-process fallback because the store was unreachable, by store operation',
      labelNames: ['operation'],
      registers,
    });
    // Three gauges, not one with a `quantile` label: in the Prometheus data model `quantile` belongs
    // to summaries only (promtool check metrics: "non-summary metrics should not have "quantile"
    // label"), and these are readings of perf_hooks' histogram, not a summary's. Named as
    // prom-client's own nodejs_eventloop_lag_{p50,p99,max}_seconds.
    const lagGauge = (stat: 'p50' | 'p99' | 'max', help: string): void => {
      new Gauge({
        name: `parley_event_loop_lag_${stat}_seconds`,
        help: `${help} over the last 5 s window (perf_hooks.monitorEventLoopDelay)`,
        registers,
        collect() {
          const l = self.lag.snapshot();
          this.set(stat === 'p50' ? l.p50 : stat === 'p99' ? l.p99 : l.max);
        },
      });
    };
    lagGauge('p50', 'Median event-loop delay');
    lagGauge('p99', '99th percentile of the event-loop delay');
    lagGauge('max', 'Largest event-loop delay');
    // The default process and Node.js metrics keep their standard names (process_cpu_seconds_total,
    // nodejs_heap_size_used_bytes, ...), so stock dashboards and alerts find them (CONTRACT §9).
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** Stops the event-loop monitor (its timer is unref'd, but the histogram keeps sampling). */
  close(): void {
    this.lag.stop();
  }

  /** One frame received (every frame, before any limit). */
  frameIn(bytes: number): void {
    this.messagesIn++;
    this.bytesIn += bytes;
  }

  /** One frame sent. */
  frameOut(bytes: number): void {
    this.messagesOut++;
    this.bytesOut += bytes;
  }

  /** Running totals for the live view. */
  totals(): Totals {
    return {
      messagesIn: this.messagesIn,
      bytesIn: this.bytesIn,
      messagesOut: this.messagesOut,
      bytesOut: this.bytesOut,
      closes: { ...this.closeCounts },
      upstreamAttempts: { ...this.upstreamAttempts },
    };
  }

  eventLoopLag(): LagSnapshot {
    return this.lag.snapshot();
  }

  /** The per-account gauges read these (accounts outside `accountIds` count as `other`). */
  watchAccounts(sources: AccountSources): void {
    this.accounts = sources;
  }

  watchAllowances(allowances: ReadonlyMap<string, UpstreamAllowance>): void {
    this.allowances = allowances;
  }

  /**
   * A shared-limit decision taken by the in-process fallback while the store is unreachable
   * (ARCHITECTURE.md: "metrics count every fallback decision"). Called by the store wrapper; an
   * operation outside {@link STORE_OPERATIONS} is counted as `other`.
   */
  storeFallback(operation: StoreOperation | string): void {
    const label = (STORE_OPERATIONS as readonly string[]).includes(operation) ? operation : 'other';
    this.storeFallbacks.inc({ operation: label });
  }

  /** A close the gateway decided (a code of the contract's table, or 1006 for a dead peer dropped). */
  closed(code: number): void {
    const label = String(code);
    this.closes.inc({ code: label });
    this.closeCounts[label] = (this.closeCounts[label] ?? 0) + 1;
  }

  /**
   * A close the client started, or a connection lost without a close frame. Its code is the
   * client's choice (any of ~2,000 values, 1011 included), so it is counted apart from the
   * gateway's own closes and bucketed: the label set stays bounded and a client's 1011 never
   * looks like a server fault.
   */
  clientClosed(code: number): void {
    const label = CLIENT_CLOSE_CODES.has(code) ? String(code) : 'other';
    this.clientCloses.inc({ code: label });
    this.closeCounts.client = (this.closeCounts.client ?? 0) + 1;
  }

  /** A frame waited `ms` for a token of a per-connection bucket (also a `throttled` decision). */
  throttleDelay(limit: 'messages' | 'bytes', ms: number): void {
    this.throttle.observe({ limit }, ms / 1000);
    this.decisions.inc({ limit: `connection.${limit}`, outcome: 'throttled' });
  }

  sessionStarted(account: string): void {
    this.sessionsStarted.inc({ account });
  }

  decision(limit: string, allowed: boolean): void {
    this.decisions.inc({ limit, outcome: allowed ? 'allowed' : 'refused' });
  }

  /**
   * One store decision over several limits: allowed counts every limit as `allowed`; refused
   * counts only the limit that refused (the others were not the reason).
   */
  decided(limitNames: readonly string[], decision: { readonly allowed: boolean; readonly limitName?: string }): void {
    if (decision.allowed) for (const limit of limitNames) this.decisions.inc({ limit, outcome: 'allowed' });
    else this.decisions.inc({ limit: decision.limitName ?? limitNames[0] ?? 'unknown', outcome: 'refused' });
  }

  watchUpstreams(governors: ReadonlyMap<string, UpstreamReadings>): void {
    this.governors = governors;
  }

  upstreamHooks(upstream: string): GovernorHooks {
    return {
      onAdmitted: (waitMs) => {
        this.upstreamWait.observe({ upstream }, waitMs / 1000);
        this.upstreamAttempts[upstream] = (this.upstreamAttempts[upstream] ?? 0) + 1;
      },
      onRetry: (reason) => this.upstreamRetries.inc({ upstream, reason }),
      onUpstream429: () => this.upstream429.inc({ upstream }),
      onResult: (ok, latencyMs) => {
        this.upstreamResults.inc({ upstream, outcome: ok ? 'ok' : 'error' });
        this.upstreamLatency.observe({ upstream }, latencyMs / 1000);
      },
      onFirstByte: (ms) => this.upstreamFirstByte.observe({ upstream }, ms / 1000),
    };
  }

  /** A turn answered to its `reply.audio.end` (the figures of its `turn.metrics`). */
  turnCompleted(firstAudioMs: number | undefined, totalMs: number): void {
    if (firstAudioMs !== undefined) this.turnFirstAudio.observe(firstAudioMs / 1000);
    this.turnDuration.observe(totalMs / 1000);
  }

  /** A turn cancelled in `stage` (it stays out of the latency histograms). */
  turnCancelled(stage: string): void {
    this.turnsCancelled.inc({ stage });
  }

  rest(route: string, status: number): void {
    this.restRequests.inc({ route, status: String(status) });
  }
}
