/**
 * A sliding window counted in buckets: the shared (store) window of every account and upstream limit.
 *
 * Guarantee: any `windowMs` span holds at most `limit` (the contract's "any 60 s window"), so an
 * upstream that keeps an exact log never answers 429. Price: a request may be refused up to one
 * bucket (windowMs / 60, 1 s for a minute) before an exact log would admit it, and its retry time is
 * rounded up to a bucket boundary. In exchange the state is a fixed 61 counters whatever the limit,
 * which is what lets the Redis store decide several limits in a few cheap calls (bench/redis.ts);
 * `lua/admit.lua` runs the same arithmetic, step for step, on Redis' clock.
 *
 * Time is cut into buckets of `bucketMs` = ceil(windowMs / 60); bucket i covers [i·g, (i+1)·g). At
 * `now` (bucket c), buckets c - span … c count, span = ceil(windowMs / g): together they cover
 * (now - windowMs, now] and a little more (the oldest bucket counts whole), hence conservative. A
 * bucket i stops counting at (i + span + 1)·g. The ring has span + 1 slots, slot = i mod (span + 1).
 *
 * The exact log (`SlidingWindowLog`) stays for in-process counts that must be exact to the ms (the
 * invalid-message strikes, the simulated upstream's enforcement).
 */
export const WINDOW_BUCKETS = 60;

/** Bucket width (ms) for a window. */
export function windowBucketMs(windowMs: number): number {
  const g = Math.ceil(windowMs / WINDOW_BUCKETS);
  return g < 1 ? 1 : g;
}

/** A window's bucket width and span (buckets before the current one that still count). */
export function windowGeometry(windowMs: number): { readonly bucketMs: number; readonly span: number } {
  const bucketMs = windowBucketMs(windowMs);
  return { bucketMs, span: Math.ceil(windowMs / bucketMs) };
}

/** Floored modulo, as Lua's `%` (bucket indices are negative before epoch + one window). */
function mod(i: number, n: number): number {
  const r = i % n;
  return r < 0 ? r + n : r;
}

/**
 * remaining and resetMs of a window from its stored numbers (the Redis store's reply): what
 * `remaining()` and `msUntilEmpty()` give for the same state.
 */
export function windowState(limit: number, windowMs: number, sum: number, hi: number, nowMs: number): { remaining: number; resetMs: number } {
  const { bucketMs, span } = windowGeometry(windowMs);
  const r = limit - sum;
  const out = (hi + span + 1) * bucketMs - nowMs;
  return { remaining: r > 0 ? r : 0, resetMs: sum > 0 && out > 0 ? out : 0 };
}

export class WindowCounter {
  readonly bucketMs: number;
  /** Buckets before the current one that still count. */
  readonly span: number;
  private ring: Float64Array | null = null;
  /** Oldest bucket index still counted. */
  private lo: number;
  /** Newest bucket index written (-1: none). */
  private hi = -1;
  private sum = 0;

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    nowMs: number,
  ) {
    if (!(limit >= 0)) throw new RangeError(`WindowCounter: limit must be >= 0, got ${limit}`);
    if (!(windowMs > 0) || !Number.isFinite(windowMs)) throw new RangeError(`WindowCounter: windowMs must be finite and > 0, got ${windowMs}`);
    ({ bucketMs: this.bucketMs, span: this.span } = windowGeometry(windowMs));
    this.lo = Math.floor(nowMs / this.bucketMs) - this.span;
  }

  /** Counted in the window at nowMs. */
  used(nowMs: number): number {
    this.advance(nowMs);
    return this.sum;
  }

  remaining(nowMs: number): number {
    this.advance(nowMs);
    const r = this.limit - this.sum;
    return r > 0 ? r : 0;
  }

  /** 0 if `cost` more fit now, else ms until they do (Infinity if cost > limit). */
  msUntil(cost: number, nowMs: number): number {
    this.advance(nowMs);
    if (this.sum + cost <= this.limit) return 0;
    if (!(cost <= this.limit)) return Infinity;
    const need = this.sum + cost - this.limit;
    const ring = this.ring as Float64Array;
    const slots = this.span + 1;
    let freed = 0;
    for (let i = this.lo; i <= this.hi; i++) {
      freed += ring[mod(i, slots)] as number;
      if (freed >= need - 1e-9) return this.msUntilOut(i, nowMs);
    }
    // Unreachable while sum is the ring's total; the whole window is the safe answer.
    return this.msUntilOut(this.hi, nowMs);
  }

  /** Records `cost` at nowMs (the caller checked msUntil first). */
  consume(cost: number, nowMs: number): void {
    if (this.limit === 0 || !(cost > 0)) return;
    this.advance(nowMs);
    const slots = this.span + 1;
    const ring = this.ring ?? (this.ring = new Float64Array(slots));
    // Never write behind the newest bucket (a clock that stepped back) or outside the counted ones.
    let b = Math.floor(nowMs / this.bucketMs);
    if (b < this.hi) b = this.hi;
    if (b < this.lo) b = this.lo;
    const at = mod(b, slots);
    ring[at] = (ring[at] as number) + cost;
    this.sum += cost;
    this.hi = b;
  }

  /** ms until nothing counts (reset_seconds). */
  msUntilEmpty(nowMs: number): number {
    this.advance(nowMs);
    return this.sum > 0 ? this.msUntilOut(this.hi, nowMs) : 0;
  }

  private msUntilOut(bucket: number, nowMs: number): number {
    const ms = (bucket + this.span + 1) * this.bucketMs - nowMs;
    return ms > 0 ? ms : 0;
  }

  /** Drops the buckets that stopped counting by nowMs. */
  private advance(nowMs: number): void {
    const lo = Math.floor(nowMs / this.bucketMs) - this.span;
    if (lo <= this.lo) return;
    const ring = this.ring;
    if (ring !== null) {
      const slots = this.span + 1;
      // Everything written has left: start empty.
      if (lo - this.lo >= slots || this.hi < lo) {
        ring.fill(0);
        this.sum = 0;
      } else {
        for (let i = this.lo; i < lo; i++) {
          const at = mod(i, slots);
          const v = ring[at] as number;
          if (v !== 0) {
            this.sum -= v;
            ring[at] = 0;
          }
        }
      }
    }
    this.lo = lo;
  }
}
