import { Subject, VirtualTimeScheduler, take } from 'rxjs';
import type { SchedulerAction, SchedulerLike, Subscription } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { throttleByBucket, type ThrottleOptions } from '../../../src/limits/throttle.js';
import { TokenBucket } from '../../../src/limits/token-bucket.js';
import { Overflow, record } from './virtual-time.js';

/** A scheduler whose timers fire `lateMs` late, like a busy event loop. */
function lateBy(vts: VirtualTimeScheduler, lateMs: number): SchedulerLike {
  const schedule = (
    work: (this: SchedulerAction<unknown>, state?: unknown) => void,
    delay?: number,
    state?: unknown,
  ): Subscription => vts.schedule(work, (delay ?? 0) + lateMs, state);
  return { now: () => vts.now(), schedule: schedule as SchedulerLike['schedule'] };
}

function marbles(): TestScheduler {
  return new TestScheduler((actual, expected) => {
    expect(actual).toEqual(expected);
  });
}

/** Message-style options: every value costs one token. */
function perMessage<T>(
  scheduler: SchedulerLike,
  ratePerSec: number,
  burst: number,
  maxQueuedCost: number,
  extra: Partial<ThrottleOptions<T>> = {},
): ThrottleOptions<T> {
  return {
    bucket: new TokenBucket({ ratePerSec, burst }, scheduler.now()),
    cost: () => 1,
    maxQueuedCost,
    scheduler,
    overflowError: (ms) => new Overflow(ms),
    ...extra,
  };
}

describe('throttleByBucket (marbles)', () => {
  it('passes the burst at once, then emits each waiting value at its refill time, in order, and completes after the drain', () => {
    const ts = marbles();
    ts.run(({ cold, expectObservable }) => {
      // 10/s: one token per 100 ms. a, b, c use the burst; d arrives at 3 with 0.03 tokens.
      const src = cold('abcde|');
      expectObservable(src.pipe(throttleByBucket(perMessage(ts, 10, 3, 10)))).toBe('abc 97ms d 99ms (e|)');
    });
  });

  it('errors with overflowError(retryAfterMs) when the queue overflows by exactly one', () => {
    const ts = marbles();
    ts.run(({ cold, expectObservable, expectSubscriptions }) => {
      // a, b take the burst; c, d wait (cost 2 = maxQueuedCost); e makes 3 waiting: 300 ms of tokens.
      const src = cold('(abcde)');
      expectObservable(src.pipe(throttleByBucket(perMessage(ts, 10, 2, 2)))).toBe('(ab#)', undefined, new Overflow(300));
      expectSubscriptions(src.subscriptions).toBe('(^!)');
    });
  });

  it('does not error with exactly maxQueuedCost waiting', () => {
    const ts = marbles();
    ts.run(({ cold, expectObservable }) => {
      const src = cold('(abcd|)');
      expectObservable(src.pipe(throttleByBucket(perMessage(ts, 10, 2, 2)))).toBe('(ab) 96ms c 99ms (d|)');
    });
  });

  it('maxQueuedCost 0 means no waiting: the first value without a token errors', () => {
    const ts = marbles();
    ts.run(({ cold, expectObservable }) => {
      const src = cold('(ab)');
      expectObservable(src.pipe(throttleByBucket(perMessage(ts, 10, 1, 0)))).toBe('(a#)', undefined, new Overflow(100));
    });
  });

  it('byte costs: frames wait for enough bytes, and one byte over maxQueuedCost errors', () => {
    const ts = marbles();
    // 1000 B/s = 1 byte per ms, burst 1000, up to 1000 bytes waiting.
    const sizes = { a: 600, b: 300, c: 500, d: 500, e: 1 };
    const opts = (): ThrottleOptions<number> => ({
      bucket: new TokenBucket({ ratePerSec: 1_000, burst: 1_000 }, ts.now()),
      cost: (n) => n,
      maxQueuedCost: 1_000,
      scheduler: ts,
      overflowError: (ms) => new Overflow(ms),
    });
    ts.run(({ cold, expectObservable }) => {
      // a, b leave 100 bytes; c needs 400 ms more, then d 500 ms after c.
      const ok = cold('(abcd|)', sizes);
      expectObservable(ok.pipe(throttleByBucket(opts()))).toBe('(ab) 396ms c 499ms (d|)', sizes);
      // c + d + e = 1001 bytes waiting with 100 in the bucket: 901 ms to serve.
      const over = cold('(abcde)', sizes);
      expectObservable(over.pipe(throttleByBucket(opts()))).toBe('(ab#)', sizes, new Overflow(901));
    });
  });

  it('a value costing more than the burst can never be served and errors at once', () => {
    const ts = marbles();
    ts.run(({ cold, expectObservable }) => {
      const sizes = { a: 10, f: 1_001 };
      const src = cold('a-f', sizes);
      const throttled = src.pipe(
        throttleByBucket<number>({
          bucket: new TokenBucket({ ratePerSec: 1_000, burst: 1_000 }, ts.now()),
          cost: (n) => n,
          maxQueuedCost: 1_000_000,
          scheduler: ts,
          overflowError: (ms) => new Overflow(ms),
        }),
      );
      // At 2 the bucket holds 992 bytes: 9 ms short of 1001.
      expectObservable(throttled).toBe('a-#', sizes, new Overflow(9));
    });
  });

  it('unsubscribing tears down the source while values wait', () => {
    const ts = marbles();
    ts.run(({ cold, expectObservable, expectSubscriptions }) => {
      const src = cold('abcd');
      expectObservable(src.pipe(throttleByBucket(perMessage(ts, 10, 1, 10))), '^---!').toBe('a---');
      expectSubscriptions(src.subscriptions).toBe('^---!');
    });
  });

  it('passes a source error through immediately, dropping what waits', () => {
    const ts = marbles();
    ts.run(({ cold, expectObservable }) => {
      const src = cold('abc#', undefined, 'boom');
      expectObservable(src.pipe(throttleByBucket(perMessage(ts, 10, 1, 10)))).toBe('a--#', undefined, 'boom');
    });
  });

  it('completes at once when the source completes with nothing waiting', () => {
    const ts = marbles();
    ts.run(({ cold, expectObservable }) => {
      expectObservable(cold('ab|').pipe(throttleByBucket(perMessage(ts, 10, 5, 10)))).toBe('ab|');
    });
  });
});

describe('throttleByBucket (VirtualTimeScheduler)', () => {
  it('emits the burst synchronously, without scheduling anything', () => {
    const vts = new VirtualTimeScheduler();
    const src = new Subject<number>();
    const { rec } = record(src.pipe(throttleByBucket(perMessage<number>(vts, 10, 3, 10))), vts);
    src.next(1);
    src.next(2);
    src.next(3);
    expect(rec.values.map((x) => x.v)).toEqual([1, 2, 3]);
    expect(vts.actions.length).toBe(0);
  });

  it('keeps exactly one drain action scheduled however many values wait', () => {
    const vts = new VirtualTimeScheduler();
    const src = new Subject<number>();
    const { rec } = record(src.pipe(throttleByBucket(perMessage<number>(vts, 10, 1, 100))), vts);
    for (let i = 0; i < 6; i++) src.next(i);
    expect(vts.actions.length).toBe(1);
    expect(vts.actions[0]?.delay).toBe(100);
    vts.flush();
    expect(rec.values).toEqual([
      { t: 0, v: 0 },
      { t: 100, v: 1 },
      { t: 200, v: 2 },
      { t: 300, v: 3 },
      { t: 400, v: 4 },
      { t: 500, v: 5 },
    ]);
    expect(vts.actions.length).toBe(0);
  });

  it('unsubscribe cancels the pending drain and drops the queue', () => {
    const vts = new VirtualTimeScheduler();
    const src = new Subject<number>();
    const { rec, sub } = record(src.pipe(throttleByBucket(perMessage<number>(vts, 10, 1, 100))), vts);
    src.next(1);
    src.next(2);
    src.next(3);
    expect(vts.actions.length).toBe(1);
    sub.unsubscribe();
    expect(vts.actions.length).toBe(0);
    expect(src.observed).toBe(false);
    vts.flush();
    expect(rec.values.map((x) => x.v)).toEqual([1]);
    expect(vts.frame).toBe(0);
  });

  it('an overflow cancels the pending drain and unsubscribes the source', () => {
    const vts = new VirtualTimeScheduler();
    const src = new Subject<number>();
    const { rec } = record(src.pipe(throttleByBucket(perMessage<number>(vts, 10, 1, 2))), vts);
    for (let i = 0; i < 4; i++) src.next(i);
    expect(rec.error).toEqual({ t: 0, err: new Overflow(300) });
    expect(vts.actions.length).toBe(0);
    expect(src.observed).toBe(false);
  });

  it('reports how long each waiting value waited, and nothing for values that did not wait', () => {
    const vts = new VirtualTimeScheduler();
    const src = new Subject<number>();
    const delays: number[] = [];
    const opts = perMessage<number>(vts, 10, 1, 10, { onDelay: (ms) => delays.push(ms) });
    record(src.pipe(throttleByBucket(opts)), vts);
    src.next(1);
    src.next(2);
    src.next(3);
    vts.schedule(() => src.next(4), 150);
    vts.flush();
    // 2 at 100 (waited 100), 3 at 200 (200), 4 arrived at 150 and left at 300 (150).
    expect(delays).toEqual([100, 200, 150]);
  });

  it('a late drain (event-loop stall) emits every waiting value the accumulated tokens pay for', () => {
    const vts = new VirtualTimeScheduler();
    const src = new Subject<number>();
    const { rec } = record(src.pipe(throttleByBucket(perMessage<number>(lateBy(vts, 250), 10, 3, 10))), vts);
    for (let i = 0; i < 6; i++) src.next(i); // 0..2 now; 3..5 wait, drain asked for 100, runs at 350
    vts.flush();
    expect(rec.values).toEqual([
      { t: 0, v: 0 },
      { t: 0, v: 1 },
      { t: 0, v: 2 },
      { t: 350, v: 3 },
      { t: 350, v: 4 },
      { t: 350, v: 5 },
    ]);
  });

  it('stops cleanly when downstream unsubscribes in the middle of a drain', () => {
    const vts = new VirtualTimeScheduler();
    const src = new Subject<number>();
    const throttled = src.pipe(throttleByBucket(perMessage<number>(lateBy(vts, 250), 10, 3, 10)), take(4));
    const { rec } = record(throttled, vts);
    for (let i = 0; i < 6; i++) src.next(i);
    vts.flush();
    // The drain at 350 could pay for 3, 4 and 5, but take(4) unsubscribes after 3.
    expect(rec.values.map((x) => x.v)).toEqual([0, 1, 2, 3]);
    expect(rec.completedAt).toBe(350);
    expect(src.observed).toBe(false);
    expect(vts.actions.length).toBe(0);
  });

  it('keeps order and timing through a long queue (array compaction)', () => {
    const vts = new VirtualTimeScheduler();
    const src = new Subject<number>();
    const n = 5_000;
    const { rec } = record(src.pipe(throttleByBucket(perMessage<number>(vts, 1_000, 1, n))), vts);
    for (let i = 0; i < n; i++) src.next(i);
    src.complete();
    vts.flush();
    expect(rec.values.length).toBe(n);
    rec.values.forEach((x, i) => {
      expect(x.v).toBe(i);
      expect(x.t).toBe(i);
    });
    expect(rec.completedAt).toBe(n - 1);
  });

  it('a synchronous source that overflows is unsubscribed and its later values are ignored', () => {
    const vts = new VirtualTimeScheduler();
    const src = new Subject<number>();
    const seen: number[] = [];
    const { rec } = record(
      src.pipe(throttleByBucket(perMessage<number>(vts, 10, 1, 1, { cost: (v) => (seen.push(v), 1) }))),
      vts,
    );
    src.next(1);
    src.next(2);
    src.next(3); // overflow
    src.next(4);
    expect(rec.values.map((x) => x.v)).toEqual([1]);
    expect(rec.error?.err).toEqual(new Overflow(200));
    expect(seen).toEqual([1, 2, 3]);
  });
});
