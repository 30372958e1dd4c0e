/**
 * The holders of one lease key and when each one's slot expires, kept so that sweeping, counting,
 * taking and releasing a slot cost the same at 10 or 100,000 holders (issue 18 item 1: sweeping every
 * holder on every call made one renewal round quadratic in the connections of a key, 3.2 s at 10k).
 *
 * How. A `Map` iterates in insertion order (ECMA-262 §24.1.3.5, Map.prototype.forEach), and an update
 * deletes and re-inserts its holder, so the holder moves to the end. The slots of one key nearly always
 * have one TTL (a replica's connection lease, an upstream's job lease) and the clock moves forward, so
 * each insertion's expiry is at least every earlier one's: the map is in expiry order, the expired
 * holders are at its front, and a sweep walks from the front and stops at the first live holder.
 * An insertion that breaks the order (a shorter TTL than the last, or a clock that stepped back) is
 * also put in a small min-heap, which finds it when it expires wherever it stands in the map. Why the
 * front walk still stops right: every in-order insertion after an out-of-order one expires later than
 * it (that is what made the earlier one out of order), so behind a live holder only out-of-order
 * holders can have expired, and those are the heap's.
 *
 * Hand-written rather than a priority-queue package: the common path needs no heap at all (a Map's
 * own order), and the heap for the rare path is thirty lines.
 */

interface Odd {
  readonly exp: number;
  readonly holder: string;
}

export class LeaseSet {
  /** Holder → expiry (epoch ms), in insertion order (see above). */
  private readonly slots = new Map<string, number>();
  /** The latest expiry inserted in order: an insertion below it is out of order. */
  private tail = -Infinity;
  /** Out-of-order insertions, a binary min-heap on `exp`; entries a later update replaced are skipped. */
  private odd: Odd[] = [];
  /** Entries visited (front walk, heap steps): a measure of work that tests hold flat. */
  work = 0;

  get size(): number {
    return this.slots.size;
  }

  has(holder: string): boolean {
    return this.slots.has(holder);
  }

  /** Drops every holder whose slot expired at or before `now`. */
  sweep(now: number): void {
    for (const [holder, exp] of this.slots) {
      this.work++;
      if (exp > now) break;
      this.slots.delete(holder);
    }
    while (this.odd.length > 0 && this.odd[0]!.exp <= now) {
      const top = this.pop();
      if (this.slots.get(top.holder) === top.exp) this.slots.delete(top.holder);
    }
  }

  /** Sets (or moves) a holder's expiry. */
  set(holder: string, exp: number): void {
    this.slots.delete(holder);
    this.slots.set(holder, exp);
    this.work++;
    if (exp >= this.tail) {
      this.tail = exp;
      return;
    }
    this.push({ exp, holder });
    // Entries replaced by later updates stay in the heap until they expire; rebuild it from the live
    // ones when they outnumber them, so it stays within a constant of the holders.
    if (this.odd.length > 2 * this.slots.size + 32) this.compact();
  }

  delete(holder: string): void {
    this.work++;
    this.slots.delete(holder);
  }

  /** The earliest expiry of a live holder (call `sweep` first), or undefined with none. */
  earliest(): number | undefined {
    let min: number | undefined;
    for (const exp of this.slots.values()) {
      this.work++;
      min = exp;
      break;
    }
    // The first in-order holder expires no earlier than the front one; out-of-order ones are the heap's.
    while (this.odd.length > 0 && this.slots.get(this.odd[0]!.holder) !== this.odd[0]!.exp) this.pop();
    const top = this.odd[0];
    if (top !== undefined && (min === undefined || top.exp < min)) min = top.exp;
    return min;
  }

  private compact(): void {
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
