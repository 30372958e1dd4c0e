/**
 * Exact sliding-window log: at most `limit` requests in any `windowMs` span (not a calendar window).
 *
 * Timestamps live in a ring buffer (a Float64Array of `limit` slots, allocated on the first consume so idle
 * instances cost a few fields). A request recorded at t counts while now < t + windowMs and stops
 * counting at exactly t + windowMs. Costs are whole numbers of requests.
 *
 * The ring keeps only the newest `limit` timestamps. That is exact for every question asked here: if a
 * dropped (older) request were still inside the window, so would be the `limit` newer ones, and the
 * window would be full either way. `used()` therefore never reports more than `limit`.
 */
export class SlidingWindowLog {
  private ring: Float64Array | null = null;
  /** Index of the oldest timestamp in `ring`. */
  private head = 0;
  /** Timestamps held (all still inside the window after `evict`). */
  private size = 0;

  constructor(
    readonly limit: number,
    readonly windowMs: number,
  ) {
    if (!Number.isInteger(limit) || limit < 0) {
      throw new RangeError(`SlidingWindowLog: limit must be an integer >= 0, got ${limit}`);
    }
    if (!(windowMs > 0) || !Number.isFinite(windowMs)) {
      throw new RangeError(`SlidingWindowLog: windowMs must be finite and > 0, got ${windowMs}`);
    }
  }

  /** Requests counted in (nowMs - windowMs, nowMs] (at most `limit`). */
  used(nowMs: number): number {
    this.evict(nowMs);
    return this.size;
  }

  /** Requests that still fit in the window at nowMs. */
  remaining(nowMs: number): number {
    return this.limit - this.used(nowMs);
  }

  /** 0 if `cost` more requests fit now, else ms until they do (Infinity if cost > limit). */
  msUntil(cost: number, nowMs: number): number {
    this.evict(nowMs);
    if (this.size + cost <= this.limit) return 0;
    if (!(cost <= this.limit)) return Infinity;
    // The `excess` oldest must fall out; the youngest of those decides.
    const excess = this.size + cost - this.limit;
    return this.msUntilOut(this.at(excess - 1), nowMs);
  }

  /** Record `cost` requests at nowMs (caller checked msUntil first). */
  consume(cost: number, nowMs: number): void {
    const limit = this.limit;
    if (limit === 0 || !(cost > 0)) return;
    this.evict(nowMs);
    const ring = this.ring ?? (this.ring = new Float64Array(limit));
    // Keep timestamps non-decreasing even if the clock steps back, so evicting from the head stays right.
    let t = nowMs;
    if (this.size > 0) {
      const newest = this.at(this.size - 1);
      if (newest > t) t = newest;
    }
    // Only the newest `limit` entries matter (see the class comment).
    for (let n = cost < limit ? cost : limit; n > 0; n--) {
      if (this.size < limit) {
        let i = this.head + this.size;
        if (i >= limit) i -= limit;
        ring[i] = t;
        this.size++;
      } else {
        ring[this.head] = t;
        this.head = this.head + 1 === limit ? 0 : this.head + 1;
      }
    }
  }

  /** ms until the window holds no request (for reset_seconds). */
  msUntilEmpty(nowMs: number): number {
    this.evict(nowMs);
    return this.size === 0 ? 0 : this.msUntilOut(this.at(this.size - 1), nowMs);
  }

  /** The i-th oldest timestamp (0 = oldest); i < size. */
  private at(i: number): number {
    let j = this.head + i;
    if (j >= this.limit) j -= this.limit;
    // size > 0 implies the ring exists and j is in range.
    return (this.ring as Float64Array)[j] as number;
  }

  /** Whole ms from nowMs until a request at t stops counting; waiting that long is always enough. */
  private msUntilOut(t: number, nowMs: number): number {
    const end = t + this.windowMs;
    let ms = Math.ceil(end - nowMs);
    if (nowMs + ms < end) ms++;
    return ms > 0 ? ms : 0;
  }

  private evict(nowMs: number): void {
    const ring = this.ring;
    if (ring === null) return;
    const limit = this.limit;
    const windowMs = this.windowMs;
    while (this.size > 0 && (ring[this.head] as number) + windowMs <= nowMs) {
      this.head = this.head + 1 === limit ? 0 : this.head + 1;
      this.size--;
    }
    if (this.size === 0) this.head = 0;
  }
}
