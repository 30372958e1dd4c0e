/**
 * One learner conversation. It outlives its connection: after a drop it waits
 * `resumeWindowSeconds` for a `session.start {resume_token}`, keeps running the requests in flight
 * and holds their answers (bounded) for the next connection (CONTRACT.md §5 "Resume").
 *
 * Requests run one at a time, in the order they were accepted. Timers (max duration, idle, resume
 * window, the quota.updated throttle) are one entry in the replica's timer queue (./timers.ts), on
 * the injected RxJS scheduler, so tests drive them with virtual time.
 *
 * Most of a replica's sessions are idle, so a session allocates its request and outbox state on
 * first use and makes no child logger (issue 18).
 */
import type { SchedulerLike } from 'rxjs';
import { readWavHeader, wavSeconds } from '../audio/wav.js';
import type { PlanConfig, RequestKind } from '../config/schema.js';
import type { Principal } from '../identity/principal.js';
import type { LimitState } from '../limits/decision.js';
import { ParleyError } from '../protocol/codes.js';
import { errorEvent, type ClientMessageOf, type LimitStateWire, type RequestId, type ServerEvent, type SessionLimits } from '../protocol/messages.js';
import type { SessionRecord, Store } from '../store/store.js';
import type { LimitSpec } from '../limits/spec.js';
import { logWith, type LogContext, type LogLevel } from '../telemetry/lazy-log.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { queueWaitState, quotaChangeKey, type QueueWait } from '../telemetry/quota.js';
import { runAssessment } from '../turns/assessment.js';
import { runConversation, type TurnInput } from '../turns/conversation.js';
import { runTranslation } from '../turns/translation.js';
import { Turn, type TurnHistory, type TurnKind, type TurnObserver } from '../turns/turn.js';
import type { AudioInput, CallOptions, ChatMessage, Providers } from '../upstream/provider.js';
import { UpstreamError } from '../upstream/provider.js';
import { AudioBuffer } from './audio-buffer.js';
import { accountSpecs, audioSpec, requestSpec } from './limit-specs.js';
import type { TimerEntry, TimerQueue } from './timers.js';

/** The connection side of a session, implemented by `Connection`. */
export interface SessionSink {
  sendEvent(event: ServerEvent): void;
  sendAudio(chunk: Buffer): void;
  /** Sends `error` with the close code, then closes. */
  fail(error: ParleyError): void;
  /** Closes with 1000 after `session.ended`. */
  closeNormally(): void;
  /** Per-connection limit states (message and byte buckets). */
  connectionLimits(): LimitState[];
  /**
   * Answers a message the session found invalid (an empty commit, an assessment without
   * `reference_text`, an id already in flight): `error invalid_message`, counted toward the
   * connection's invalid-message close (1008) like any other invalid message.
   */
  rejectInvalid(message: string, requestId?: RequestId): void;
}

export interface SessionDeps {
  readonly store: Store;
  readonly providers: Providers;
  readonly scheduler: SchedulerLike;
  /** The replica's timer queue; the session is one entry in it. */
  readonly timers: TimerQueue;
  readonly logger: Logger;
  readonly replicaId: string;
  /** Called once when the session is over for good (ended, expired, resume window passed, killed). */
  readonly onGone: (session: Session) => void;
  readonly maxBufferedBytes: number;
  /** Counts the account-quota decisions and the turns (optional: unit tests build sessions without it). */
  readonly metrics?: Pick<Metrics, 'decided'> & Partial<TurnObserver>;
  /** How turns speak and translate: the upstreams' limits that shape them. */
  readonly turns: TurnSettings;
}

/** The upstream settings a session's turns follow (from `upstreams.tts` and `upstreams.translation`). */
export interface TurnSettings {
  /** The TTS upstream's `maxChars` (default 2000). */
  readonly ttsMaxChars: number;
  /** TTS requests open at once for one turn (`upstreams.tts.limits.segmentsInFlight`, default 2). */
  readonly segmentsInFlight: number;
  /** The translation upstream's `maxChars`, if it has one. */
  readonly translationMaxChars?: number | undefined;
  /** Sent as `max_tokens` to the conversation model, when set. */
  readonly maxOutputTokens?: number | undefined;
}

export interface SessionInit {
  readonly sessionId: string;
  readonly resumeToken: string;
  readonly principal: Principal;
  readonly language: string;
  readonly nativeLanguage?: string | undefined;
  readonly scenario?: string | undefined;
  readonly voice?: string | undefined;
  readonly audio: { format: 'pcm16' | 'wav'; sampleRate: number };
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly history?: readonly ChatMessage[];
  readonly counters?: SessionRecord['counters'];
}

/** Requests accepted but not answered, per session; more get `rate_limited`. */
const MAX_PENDING = 32;

type Held = { event: ServerEvent } | { audio: Buffer };

/** A settled promise to chain the first request of a session on (shared: a session holds none until then). */
const SETTLED: Promise<unknown> = Promise.resolve();
/** The record's lists when empty (most records): one shared frozen array. */
const NONE: readonly never[] = Object.freeze([]);

/**
 * One copy of each recent `quota.updated` change key. A resting session's key (full buckets, no
 * queue entry) is the same string for every session of a plan, and each session kept its own copy
 * (a tree of concatenated strings, ~0.15 KB). Bounded: cleared when full.
 */
const recentKeys = new Map<string, string>();
function sharedKey(key: string): string {
  const known = recentKeys.get(key);
  if (known !== undefined) return known;
  if (recentKeys.size >= 256) recentKeys.clear();
  recentKeys.set(key, key);
  return key;
}

/** `Session.wireLimitsJson` per plan, then per audio format. */
const limitsJson = new WeakMap<PlanConfig, Record<'pcm16' | 'wav', Map<number, string>>>();

export class Session implements TimerEntry, LogContext {
  readonly id: string;
  readonly resumeToken: string;
  readonly principal: Principal;
  readonly plan: PlanConfig;
  readonly language: string;
  readonly nativeLanguage: string | undefined;
  readonly scenario: string | undefined;
  readonly voice: string | undefined;
  readonly audioFormat: { format: 'pcm16' | 'wav'; sampleRate: number };
  readonly createdAt: number;
  readonly expiresAt: number;

  /**
   * The session's place in the replica's timer queue (TimerEntry): the next time it must look at
   * its clocks. Attached: the earliest of the idle check, the session-length check and a pending
   * quota.updated check. Detached: the end of the resume window, and nothing else.
   */
  timerAt = Number.NaN;
  timerIndex = -1;

  private readonly deps: SessionDeps;
  private history: ChatMessage[];
  private readonly counters: SessionRecord['counters'];
  /** The input audio buffer, made with the first audio frame. */
  private input: AudioBuffer | undefined;
  private sink: SessionSink | undefined;
  /** The serial admission and run chains (undefined until the first request). */
  private admission: Promise<unknown> | undefined;
  private chain: Promise<unknown> | undefined;
  /** Requests accepted and not answered, and the outbox while detached: made on first use. */
  /** Requests accepted and not yet at a final stage, by id. */
  private turns: Map<RequestId, Turn> | undefined;
  /**
   * The latest conversation turn: a `cancel` of it after its `reply.audio.end` still truncates the
   * history to what the learner heard (CONTRACT §6), until the next conversation turn is accepted.
   */
  private lastReply: Turn | undefined;
  private held: Held[] | undefined;
  private heldBytes = 0;
  private lost: Set<RequestId> | undefined;
  private dropped: Set<RequestId> | undefined;
  private lastActivity: number;
  private idleWarned = false;
  private durationWarned = false;
  /** When the pending quota.updated check is due (NaN: none pending). */
  private quotaAt = Number.NaN;
  private lastQuota = '';
  /** The request of this session waiting in an upstream queue, if any (requests run one at a time). */
  private queueWait: QueueWait | undefined;
  private gone = false;
  private messagesIn = 0;
  private bytesIn = 0;

  constructor(init: SessionInit, deps: SessionDeps) {
    this.id = init.sessionId;
    this.resumeToken = init.resumeToken;
    this.principal = init.principal;
    this.plan = init.principal.plan;
    this.language = init.language;
    this.nativeLanguage = init.nativeLanguage;
    this.scenario = init.scenario;
    this.voice = init.voice;
    this.audioFormat = init.audio;
    this.createdAt = init.createdAt;
    this.expiresAt = init.expiresAt;
    this.history = init.history ? [...init.history] : [];
    this.counters = { ...(init.counters ?? { turns: 0, assessments: 0, translations: 0, audioSeconds: 0 }) };
    this.deps = deps;
    this.lastActivity = deps.scheduler.now();
  }

  /** LogContext: the fields of this session's log lines. */
  logFields(): Record<string, unknown> {
    return { session_id: this.id, account_id: this.principal.account.id };
  }

  private log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    logWith(this.deps.logger, level, this, msg, fields);
  }

  get attached(): boolean {
    return this.sink !== undefined;
  }

  get isGone(): boolean {
    return this.gone;
  }

  /** Requests accepted and not yet answered. */
  get inFlight(): number {
    return this.turns?.size ?? 0;
  }

  /** The limits announced in session.created / session.resumed. */
  wireLimits(): SessionLimits {
    const p = this.plan;
    return {
      messages_per_second: p.messagesPerSecond,
      message_burst: p.messageBurst,
      message_queue: p.messageQueue,
      bytes_per_second: p.bytesPerSecond,
      byte_burst: p.byteBurst,
      max_frame_bytes: p.maxFrameBytes,
      max_session_seconds: p.maxSessionSeconds,
      idle_timeout_seconds: p.idleTimeoutSeconds,
      resume_window_seconds: p.resumeWindowSeconds,
      max_utterance_bytes: p.maxUtteranceBytes,
      max_text_chars: p.maxTextChars,
      audio: { format: this.audioFormat.format, sample_rate: this.audioFormat.sampleRate },
    };
  }

  /**
   * `wireLimits()` as JSON, encoded once per plan and audio format (the same for every session of
   * a plan) and kept for the next session; at most a few dozen formats per plan are kept (the
   * sample rate is the client's choice).
   */
  wireLimitsJson(): string {
    let byFormat = limitsJson.get(this.plan);
    if (byFormat === undefined) limitsJson.set(this.plan, (byFormat = { pcm16: new Map(), wav: new Map() }));
    const byRate = byFormat[this.audioFormat.format];
    let json = byRate.get(this.audioFormat.sampleRate);
    if (json === undefined) {
      json = JSON.stringify(this.wireLimits());
      if (byRate.size < 16) byRate.set(this.audioFormat.sampleRate, json);
    }
    return json;
  }

  record(): SessionRecord {
    return {
      sessionId: this.id,
      resumeToken: this.resumeToken,
      accountId: this.principal.account.id,
      keyId: this.principal.key.id,
      learnerId: this.principal.learnerId,
      language: this.language,
      nativeLanguage: this.nativeLanguage,
      scenario: this.scenario,
      voice: this.voice,
      audio: this.audioFormat,
      createdAt: this.createdAt,
      expiresAt: this.expiresAt,
      history: this.history.length === 0 ? NONE : this.history.filter((m): m is ChatMessage & { role: 'user' | 'assistant' } => m.role !== 'system'),
      pending: this.turns?.size ? [...this.turns.keys()] : NONE,
      replicaId: this.deps.replicaId,
      connected: this.attached,
      counters: { ...this.counters },
    };
  }

  /**
   * Writes the resumable state; resolves when written. A store fault is logged, never fatal to the
   * session (the promise resolves then too).
   */
  persist(): Promise<void> {
    if (this.gone) return Promise.resolve();
    const now = this.deps.scheduler.now();
    const resumeMs = this.plan.resumeWindowSeconds * 1000;
    const ttlMs = Math.max(1000, this.attached ? this.expiresAt - now + resumeMs : Math.min(resumeMs, this.expiresAt - now));
    return this.deps.store.saveSession(this.record(), ttlMs).catch((err: unknown) => this.log('warn', 'could not save session state', { err }));
  }

  /**
   * Binds the session to a connection (new or resumed) and delivers what was held for it; resolves
   * once the record saying so is in the store.
   */
  attach(sink: SessionSink): Promise<void> {
    this.sink = sink;
    this.touch();
    // The session-length check runs now, as it did when each clock had its own timer: a session
    // resumed past its warning time hears it at once, one resumed past its end closes.
    if (this.checkDuration(this.deps.scheduler.now())) this.rearm();
    const held = this.held;
    this.held = undefined;
    this.heldBytes = 0;
    if (held) {
      for (const h of held) {
        if ('event' in h) sink.sendEvent(h.event);
        else sink.sendAudio(h.audio);
      }
    }
    const lost = this.lost;
    this.lost = undefined;
    for (const id of lost ?? NONE) {
      sink.sendEvent({
        type: 'error',
        code: 'internal_error',
        message: 'the answer to this request was too large to hold while the connection was down; send it again',
        request_id: id,
      });
    }
    const dropped = this.dropped;
    this.dropped = undefined;
    for (const id of dropped ?? NONE) {
      sink.sendEvent({
        type: 'error',
        code: 'upstream_busy',
        message: 'the request had not reached the upstream when the connection dropped and was cancelled; send it again',
        request_id: id,
      });
    }
    return this.persist();
  }

  /** Unbinds the current connection without starting the resume window (a resume takes over). */
  takeOver(): SessionSink | undefined {
    const previous = this.sink;
    if (previous) {
      this.sink = undefined;
      this.cancelTimers();
    }
    return previous;
  }

  /** The connection is gone; keep the session for `resumeWindowSeconds`. */
  detach(sink: SessionSink): void {
    if (this.sink !== sink) return;
    this.sink = undefined;
    this.cancelTimers();
    this.input = undefined;
    if (this.gone) return;
    this.dropUnstarted();
    const now = this.deps.scheduler.now();
    const windowMs = Math.min(this.plan.resumeWindowSeconds * 1000, this.expiresAt - now);
    if (windowMs <= 0) {
      this.end('expired');
      return;
    }
    // Detached, the only deadline is the resume window's end (see `onTimer`).
    this.deps.timers.set(this, now + windowMs);
    this.persist();
  }

  /**
   * Policy on a drop: work that has not reached the upstream yet (waiting behind the session's
   * earlier requests or in the upstream queue) is cancelled, so a disconnected learner takes no new
   * upstream capacity; it is reported on resume (`upstream_busy` with its request_id). Work already
   * at the upstream is finished and its answer held for the resume (until the session ends).
   */
  private dropUnstarted(): void {
    const turns = this.turns;
    if (!turns) return;
    for (const [id, turn] of turns) {
      if (turn.started) continue;
      turn.abandon();
      turns.delete(id);
      (this.dropped ??= new Set()).add(id);
    }
  }

  /** Ends the session for good: aborts its work, forgets its state. */
  end(reason: string, keepRecord = false): void {
    if (this.gone) return;
    this.gone = true;
    this.cancelTimers();
    if (this.turns) for (const turn of this.turns.values()) turn.abandon();
    this.turns = undefined;
    this.lastReply = undefined;
    this.held = undefined;
    this.log('info', 'session ended', { reason });
    if (!keepRecord) this.deps.store.deleteSession(this.id).catch((err: unknown) => this.log('warn', 'could not delete session state', { err }));
    this.deps.onGone(this);
  }

  /** Sends `session.ended` and closes the connection with 1000. */
  endByClient(requestId: RequestId | undefined): void {
    const sink = this.sink;
    const event: ServerEvent = {
      type: 'session.ended',
      reason: 'client_ended',
      usage: this.usage(),
      ...(requestId !== undefined ? { request_id: requestId } : {}),
    };
    this.end('client_ended');
    if (sink) {
      sink.sendEvent(event);
      sink.closeNormally();
    }
  }

  /** Closes the session's connection with an error and ends the session (operator kill, expiry). */
  terminate(error: ParleyError, reason: string): void {
    const sink = this.sink;
    this.end(reason);
    sink?.fail(error);
  }

  /**
   * Another replica resumed this session: let go here (abort local work, close any connection
   * with 4030) without touching the record, which the new owner now writes.
   */
  handOff(): void {
    const sink = this.sink;
    this.end('taken_over_elsewhere', true);
    sink?.fail(new ParleyError('session_taken_over', 'the session was resumed on another connection'));
  }

  usage(): Extract<ServerEvent, { type: 'session.ended' }>['usage'] {
    const now = this.deps.scheduler.now();
    return {
      duration_seconds: Math.round((now - this.createdAt) / 100) / 10,
      turns: this.counters.turns,
      assessments: this.counters.assessments,
      translations: this.counters.translations,
      audio_seconds: Math.round(this.counters.audioSeconds * 100) / 100,
      messages_in: this.messagesIn,
      bytes_in: this.bytesIn,
    };
  }

  /** Counts one frame for `session.ended.usage`. */
  countFrame(bytes: number): void {
    this.messagesIn++;
    this.bytesIn += bytes;
  }

  /** Any request or audio (not ping) counts as activity for the idle timeout. */
  touch(): void {
    this.lastActivity = this.deps.scheduler.now();
    this.idleWarned = false;
  }

  // ---- input -------------------------------------------------------------------------------------

  appendAudio(frame: Buffer): void {
    this.touch();
    if (!(this.input ??= new AudioBuffer(this.plan.maxUtteranceBytes)).append(frame)) {
      this.send({ type: 'error', code: 'audio_too_large', message: `utterance larger than maxUtteranceBytes (${this.plan.maxUtteranceBytes}); the input buffer was cleared` });
    }
  }

  clearAudio(): void {
    this.touch();
    this.input = undefined;
  }

  commit(msg: ClientMessageOf<'input_audio.commit'>): void {
    this.touch();
    const id = msg.id;
    if (msg.purpose === 'assessment' && msg.reference_text === undefined) {
      this.invalid('input_audio.commit: "reference_text" is required for an assessment', id);
      this.input = undefined;
      return;
    }
    const input = this.input;
    if (input === undefined || input.bytes === 0) {
      this.invalid('input_audio.commit: the input audio buffer is empty', id);
      return;
    }
    this.input = undefined;
    const audio: AudioInput = { data: input.take(), format: this.audioFormat.format, sampleRate: this.audioFormat.sampleRate, channels: 1 };
    // One reading of the audio decides both what is billed and what goes upstream: a WAV the
    // gateway cannot read is refused here, before any quota or upstream call (D2).
    const seconds = audioSeconds(audio);
    if (typeof seconds === 'string') {
      this.invalid(`input_audio.commit: ${seconds}`, id);
      return;
    }
    const extra = [audioSpec(this.plan, this.principal.account.id, seconds / 60)];
    const referenceText = msg.reference_text;
    if (msg.purpose === 'turn') {
      this.accept(id, 'conversation.turn', extra, 'conversation', (turn) => {
        this.counters.audioSeconds += seconds;
        return this.converse(turn, { audio });
      });
    } else {
      this.accept(id, 'pronunciation.assess', extra, 'assessment', (turn) => {
        this.counters.audioSeconds += seconds;
        return runAssessment(turn, audio, referenceText ?? '', { providers: this.deps.providers, language: this.language, call: (t) => this.callFor(t) });
      });
    }
  }

  turnText(msg: ClientMessageOf<'turn.text'>): void {
    this.touch();
    if (this.tooLong(msg.text, msg.id)) return;
    this.accept(msg.id, 'conversation.turn', [], 'conversation', (turn) => this.converse(turn, { text: msg.text }));
  }

  translate(msg: ClientMessageOf<'translate'>): void {
    this.touch();
    if (this.tooLong(msg.text, msg.id)) return;
    this.accept(msg.id, 'translate', [], 'translation', (turn) =>
      runTranslation(turn, msg.text, msg.target_language, msg.source_language, {
        providers: this.deps.providers,
        language: this.language,
        nativeLanguage: this.nativeLanguage,
        call: (t) => this.callFor(t),
        maxChars: this.deps.turns.translationMaxChars,
      }),
    );
  }

  /**
   * `cancel` (CONTRACT §6): the named request is cancelled wherever it is; the session's latest
   * reply is truncated to what the learner heard even after its `reply.audio.end`. Any other
   * request (finished, or unknown) is ignored: no answer. Counts as activity.
   */
  cancel(msg: ClientMessageOf<'cancel'>): void {
    this.touch();
    const turn = this.turns?.get(msg.request_id) ?? (this.lastReply?.id === msg.request_id ? this.lastReply : undefined);
    if (!turn) return;
    const answered = turn.cancel(msg.played_ms, turn === this.lastReply);
    if (!answered) return;
    this.log('debug', 'request cancelled', { request_id: msg.request_id, stage: turn.stage });
    if (this.turns?.get(turn.id) === turn) this.turns.delete(turn.id);
    this.persist();
  }

  // ---- request flow ------------------------------------------------------------------------------

  private tooLong(text: string, id: RequestId): boolean {
    if (text.length <= this.plan.maxTextChars) return false;
    this.sendError('text_too_long', `text is ${text.length} characters; maxTextChars is ${this.plan.maxTextChars}`, id);
    return true;
  }

  /**
   * Admission then execution, both in arrival order: the account quotas are checked (all or
   * nothing, through the store) in a serial chain, then the accepted Turn joins the session's
   * serial run queue. A refused request is answered with an error and never run. An accepted
   * request is in the session's record before it runs, so if this replica dies, the replica that
   * resumes the session reports it rather than losing it silently.
   */
  private accept(id: RequestId, kind: Exclude<RequestKind, 'rest'>, extra: LimitSpec[], turnKind: TurnKind, run: (turn: Turn) => Promise<void>): void {
    const turns = (this.turns ??= new Map());
    if (turns.has(id)) {
      this.invalid(`request id ${JSON.stringify(id)} is already in flight`, id);
      return;
    }
    if (turns.size >= MAX_PENDING) {
      this.sendError('rate_limited', `more than ${MAX_PENDING} requests are waiting in this session`, id, 1000);
      return;
    }
    const turn = new Turn(id, turnKind, {
      output: this.outbox,
      now: () => this.deps.scheduler.now(),
      history: this.historyWriter,
      ...(this.deps.metrics?.turnCompleted && this.deps.metrics.turnCancelled ? { observer: this.deps.metrics as TurnObserver } : {}),
    });
    turns.set(id, turn);
    // A new conversation turn: the previous reply can no longer be truncated (its exchange is history).
    if (turnKind === 'conversation') this.lastReply = turn;
    const limits = [requestSpec(this.plan, this.principal.account.id, kind), ...extra];
    const opId = `${this.id}:${String(id)}:${turn.acceptedAt}`;
    this.admission = (this.admission ?? SETTLED).then(async () => {
      let allowed = false;
      if (turn.isFinal) return; // cancelled while it waited for admission
      try {
        const decision = await this.deps.store.consume(limits, opId);
        this.deps.metrics?.decided(limits.map((l) => l.name), decision);
        if (!decision.allowed) {
          const exhausted = decision.limitName === 'account.audio_minutes';
          this.sendError(
            exhausted ? 'quota_exhausted' : 'rate_limited',
            exhausted ? 'daily audio minutes exhausted' : `${decision.limitName.replace(/^account\./, '')} rate limit exceeded`,
            id,
            decision.retryAfterMs,
          );
        } else allowed = true;
      } catch (err) {
        this.log('error', 'quota check failed', { err });
        this.sendError('internal_error', 'quota check failed; try again', id);
      }
      if (!allowed) {
        turn.abandon();
        this.forget(turn);
        return;
      }
      this.quotaNow();
      this.persist();
      this.chain = (this.chain ?? SETTLED).then(() => this.execute(turn, run));
    });
  }

  /** The options of an upstream call made for `turn`: its signal, its fairness keys, its queue reports. */
  private callFor(turn: Turn): CallOptions {
    return {
      signal: turn.signal,
      context: {
        accountId: this.principal.account.id,
        sessionId: this.id,
        acceptedAt: turn.acceptedAt,
        onQueued: (position, queue) => {
          turn.queued(position);
          this.setQueueWait({ upstream: queue.name, maxQueueWaitSeconds: queue.maxQueueWaitSeconds, deadline: turn.acceptedAt + queue.maxQueueWaitSeconds * 1000 });
        },
        onStart: () => {
          turn.startedUpstream();
          this.setQueueWait(undefined);
        },
      },
    };
  }

  /**
   * Runs an accepted turn. The session's chain moves on as soon as the turn reaches a final stage
   * (a cancel settles it at once, without waiting for the upstream sockets to close).
   */
  private async execute(turn: Turn, run: (turn: Turn) => Promise<void>): Promise<void> {
    if (turn.isFinal || this.gone) return;
    const ran = run(turn).then(
      () => {
        if (turn.kind === 'assessment') this.counters.assessments++;
        else if (turn.kind === 'translation') this.counters.translations++;
      },
      (err: unknown) => this.failTurn(turn, err),
    );
    await Promise.race([ran, turn.settled]);
    this.setQueueWait(undefined);
    this.forget(turn);
    this.persist();
  }

  /** A turn's run threw: its `error` (unless it was cancelled or the session ended). */
  private failTurn(turn: Turn, err: unknown): void {
    if (turn.isFinal || this.gone) return;
    const id = turn.id;
    if (err instanceof ParleyError) {
      turn.fail(errorEvent(err.code, err.message, { requestId: id, retryAfterMs: err.retryAfterMs }));
    } else if (err instanceof UpstreamError) {
      this.log('warn', 'upstream call failed', { upstream: err.upstream, status: err.status, err: err.message, request_id: id });
      turn.fail(errorEvent(err.busy ? 'upstream_busy' : 'upstream_error', `${err.upstream}: ${err.message}`, { requestId: id }));
    } else {
      this.log('error', 'request failed', { err, request_id: id });
      turn.fail(errorEvent('internal_error', 'internal error while handling the request', { requestId: id }));
    }
  }

  private forget(turn: Turn): void {
    if (this.turns?.get(turn.id) === turn) this.turns.delete(turn.id);
  }

  /** A conversation turn with the session's history and speech settings. */
  private converse(turn: Turn, input: TurnInput): Promise<void> {
    return runConversation(turn, input, {
      providers: this.deps.providers,
      language: this.language,
      nativeLanguage: this.nativeLanguage,
      scenario: this.scenario,
      voice: this.voice,
      history: () => this.history,
      call: (t) => this.callFor(t),
      ttsMaxChars: this.deps.turns.ttsMaxChars,
      segmentsInFlight: this.deps.turns.segmentsInFlight,
      maxOutputTokens: this.deps.turns.maxOutputTokens,
    });
  }

  /** Where a turn's events and audio go: the connection, or held while there is none. */
  private readonly outbox = {
    event: (event: ServerEvent): void => this.send(event),
    audio: (chunk: Buffer): void => this.sendBinary(chunk),
  };

  /**
   * The history as turns write it: an exchange once, no empty assistant message (CONTRACT §6), at
   * most `maxHistoryTurns` exchanges kept.
   */
  private readonly historyWriter: TurnHistory = {
    add: (user, assistant) => {
      this.history.push({ role: 'user', content: user });
      if (assistant.length > 0) this.history.push({ role: 'assistant', content: assistant });
      this.counters.turns++;
      const max = this.plan.maxHistoryTurns * 2;
      if (this.history.length > max) this.history = this.history.slice(this.history.length - max);
    },
    truncateLast: (assistant) => {
      const last = this.history[this.history.length - 1];
      if (last?.role !== 'assistant') return;
      if (assistant.length > 0) this.history[this.history.length - 1] = { role: 'assistant', content: assistant };
      else this.history.pop();
    },
  };

  // ---- output ------------------------------------------------------------------------------------

  /** Sends to the connection, or holds (bounded) while there is none. */
  send(event: ServerEvent): void {
    if (this.gone) return;
    if (this.sink) {
      this.sink.sendEvent(event);
      return;
    }
    this.hold({ event }, 256);
  }

  private sendBinary(chunk: Buffer): void {
    if (this.gone) return;
    if (this.sink) {
      this.sink.sendAudio(chunk);
      return;
    }
    this.hold({ audio: chunk }, chunk.length);
  }

  private hold(item: Held, bytes: number): void {
    const id = 'event' in item ? (item.event as { request_id?: RequestId }).request_id : undefined;
    if (this.heldBytes + bytes > this.deps.maxBufferedBytes) {
      if (id !== undefined) (this.lost ??= new Set()).add(id);
      return;
    }
    (this.held ??= []).push(item);
    this.heldBytes += bytes;
  }

  /** An invalid message from the connection: answered there, where the strikes are counted. */
  private invalid(message: string, requestId: RequestId): void {
    if (this.sink) this.sink.rejectInvalid(message, requestId);
    else this.sendError('invalid_message', message, requestId);
  }

  sendError(code: ParleyError['code'], message: string, requestId?: RequestId, retryAfterMs?: number): void {
    this.send(errorEvent(code, message, { requestId, retryAfterMs }));
  }

  // ---- quota.updated -----------------------------------------------------------------------------

  /** The current limits, as `quota.updated` lists them. */
  async limitStates(): Promise<LimitStateWire[]> {
    const now = this.deps.scheduler.now();
    const conn = this.sink?.connectionLimits();
    const sessionLeftMs = Math.max(0, this.expiresAt - now);
    const idleLeftMs = Math.max(0, this.plan.idleTimeoutSeconds * 1000 - (now - this.lastActivity));
    const account = await this.deps.store.peek(accountSpecs(this.plan, this.principal.account.id));
    // One array, filled in order (it runs for every quota.updated, twice in a session's first second).
    const out: LimitStateWire[] = [];
    if (conn) for (const s of conn) out.push(wire(s));
    out.push(
      { name: 'session.seconds', limit: this.plan.maxSessionSeconds, remaining: Math.floor(sessionLeftMs / 1000), reset_seconds: Math.ceil(sessionLeftMs / 1000) },
      { name: 'session.idle_seconds', limit: this.plan.idleTimeoutSeconds, remaining: Math.floor(idleLeftMs / 1000), reset_seconds: Math.ceil(idleLeftMs / 1000) },
    );
    for (const s of account) out.push(wire(s));
    if (this.queueWait) out.push(wire(queueWaitState(this.queueWait, now)));
    return out;
  }

  /**
   * Sends `quota.updated` now (after session.created/resumed and each accepted request). `limits`,
   * when given, is a reading of `limitStates()` taken just before (the connection reads it while
   * the session is saved, so session.created and this go out in one write); else it is read.
   */
  quotaNow(limits?: LimitStateWire[]): void {
    // A check still queued finds nothing due when it fires, and the session re-arms.
    this.quotaAt = Number.NaN;
    this.emitQuota(true, limits);
  }

  /**
   * Notes that a value may have changed (messages, bytes); at most one `quota.updated` a second
   * follows, and only if a value other than the clocks moved.
   */
  quotaMaybeChanged(): void {
    if (!Number.isNaN(this.quotaAt) || this.gone || !this.sink) return;
    this.quotaAt = this.deps.scheduler.now() + 1000;
    this.rearm();
  }

  private emitQuota(force: boolean, known?: LimitStateWire[]): void {
    if (!this.sink || this.gone) return;
    // Only this connection's own values (buckets, queue entry) decide whether to send: they are
    // read without the store, so a quiet check costs no store round trip, and account values moved
    // by other sessions cannot keep an idle session's checks going. Account values changed by this
    // session's own requests are sent by the forced update after each accepted request.
    const conn = this.sink.connectionLimits();
    const wait = this.queueWait ? queueWaitState(this.queueWait, this.deps.scheduler.now()) : undefined;
    const key = quotaChangeKey(wait ? [...conn, wait] : conn);
    if (!force && key === this.lastQuota) return;
    this.lastQuota = sharedKey(key);
    // Full buckets and no queue entry: nothing can move by itself (a frame or a request that
    // changes them looks again on its own), so no check a second later is needed.
    const resting = wait === undefined && conn.every((l) => l.resetMs === 0);
    const send = (limits: LimitStateWire[]): void => {
      if (!this.sink || this.gone) return;
      this.send({ type: 'quota.updated', limits });
      // Look again in a second: a bucket refilling or a queue entry going is reported once a
      // second until nothing moves; then the session stays quiet (idle sessions get nothing).
      if (!resting) this.quotaMaybeChanged();
    };
    if (known) {
      send(known);
      return;
    }
    this.limitStates().then(send, (err: unknown) => this.log('warn', 'could not read quotas', { err }));
  }

  /** Notes the upstream queue a request of this session waits in (undefined: none). */
  private setQueueWait(wait: QueueWait | undefined): void {
    if (wait?.upstream === this.queueWait?.upstream) return;
    this.queueWait = wait;
    this.quotaMaybeChanged();
  }

  // ---- timers ------------------------------------------------------------------------------------

  private cancelTimers(): void {
    this.quotaAt = Number.NaN;
    this.deps.timers.cancel(this);
  }

  /** Warning lead for idle: min(15 s, half the timeout) (CONTRACT §5 "Idle"). */
  private idleLeadMs(): number {
    return Math.min(15_000, (this.plan.idleTimeoutSeconds * 1000) / 2);
  }

  /**
   * Queues the next check while attached. Activity never calls this: it only moves
   * `lastActivity`, and the idle check, when it comes, reads it and re-arms (so the hot path never
   * touches the queue).
   */
  private rearm(): void {
    if (this.gone || !this.sink) return;
    const idleAt = this.lastActivity + this.plan.idleTimeoutSeconds * 1000 - (this.idleWarned ? 0 : this.idleLeadMs());
    const durationAt = this.durationWarned ? this.expiresAt : this.expiresAt - this.plan.expiryWarningSeconds * 1000;
    let at = idleAt < durationAt ? idleAt : durationAt;
    if (this.quotaAt < at) at = this.quotaAt; // false while NaN (none pending)
    if (at !== this.timerAt) this.deps.timers.set(this, at);
  }

  /** TimerEntry: a deadline came (the queue calls this only once it is due). */
  onTimer(now: number): void {
    if (this.gone) return;
    if (!this.sink) {
      this.end('resume_window_passed');
      return;
    }
    if (this.quotaAt <= now) {
      this.quotaAt = Number.NaN;
      this.emitQuota(false);
    }
    if (this.checkDuration(now) && this.checkIdle(now)) this.rearm();
  }

  /** Idle (CONTRACT §5): warns `idleLeadMs` before, then closes with 4031. False once closed. */
  private checkIdle(now: number): boolean {
    const sink = this.sink;
    if (!sink || this.gone) return false;
    const timeoutMs = this.plan.idleTimeoutSeconds * 1000;
    const idleMs = now - this.lastActivity;
    if (idleMs >= timeoutMs) {
      this.log('info', 'idle timeout');
      sink.fail(new ParleyError('idle_timeout', `no request and no audio for ${this.plan.idleTimeoutSeconds} s`));
      return false;
    }
    if (idleMs >= timeoutMs - this.idleLeadMs() && !this.idleWarned) {
      this.idleWarned = true;
      this.send({ type: 'session.expiring', reason: 'idle', closes_in_ms: Math.max(0, Math.round(timeoutMs - idleMs)) });
    }
    return true;
  }

  /**
   * Session length (CONTRACT §5): warns `expiryWarningSeconds` before `expiresAt`, then closes with
   * 4008. False once ended.
   */
  private checkDuration(now: number): boolean {
    if (this.gone) return false;
    if (now >= this.expiresAt) {
      this.terminate(new ParleyError('session_expired', `the session reached maxSessionSeconds (${this.plan.maxSessionSeconds} s)`), 'max_duration');
      return false;
    }
    const warnAt = this.expiresAt - this.plan.expiryWarningSeconds * 1000;
    if (now >= warnAt && !this.durationWarned && this.plan.expiryWarningSeconds > 0) {
      this.durationWarned = true;
      this.send({ type: 'session.expiring', reason: 'max_duration', closes_in_ms: Math.max(0, Math.round(this.expiresAt - now)) });
    }
    return true;
  }
}

/** A limit state as `quota.updated` lists it: whole units left (audio minutes to the hundredth), seconds to reset. */
function wire(s: LimitState): LimitStateWire {
  return {
    name: s.name,
    limit: s.limit,
    remaining: s.name === 'account.audio_minutes' ? Math.round(s.remaining * 100) / 100 : Math.max(0, Math.floor(s.remaining)),
    reset_seconds: Math.ceil(s.resetMs / 1000),
  };
}

/**
 * Seconds of audio in a committed utterance (PCM16, or a WAV read by the project's one WAV parser,
 * the same reading the upstream gets); a WAV it cannot read gives the reason instead.
 */
export function audioSeconds(audio: AudioInput): number | string {
  if (audio.format === 'wav') {
    try {
      return wavSeconds(readWavHeader(audio.data));
    } catch (err) {
      return (err as Error).message;
    }
  }
  return audio.data.length / (audio.sampleRate * 2 * audio.channels);
}
