/**
 * One timer queue for every session and connection of a replica: idle and session-length checks,
 * their warnings, the resume window, the `quota.updated` throttle and the no-`session.start`
 * timeout. Each owner has at most one deadline in the queue (the next time it must look at its
 * clocks) and the queue keeps one action on the injected `SchedulerLike`, armed for the earliest
 * deadline. Before, every session held two or three RxJS timers (an AsyncAction, a Node Timeout
 * and a closure each, ~0.6 KB a session; issue 18); now a deadline is two fields on its owner.
 *
 * Pure and clock-injected: time comes from the scheduler, so tests drive it with virtual time
 * (test/helpers/scheduler.ts). Activity never touches the queue: owners re-arm only when woken
 * (the idle check reads `lastActivity` then), so the per-message path does no heap work.
 *
 * It lives in sessions/ because the timers are the sessions' (ARCHITECTURE.md lists "timers"
 * there); the edge's Connection, above it, uses the same queue for its no-session.start timeout.
 */
import type { SchedulerAction, SchedulerLike, Subscription } from 'rxjs';

/**
 * An owner of one deadline. The queue keeps the two fields; the owner only reads them (an
 * intrusive entry: no wrapper object per owner, and removal in O(log n) by index).
 */
export interface TimerEntry {
  /** When the entry is due (scheduler ms); NaN when not queued. Maintained by the queue. */
  timerAt: number;
  /** Position in the queue's heap, -1 when not queued. Maintained by the queue. */
  timerIndex: number;
  /** Called once the entry is due, already out of the queue (`set` it again to be woken again). */
  onTimer(nowMs: number): void;
}

/**
 * Longest delay handed to the scheduler: Node's timers take at most 2^31 - 1 ms and fire at once
 * beyond it. A later deadline is reached by waking early and re-arming.
 */
const MAX_DELAY_MS = 2 ** 30;

/** The scheduler's work: a plain function with the queue as state, so arming allocates no closure. */
function fireWork(this: SchedulerAction<TimerQueue>, queue: TimerQueue | undefined): void {
  queue?.fire();
}

/**
 * A binary min-heap of {@link TimerEntry} by `timerAt`, driven by one scheduler action.
 * Hand-written: the heap libraries at hand (heap-js, tinyqueue, flatqueue, mnemonist) either remove
 * an arbitrary entry by scanning the whole heap or not at all, or wrap each entry in an object;
 * this one removes by the index its entries carry. Entries due at the same ms run in heap order.
 */
export class TimerQueue {
  private readonly heap: TimerEntry[] = [];
  /** The one scheduled wake-up, and the time it was armed for (Infinity: none). */
  private action: Subscription | undefined;
  private actionAt = Infinity;
  /** True while `fire` runs entries: they may set and cancel entries; arming waits until the end. */
  private firing = false;

  constructor(
    private readonly scheduler: SchedulerLike,
    /** Called with what an entry's `onTimer` threw; the other entries still run. */
    private readonly onError: (err: unknown) => void = (err) => {
      throw err;
    },
  ) {}

  /** Entries queued. */
  get size(): number {
    return this.heap.length;
  }

  /** Queues `entry` for `atMs`, or moves it there if it is queued already. */
  set(entry: TimerEntry, atMs: number): void {
    const heap = this.heap;
    let i = entry.timerIndex;
    if (i < 0) {
      i = heap.length;
      heap.push(entry);
    }
    entry.timerAt = atMs;
    entry.timerIndex = i;
    this.siftDown(this.siftUp(i));
    this.arm();
  }

  /** Takes `entry` out of the queue; nothing if it is not queued. */
  cancel(entry: TimerEntry): void {
    const i = entry.timerIndex;
    if (i < 0) return;
    this.removeAt(i);
    this.arm();
  }

  /** Drops every entry and the scheduled wake-up (replica shutdown). */
  clear(): void {
    for (const e of this.heap) {
      e.timerIndex = -1;
      e.timerAt = Number.NaN;
    }
    this.heap.length = 0;
    this.arm();
  }

  /** Runs every entry that is due, then arms the wake-up for the next one. Called by the scheduler. */
  fire(): void {
    this.action = undefined;
    this.actionAt = Infinity;
    this.firing = true;
    try {
      const now = this.scheduler.now();
      const heap = this.heap;
      // An entry set again for a time not after `now` runs again in this same pass.
      while (heap.length > 0 && (heap[0] as TimerEntry).timerAt <= now) {
        const entry = heap[0] as TimerEntry;
        this.removeAt(0);
        try {
          entry.onTimer(now);
        } catch (err) {
          this.onError(err);
        }
      }
    } finally {
      this.firing = false;
      this.arm();
    }
  }

  /**
   * Keeps the one wake-up at or before the earliest deadline. A later earliest deadline (its entry
   * was cancelled) keeps the earlier wake-up: it finds nothing due and re-arms, which costs less
   * than rescheduling on every cancel. With nothing queued, no wake-up stays scheduled.
   */
  private arm(): void {
    if (this.firing) return;
    const first = this.heap[0];
    if (first === undefined) {
      if (this.action !== undefined) {
        this.action.unsubscribe();
        this.action = undefined;
        this.actionAt = Infinity;
      }
      return;
    }
    if (first.timerAt >= this.actionAt) return;
    this.action?.unsubscribe();
    const delay = Math.min(MAX_DELAY_MS, Math.max(0, first.timerAt - this.scheduler.now()));
    this.actionAt = first.timerAt;
    this.action = this.scheduler.schedule(fireWork, delay, this);
  }

  private removeAt(i: number): void {
    const heap = this.heap;
    const entry = heap[i] as TimerEntry;
    entry.timerIndex = -1;
    entry.timerAt = Number.NaN;
    const last = heap.pop() as TimerEntry;
    if (i === heap.length) return; // it was the last one
    heap[i] = last;
    last.timerIndex = i;
    this.siftDown(this.siftUp(i));
  }

  private siftUp(i: number): number {
    const heap = this.heap;
    const entry = heap[i] as TimerEntry;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p] as TimerEntry;
      if (parent.timerAt <= entry.timerAt) break;
      heap[i] = parent;
      parent.timerIndex = i;
      i = p;
    }
    heap[i] = entry;
    entry.timerIndex = i;
    return i;
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const entry = heap[i] as TimerEntry;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && (heap[r] as TimerEntry).timerAt < (heap[l] as TimerEntry).timerAt ? r : l;
      const child = heap[c] as TimerEntry;
      if (child.timerAt >= entry.timerAt) break;
      heap[i] = child;
      child.timerIndex = i;
      i = c;
    }
    heap[i] = entry;
    entry.timerIndex = i;
  }
}
