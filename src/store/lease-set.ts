/**
 * The holders of one lease key and when each one's slot expires, kept so that sweeping, counting,
 * taking and releasing a slot cost the same at 10 or 100,000 holders (issue 18 item 1: sweeping every
 * holder on every call made one renewal round quadratic in the connections of a key, 3.2 s at 10k).
 *
 * How. `slots` maps each holder to its expiry (the truth). Beside it, a queue of (holder, expiry) in
 * the order they were set: the slots of one key nearly always have one TTL (a replica's connection
 * lease, an upstream's job lease) and the clock moves forward, so each one set expires no earlier
 * than those set before it, and the expired holders are at the queue's front. An update appends a
 * new entry; the holder's older entry becomes stale (its expiry is no longer the holder's) and is
 * skipped when the front reaches it. A sweep pops from the front until the first live entry.
 * A slot set out of that order (a shorter TTL than the last, or a clock that stepped back) goes to a
 * small min-heap instead, which finds it when it expires.
 *
 * Not a `Map` walked from its start: V8 leaves a deleted entry as a hole until the table is rebuilt,
 * and every fresh iterator skips the holes again, so a walk from the start after a renewal round
 * (every holder moved to the end) costs the whole round again (measured: 12.7 s for one round of
 * 100,000 holders). Hand-written rather than a priority-queue package: the common path is a queue
 * (two arrays and an index), and the heap for the rare path is thirty lines.
 */

interface Odd {
  readonly exp: number;
  readonly holder: string;
}

export class LeaseSet {
  /** Holder → expiry (epoch ms): the truth. */
  private readonly slots = new Map<string, number>();
  /** The queue: entry i is (qHolder[i], qExp[i]), expiries non-decreasing; live from `head` on. */
  private qHolder: string[] = [];
  private qExp: number[] = [];
  private head = 0;
  /** Slots set out of expiry order, a binary min-heap on `exp`; entries since replaced are stale. */
  private odd: Odd[] = [];
  /** Entries visited (queue steps, heap steps, updates): a measure of work that tests hold flat. */
  work = 0;

  get size(): number {
    return this.slots.size;
  }

  has(holder: string): boolean {
    return this.slots.has(holder);
  }

  /** Drops every holder whose slot expired at or before `now`. */
  sweep(now: number): void {
    this.trimQueue(now);
    while (this.odd.length > 0 && this.odd[0]!.exp <= now) {
      const top = this.pop();
      if (this.slots.get(top.holder) === top.exp) this.slots.delete(top.holder);
    }
  }

  /** Sets (or moves) a holder's expiry. */
  set(holder: string, exp: number): void {
    this.slots.set(holder, exp);
    this.work++;
    const n = this.qExp.length;
    if (n === this.head || exp >= this.qExp[n - 1]!) {
      this.qHolder.push(holder);
      this.qExp.push(exp);
      // Entries made stale by later updates stay until the front reaches them; rebuild the queue
      // from the live ones when they outnumber them, so it stays within a constant of the holders.
      if (n + 1 - this.head > 2 * this.slots.size + 32) this.compactQueue();
      return;
    }
    this.push({ exp, holder });
    if (this.odd.length > 2 * this.slots.size + 32) this.compactHeap();
  }

  delete(holder: string): void {
    this.work++;
    this.slots.delete(holder);
  }

  /** The earliest expiry of a live holder (call `sweep` first), or undefined with none. */
  earliest(): number | undefined {
    // Pops stale entries (no expired one is left after a sweep): the front is then a live holder.
    this.trimQueue(-Infinity);
    while (this.odd.length > 0 && this.slots.get(this.odd[0]!.holder) !== this.odd[0]!.exp) this.pop();
    const q = this.head < this.qExp.length ? this.qExp[this.head] : undefined;
    const top = this.odd[0]?.exp;
    if (q === undefined) return top;
    return top === undefined || q <= top ? q : top;
  }

  /** Pops the front while it is stale or expired at `now` (an expired live holder is dropped). */
  private trimQueue(now: number): void {
    const holders = this.qHolder;
    const exps = this.qExp;
    let i = this.head;
    while (i < exps.length) {
      this.work++;
      const h = holders[i]!;
      const exp = exps[i]!;
      const current = this.slots.get(h) === exp;
      if (current && exp > now) break;
      if (current) this.slots.delete(h);
      i++;
    }
    this.head = i;
    if (i === exps.length) {
      this.qHolder = [];
      this.qExp = [];
      this.head = 0;
    } else if (i > 1024 && i > exps.length >> 1) {
      this.qHolder = holders.slice(i);
      this.qExp = exps.slice(i);
      this.head = 0;
    }
  }

  /** Rebuilds the queue from its live entries, one per holder (its latest), in order. */
  private compactQueue(): void {
    const holders: string[] = [];
    const exps: number[] = [];
    const kept = new Set<string>();
    // From the back, so a holder set twice with the same expiry keeps only its latest entry.
    for (let i = this.qExp.length - 1; i >= this.head; i--) {
      this.work++;
      const h = this.qHolder[i]!;
      if (this.slots.get(h) !== this.qExp[i] || kept.has(h)) continue;
      kept.add(h);
      holders.push(h);
      exps.push(this.qExp[i]!);
    }
    this.qHolder = holders.reverse();
    this.qExp = exps.reverse();
    this.head = 0;
  }

  private compactHeap(): void {
    const live = this.odd.filter((e) => this.slots.get(e.holder) === e.exp);
    this.work += this.odd.length;
    this.odd = [];
    for (const e of live) this.push(e);
  }

  private push(e: Odd): void {
    const h = this.odd;
    let i = h.push(e) - 1;
    while (i > 0) {
      this.work++;
      const p = (i - 1) >> 1;
      if (h[p]!.exp <= e.exp) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  private pop(): Odd {
    const h = this.odd;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        this.work++;
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const c = l + 1 < h.length && h[l + 1]!.exp < h[l]!.exp ? l + 1 : l;
        if (h[c]!.exp >= last.exp) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}
