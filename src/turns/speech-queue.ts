/**
 * Speaks a reply's TTS requests in order, pipelined (CONTRACT §6): the request of the next part may
 * run while the previous one's audio streams, at most `segmentsInFlight` open at once (started,
 * body not fully read), every one of them still admitted by the TTS upstream's governor. The head
 * request's audio is forwarded as it arrives, in frames of at most 32 KiB that never split a PCM16
 * sample; a later request's body is read ahead into a small bound (about a second of audio) and
 * then left unread, so TCP backpressure holds the upstream, memory stays bounded, and the order
 * holds even when the later request answers first (TURNS.md).
 */
import type { SpokenPart } from './heard.js';
import type { SpeechPart } from './speech-plan.js';
import type { Turn } from './turn.js';

/** Frames of reply audio are at most this large (browsers and proxies like moderate frames). */
export const AUDIO_FRAME_BYTES = 32 * 1024;

/**
 * One TTS request: speaks `text`, handing its body to `sink` as it arrives (awaiting the sink is
 * the backpressure), and resolves when the body is fully read. Rejects on failure or abort.
 */
export type SpeechCall = (text: string, signal: AbortSignal, sink: (chunk: Buffer, sampleRate: number) => void | Promise<void>) => Promise<void>;

export interface SpeechQueueOptions {
  /** TTS requests open at once for this turn (default 2). */
  readonly segmentsInFlight?: number;
  /** Bytes of a later request read ahead before its body is left unread (default 48,000: 1 s at 24 kHz). */
  readonly readAheadBytes?: number;
}

interface Slot {
  readonly part: SpeechPart;
  spoken: SpokenPart | undefined;
  /** Read-ahead chunks, while the slot is not the head. */
  buffered: { chunk: Buffer; sampleRate: number }[];
  bufferedBytes: number;
  /** Wakes a sink waiting for the slot to become the head. */
  wake: (() => void) | undefined;
  /** A byte of an odd-length chunk, held so no sample is split. */
  carry: Buffer | undefined;
  bodyDone: boolean;
}

/** The TTS requests of one turn. */
export class SpeechQueue {
  private readonly slots: Slot[] = [];
  /** Index of the slot whose audio is being forwarded. */
  private head = 0;
  /** Index of the next slot to start. */
  private nextStart = 0;
  private open = 0;
  private ended = false;
  private failure: unknown;
  private resolveDone!: () => void;
  private rejectDone!: (err: unknown) => void;
  /** Resolves when every part was spoken (after `end`); rejects with the first failure. */
  readonly done: Promise<void>;
  private readonly inFlight: number;
  private readonly readAhead: number;

  constructor(
    private readonly turn: Turn,
    private readonly reply: () => string,
    private readonly speak: SpeechCall,
    opts: SpeechQueueOptions = {},
  ) {
    this.inFlight = Math.max(1, opts.segmentsInFlight ?? 2);
    this.readAhead = Math.max(2, opts.readAheadBytes ?? 48_000);
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // A failure nobody awaits yet must not become an unhandled rejection.
    this.done.catch(() => undefined);
    turn.signal.addEventListener('abort', () => this.stop(turn.signal.reason), { once: true });
  }

  /** Parts ready to be spoken, in order. */
  add(parts: readonly SpeechPart[]): void {
    for (const part of parts) this.slots.push({ part, spoken: undefined, buffered: [], bufferedBytes: 0, wake: undefined, carry: undefined, bodyDone: false });
    this.startMore();
  }

  /** No more parts will come. */
  end(): void {
    this.ended = true;
    this.settleIfDone();
  }

  private startMore(): void {
    while (this.failure === undefined && this.open < this.inFlight && this.nextStart < this.slots.length) {
      const slot = this.slots[this.nextStart++]!;
      this.open++;
      slot.spoken = this.turn.speechRequested(slot.part.start, slot.part.end, slot.part.sentences);
      const text = this.reply().slice(slot.part.start, slot.part.end);
      this.speak(text, this.turn.signal, (chunk, sampleRate) => this.onChunk(slot, chunk, sampleRate)).then(
        () => this.onBodyDone(slot),
        (err: unknown) => this.stop(err),
      );
    }
  }

  private isHead(slot: Slot): boolean {
    return this.slots[this.head] === slot;
  }

  private onChunk(slot: Slot, chunk: Buffer, sampleRate: number): void | Promise<void> {
    if (this.failure !== undefined) return;
    if (this.isHead(slot)) {
      this.forward(slot, chunk, sampleRate);
      return;
    }
    slot.buffered.push({ chunk, sampleRate });
    slot.bufferedBytes += chunk.length;
    if (slot.bufferedBytes < this.readAhead) return;
    // Enough read ahead: leave the body unread until this slot is the head.
    return new Promise<void>((resolve) => (slot.wake = resolve));
  }

  /** Sends audio of the head slot in frames of at most 32 KiB with whole samples. */
  private forward(slot: Slot, chunk: Buffer, sampleRate: number): void {
    let data = slot.carry ? Buffer.concat([slot.carry, chunk]) : chunk;
    slot.carry = undefined;
    if (data.length % 2 === 1) {
      slot.carry = data.subarray(data.length - 1);
      data = data.subarray(0, data.length - 1);
    }
    for (let off = 0; off < data.length; off += AUDIO_FRAME_BYTES) {
      this.turn.audio(slot.spoken!, data.subarray(off, Math.min(off + AUDIO_FRAME_BYTES, data.length)), sampleRate);
    }
  }

  private onBodyDone(slot: Slot): void {
    if (this.failure !== undefined) return;
    slot.bodyDone = true;
    this.open--;
    if (this.isHead(slot)) this.advanceHead();
    this.startMore();
    this.settleIfDone();
  }

  /** The head finished: the next slot becomes the head, its read-ahead goes out, its body flows again. */
  private advanceHead(): void {
    for (;;) {
      const slot = this.slots[this.head];
      if (!slot || !slot.bodyDone) return;
      this.turn.speechDone(slot.spoken!);
      this.head++;
      const next = this.slots[this.head];
      if (!next || next.spoken === undefined) return;
      for (const b of next.buffered) this.forward(next, b.chunk, b.sampleRate);
      next.buffered = [];
      next.bufferedBytes = 0;
      const wake = next.wake;
      next.wake = undefined;
      wake?.();
    }
  }

  private settleIfDone(): void {
    if (this.failure === undefined && this.ended && this.head === this.slots.length && this.open === 0) this.resolveDone();
  }

  /** The first failure (or the turn's abort) stops everything: pending sinks are released, `done` rejects. */
  private stop(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = err ?? new Error('speech stopped');
    for (const slot of this.slots) {
      const wake = slot.wake;
      slot.wake = undefined;
      wake?.();
    }
    this.rejectDone(this.failure);
  }
}
