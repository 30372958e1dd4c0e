// Test harness for the limits tests: sources and recorders driven by an rxjs VirtualTimeScheduler.
import { Observable, type Subscription, type VirtualTimeScheduler } from 'rxjs';

/** What a subscription saw, with virtual timestamps. */
export interface Recording<T> {
  readonly values: { t: number; v: T }[];
  error: { t: number; err: unknown } | null;
  completedAt: number | null;
}

export function record<T>(
  source: Observable<T>,
  scheduler: VirtualTimeScheduler,
): { rec: Recording<T>; sub: Subscription } {
  const rec: Recording<T> = { values: [], error: null, completedAt: null };
  const sub = source.subscribe({
    next: (v) => rec.values.push({ t: scheduler.now(), v }),
    error: (err: unknown) => {
      rec.error = { t: scheduler.now(), err };
    },
    complete: () => {
      rec.completedAt = scheduler.now();
    },
  });
  return { rec, sub };
}

/**
 * Emits values[i] at virtual time times[i] (non-decreasing), then completes. Like a socket, it keeps one
 * pending action and schedules the next arrival from the current one.
 */
export function fromTimes<T>(
  times: readonly number[],
  values: readonly T[],
  scheduler: VirtualTimeScheduler,
): Observable<T> {
  return new Observable<T>((subscriber) => {
    let i = 0;
    const step = (): void => {
      const now = scheduler.now();
      while (i < times.length && (times[i] as number) <= now) {
        subscriber.next(values[i] as T);
        i++;
        if (subscriber.closed) return;
      }
      if (i === times.length) {
        subscriber.complete();
        return;
      }
      subscriber.add(scheduler.schedule(step, (times[i] as number) - now));
    };
    subscriber.add(scheduler.schedule(step, times.length > 0 ? (times[0] as number) - scheduler.now() : 0));
  });
}

/** mulberry32: a tiny seeded PRNG, so the simulated traffic is the same on every run. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Error value the throttle tests fail streams with. */
export class Overflow {
  constructor(readonly retryAfterMs: number) {}
}
