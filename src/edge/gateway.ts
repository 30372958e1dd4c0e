/**
 * The replica's shared runtime: its connections, sessions, heartbeat and drain. One per app.
 */
import { randomUUID } from 'node:crypto';
import type { SchedulerLike, Subscription } from 'rxjs';
import type { Config } from '../config/schema.js';
import { ParleyError } from '../protocol/codes.js';
import { SessionRegistry } from '../sessions/registry.js';
import type { LeaseHolder, ReplicaCommand, Store } from '../store/store.js';
import type { Logger } from '../telemetry/logger.js';
import { Metrics } from '../telemetry/metrics.js';
import type { Providers } from '../upstream/provider.js';
import { KeyRing } from '../identity/key-ring.js';
import { FailureThrottle } from '../limits/failure-throttle.js';
import { TimerQueue } from '../sessions/timers.js';
import type { Connection, ConnectionDeps } from './connection.js';

/** Connection leases live this long unless renewed (default; `store.leaseSeconds` on Redis). */
const LEASE_MS = 30_000;

export interface GatewayDeps {
  readonly config: Config;
  readonly store: Store;
  readonly logger: Logger;
  readonly scheduler: SchedulerLike;
  readonly providers: Providers;
  readonly replicaId?: string;
  readonly defaultMetrics?: boolean;
}

export class Gateway {
  readonly config: Config;
  readonly store: Store;
  readonly logger: Logger;
  readonly scheduler: SchedulerLike;
  readonly keyRing: KeyRing;
  /** Failed authentications per client address, on this replica (CONTRACT §4). */
  readonly authFailures: FailureThrottle;
  readonly registry: SessionRegistry;
  readonly metrics: Metrics;
  readonly replicaId: string;
  readonly connections = new Set<Connection>();
  /**
   * Every session's and connection's timers (idle, session length and their warnings, resume
   * window, quota.updated throttle, no-session.start timeout) in one queue on one scheduler action.
   */
  readonly timers: TimerQueue;
  /** What every Connection needs from the replica: one object shared by all of them. */
  readonly connectionDeps: ConnectionDeps;
  /** Connection leases live this long unless renewed; a crashed replica's slots free themselves after it. */
  readonly leaseMs: number;
  private draining = false;
  private unsubscribe: (() => void) | undefined;
  private heartbeat: Subscription | undefined;
  private leaseRenewal: Subscription | undefined;

  constructor(deps: GatewayDeps) {
    this.config = deps.config;
    this.store = deps.store;
    this.logger = deps.logger;
    this.scheduler = deps.scheduler;
    this.replicaId = deps.replicaId ?? `replica_${randomUUID().slice(0, 8)}`;
    this.keyRing = new KeyRing(deps.config);
    this.authFailures = new FailureThrottle(deps.config.server.authFailuresPerMinute, 60_000);
    this.leaseMs = deps.config.store.kind === 'redis' ? deps.config.store.leaseSeconds * 1000 : LEASE_MS;
    this.metrics = new Metrics({ connections: () => this.connections.size, sessions: () => this.registry.size }, { defaultMetrics: deps.defaultMetrics ?? false });
    this.timers = new TimerQueue(deps.scheduler, (err) => this.logger.error({ err }, 'timer failed'));
    this.registry = new SessionRegistry({
      store: deps.store,
      providers: deps.providers,
      scheduler: deps.scheduler,
      timers: this.timers,
      logger: deps.logger,
      replicaId: this.replicaId,
      keyRing: this.keyRing,
      maxBufferedBytes: deps.config.server.maxBufferedBytes,
      metrics: this.metrics,
      turns: {
        ttsMaxChars: deps.config.upstreams.tts.limits.maxChars ?? 2000,
        segmentsInFlight: deps.config.upstreams.tts.limits.segmentsInFlight ?? 2,
        translationMaxChars: deps.config.upstreams.translation.limits.maxChars,
      },
    });
    this.connectionDeps = {
      server: deps.config.server,
      scheduler: deps.scheduler,
      logger: deps.logger,
      store: deps.store,
      registry: this.registry,
      metrics: this.metrics,
      timers: this.timers,
      onClosed: (conn) => this.remove(conn),
    };
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * Starts the replica-wide timers: one heartbeat and one lease renewal for all connections. They
   * stay their own scheduler actions rather than entries of `timers`: they run for the replica's
   * whole life, so the queue would never be empty, and a test could no longer see that a closed
   * connection left nothing scheduled behind.
   */
  start(): void {
    const beatMs = this.config.server.heartbeatSeconds * 1000;
    const beat = (): void => {
      for (const conn of this.connections) {
        if (conn.awaitingPong) conn.terminateDead();
        else conn.ping();
      }
      this.heartbeat = this.scheduler.schedule(beat, beatMs);
    };
    this.heartbeat = this.scheduler.schedule(beat, beatMs);
    const renew = (): void => {
      this.renewLeases('extend');
      this.leaseRenewal = this.scheduler.schedule(renew, this.leaseMs / 3);
    };
    this.leaseRenewal = this.scheduler.schedule(renew, this.leaseMs / 3);
    this.unsubscribe = this.store.subscribe((cmd) => this.onCommand(cmd));
  }

  /**
   * A command from any replica (this one included). Only the replica holding the session acts:
   * operator DELETE closes it with 4003; a resume elsewhere makes this replica let go (4030).
   */
  private onCommand(cmd: ReplicaCommand): void {
    const session = this.registry.get(cmd.sessionId);
    if (!session || session.isGone) return;
    if (cmd.type === 'session.delete') {
      session.terminate(new ParleyError('forbidden', 'the session was ended by the operator'), 'operator');
    } else if (cmd.from !== this.replicaId) {
      this.logger.info({ session_id: cmd.sessionId, by: cmd.from }, 'session resumed on another replica; letting go');
      session.handOff();
    }
  }

  /**
   * After the shared store comes back (it may have restarted empty): re-add this replica's
   * connection slots and session records, so caps, resume and the session list are right again.
   */
  reregister(): void {
    this.renewLeases('restore');
    for (const session of this.registry.all()) session.persist();
  }

  /** Every open connection's slots in one store call (one round trip on Redis, not one per connection). */
  private renewLeases(mode: 'extend' | 'restore'): void {
    const holders: LeaseHolder[] = [];
    for (const conn of this.connections) {
      const h = conn.leaseHolder();
      if (h) holders.push(h);
    }
    if (holders.length === 0) return;
    this.store.renew(holders, this.leaseMs, mode).catch((err: unknown) => this.logger.warn({ err, connections: holders.length }, 'could not renew connection leases'));
  }

  add(conn: Connection): void {
    this.connections.add(conn);
  }

  remove(conn: Connection): void {
    this.connections.delete(conn);
  }

  /**
   * Graceful drain (CONTRACT §5, SIGTERM): refuse new connections, let requests in flight finish
   * for up to `drainSeconds`, then close every connection with 1012 `server_draining`. Sessions
   * stay resumable (their state is in the store).
   */
  async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.logger.info({ connections: this.connections.size }, 'draining');
    const deadline = Date.now() + this.config.server.drainSeconds * 1000;
    const busy = (): Connection[] => [...this.connections].filter((c) => c.busy());
    for (const conn of this.connections) if (!conn.busy()) conn.fail(new ParleyError('server_draining', 'this replica is shutting down; resume on another'));
    while (busy().length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50).unref());
    }
    for (const conn of [...this.connections]) conn.fail(new ParleyError('server_draining', 'this replica is shutting down; resume on another'));
  }

  stop(): void {
    this.unsubscribe?.();
    this.heartbeat?.unsubscribe();
    this.leaseRenewal?.unsubscribe();
    for (const conn of [...this.connections]) conn.teardown();
    // Records stay in the store: after a drain (1012) the sessions resume on another replica.
    for (const session of [...this.registry.all()]) session.end('shutdown', true);
    this.timers.clear();
  }
}
