/**
 * Client-side pacing of outgoing frames: one token bucket over frame bytes and one over frames,
 * shaped like the gateway's per-connection buckets (docs/protocol.md "Per-connection limits") but
 * a `margin` smaller and slower. Every frame queues in order and leaves when both buckets allow,
 * so the gateway's buckets always hold at least as many tokens as the client's and a paced client
 * never meets 4029, even when it hands over a recording faster than real time.
 *
 * Why it holds: with the client's rate r' <= r and capacity b' <= B, and both sides paying the same
 * costs at the same moments, the server's tokens stay >= the client's + (B - b') (both refill, the
 * server's faster, and the server's cap is higher). A frame leaves only when the client has its
 * cost (or, for a frame larger than b', a full bucket), so the server has the cost too: it never
 * has to queue. Network jitter can bunch frames; the margin and the server's queue (up to
 * `byte_burst` bytes and `message_queue` frames) absorb that.
 *
 * Pure and clock-injected: every call takes the caller's clock reading.
 */
import type { SessionLimits } from '../protocol/messages.js';

export interface PacingLimits {
  readonly messagesPerSecond: number;
  readonly messageBurst: number;
  readonly bytesPerSecond: number;
  readonly byteBurst: number;
  readonly maxFrameBytes: number;
}

export interface PacerOptions {
  /** Fraction of rate and burst kept in reserve, in [0, 0.9]. */
  readonly margin: number;
  /** Largest audio frame the client cuts (further capped by the limits). */
  readonly maxChunkBytes: number;
}

export const DEFAULT_PACER: PacerOptions = { margin: 0.1, maxChunkBytes: 32_768 };

/** The pacing-relevant part of `session.created.limits`. */
export function pacingLimits(limits: SessionLimits): PacingLimits {
  return {
    messagesPerSecond: limits.messages_per_second,
    messageBurst: limits.message_burst,
    bytesPerSecond: limits.bytes_per_second,
    byteBurst: limits.byte_burst,
    maxFrameBytes: limits.max_frame_bytes,
  };
}

/**
 * A continuous-refill token bucket that starts full and may go into debt: a cost larger than the
 * capacity is paid from a full bucket, and the debt is refilled before anything else leaves.
 */
export class PacingBucket {
  private tokens: number;
  private lastMs: number;

  constructor(
    readonly ratePerSec: number,
    readonly capacity: number,
    nowMs: number,
  ) {
    if (!(ratePerSec > 0) || !Number.isFinite(ratePerSec)) throw new RangeError(`PacingBucket: ratePerSec must be finite and > 0, got ${ratePerSec}`);
    if (!(capacity > 0) || !Number.isFinite(capacity)) throw new RangeError(`PacingBucket: capacity must be finite and > 0, got ${capacity}`);
    this.tokens = capacity;
    this.lastMs = nowMs;
  }

  available(nowMs: number): number {
    this.refill(nowMs);
    return this.tokens;
  }

  /** What must be in the bucket before `cost` may leave: the cost, or a full bucket if it is larger. */
  private need(cost: number): number {
    return cost < this.capacity ? cost : this.capacity;
  }

  canTake(cost: number, nowMs: number): boolean {
    this.refill(nowMs);
    return this.tokens >= this.need(cost);
  }

  /** Pays `cost` unconditionally (the bucket may go into debt). */
  charge(cost: number, nowMs: number): void {
    this.refill(nowMs);
    this.tokens -= cost;
  }

  /** Whole ms until `cost` may leave (0 if now). */
  msUntil(cost: number, nowMs: number): number {
    this.refill(nowMs);
    const need = this.need(cost);
    if (this.tokens >= need) return 0;
    let ms = Math.ceil(((need - this.tokens) * 1000) / this.ratePerSec);
    if (ms < 1) ms = 1;
    // Float rounding may leave the estimate 1 ms short of what refill() computes then.
    while (this.tokensAt(nowMs + ms) < need) ms++;
    return ms;
  }

  private tokensAt(t: number): number {
    const dt = t - this.lastMs;
    if (!(dt > 0)) return this.tokens;
    const v = this.tokens + (dt * this.ratePerSec) / 1000;
    return v < this.capacity ? v : this.capacity;
  }

  private refill(nowMs: number): void {
    if (nowMs > this.lastMs) {
      this.tokens = this.tokensAt(nowMs);
      this.lastMs = nowMs;
    }
  }
}

interface Entry<T> {
  readonly value: T;
  readonly bytes: number;
}

/** An in-order queue of frames released by a byte bucket and a message bucket. */
export class Pacer<T> {
  private queue: Entry<T>[] = [];
  private head = 0;
  private queuedBytes = 0;
  private bytes: PacingBucket | undefined;
  private messages: PacingBucket | undefined;
  private frameCap = Infinity;

  constructor(private readonly opts: PacerOptions = DEFAULT_PACER) {
    if (!(opts.margin >= 0 && opts.margin <= 0.9)) throw new RangeError(`Pacer: margin must be in [0, 0.9], got ${opts.margin}`);
    if (!(opts.maxChunkBytes >= 2)) throw new RangeError(`Pacer: maxChunkBytes must be >= 2, got ${opts.maxChunkBytes}`);
  }

  /** True once limits are known; until then nothing leaves. */
  get configured(): boolean {
    return this.bytes !== undefined;
  }

  /** Frames waiting. */
  get size(): number {
    return this.queue.length - this.head;
  }

  /** Bytes waiting. */
  get waitingBytes(): number {
    return this.queuedBytes;
  }

  /**
   * Largest audio frame to cut: the option, `max_frame_bytes` and the client's byte capacity, and
   * even, so PCM16 samples are never split across frames.
   */
  get chunkBytes(): number {
    const cap = Math.min(this.opts.maxChunkBytes, this.frameCap);
    const even = Math.floor(cap / 2) * 2;
    return even >= 2 ? even : 2;
  }

  /**
   * Starts fresh buckets (a new connection gets fresh buckets on the server too) from `limits`,
   * charged with what was already sent on this connection before the limits were known
   * (`session.start`).
   */
  configure(limits: PacingLimits, nowMs: number, alreadySent: { frames: number; bytes: number } = { frames: 0, bytes: 0 }): void {
    const keep = 1 - this.opts.margin;
    const byteCap = limits.byteBurst * keep;
    this.bytes = new PacingBucket(limits.bytesPerSecond * keep, byteCap, nowMs);
    this.messages = new PacingBucket(limits.messagesPerSecond * keep, Math.max(1, limits.messageBurst * keep), nowMs);
    this.frameCap = Math.max(2, Math.min(limits.maxFrameBytes, Math.floor(byteCap)));
    if (alreadySent.bytes > 0) this.bytes.charge(alreadySent.bytes, nowMs);
    if (alreadySent.frames > 0) this.messages.charge(alreadySent.frames, nowMs);
  }

  /** Forgets the limits (the connection is gone); queued frames stay. */
  unconfigure(): void {
    this.bytes = undefined;
    this.messages = undefined;
  }

  enqueue(value: T, bytes: number): void {
    this.compact();
    this.queue.push({ value, bytes });
    this.queuedBytes += bytes;
  }

  /** Puts frames back at the front, in the given order (to resend after a resume). */
  unshift(entries: readonly { value: T; bytes: number }[]): void {
    if (entries.length === 0) return;
    this.queue = [...entries, ...this.queue.slice(this.head)];
    this.head = 0;
    for (const e of entries) this.queuedBytes += e.bytes;
  }

  /**
   * Replaces each waiting frame larger than `maxBytes` with the pieces `split` returns (frames cut
   * before the limits were known may be larger than `max_frame_bytes`). `split` returns undefined
   * for a frame it cannot cut.
   */
  rechunk(maxBytes: number, split: (value: T, maxBytes: number) => { value: T; bytes: number }[] | undefined): void {
    let changed = false;
    const out: Entry<T>[] = [];
    for (let i = this.head; i < this.queue.length; i++) {
      const e = this.queue[i] as Entry<T>;
      const pieces = e.bytes > maxBytes ? split(e.value, maxBytes) : undefined;
      if (pieces === undefined) out.push(e);
      else {
        changed = true;
        for (const p of pieces) out.push(p);
      }
    }
    if (!changed) return;
    this.queue = out;
    this.head = 0;
  }

  /** Removes and returns, in order, every frame both buckets allow at `nowMs`. */
  take(nowMs: number): T[] {
    const out: T[] = [];
    const bytes = this.bytes;
    const messages = this.messages;
    if (bytes === undefined || messages === undefined) return out;
    while (this.head < this.queue.length) {
      const e = this.queue[this.head] as Entry<T>;
      if (!bytes.canTake(e.bytes, nowMs) || !messages.canTake(1, nowMs)) break;
      bytes.charge(e.bytes, nowMs);
      messages.charge(1, nowMs);
      this.head += 1;
      this.queuedBytes -= e.bytes;
      out.push(e.value);
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    }
    return out;
  }

  /** Ms until the head frame may leave; undefined when nothing waits or no limits are known. */
  waitMs(nowMs: number): number | undefined {
    const bytes = this.bytes;
    const messages = this.messages;
    if (bytes === undefined || messages === undefined || this.head >= this.queue.length) return undefined;
    const e = this.queue[this.head] as Entry<T>;
    return Math.max(bytes.msUntil(e.bytes, nowMs), messages.msUntil(1, nowMs));
  }

  /** Empties the queue and returns what was waiting, in order. */
  clear(): T[] {
    const out = this.queue.slice(this.head).map((e) => e.value);
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    return out;
  }

  /** Removes waiting frames that match `pred`; returns them. */
  remove(pred: (value: T) => boolean): T[] {
    const kept: Entry<T>[] = [];
    const removed: T[] = [];
    for (let i = this.head; i < this.queue.length; i++) {
      const e = this.queue[i] as Entry<T>;
      if (pred(e.value)) {
        removed.push(e.value);
        this.queuedBytes -= e.bytes;
      } else kept.push(e);
    }
    this.queue = kept;
    this.head = 0;
    return removed;
  }

  private compact(): void {
    if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}
