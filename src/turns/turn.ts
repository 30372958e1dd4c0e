/**
 * One accepted request (a conversation turn, an assessment, a translation) and everything about it
 * (CONTRACT §6; TURNS.md): its id, its AbortController, its stage, its timings, what it has spoken.
 *
 * The stage only moves forward, through one private `advance` checked against a table:
 * waiting → queued → running → speaking → done, and any stage that is not final → cancelled |
 * failed. Only the turn moves itself: the upstream layer reports through the hooks the turn hands
 * it (`queued`, `started`), the first audio makes it `speaking`. Others may only read it, call
 * `cancel`, or await `settled`.
 *
 * Every event and audio frame of the request leaves through `emit`/`audio`, which drop everything
 * once the stage is final: one gate for "after `request.cancelled` nothing more is sent for that
 * request".
 */
import type { RequestId, ServerEvent } from '../protocol/messages.js';
import { heardText, type SpokenPart } from './heard.js';
import type { Segment } from './segmenter.js';

export type TurnKind = 'conversation' | 'assessment' | 'translation';
export type TurnStage = 'waiting' | 'queued' | 'running' | 'speaking' | 'done' | 'cancelled' | 'failed';
/** The stages `request.cancelled` can name. */
export type CancelStage = Exclude<TurnStage, 'cancelled' | 'failed'>;

const NEXT: Readonly<Record<TurnStage, readonly TurnStage[]>> = {
  waiting: ['queued', 'running', 'done', 'cancelled', 'failed'],
  queued: ['running', 'done', 'cancelled', 'failed'],
  running: ['speaking', 'done', 'cancelled', 'failed'],
  speaking: ['done', 'cancelled', 'failed'],
  done: [],
  cancelled: [],
  failed: [],
};

/** Where a turn's output goes: the session's outbox (write-only). */
export interface TurnOutput {
  event(event: ServerEvent): void;
  audio(chunk: Buffer): void;
}

/** The session's conversation history, as a turn changes it. */
export interface TurnHistory {
  /** Adds the learner's words and, when non-empty, the tutor's reply. */
  add(user: string, assistant: string): void;
  /** Replaces the tutor's reply of the last exchange (empty: removes it, keeping the learner's words). */
  truncateLast(assistant: string): void;
}

/** Telemetry a turn reports (turn.metrics' figures into histograms; cancels by stage). */
export interface TurnObserver {
  turnCompleted(firstAudioMs: number | undefined, totalMs: number): void;
  turnCancelled(stage: CancelStage): void;
}

export interface TurnDeps {
  readonly output: TurnOutput;
  readonly now: () => number;
  readonly history?: TurnHistory;
  readonly observer?: TurnObserver;
}

/** Scheduler times (ms) of the stages a turn reached, for `turn.metrics`. */
export interface TurnMarks {
  startedAt?: number;
  transcriptAt?: number;
  firstTokenAt?: number;
  firstSegmentAt?: number;
  firstAudioAt?: number;
  endAt?: number;
}

const PCM16_BYTES = 2;

export class Turn {
  readonly acceptedAt: number;
  readonly marks: TurnMarks = {};
  /** TTS requests started for this turn. */
  ttsRequests = 0;
  private readonly ctl = new AbortController();
  private current: TurnStage = 'waiting';
  private bytesSent = 0;
  private sampleRate = 0;
  private readonly spoken: SpokenPart[] = [];
  private userText: string | undefined;
  private reply = '';
  private replyComplete = false;
  private historyCommitted = false;
  private resolveSettled!: () => void;
  /** Resolves when the turn reaches a final stage (done, cancelled or failed). */
  readonly settled: Promise<void>;

  constructor(
    readonly id: RequestId,
    readonly kind: TurnKind,
    private readonly deps: TurnDeps,
  ) {
    this.acceptedAt = deps.now();
    this.settled = new Promise((r) => (this.resolveSettled = r));
  }

  get stage(): TurnStage {
    return this.current;
  }

  /** Aborted when the turn is cancelled (or the session ends): every upstream call of the turn gets it. */
  get signal(): AbortSignal {
    return this.ctl.signal;
  }

  get isFinal(): boolean {
    return NEXT[this.current].length === 0;
  }

  /** Whether the turn's work reached an upstream (it is then finished even across a drop). */
  get started(): boolean {
    return this.marks.startedAt !== undefined;
  }

  get audioBytesSent(): number {
    return this.bytesSent;
  }

  private advance(to: TurnStage): boolean {
    if (!NEXT[this.current].includes(to)) return false;
    this.current = to;
    if (NEXT[to].length === 0) this.resolveSettled();
    return true;
  }

  // ---- what the upstream layer reports -----------------------------------------------------------

  /** An upstream call of the turn waits for capacity at `position` (1 = next). */
  queued(position: number): void {
    if (this.isFinal) return;
    if (this.current === 'waiting') this.advance('queued');
    this.emit({ type: 'request.queued', request_id: this.id, position });
  }

  /** An upstream attempt of the turn started. */
  startedUpstream(): void {
    this.marks.startedAt ??= this.deps.now();
    if (this.current === 'waiting' || this.current === 'queued') this.advance('running');
  }

  // ---- what the pipeline reports -----------------------------------------------------------------

  /** The learner's words (a transcript, or the text of `turn.text`). */
  setUserText(text: string, transcribed: boolean): void {
    this.userText = text;
    if (transcribed) this.marks.transcriptAt ??= this.deps.now();
  }

  /** A piece of the reply text; the first non-empty one marks `first_token_ms`. */
  replyDelta(delta: string): void {
    if (delta.length === 0 || this.isFinal) return;
    this.marks.firstTokenAt ??= this.deps.now();
    this.reply += delta;
    this.emit({ type: 'reply.text.delta', request_id: this.id, delta });
  }

  /** The reply text is complete. */
  replyDone(): void {
    if (this.isFinal) return;
    this.replyComplete = true;
    this.emit({ type: 'reply.text', request_id: this.id, text: this.reply });
  }

  get replyText(): string {
    return this.reply;
  }

  /** A TTS request for `reply.slice(start, end)` is about to be sent. */
  speechRequested(start: number, end: number, sentences: readonly Segment[]): SpokenPart {
    this.ttsRequests++;
    this.marks.firstSegmentAt ??= this.deps.now();
    const part: SpokenPart = { start, end, sentences, audioMs: 0, complete: false };
    this.spoken.push(part);
    return part;
  }

  /**
   * Reply audio of `part` (PCM16 mono at `sampleRate`), in order: the first frame is preceded by
   * `reply.audio.start` and makes the turn `speaking`.
   */
  audio(part: SpokenPart, chunk: Buffer, sampleRate: number): void {
    if (this.isFinal || chunk.length === 0) return;
    if (this.current !== 'speaking') {
      this.sampleRate = sampleRate;
      this.marks.firstAudioAt = this.deps.now();
      if (this.current === 'waiting' || this.current === 'queued') this.advance('running');
      this.advance('speaking');
      this.deps.output.event({ type: 'reply.audio.start', request_id: this.id, format: 'pcm16', sample_rate: sampleRate });
    }
    this.bytesSent += chunk.length;
    part.audioMs += (chunk.length / (PCM16_BYTES * this.sampleRate)) * 1000;
    this.deps.output.audio(chunk);
  }

  /** All of `part`'s audio was sent. */
  speechDone(part: SpokenPart): void {
    part.complete = true;
  }

  /** Sends an event of this request, unless the turn is over. */
  emit(event: ServerEvent): void {
    if (this.isFinal) return;
    this.deps.output.event(event);
  }

  // ---- endings -----------------------------------------------------------------------------------

  /**
   * The request is answered. A conversation turn ends its audio (`reply.audio.end`, then
   * `turn.metrics`) and writes its exchange to the history.
   */
  finish(): void {
    if (this.isFinal) return;
    if (this.kind === 'conversation') {
      const now = this.deps.now();
      this.marks.endAt = now;
      if (this.current !== 'speaking') {
        // A reply with no audio at all (empty text): the audio bracket still opens and closes.
        this.deps.output.event({ type: 'reply.audio.start', request_id: this.id, format: 'pcm16', sample_rate: this.sampleRate || 24_000 });
      }
      this.deps.output.event({ type: 'reply.audio.end', request_id: this.id, bytes: this.bytesSent });
      this.commitHistory(this.reply);
      this.deps.output.event(this.metrics(now));
      this.deps.observer?.turnCompleted(this.marks.firstAudioAt === undefined ? undefined : this.marks.firstAudioAt - this.acceptedAt, now - this.acceptedAt);
    }
    this.advance('done');
  }

  /** The request failed: its `error` goes out, and the history keeps what the learner received. */
  fail(event: Extract<ServerEvent, { type: 'error' }>): void {
    if (this.isFinal) return;
    this.deps.output.event(event);
    // The reply text, when it was complete, reached the learner as reply.text; else what was heard.
    this.commitHistory(this.replyComplete ? this.reply : heardText(this.reply, this.spoken, undefined));
    this.ctl.abort(new Error('turn failed'));
    this.advance('failed');
  }

  /**
   * Cancels the request wherever it is (CONTRACT §6 `cancel`): aborts its upstream calls, keeps
   * in the history only what the learner heard, answers `request.cancelled`. A turn already done
   * is truncated only when `afterDone` says it is the session's latest reply; otherwise a cancel of
   * a finished request is ignored. Returns whether it answered.
   */
  cancel(playedMs: number | undefined, afterDone = false): boolean {
    const stage = this.current;
    if (stage === 'cancelled' || stage === 'failed') return false;
    if (stage === 'done' && !(afterDone && this.kind === 'conversation')) return false;
    const kept = this.kind === 'conversation' ? heardText(this.reply, this.spoken, playedMs) : '';
    if (stage === 'done') {
      this.deps.history?.truncateLast(kept);
    } else {
      this.advance('cancelled');
      this.ctl.abort(new Error('turn cancelled'));
      this.commitHistory(kept);
      this.deps.observer?.turnCancelled(stage);
    }
    this.deps.output.event({ type: 'request.cancelled', request_id: this.id, stage, audio_bytes_sent: this.bytesSent, kept_text: kept });
    return true;
  }

  /** Ends the turn without an answer (the session ended, or it is dropped with its connection). */
  abandon(): void {
    if (this.isFinal) return;
    this.ctl.abort(new Error('turn abandoned'));
    this.advance('cancelled');
  }

  /**
   * Writes the exchange once: nothing before the learner's words are known (a cancel before the
   * speech was transcribed keeps neither), and no empty assistant message.
   */
  private commitHistory(assistant: string): void {
    if (this.historyCommitted || this.kind !== 'conversation' || this.userText === undefined) return;
    this.historyCommitted = true;
    this.deps.history?.add(this.userText, assistant);
  }

  private metrics(now: number): Extract<ServerEvent, { type: 'turn.metrics' }> {
    const m = this.marks;
    const since = (t: number | undefined): number | undefined => (t === undefined ? undefined : Math.round(t - this.acceptedAt));
    return {
      type: 'turn.metrics',
      request_id: this.id,
      queued_ms: since(m.startedAt) ?? 0,
      ...(m.transcriptAt !== undefined ? { stt_ms: since(m.transcriptAt)! } : {}),
      ...(m.firstTokenAt !== undefined ? { first_token_ms: since(m.firstTokenAt)! } : {}),
      ...(m.firstAudioAt !== undefined ? { first_audio_ms: since(m.firstAudioAt)! } : {}),
      total_ms: Math.round(now - this.acceptedAt),
      tts_requests: this.ttsRequests,
    };
  }
}
