/**
 * One learner conversation. It outlives its connection: after a drop it waits
 * `resumeWindowSeconds` for a `session.start {resume_token}`, keeps running the requests in flight
 * and holds their answers (bounded) for the next connection (CONTRACT.md §5 "Resume").
 *
 * Requests run one at a time, in the order they were accepted. Timers (max duration, idle, resume
 * window) run on the injected RxJS scheduler, so tests drive them with virtual time.
 */
import type { SchedulerLike, Subscription } from 'rxjs';
import { readWavHeader, wavSeconds } from '../audio/wav.js';
import type { PlanConfig, RequestKind } from '../config/schema.js';
import type { Principal } from '../identity/principal.js';
import { audioMinutesLimit, accountLimits, requestLimit } from '../limits/account-limits.js';
import type { LimitState } from '../limits/decision.js';
import { ParleyError } from '../protocol/codes.js';
import { errorEvent, type ClientMessageOf, type LimitStateWire, type RequestId, type ServerEvent, type SessionLimits } from '../protocol/messages.js';
import type { SessionRecord, Store } from '../store/store.js';
import type { LimitSpec } from '../limits/spec.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { queueWaitState, quotaChangeKey, type QueueWait } from '../telemetry/quota.js';
import type { AudioInput, CallOptions, ChatMessage, Providers } from '../upstream/provider.js';
import { UpstreamError } from '../upstream/provider.js';
import { AudioBuffer } from './audio-buffer.js';

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
  readonly logger: Logger;
  readonly replicaId: string;
  /** Called once when the session is over for good (ended, expired, resume window passed, killed). */
  readonly onGone: (session: Session) => void;
  readonly maxBufferedBytes: number;
  /** Counts the account-quota decisions (optional: unit tests build sessions without it). */
  readonly metrics?: Pick<Metrics, 'decided'>;
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
/** Reply audio goes out in frames of this size (browsers and proxies like moderate frames). */
const AUDIO_CHUNK_BYTES = 32 * 1024;
const TTS_SAMPLE_RATE = 24_000;

type Held = { event: ServerEvent } | { audio: Buffer };

/** A request accepted and not yet answered. */
interface Pending {
  readonly ctl: AbortController;
  /** Whether an upstream call of this request has started (then it is finished even across a drop). */
  started: boolean;
}

export class Session {
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

  private readonly deps: SessionDeps;
  private childLog: Logger | undefined;
  private history: ChatMessage[];
  private readonly counters: SessionRecord['counters'];
  private readonly input: AudioBuffer;
  private sink: SessionSink | undefined;
  private admission: Promise<unknown> = Promise.resolve();
  private chain: Promise<unknown> = Promise.resolve();
  private readonly pending = new Map<RequestId, Pending>();
  private held: Held[] = [];
  private heldBytes = 0;
  private readonly lost = new Set<RequestId>();
  private readonly dropped = new Set<RequestId>();
  private lastActivity: number;
  private idleWarned = false;
  private durationWarned = false;
  private idleTimer: Subscription | undefined;
  private durationTimer: Subscription | undefined;
  private resumeTimer: Subscription | undefined;
  private quotaTimer: Subscription | undefined;
  private lastQuota = '';
  /** The request of this session waiting in an upstream queue, if any (requests run one at a time). */
  private queueWait: QueueWait | undefined;
  private gone = false;
  private stats = { messagesIn: 0, bytesIn: 0 };

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
    this.history = [...(init.history ?? [])];
    this.counters = { ...(init.counters ?? { turns: 0, assessments: 0, translations: 0, audioSeconds: 0 }) };
    this.deps = deps;
    this.input = new AudioBuffer(this.plan.maxUtteranceBytes);
    this.lastActivity = deps.scheduler.now();
  }

  /** A child logger made on first use: most sessions never log, and each child costs ~0.8 KB. */
  private get log(): Logger {
    this.childLog ??= this.deps.logger.child({ session_id: this.id, account_id: this.principal.account.id });
    return this.childLog;
  }

  get attached(): boolean {
    return this.sink !== undefined;
  }

  get isGone(): boolean {
    return this.gone;
  }

  /** Requests accepted and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
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
      history: this.history.filter((m): m is ChatMessage & { role: 'user' | 'assistant' } => m.role !== 'system'),
      pending: [...this.pending.keys()],
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
    return this.deps.store.saveSession(this.record(), ttlMs).catch((err: unknown) => this.log.warn({ err }, 'could not save session state'));
  }

  /**
   * Binds the session to a connection (new or resumed) and delivers what was held for it; resolves
   * once the record saying so is in the store.
   */
  attach(sink: SessionSink): Promise<void> {
    this.resumeTimer?.unsubscribe();
    this.resumeTimer = undefined;
    this.sink = sink;
    this.touch();
    this.scheduleIdle();
    this.scheduleDuration();
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const h of held) {
      if ('event' in h) sink.sendEvent(h.event);
      else sink.sendAudio(h.audio);
    }
    for (const id of this.lost) {
      sink.sendEvent({
        type: 'error',
        code: 'internal_error',
        message: 'the answer to this request was too large to hold while the connection was down; send it again',
        request_id: id,
      });
    }
    this.lost.clear();
    for (const id of this.dropped) {
      sink.sendEvent({
        type: 'error',
        code: 'upstream_busy',
        message: 'the request had not reached the upstream when the connection dropped and was cancelled; send it again',
        request_id: id,
      });
    }
    this.dropped.clear();
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
    this.input.clear();
    if (this.gone) return;
    this.dropUnstarted();
    const now = this.deps.scheduler.now();
    const windowMs = Math.min(this.plan.resumeWindowSeconds * 1000, this.expiresAt - now);
    if (windowMs <= 0) {
      this.end('expired');
      return;
    }
    this.resumeTimer = this.deps.scheduler.schedule(() => this.end('resume_window_passed'), windowMs);
    this.persist();
  }

  /**
   * Policy on a drop: work that has not reached the upstream yet (waiting behind the session's
   * earlier requests or in the upstream queue) is cancelled, so a disconnected learner takes no new
   * upstream capacity; it is reported on resume (`upstream_busy` with its request_id). Work already
   * at the upstream is finished and its answer held for the resume (until the session ends).
   */
  private dropUnstarted(): void {
    for (const [id, p] of this.pending) {
      if (p.started) continue;
      p.ctl.abort();
      this.pending.delete(id);
      this.dropped.add(id);
    }
  }

  /** Ends the session for good: aborts its work, forgets its state. */
  end(reason: string, keepRecord = false): void {
    if (this.gone) return;
    this.gone = true;
    this.cancelTimers();
    this.resumeTimer?.unsubscribe();
    for (const p of this.pending.values()) p.ctl.abort();
    this.pending.clear();
    this.held = [];
    this.log.info({ reason }, 'session ended');
    if (!keepRecord) this.deps.store.deleteSession(this.id).catch((err: unknown) => this.log.warn({ err }, 'could not delete session state'));
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
      messages_in: this.stats.messagesIn,
      bytes_in: this.stats.bytesIn,
    };
  }

  /** Counts one frame for `session.ended.usage`. */
  countFrame(bytes: number): void {
    this.stats.messagesIn++;
    this.stats.bytesIn += bytes;
  }

  /** Any request or audio (not ping) counts as activity for the idle timeout. */
  touch(): void {
    this.lastActivity = this.deps.scheduler.now();
    this.idleWarned = false;
  }

  // ---- input -------------------------------------------------------------------------------------

  appendAudio(frame: Buffer): void {
    this.touch();
    if (!this.input.append(frame)) {
      this.send({ type: 'error', code: 'audio_too_large', message: `utterance larger than maxUtteranceBytes (${this.plan.maxUtteranceBytes}); the input buffer was cleared` });
    }
  }

  clearAudio(): void {
    this.touch();
    this.input.clear();
  }

  commit(msg: ClientMessageOf<'input_audio.commit'>): void {
    this.touch();
    const id = msg.id;
    if (msg.purpose === 'assessment' && msg.reference_text === undefined) {
      this.invalid('input_audio.commit: "reference_text" is required for an assessment', id);
      this.input.clear();
      return;
    }
    if (this.input.bytes === 0) {
      this.invalid('input_audio.commit: the input audio buffer is empty', id);
      return;
    }
    const audio: AudioInput = { data: this.input.take(), format: this.audioFormat.format, sampleRate: this.audioFormat.sampleRate, channels: 1 };
    // One reading of the audio decides both what is billed and what goes upstream: a WAV the
    // gateway cannot read is refused here, before any quota or upstream call (D2).
    const seconds = audioSeconds(audio);
    if (typeof seconds === 'string') {
      this.invalid(`input_audio.commit: ${seconds}`, id);
      return;
    }
    const kind: RequestKind = msg.purpose === 'turn' ? 'conversation.turn' : 'pronunciation.assess';
    const extra = [audioMinutesLimit(this.plan, this.principal.account.id, seconds / 60)];
    this.accept(id, kind, extra, async (call) => {
      this.counters.audioSeconds += seconds;
      if (msg.purpose === 'turn') {
        const transcript = await this.deps.providers.stt.transcribe({ audio, language: this.language }, call);
        this.send({ type: 'transcript', request_id: id, text: transcript });
        await this.converse(id, transcript, call);
      } else {
        const result = await this.deps.providers.pronunciation.assess(
          { audio, referenceText: msg.reference_text ?? '', language: this.language },
          call,
        );
        this.counters.assessments++;
        this.send({ type: 'assessment.result', request_id: id, score: result.score, words: result.words.map((w) => ({ word: w.word, score: w.score })) });
      }
    });
  }

  turnText(msg: ClientMessageOf<'turn.text'>): void {
    this.touch();
    if (this.tooLong(msg.text, msg.id)) return;
    this.accept(msg.id, 'conversation.turn', [], (call) => this.converse(msg.id, msg.text, call));
  }

  translate(msg: ClientMessageOf<'translate'>): void {
    this.touch();
    if (this.tooLong(msg.text, msg.id)) return;
    this.accept(msg.id, 'translate', [], async (call) => {
      const text = await this.deps.providers.translation.translate(
        {
          text: msg.text,
          targetLanguage: msg.target_language,
          // Into the session's language the text is most likely the learner's own language (or unknown).
          sourceLanguage: msg.source_language ?? (sameLanguage(msg.target_language, this.language) ? this.nativeLanguage : this.language),
        },
        call,
      );
      this.counters.translations++;
      this.send({ type: 'translation.result', request_id: msg.id, text });
    });
  }

  // ---- request flow ------------------------------------------------------------------------------

  private tooLong(text: string, id: RequestId): boolean {
    if (text.length <= this.plan.maxTextChars) return false;
    this.sendError('text_too_long', `text is ${text.length} characters; maxTextChars is ${this.plan.maxTextChars}`, id);
    return true;
  }

  /**
   * Admission then execution, both in arrival order: the account quotas are checked (all or
   * nothing, through the store) in a serial chain, then accepted work joins the session's serial
   * run queue. A refused request is answered with an error and never run.
   */
  private accept(id: RequestId, kind: RequestKind, extra: LimitSpec[], run: (call: CallOptions) => Promise<void>): void {
    if (this.pending.has(id)) {
      this.invalid(`request id ${JSON.stringify(id)} is already in flight`, id);
      return;
    }
    if (this.pending.size >= MAX_PENDING) {
      this.sendError('rate_limited', `more than ${MAX_PENDING} requests are waiting in this session`, id, 1000);
      return;
    }
    const pending: Pending = { ctl: new AbortController(), started: false };
    this.pending.set(id, pending);
    const limits = [requestLimit(this.plan, this.principal.account.id, kind), ...extra];
    const opId = `${this.id}:${String(id)}:${this.deps.scheduler.now()}`;
    this.admission = this.admission.then(async () => {
      let allowed = false;
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
        this.log.error({ err }, 'quota check failed');
        this.sendError('internal_error', 'quota check failed; try again', id);
      }
      if (!allowed) {
        this.pending.delete(id);
        return;
      }
      this.quotaNow();
      const acceptedAt = this.deps.scheduler.now();
      const call: CallOptions = {
        signal: pending.ctl.signal,
        context: {
          accountId: this.principal.account.id,
          sessionId: this.id,
          acceptedAt,
          onQueued: (position, queue) => {
            this.send({ type: 'request.queued', request_id: id, position });
            this.setQueueWait({ upstream: queue.name, maxQueueWaitSeconds: queue.maxQueueWaitSeconds, deadline: acceptedAt + queue.maxQueueWaitSeconds * 1000 });
          },
          onStart: () => {
            pending.started = true;
            this.setQueueWait(undefined);
          },
        },
      };
      this.chain = this.chain.then(() => this.execute(id, pending, () => run(call)));
    });
  }

  private async execute(id: RequestId, pending: Pending, run: () => Promise<void>): Promise<void> {
    const signal = pending.ctl.signal;
    if (signal.aborted || this.gone) return;
    try {
      await run();
    } catch (err) {
      if (signal.aborted || this.gone) return;
      if (err instanceof ParleyError) {
        this.sendError(err.code, err.message, id, err.retryAfterMs);
      } else if (err instanceof UpstreamError) {
        this.log.warn({ upstream: err.upstream, status: err.status, err: err.message, request_id: id }, 'upstream call failed');
        this.sendError(err.busy ? 'upstream_busy' : 'upstream_error', `${err.upstream}: ${err.message}`, id);
      } else {
        this.log.error({ err, request_id: id }, 'request failed');
        this.sendError('internal_error', 'internal error while handling the request', id);
      }
    } finally {
      this.setQueueWait(undefined);
      if (this.pending.get(id) === pending) this.pending.delete(id);
      this.persist();
    }
  }

  /** Conversation model with the history, then speech. */
  private async converse(id: RequestId, userText: string, call: CallOptions): Promise<void> {
    const messages: ChatMessage[] = [{ role: 'system', content: this.systemPrompt() }, ...this.history, { role: 'user', content: userText }];
    const reply = await this.deps.providers.conversation.reply(
      { language: this.language, nativeLanguage: this.nativeLanguage, scenario: this.scenario, messages },
      call,
    );
    this.history.push({ role: 'user', content: userText }, { role: 'assistant', content: reply });
    const max = this.plan.maxHistoryTurns * 2;
    if (this.history.length > max) this.history = this.history.slice(this.history.length - max);
    this.counters.turns++;
    this.send({ type: 'reply.text', request_id: id, text: reply });
    const tts = this.deps.providers.tts;
    const req = { text: reply, voice: this.voice, language: this.language };
    // Long replies come as several upstream requests (maxChars); their audio streams as one reply.
    const parts = tts.speakParts ? tts.speakParts(req, call) : oneShot(tts.speak(req, call));
    let bytes = 0;
    let started = false;
    for await (const part of parts) {
      if (!started) {
        started = true;
        this.send({ type: 'reply.audio.start', request_id: id, format: 'pcm16', sample_rate: part.sampleRate || TTS_SAMPLE_RATE });
      }
      for (let off = 0; off < part.audio.length; off += AUDIO_CHUNK_BYTES) {
        this.sendBinary(part.audio.subarray(off, Math.min(off + AUDIO_CHUNK_BYTES, part.audio.length)));
      }
      bytes += part.audio.length;
    }
    if (!started) this.send({ type: 'reply.audio.start', request_id: id, format: 'pcm16', sample_rate: TTS_SAMPLE_RATE });
    this.send({ type: 'reply.audio.end', request_id: id, bytes });
  }

  private systemPrompt(): string {
    const parts = [`You are a friendly speaking tutor. Answer in ${this.language}, in one to three short sentences.`];
    if (this.nativeLanguage) parts.push(`The learner's native language is ${this.nativeLanguage}.`);
    if (this.scenario) parts.push(`Scenario: ${this.scenario}.`);
    return parts.join(' ');
  }

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
      if (id !== undefined) this.lost.add(id);
      return;
    }
    this.held.push(item);
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
    const conn = this.sink?.connectionLimits() ?? [];
    const sessionLeftMs = Math.max(0, this.expiresAt - now);
    const idleLeftMs = Math.max(0, this.plan.idleTimeoutSeconds * 1000 - (now - this.lastActivity));
    const account = await this.deps.store.peek(accountLimits(this.plan, this.principal.account.id));
    const all: LimitState[] = [
      ...conn,
      { name: 'session.seconds', limit: this.plan.maxSessionSeconds, remaining: Math.floor(sessionLeftMs / 1000), resetMs: sessionLeftMs },
      { name: 'session.idle_seconds', limit: this.plan.idleTimeoutSeconds, remaining: Math.floor(idleLeftMs / 1000), resetMs: idleLeftMs },
      ...account,
      ...(this.queueWait ? [queueWaitState(this.queueWait, now)] : []),
    ];
    return all.map((s) => ({
      name: s.name,
      limit: s.limit,
      remaining: s.name === 'account.audio_minutes' ? Math.round(s.remaining * 100) / 100 : Math.max(0, Math.floor(s.remaining)),
      reset_seconds: Math.ceil(s.resetMs / 1000),
    }));
  }

  /** Sends `quota.updated` now (after session.created/resumed and each accepted request). */
  quotaNow(): void {
    this.quotaTimer?.unsubscribe();
    this.quotaTimer = undefined;
    this.emitQuota(true);
  }

  /**
   * Notes that a value may have changed (messages, bytes); at most one `quota.updated` a second
   * follows, and only if a value other than the clocks moved.
   */
  quotaMaybeChanged(): void {
    if (this.quotaTimer || this.gone || !this.sink) return;
    this.quotaTimer = this.deps.scheduler.schedule(() => {
      this.quotaTimer = undefined;
      this.emitQuota(false);
    }, 1000);
  }

  private emitQuota(force: boolean): void {
    if (!this.sink || this.gone) return;
    // Only this connection's own values (buckets, queue entry) decide whether to send: they are
    // read without the store, so a quiet check costs no store round trip, and account values moved
    // by other sessions cannot keep an idle session's checks going. Account values changed by this
    // session's own requests are sent by the forced update after each accepted request.
    const key = quotaChangeKey([...this.sink.connectionLimits(), ...(this.queueWait ? [queueWaitState(this.queueWait, this.deps.scheduler.now())] : [])]);
    if (!force && key === this.lastQuota) return;
    this.lastQuota = key;
    this.limitStates().then(
      (limits) => {
        if (!this.sink || this.gone) return;
        this.send({ type: 'quota.updated', limits });
        // Look again in a second: a bucket refilling or a queue entry going is reported once a
        // second until nothing moves; then the session stays quiet (idle sessions get nothing).
        this.quotaMaybeChanged();
      },
      (err: unknown) => this.log.warn({ err }, 'could not read quotas'),
    );
  }

  /** Notes the upstream queue a request of this session waits in (undefined: none). */
  private setQueueWait(wait: QueueWait | undefined): void {
    if (wait?.upstream === this.queueWait?.upstream) return;
    this.queueWait = wait;
    this.quotaMaybeChanged();
  }

  // ---- timers ------------------------------------------------------------------------------------

  private cancelTimers(): void {
    this.idleTimer?.unsubscribe();
    this.durationTimer?.unsubscribe();
    this.quotaTimer?.unsubscribe();
    this.idleTimer = this.durationTimer = this.quotaTimer = undefined;
  }

  /** Warning lead for idle: min(15 s, half the timeout) (CONTRACT §5 "Idle"). */
  private idleLeadMs(): number {
    return Math.min(15_000, (this.plan.idleTimeoutSeconds * 1000) / 2);
  }

  /**
   * One timer, re-armed only when it fires: activity just moves `lastActivity`, so the hot path
   * never touches a timer.
   */
  private scheduleIdle(): void {
    this.idleTimer?.unsubscribe();
    const timeoutMs = this.plan.idleTimeoutSeconds * 1000;
    const leadMs = this.idleLeadMs();
    const tick = (): void => {
      this.idleTimer = undefined;
      if (!this.sink || this.gone) return;
      const idleMs = this.deps.scheduler.now() - this.lastActivity;
      if (idleMs >= timeoutMs) {
        this.log.info('idle timeout');
        const sink = this.sink;
        sink.fail(new ParleyError('idle_timeout', `no request and no audio for ${this.plan.idleTimeoutSeconds} s`));
        return;
      }
      if (idleMs >= timeoutMs - leadMs) {
        if (!this.idleWarned) {
          this.idleWarned = true;
          this.send({ type: 'session.expiring', reason: 'idle', closes_in_ms: Math.max(0, Math.round(timeoutMs - idleMs)) });
        }
        this.idleTimer = this.deps.scheduler.schedule(tick, timeoutMs - idleMs);
        return;
      }
      this.idleTimer = this.deps.scheduler.schedule(tick, timeoutMs - leadMs - idleMs);
    };
    this.idleTimer = this.deps.scheduler.schedule(tick, Math.max(0, timeoutMs - leadMs - (this.deps.scheduler.now() - this.lastActivity)));
  }

  private scheduleDuration(): void {
    this.durationTimer?.unsubscribe();
    const warnAt = this.expiresAt - this.plan.expiryWarningSeconds * 1000;
    const tick = (): void => {
      this.durationTimer = undefined;
      if (this.gone) return;
      const now = this.deps.scheduler.now();
      if (now >= this.expiresAt) {
        this.terminate(new ParleyError('session_expired', `the session reached maxSessionSeconds (${this.plan.maxSessionSeconds} s)`), 'max_duration');
        return;
      }
      if (now >= warnAt && !this.durationWarned && this.plan.expiryWarningSeconds > 0) {
        this.durationWarned = true;
        this.send({ type: 'session.expiring', reason: 'max_duration', closes_in_ms: Math.max(0, Math.round(this.expiresAt - now)) });
      }
      this.durationTimer = this.deps.scheduler.schedule(tick, now >= warnAt || this.durationWarned ? this.expiresAt - now : warnAt - now);
    };
    tick();
  }
}

async function* oneShot<T>(p: Promise<T>): AsyncIterable<T> {
  yield await p;
}

const sameLanguage = (a: string, b: string): boolean => a.split('-')[0]!.toLowerCase() === b.split('-')[0]!.toLowerCase();

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
