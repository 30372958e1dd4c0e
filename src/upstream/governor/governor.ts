/**
 * The upstream governor: every call to one upstream account goes through it, so Parley uses that
 * account close to its full allowance and never past it, and queues fairly instead of failing
 * (CONTRACT.md §1: "the client never sees an upstream 429"; the seeds: "processing capacity is
 * queued").
 *
 * - Admission is one all-or-nothing `Store.admit` over the account's rate limits and one
 *   concurrency lease, shared by every replica. The keys carry the account name as a Redis Cluster
 *   hash tag (`up:{stt}:rps`) so one account's keys live in one slot.
 * - Waiting jobs sit in a `FairQueue` (round-robin over customer accounts, then sessions). One
 *   dispatcher per governor takes the head, asks the store, starts the attempt, and repeats while
 *   admission allows; there is never more than one admission in flight.
 * - A 429/503 with Retry-After pauses the whole upstream account until then (CONTRACT §3); without
 *   the header the job backs off alone (exponential, full jitter) and other sessions keep going.
 * - A 429 although admission allowed the call means the configured limits exceed the real ones:
 *   a local gate then cuts the rate multiplicatively and recovers it additively (AIMD).
 *
 * All time comes from the injected rxjs scheduler, so tests run on virtual time.
 */
import { randomUUID } from 'node:crypto';
import type { SchedulerLike, Subscription } from 'rxjs';
import type { UpstreamLimits } from '../../config/schema.js';
import type { Decision } from '../../limits/decision.js';
import type { Store } from '../../store/store.js';
import type { LeaseSpec, LimitSpec } from '../../limits/spec.js';
import type { Logger } from '../../telemetry/logger.js';
import type { GovernorHooks, RetryReason } from '../../telemetry/upstream-readings.js';
import { FairQueue } from './fair-queue.js';
import { UpstreamError } from '../provider.js';
import { Aimd } from './aimd.js';
import { abortError, AttemptTimeout } from './attempt.js';
import { DeadlineHeap } from './deadline-heap.js';
import { backoffMs, classify, describe } from './retry.js';

export type { GovernorHooks, RetryReason };

const DEFAULT_TIMEOUT_SECONDS = 30;
const DEFAULT_MAX_RETRIES = 5;
export const DEFAULT_MAX_QUEUE_WAIT_SECONDS = 30;
/** Lease TTL beyond the attempt timeout: a replica that dies mid-call frees its slot after this. */
const LEASE_GRACE_MS = 5_000;
/** Re-ask the store this often while its concurrency lease is full of other replicas' holders. */
const LEASE_POLL_MS = 50;
/** Wait before asking the store again after it failed (the queue deadline bounds the wait). */
const STORE_RETRY_MS = 1_000;
/** AIMD: +0.1 per 10 s without an unexpected 429 (aimd.ts). */
const AIMD_RECOVERY_MS = 10_000;

/** Added to a requestsPerMinute window so arrivals jittered by the network still fit the upstream's. */
const WINDOW_JITTER_MS = 250;

export interface GovernorOptions {
  /** Upstream account name, e.g. "stt" (store keys, logs, errors). */
  readonly name: string;
  readonly limits: UpstreamLimits;
  readonly store: Store;
  /** Its `now()` is the clock (epoch ms); every timer goes through `schedule`. */
  readonly scheduler: SchedulerLike;
  readonly logger: Logger;
  /** Jitter source in [0, 1); tests inject it. */
  readonly random?: () => number;
  readonly hooks?: GovernorHooks;
}

export interface UpstreamJob<T> {
  /** Customer account (fairness). */
  readonly accountKey: string;
  /** Session (fairness; cancellation). */
  readonly sessionKey: string;
  /** Scheduler time the gateway accepted the request: `maxQueueWaitSeconds` counts from here. */
  readonly acceptedAt: number;
  /** Session closed / request cancelled: dropped from the queue, in-flight attempt aborted. */
  readonly signal?: AbortSignal;
  /** Called when the job first has to wait, and each time its position improves. */
  readonly onQueued?: (position: number) => void;
  /**
   * One upstream HTTP attempt; throws `UpstreamHttpError` for HTTP errors. It holds its concurrency
   * lease until it settles, so an attempt that streams its answer settles when the answer has been
   * read (or aborted), and calls `progress` as bytes arrive: the attempt timeout then measures the
   * gap before the first byte and between later ones, not the whole answer.
   */
  readonly attempt: (signal: AbortSignal, progress: () => void) => Promise<T>;
}

export { UpstreamHttpError, parseRetryAfter } from '../http-error.js';

interface Attempt {
  readonly entry: Entry;
  readonly controller: AbortController;
  /** Lease holder id; undefined when no concurrency lease is configured. */
  readonly holderId: string | undefined;
  readonly startedAt: number;
  /** Last time the attempt's answer moved (its first byte, each later chunk); undefined: no byte yet. */
  lastProgressAt: number | undefined;
  timer: Subscription | undefined;
  settled: boolean;
}

interface Entry {
  readonly job: UpstreamJob<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
  /** Queue deadline (epoch ms); it applies until the first attempt starts. */
  readonly deadline: number;
  state: 'queued' | 'backoff' | 'inflight' | 'done';
  /** Retries made so far (attempts started = retries + 1 once in flight). */
  retries: number;
  /** Whether an attempt ever started (the queue deadline no longer applies). */
  started: boolean;
  enqueuedAt: number;
  /** Last position reported to `onQueued` (Infinity: never). */
  lastPosition: number;
  attempt: Attempt | undefined;
  backoff: Subscription | undefined;
  onAbort: (() => void) | undefined;
}

/** Governs one upstream account: admission, fair queueing, deadlines, timeouts, retries, AIMD. */
export class Governor {
  private readonly name: string;
  private readonly store: Store;
  private readonly scheduler: SchedulerLike;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly hooks: GovernorHooks;

  private readonly limitSpecs: readonly LimitSpec[];
  private readonly leaseSpecs: readonly LeaseSpec[];
  private readonly concurrency: number | undefined;
  /** The local gate that slows down below the configured rate after unexpected 429s. */
  private readonly aimd: Aimd;
  private readonly timeoutSeconds: number;
  private readonly maxRetries: number;
  private readonly maxQueueWaitMs: number;
  private readonly leaseTtlMs: number;
  /** Unique per governor instance, so holder and op ids never collide across replicas. */
  private readonly instanceId = randomUUID();
  private seq = 0;

  private readonly queue = new FairQueue<Entry>();
  private readonly live = new Set<Entry>();
  private readonly deadlines = new DeadlineHeap<Entry>();
  private deadlineTimer: { at: number; sub: Subscription } | undefined;
  /** Set while `expire` pops the heap, so `finish` leaves the heap and its timer alone. */
  private expiring = false;
  private wakeTimer: { at: number; sub: Subscription } | undefined;
  private recoveryTimer: Subscription | undefined;

  private closed = false;
  private pumping = false;
  private pumpRequested = false;
  /** Incremented whenever the queue changes; positions are re-reported only after a change. */
  private queueVersion = 0;
  private reportedVersion = 0;

  private inFlightCount = 0;
  /** Leases taken and not yet released in the store (the local concurrency check). */
  private leasesHeld = 0;
  private releases = 0;
  /** The store refused with "lease full" (other replicas hold the slots): wait for a release or the poll. */
  private storeFull = false;
  /** Retry-After from the upstream: nothing is sent before this (epoch ms). */
  private pausedUntil = 0;
  /** The store's rate limits (or a store fault) refuse admission before this (epoch ms). */
  private admitBlockedUntil = 0;

  private warnedLimits = false;

  constructor(opts: GovernorOptions) {
    const { name, limits } = opts;
    this.name = name;
    this.store = opts.store;
    this.scheduler = opts.scheduler;
    this.log = opts.logger;
    this.random = opts.random ?? Math.random;
    this.hooks = opts.hooks ?? {};
    this.timeoutSeconds = limits.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
    this.maxRetries = limits.maxRetries ?? DEFAULT_MAX_RETRIES;
    this.maxQueueWaitMs = (limits.maxQueueWaitSeconds ?? DEFAULT_MAX_QUEUE_WAIT_SECONDS) * 1000;
    this.leaseTtlMs = this.timeoutSeconds * 1000 + LEASE_GRACE_MS;

    // Jitter reserve: calls admitted exactly at the allowance reach the upstream with network and
    // scheduling jitter, so two calls admitted 1/rate apart can arrive closer than that and meet a
    // 429. The bucket therefore keeps one token of the upstream's burst in reserve (steady-state
    // rate unchanged; with burst 1 the rate is trimmed by 3 % instead), and the window is judged
    // over 60 s plus a quarter second.
    const specs: LimitSpec[] = [];
    if (limits.requestsPerMinute !== undefined) {
      specs.push({ kind: 'window', key: `up:{${name}}:rpm`, name: `upstream.${name}.rpm`, limit: limits.requestsPerMinute, windowMs: 60_000 + WINDOW_JITTER_MS });
    }
    if (limits.requestsPerSecond !== undefined) {
      const configured = limits.burst ?? Math.max(1, Math.ceil(limits.requestsPerSecond));
      const burst = configured >= 2 ? configured - 1 : 1;
      const ratePerSec = configured >= 2 ? limits.requestsPerSecond : limits.requestsPerSecond * 0.97;
      specs.push({ kind: 'bucket', key: `up:{${name}}:rps`, name: `upstream.${name}.rps`, ratePerSec, burst });
      this.aimd = new Aimd({ perSec: ratePerSec, burst });
    } else if (limits.requestsPerMinute !== undefined) {
      // Burst 1: a bucket of rpm/60 with a large burst would let a whole window through at once.
      this.aimd = new Aimd({ perSec: limits.requestsPerMinute / 60, burst: 1 });
    } else {
      this.aimd = new Aimd(undefined);
    }
    this.limitSpecs = specs;
    this.concurrency = limits.concurrency;
    this.leaseSpecs = limits.concurrency === undefined ? [] : [{ key: `up:{${name}}:conc`, name: `upstream.${name}.concurrency`, limit: limits.concurrency }];
  }

  /** Jobs waiting for admission (backoffs excluded). */
  get queued(): number {
    return this.queue.size;
  }

  /** Attempts in flight from this governor. */
  get inFlight(): number {
    return this.inFlightCount;
  }

  /** Current allowance, for telemetry. `pausedUntil` is epoch ms, or undefined when not paused. */
  stats(): { name: string; queued: number; inFlight: number; effectiveRateFactor: number; pausedUntil: number | undefined } {
    return {
      name: this.name,
      queued: this.queue.size,
      inFlight: this.inFlightCount,
      effectiveRateFactor: this.aimd.factor,
      pausedUntil: this.pausedUntil > this.scheduler.now() ? this.pausedUntil : undefined,
    };
  }

  /**
   * Runs `job.attempt` once admission allows, retrying per CONTRACT §3. Rejects with an
   * `UpstreamError` (`busy` when the queue deadline passed), or an AbortError when `job.signal` aborts.
   */
  run<T>(job: UpstreamJob<T>): Promise<T> {
    if (this.closed) return Promise.reject(this.closedError());
    if (job.signal?.aborted) return Promise.reject(abortError(job.signal.reason));
    return new Promise<T>((resolve, reject) => {
      const entry: Entry = {
        job,
        resolve: resolve as (value: unknown) => void,
        reject,
        deadline: job.acceptedAt + this.maxQueueWaitMs,
        state: 'queued',
        retries: 0,
        started: false,
        enqueuedAt: this.scheduler.now(),
        lastPosition: Infinity,
        attempt: undefined,
        backoff: undefined,
        onAbort: undefined,
      };
      this.live.add(entry);
      if (job.signal) {
        const signal = job.signal;
        entry.onAbort = () => this.cancel(entry, abortError(signal.reason));
        signal.addEventListener('abort', entry.onAbort, { once: true });
      }
      this.enqueue(entry, false);
      this.deadlines.push(entry);
      this.armDeadline();
      this.pump();
    });
  }

  /** Rejects queued and backing-off jobs, aborts in-flight attempts (releasing their leases), cancels timers. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.wakeTimer?.sub.unsubscribe();
    this.wakeTimer = undefined;
    this.deadlineTimer?.sub.unsubscribe();
    this.deadlineTimer = undefined;
    this.recoveryTimer?.unsubscribe();
    this.recoveryTimer = undefined;
    this.deadlines.clear();
    const err = this.closedError();
    for (const entry of [...this.live]) this.cancel(entry, err);
  }

  // --- dispatch -------------------------------------------------------------------------------

  /** Runs the dispatcher, or asks the running one for another pass. Never throws. */
  private pump(): void {
    if (this.closed) return;
    if (this.pumping) {
      this.pumpRequested = true;
      return;
    }
    this.pumping = true;
    void this.pumpLoop();
  }

  private async pumpLoop(): Promise<void> {
    try {
      for (;;) {
        this.pumpRequested = false;
        const progressed = await this.dispatchOne();
        if (!progressed && !this.pumpRequested) break;
      }
    } catch (err) {
      // dispatchOne handles store faults itself; this is a bug, not a refusal.
      this.log.error({ err, upstream: this.name }, 'upstream dispatcher failed');
    } finally {
      this.pumping = false;
    }
    if (!this.closed) this.reportPositions();
  }

  /** Admits and starts the head job if every limit allows; returns whether it did. */
  private async dispatchOne(): Promise<boolean> {
    if (this.closed || this.queue.size === 0) return false;
    const now = this.scheduler.now();
    if (now < this.pausedUntil) return this.wakeAt(this.pausedUntil);
    if (now < this.admitBlockedUntil) return this.wakeAt(this.admitBlockedUntil);
    // Local checks first: no store round trip for an answer we already know (STYLE §13).
    const cap = this.localConcurrency();
    if (cap !== undefined && this.leasesHeld >= cap) return false; // our own release pumps
    const gateWaitMs = this.aimd.waitMs(now);
    if (gateWaitMs > 0) return this.wakeAt(now + gateWaitMs);
    if (this.storeFull) return false; // our own release or the poll pumps

    const holderId = `${this.instanceId}:${++this.seq}`;
    const releasesBefore = this.releases;
    let decision: Decision;
    if (this.limitSpecs.length === 0 && this.leaseSpecs.length === 0) {
      decision = { allowed: true, states: [] };
    } else {
      if (this.leaseSpecs.length > 0) this.leasesHeld++; // counted from the request, so a release racing it is seen
      try {
        decision = await this.store.admit(this.limitSpecs, this.leaseSpecs, holderId, this.leaseTtlMs, holderId);
      } catch (err) {
        if (this.leaseSpecs.length > 0) this.leasesHeld--;
        this.log.warn({ err, upstream: this.name }, 'upstream admission failed: store unreachable; retrying');
        this.admitBlockedUntil = this.scheduler.now() + STORE_RETRY_MS;
        return this.wakeAt(this.admitBlockedUntil);
      }
      if (!decision.allowed && this.leaseSpecs.length > 0) this.leasesHeld--;
    }
    const after = this.scheduler.now();
    if (!decision.allowed) {
      if (decision.retryAfterMs > 0) {
        this.admitBlockedUntil = after + decision.retryAfterMs;
        return this.wakeAt(this.admitBlockedUntil);
      }
      // Lease full with holders of other replicas: retry on our next release, or after a short poll.
      if (this.releases !== releasesBefore) return true;
      this.storeFull = true;
      return this.wakeAt(after + LEASE_POLL_MS);
    }
    this.aimd.take(after);
    // The head may have changed while the store answered (abort, deadline, a retry put first):
    // the admission goes to whichever job is first now. A pause that began meanwhile wins.
    const entry = this.closed || after < this.pausedUntil ? undefined : this.queue.shift();
    if (!entry) {
      if (this.leaseSpecs.length > 0) this.releaseLease(holderId);
      if (after < this.pausedUntil) this.wakeAt(this.pausedUntil);
      return false;
    }
    this.queueChanged();
    this.start(entry, this.leaseSpecs.length > 0 ? holderId : undefined, after);
    return true;
  }

  /** The concurrency this replica may use now (scaled by AIMD when no rate limit is configured). */
  private localConcurrency(): number | undefined {
    return this.concurrency === undefined ? undefined : this.aimd.concurrency(this.concurrency);
  }

  /** Schedules one dispatcher pass at `at` (keeps an earlier one). Returns false, for dispatchOne. */
  private wakeAt(at: number): false {
    if (this.closed) return false;
    if (this.wakeTimer && this.wakeTimer.at <= at) return false;
    this.wakeTimer?.sub.unsubscribe();
    const sub = this.scheduler.schedule(() => {
      this.wakeTimer = undefined;
      this.storeFull = false;
      this.pump();
    }, Math.max(0, at - this.scheduler.now()));
    this.wakeTimer = { at, sub };
    return false;
  }

  // --- attempts -------------------------------------------------------------------------------

  private start(entry: Entry, holderId: string | undefined, now: number): void {
    entry.state = 'inflight';
    entry.started = true;
    this.armDeadline(); // the deadline no longer applies; drop its timer if it was the last one
    const attempt: Attempt = { entry, controller: new AbortController(), holderId, startedAt: now, lastProgressAt: undefined, timer: undefined, settled: false };
    entry.attempt = attempt;
    this.inFlightCount++;
    this.hooks.onAdmitted?.(now - entry.enqueuedAt);
    attempt.timer = this.scheduler.schedule(() => this.onTimeout(attempt), this.timeoutSeconds * 1000);
    let result: Promise<unknown>;
    try {
      result = Promise.resolve(entry.job.attempt(attempt.controller.signal, () => this.progress(attempt)));
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (value) => {
        if (!this.endAttempt(attempt)) return;
        this.hooks.onResult?.(true, this.scheduler.now() - attempt.startedAt);
        this.finish(entry);
        entry.resolve(value);
      },
      (err: unknown) => {
        if (!this.endAttempt(attempt)) return;
        this.hooks.onResult?.(false, this.scheduler.now() - attempt.startedAt);
        this.onFailure(entry, attempt, err);
      },
    );
  }

  /** Bytes of the attempt's answer arrived: the first one is its first byte; each moves the timeout on. */
  private progress(attempt: Attempt): void {
    if (attempt.settled) return;
    const now = this.scheduler.now();
    if (attempt.lastProgressAt === undefined) this.hooks.onFirstByte?.(now - attempt.startedAt);
    attempt.lastProgressAt = now;
  }

  private onTimeout(attempt: Attempt): void {
    if (attempt.settled) return;
    // A streaming answer that moved within the timeout is not stuck: look again when its gap would end.
    const timeoutMs = this.timeoutSeconds * 1000;
    const idleMs = attempt.lastProgressAt === undefined ? timeoutMs : this.scheduler.now() - attempt.lastProgressAt;
    if (idleMs < timeoutMs) {
      attempt.timer = this.scheduler.schedule(() => this.onTimeout(attempt), timeoutMs - idleMs);
      return;
    }
    if (!this.endAttempt(attempt)) return;
    const err = new AttemptTimeout(this.timeoutSeconds);
    attempt.controller.abort(err);
    this.hooks.onResult?.(false, this.scheduler.now() - attempt.startedAt);
    this.retryOrFail(attempt.entry, err, undefined, undefined, 'timeout');
  }

  /**
   * Ends an attempt once, whatever ended it first (result, timeout, abort, close): clears its timer,
   * releases its lease and lets the dispatcher use the slot. Returns false if it had already ended.
   */
  private endAttempt(attempt: Attempt): boolean {
    if (attempt.settled) return false;
    attempt.settled = true;
    attempt.timer?.unsubscribe();
    attempt.entry.attempt = undefined;
    this.inFlightCount--;
    if (attempt.holderId !== undefined) this.releaseLease(attempt.holderId);
    else this.pump();
    return true;
  }

  /** Releases a lease (idempotent in the store); the dispatcher runs again once the store has it back. */
  private releaseLease(holderId: string): void {
    this.store
      .release(this.leaseSpecs, holderId)
      .catch((err: unknown) => {
        // The lease expires by itself after its TTL; nothing else to do.
        this.log.warn({ err, upstream: this.name }, 'upstream lease release failed; it will expire');
      })
      .finally(() => {
        this.leasesHeld--;
        this.releases++;
        this.storeFull = false;
        this.pump();
      });
  }

  private onFailure(entry: Entry, attempt: Attempt, err: unknown): void {
    const verdict = classify(err, this.name);
    if (!verdict.retry) {
      this.fail(entry, verdict.error);
      return;
    }
    if (verdict.unexpected429) this.onUnexpected429(attempt);
    this.retryOrFail(entry, err, verdict.status, verdict.retryAfterMs, verdict.reason);
  }

  private retryOrFail(entry: Entry, err: unknown, status: number | undefined, retryAfterMs: number | undefined, reason: RetryReason): void {
    if (entry.state === 'done') return;
    if (entry.retries >= this.maxRetries) {
      this.fail(entry, new UpstreamError(this.name, `failed after ${entry.retries} retries: ${describe(err)}`, status));
      return;
    }
    entry.retries++;
    this.hooks.onRetry?.(reason);
    const now = this.scheduler.now();
    if (retryAfterMs !== undefined && retryAfterMs > 0) {
      // The upstream asked the whole account to wait: nothing of this account goes out before then,
      // and this job is first when it ends.
      this.pausedUntil = Math.max(this.pausedUntil, now + retryAfterMs);
      this.log.debug({ upstream: this.name, status, retryAfterMs, retry: entry.retries }, 'upstream asked to retry later; pausing');
      this.enqueue(entry, true);
      this.wakeAt(this.pausedUntil);
      return;
    }
    // No header (or 0): this job alone backs off, full jitter; other sessions keep going.
    const delayMs = backoffMs(entry.retries, this.random);
    this.log.debug({ upstream: this.name, status, delayMs, retry: entry.retries, reason }, 'upstream attempt failed; backing off');
    entry.state = 'backoff';
    entry.backoff = this.scheduler.schedule(() => {
      entry.backoff = undefined;
      if (entry.state !== 'backoff') return;
      this.enqueue(entry, true);
      this.pump();
    }, delayMs);
  }

  // --- AIMD -----------------------------------------------------------------------------------

  /** A 429 although our admission allowed the call: the configured limits exceed the real ones. */
  private onUnexpected429(attempt: Attempt): void {
    this.hooks.onUpstream429?.();
    const now = this.scheduler.now();
    if (!this.aimd.cut(attempt.startedAt, now)) return;
    if (!this.warnedLimits) {
      this.warnedLimits = true;
      this.log.warn(
        { upstream: this.name, configured: [...this.limitSpecs.map((l) => l.name), ...this.leaseSpecs.map((l) => l.name)] },
        `upstream "${this.name}" answered 429 although its configured limits allowed the call: the configured limits exceed the real ones; slowing down`,
      );
    }
    this.recoveryTimer?.unsubscribe();
    this.recoveryTimer = this.scheduler.schedule(() => this.recover(), AIMD_RECOVERY_MS);
  }

  private recover(): void {
    this.recoveryTimer = undefined;
    if (this.closed) return;
    if (this.aimd.recover(this.scheduler.now())) this.recoveryTimer = this.scheduler.schedule(() => this.recover(), AIMD_RECOVERY_MS);
    this.pump();
  }

  // --- queue, deadlines, cancellation -----------------------------------------------------------

  private enqueue(entry: Entry, front: boolean): void {
    entry.state = 'queued';
    entry.enqueuedAt = this.scheduler.now();
    const { accountKey, sessionKey } = entry.job;
    if (front) this.queue.pushFront(entry, accountKey, sessionKey);
    else this.queue.push(entry, accountKey, sessionKey);
    this.queueChanged();
  }

  private queueChanged(): void {
    this.queueVersion++;
    this.hooks.onQueued?.(this.queue.size);
  }

  /** Tells each waiting job its position when it first waits and whenever it improves. */
  private reportPositions(): void {
    if (this.reportedVersion === this.queueVersion) return;
    this.reportedVersion = this.queueVersion;
    let position = 0;
    for (const entry of this.queue) {
      position++;
      if (position >= entry.lastPosition) continue;
      entry.lastPosition = position;
      const onQueued = entry.job.onQueued;
      if (!onQueued) continue;
      try {
        onQueued(position);
      } catch (err) {
        this.log.error({ err, upstream: this.name }, 'onQueued callback threw');
      }
    }
  }

  /** One timer for the earliest deadline of the jobs that have not started yet. */
  private armDeadline(): void {
    let top = this.deadlines.peek();
    while (top && (top.state === 'done' || top.started)) {
      this.deadlines.pop();
      top = this.deadlines.peek();
    }
    if (!top || this.closed) {
      this.deadlineTimer?.sub.unsubscribe();
      this.deadlineTimer = undefined;
      return;
    }
    if (this.deadlineTimer && this.deadlineTimer.at <= top.deadline) return;
    this.deadlineTimer?.sub.unsubscribe();
    const sub = this.scheduler.schedule(() => {
      this.deadlineTimer = undefined;
      this.expire();
    }, Math.max(0, top.deadline - this.scheduler.now()));
    this.deadlineTimer = { at: top.deadline, sub };
  }

  private expire(): void {
    const now = this.scheduler.now();
    let expired = false;
    this.expiring = true;
    for (let top = this.deadlines.peek(); top && top.deadline <= now; top = this.deadlines.peek()) {
      this.deadlines.pop();
      if (top.state !== 'queued' || top.started) continue;
      expired = true;
      this.fail(
        top,
        new UpstreamError(this.name, `queued longer than maxQueueWaitSeconds (${this.maxQueueWaitMs / 1000} s)`, undefined, true),
      );
    }
    this.expiring = false;
    this.armDeadline();
    if (expired) this.pump(); // reports the improved positions
  }

  /** The caller cancelled (or the governor closed): drop the job wherever it is; abort its attempt. */
  private cancel(entry: Entry, err: Error): void {
    if (entry.state === 'done') return;
    const attempt = entry.attempt;
    const wasQueued = entry.state === 'queued';
    this.fail(entry, err);
    if (attempt && this.endAttempt(attempt)) attempt.controller.abort(err);
    if (wasQueued) this.pump();
  }

  /** Removes the job from wherever it waits and forgets it. */
  private finish(entry: Entry): void {
    if (entry.state === 'queued' && this.queue.remove(entry)) this.queueChanged();
    entry.state = 'done';
    entry.backoff?.unsubscribe();
    entry.backoff = undefined;
    if (entry.onAbort) entry.job.signal?.removeEventListener('abort', entry.onAbort);
    this.live.delete(entry);
    if (!this.expiring) this.armDeadline();
  }

  private fail(entry: Entry, err: unknown): void {
    if (entry.state === 'done') return;
    this.finish(entry);
    entry.reject(err);
  }

  private closedError(): UpstreamError {
    return new UpstreamError(this.name, 'upstream governor closed');
  }
}
