import { Observable } from 'rxjs';
import type {
  MonoTypeOperatorFunction,
  Observer,
  SchedulerAction,
  SchedulerLike,
  Subscriber,
  Subscription,
  Unsubscribable,
} from 'rxjs';
import type { TokenBucket } from './token-bucket.js';

/** Options of {@link throttleByBucket}. */
export interface ThrottleOptions<T> {
  /** The bucket (owned by the caller, so it can read `available()` for telemetry). */
  readonly bucket: TokenBucket;
  /** Cost of one value in tokens (1 for messages; frame bytes for the byte bucket). */
  readonly cost: (value: T) => number;
  /** Most cost that may wait; when the waiting cost would exceed it, the stream errors. */
  readonly maxQueuedCost: number;
  readonly scheduler: SchedulerLike;
  /** Builds the error the stream fails with on overflow; retryAfterMs = time for the bucket to serve what was waiting (ceil). */
  readonly overflowError: (retryAfterMs: number) => unknown;
  /** Optional: called with the ms a value waited (0 values not reported), for a histogram. */
  readonly onDelay?: (waitedMs: number) => void;
}

/**
 * Throttles a stream through a token bucket: a value with no token waits, in order, and is emitted when
 * tokens free up (throttled, not dropped). When the waiting cost would exceed `maxQueuedCost` the stream
 * errors with `overflowError(retryAfterMs)`; so does a value costing more than `bucket.burst`, which no
 * amount of waiting could serve.
 *
 * Values that find an empty queue and enough tokens are emitted synchronously (no scheduling). At most
 * one drain action is scheduled at any time. Completion waits for the queue to drain; source errors and
 * unsubscription drop the queue and cancel the pending drain.
 */
export function throttleByBucket<T>(opts: ThrottleOptions<T>): MonoTypeOperatorFunction<T> {
  return (source) =>
    new Observable<T>((subscriber) => {
      const state = new ThrottleState(opts, subscriber);
      state.sourceSub = source.subscribe(state);
      // Returned as the teardown; if the stream already ended synchronously, rxjs runs it at once.
      return state;
    });
}

/** Compact the queue arrays once this many consumed slots lead them (and they are at least half). */
const COMPACT_AT = 1024;

/** Scheduler work: a plain function, so scheduling a drain allocates no closure. */
function drainWork(this: SchedulerAction<ThrottleState<unknown>>, state: ThrottleState<unknown>): void {
  state.drain();
}

/**
 * Per-subscription state; it is also the source observer and the teardown, so a subscription costs this
 * object plus what rxjs itself allocates. The queue arrays are created only once something has to wait.
 */
class ThrottleState<T> implements Observer<T>, Unsubscribable {
  sourceSub: Subscription | null = null;
  /** Waiting values, oldest at `head`; consumed slots are cleared and compacted away occasionally. */
  private values: (T | undefined)[] | null = null;
  /** Per waiting value: [cost, arrival ms] interleaved, parallel to `values`. */
  private meta: number[] | null = null;
  private head = 0;
  private queuedCost = 0;
  /** The one scheduled drain, if any. */
  private action: Subscription | null = null;
  /** True while drain() emits: values arriving re-entrantly then must not schedule a second drain. */
  private draining = false;
  /** The source completed; complete downstream once the queue is empty. */
  private sourceDone = false;

  constructor(
    private readonly opts: ThrottleOptions<T>,
    private readonly subscriber: Subscriber<T>,
  ) {}

  next(value: T): void {
    const subscriber = this.subscriber;
    // A synchronous source may keep emitting after an overflow error, before its teardown is registered.
    if (subscriber.closed) return;
    const opts = this.opts;
    const cost = opts.cost(value);
    const now = opts.scheduler.now();
    const values = this.values;
    // Hot path: nothing waiting and tokens at hand.
    if ((values === null || this.head === values.length) && opts.bucket.tryTake(cost, now)) {
      subscriber.next(value);
      return;
    }
    this.enqueue(value, cost, now);
  }

  error(err: unknown): void {
    this.clear();
    this.subscriber.error(err);
  }

  complete(): void {
    this.sourceDone = true;
    if (this.isEmpty()) this.subscriber.complete();
  }

  unsubscribe(): void {
    this.clear();
    const sourceSub = this.sourceSub;
    this.sourceSub = null;
    sourceSub?.unsubscribe();
  }

  /** Emits every head value the bucket can pay for now, then schedules the next drain if any remain. */
  drain(): void {
    this.action = null;
    const subscriber = this.subscriber;
    const values = this.values;
    const meta = this.meta;
    if (subscriber.closed || values === null || meta === null) return;
    const { bucket, scheduler, onDelay } = this.opts;
    const now = scheduler.now();
    this.draining = true;
    while (this.head < values.length) {
      const head = this.head;
      const cost = meta[2 * head] as number;
      if (!bucket.tryTake(cost, now)) break;
      const value = values[head] as T;
      const arrivedAt = meta[2 * head + 1] as number;
      values[head] = undefined; // release the reference; the slot is compacted later
      this.head = head + 1;
      this.queuedCost -= cost;
      if (onDelay !== undefined && now > arrivedAt) onDelay(now - arrivedAt);
      subscriber.next(value);
      // Downstream may have unsubscribed (clear() reset the queue) or re-entrantly overflowed it.
      if (subscriber.closed || this.values !== values) {
        this.draining = false;
        return;
      }
    }
    this.draining = false;
    if (this.head === values.length) {
      this.resetQueue();
      if (this.sourceDone) subscriber.complete();
      return;
    }
    if (this.head >= COMPACT_AT && this.head * 2 >= values.length) {
      values.splice(0, this.head);
      meta.splice(0, 2 * this.head);
      this.head = 0;
    }
    this.scheduleDrain(now);
  }

  private enqueue(value: T, cost: number, now: number): void {
    let values = this.values;
    let meta = this.meta;
    if (values === null || meta === null) {
      values = this.values = [];
      meta = this.meta = [];
    }
    values.push(value);
    meta.push(cost, now);
    this.queuedCost += cost;
    const bucket = this.opts.bucket;
    if (this.queuedCost > this.opts.maxQueuedCost || !(cost <= bucket.burst)) {
      this.overflow(now);
      return;
    }
    if (this.action === null && !this.draining) this.scheduleDrain(now);
  }

  private scheduleDrain(now: number): void {
    const cost = (this.meta as number[])[2 * this.head] as number;
    const delay = this.opts.bucket.msUntil(cost, now);
    this.action = this.opts.scheduler.schedule(drainWork, delay, this as ThrottleState<unknown>);
  }

  /** Fails the stream; retryAfterMs is how long the bucket needs to pay for everything that was waiting. */
  private overflow(now: number): void {
    const { bucket, overflowError } = this.opts;
    const deficit = this.queuedCost - bucket.available(now);
    const retryAfterMs = deficit > 0 ? Math.ceil((deficit * 1000) / bucket.ratePerSec) : 0;
    this.clear();
    this.subscriber.error(overflowError(retryAfterMs));
  }

  private isEmpty(): boolean {
    return this.values === null || this.head === this.values.length;
  }

  private resetQueue(): void {
    // Drop the arrays: most connections throttle rarely, so idle ones should not keep a backing store.
    this.values = null;
    this.meta = null;
    this.head = 0;
    this.queuedCost = 0;
  }

  private clear(): void {
    const action = this.action;
    this.action = null;
    action?.unsubscribe();
    this.resetQueue();
  }
}
