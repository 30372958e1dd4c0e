/**
 * One WebSocket. Incoming frames flow through RxJS: size check → byte bucket → message bucket →
 * decode + validate → the session (ARCHITECTURE.md). Over a bucket the connection is throttled
 * (frames wait, in order); when more wait than allowed it closes with 4029. Outgoing data is
 * bounded by the socket's buffered bytes (slow consumer → 1008). Every close goes through `fail()`
 * or `closeNormally()`, and `teardown()` releases everything the connection holds.
 */
import { isUtf8 } from 'node:buffer';
import { Subject, tap, type SchedulerLike, type Subscription } from 'rxjs';
import type { WebSocket } from 'ws';
import type { ServerConfig } from '../config/schema.js';
import type { LimitState } from '../limits/decision.js';
import { StrikeCounter } from '../limits/strikes.js';
import { throttleByBucket } from '../limits/throttle.js';
import { TokenBucket } from '../limits/token-bucket.js';
import { CloseCode, ParleyError, closeReason } from '../protocol/codes.js';
import { decodeClientMessage, errorEvent, type ClientMessage, type ClientMessageOf, type RequestId, type ServerEvent } from '../protocol/messages.js';
import type { Session, SessionSink } from '../sessions/session.js';
import type { SessionRegistry } from '../sessions/registry.js';
import type { LeaseHolder, Store } from '../store/store.js';
import type { LeaseSpec } from '../limits/spec.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Principal } from '../identity/principal.js';
import { requestLimit } from '../limits/account-limits.js';

/** Invalid messages tolerated within `STRIKE_WINDOW_MS` before closing with 1008. */
const MAX_STRIKES = 10;
const STRIKE_WINDOW_MS = 60_000;

interface Frame {
  readonly data: Buffer;
  readonly binary: boolean;
}

export interface ConnectionDeps {
  readonly server: ServerConfig;
  readonly scheduler: SchedulerLike;
  readonly logger: Logger;
  readonly store: Store;
  readonly registry: SessionRegistry;
  readonly metrics: Metrics;
  readonly leases: readonly LeaseSpec[];
  readonly onClosed: (conn: Connection) => void;
}

const one = (): number => 1;
const frameBytes = (f: Frame): number => f.data.length;

/** `session.created` / `session.resumed`: the same fields, so a client handles both alike. */
function sessionEvent(type: 'session.created' | 'session.resumed', session: Session, requestId: RequestId | undefined): ServerEvent {
  return {
    type,
    ...(requestId !== undefined ? { request_id: requestId } : {}),
    session_id: session.id,
    resume_token: session.resumeToken,
    expires_at: new Date(session.expiresAt).toISOString(),
    limits: session.wireLimits(),
  };
}

export class Connection implements SessionSink {
  readonly id: string;
  /** Set by the heartbeat, cleared when a pong arrives. */
  awaitingPong = false;
  private readonly frames$ = new Subject<Frame>();
  private readonly messageBucket: TokenBucket;
  private readonly byteBucket: TokenBucket;
  private strikes: StrikeCounter | undefined;
  private subscription: Subscription | undefined;
  private startTimer: Subscription | undefined;
  private killTimer: Subscription | undefined;
  private session: Session | undefined;
  /** Frames that arrived while session.start was being decided, handled after it. */
  private deferred: Frame[] | undefined;
  private closing = false;
  private tornDown = false;
  private sentCloseCode: number | undefined;
  private childLog: Logger | undefined;

  constructor(
    private readonly ws: WebSocket,
    readonly principal: Principal,
    private readonly deps: ConnectionDeps,
    id: string,
  ) {
    this.id = id;
    const plan = principal.plan;
    const now = deps.scheduler.now();
    this.messageBucket = new TokenBucket({ ratePerSec: plan.messagesPerSecond, burst: plan.messageBurst }, now);
    this.byteBucket = new TokenBucket({ ratePerSec: plan.bytesPerSecond, burst: plan.byteBurst }, now);
  }

  /** A child logger per connection, made on first use (most connections never log). */
  get log(): Logger {
    this.childLog ??= this.deps.logger.child({
      conn_id: this.id,
      account_id: this.principal.account.id,
      key_id: this.principal.key.id,
      ...(this.session ? { session_id: this.session.id } : {}),
    });
    return this.childLog;
  }

  get sessionId(): string | undefined {
    return this.session?.id;
  }

  start(): void {
    const plan = this.principal.plan;
    const scheduler = this.deps.scheduler;
    this.subscription = this.frames$
      .pipe(
        tap((f) => {
          if (f.data.length > plan.maxFrameBytes) {
            throw new ParleyError('frame_too_large', `frame of ${f.data.length} bytes; maxFrameBytes is ${plan.maxFrameBytes}`);
          }
        }),
        throttleByBucket<Frame>({
          bucket: this.byteBucket,
          cost: frameBytes,
          maxQueuedCost: plan.byteBurst,
          scheduler,
          overflowError: (retryAfterMs) => new ParleyError('byte_rate', `more than byteBurst (${plan.byteBurst}) bytes waiting`, { retryAfterMs }),
          onDelay: (ms) => this.deps.metrics.throttleDelay('bytes', ms),
        }),
        throttleByBucket<Frame>({
          bucket: this.messageBucket,
          cost: one,
          maxQueuedCost: plan.messageQueue,
          scheduler,
          overflowError: (retryAfterMs) => new ParleyError('message_rate', `more than messageQueue (${plan.messageQueue}) messages waiting`, { retryAfterMs }),
          onDelay: (ms) => this.deps.metrics.throttleDelay('messages', ms),
        }),
      )
      .subscribe({
        next: (f) => this.handleFrame(f),
        error: (err: unknown) => this.fail(err instanceof ParleyError ? err : this.internal(err)),
      });

    this.ws.on('message', (data, isBinary) => {
      this.deps.metrics.frameIn((data as Buffer).length);
      if (!this.closing) this.frames$.next({ data: data as Buffer, binary: isBinary });
    });
    this.ws.on('pong', () => {
      this.awaitingPong = false;
    });
    this.ws.on('close', (code) => {
      this.killTimer?.unsubscribe();
      if (this.sentCloseCode !== undefined) this.deps.metrics.closed(this.sentCloseCode);
      else this.deps.metrics.clientClosed(code);
      this.teardown();
    });
    this.ws.on('error', (err) => {
      this.log.warn({ err }, 'socket error');
    });
    // ws closes a connection whose framing breaks RFC 6455 by itself (1002, 1007, 1008, 1009) and
    // only then emits 'error'. Its receiver's 'error' comes first, while the socket is still open,
    // so a listener put before ws's own sends the contract's `error` event ahead of that close
    // frame. `_receiver` is ws's private field; no public hook runs before the close.
    (this.ws as unknown as { _receiver?: { prependOnceListener(e: 'error', l: (err: Error) => void): void } })._receiver?.prependOnceListener('error', (err) =>
      this.protocolError(err as Error & { code?: string }),
    );
    this.startTimer = scheduler.schedule(() => {
      this.startTimer = undefined;
      if (!this.session) this.fail(new ParleyError('idle_timeout', `no session.start within ${this.deps.server.sessionStartTimeoutSeconds} s`));
    }, this.deps.server.sessionStartTimeoutSeconds * 1000);
  }

  // ---- SessionSink -------------------------------------------------------------------------------

  sendEvent(event: ServerEvent): void {
    if (this.closing) return;
    if (this.overBuffered()) return;
    // Encoded once: the byte count for the metrics and the frame ws sends are the same buffer.
    const frame = Buffer.from(JSON.stringify(event));
    this.deps.metrics.frameOut(frame.length);
    this.ws.send(frame, { binary: false });
  }

  sendAudio(chunk: Buffer): void {
    if (this.closing) return;
    if (this.overBuffered()) return;
    this.deps.metrics.frameOut(chunk.length);
    this.ws.send(chunk, { binary: true });
  }

  connectionLimits(): LimitState[] {
    const now = this.deps.scheduler.now();
    const p = this.principal.plan;
    return [
      { name: 'connection.messages', limit: p.messageBurst, remaining: this.messageBucket.available(now), resetMs: this.messageBucket.msUntilFull(now) },
      { name: 'connection.bytes', limit: p.byteBurst, remaining: this.byteBucket.available(now), resetMs: this.byteBucket.msUntilFull(now) },
    ];
  }

  rejectInvalid(message: string, requestId?: RequestId): void {
    this.invalid(message, 'invalid_message', requestId);
  }

  /** The one way a connection closes with an error: `error` event (with `close_code`), then close. */
  fail(error: ParleyError): void {
    if (this.closing) return;
    this.closing = true;
    const code = error.closeCode ?? CloseCode.internalError;
    this.sentCloseCode = code;
    const event = errorEvent(error.code, error.message, { requestId: error.requestId, retryAfterMs: error.retryAfterMs, closeCode: code });
    if (code !== CloseCode.serviceRestart && code !== CloseCode.sessionTakenOver) {
      this.log.info({ code: error.code, close_code: code }, 'closing connection');
    }
    try {
      this.ws.send(JSON.stringify(event));
      this.ws.close(code, closeReason(error.code));
    } catch (err) {
      this.log.warn({ err }, 'could not close cleanly');
      this.ws.terminate();
    }
    this.teardown();
  }

  /**
   * ws is about to close with the status of a framing error: say why first (the error event's
   * close_code is that status), then let ws close.
   */
  private protocolError(err: Error & { code?: string }): void {
    if (this.closing) return;
    const code = err.code ?? '';
    const error =
      code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' || code === 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH'
        ? new ParleyError('frame_too_large', `frame larger than the gateway's hard ceiling (${err.message})`)
        : code === 'WS_ERR_TOO_MANY_BUFFERED_PARTS'
          ? new ParleyError('invalid_message', `a message in too many fragments (${err.message})`, { closeCode: CloseCode.policyViolation })
          : new ParleyError('protocol_error', `WebSocket protocol error: ${err.message}`, {
              closeCode: code === 'WS_ERR_INVALID_UTF8' ? CloseCode.invalidPayload : CloseCode.protocolError,
            });
    this.closing = true;
    this.sentCloseCode = error.closeCode;
    this.log.info({ code: error.code, close_code: error.closeCode, ws_code: code }, 'closing connection: protocol error');
    try {
      this.ws.send(JSON.stringify(errorEvent(error.code, error.message, { closeCode: error.closeCode })));
    } catch {
      /* the socket is already gone; ws closes it */
    }
    this.teardown();
  }

  closeNormally(): void {
    if (this.closing) return;
    this.closing = true;
    this.sentCloseCode = CloseCode.normal;
    this.ws.close(CloseCode.normal, 'session ended');
    this.teardown();
  }

  /** Drops a peer that stopped answering protocol pings (no close frame can reach it). */
  terminateDead(): void {
    if (this.closing) return;
    this.closing = true;
    this.sentCloseCode = CloseCode.abnormal;
    this.log.info('peer did not answer ping; dropped');
    this.ws.terminate();
    this.teardown();
  }

  /** Whether requests of this connection's session are still being answered (drain waits for them). */
  busy(): boolean {
    return !this.closing && this.session !== undefined && this.session.inFlight > 0;
  }

  /** The slots this connection holds while open (the replica renews them all at once). */
  leaseHolder(): LeaseHolder | undefined {
    return this.tornDown ? undefined : { leases: this.deps.leases, holderId: this.id };
  }

  ping(): void {
    this.awaitingPong = true;
    try {
      this.ws.ping();
    } catch {
      /* the socket is closing; the close handler tears down */
    }
  }

  // ---- incoming ----------------------------------------------------------------------------------

  private handleFrame(f: Frame): void {
    if (this.closing) return;
    if (this.deferred) {
      this.deferred.push(f);
      return;
    }
    this.session?.countFrame(f.data.length);
    if (f.binary) {
      if (!this.session) {
        this.sendError('session_not_started', 'binary audio before session.start');
        return;
      }
      if (f.data.length === 0) {
        this.invalid('empty binary frame');
        return;
      }
      this.session.appendAudio(f.data);
      this.session.quotaMaybeChanged();
      return;
    }
    if (!isUtf8(f.data)) {
      this.invalid('text frame is not valid UTF-8');
      return;
    }
    const decoded = decodeClientMessage(f.data.toString('utf8'));
    if (!decoded.ok) {
      this.invalid(decoded.message, decoded.code, decoded.requestId);
      return;
    }
    this.dispatch(decoded.message);
    this.session?.quotaMaybeChanged();
  }

  private dispatch(msg: ClientMessage): void {
    if (msg.type === 'ping') {
      this.sendEvent(msg.id !== undefined ? { type: 'pong', request_id: msg.id } : { type: 'pong' });
      return;
    }
    if (msg.type === 'session.start') {
      if (this.session) {
        this.sendError('session_already_started', 'a session is already started on this connection', msg.id);
        return;
      }
      this.startSession(msg);
      return;
    }
    const session = this.session;
    if (!session) {
      this.sendError('session_not_started', `${msg.type} before session.start`, 'id' in msg ? msg.id : undefined);
      return;
    }
    switch (msg.type) {
      case 'input_audio.commit':
        session.commit(msg);
        return;
      case 'input_audio.clear':
        session.clearAudio();
        return;
      case 'turn.text':
        session.turnText(msg);
        return;
      case 'translate':
        session.translate(msg);
        return;
      case 'session.end':
        session.endByClient(msg.id);
        return;
    }
  }

  private startSession(msg: ClientMessageOf<'session.start'>): void {
    if (msg.resume_token === undefined && msg.language === undefined) {
      this.invalid('session.start: "language" is required (unless resuming with "resume_token")', 'invalid_message', msg.id);
      return;
    }
    this.deferred = [];
    const done = (): void => {
      const waiting = this.deferred ?? [];
      this.deferred = undefined;
      for (const f of waiting) this.handleFrame(f);
    };
    const work = msg.resume_token !== undefined ? this.resume(msg, msg.resume_token) : this.create(msg);
    work.then(done, (err: unknown) => {
      this.log.error({ err }, 'session.start failed');
      this.sendError('internal_error', 'could not start the session; try again', msg.id);
      done();
    });
  }

  private async create(msg: ClientMessageOf<'session.start'>): Promise<void> {
    const p = this.principal;
    const limit = requestLimit(p.plan, p.account.id, 'conversation.start');
    const decision = await this.deps.store.consume([limit], `start:${this.id}`);
    this.deps.metrics.decided([limit.name], decision);
    if (this.closing) return;
    if (!decision.allowed) {
      this.sendError('rate_limited', 'conversation.start rate limit exceeded', msg.id, decision.retryAfterMs);
      return;
    }
    const session = this.deps.registry.create(p, msg);
    this.bind(session);
    // The record is in the store before the client hears of the session, so a drop right after
    // session.created resumes on any replica (and an operator sees it there). A new session holds
    // nothing, so attaching first sends nothing before session.created.
    await session.attach(this);
    if (this.closing) return; // closed while saving: the close detached the session (resume window)
    this.sendEvent(sessionEvent('session.created', session, msg.id));
    this.deps.metrics.sessionStarted(p.account.id);
    this.log.info('session created');
    session.quotaNow();
  }

  private async resume(msg: ClientMessageOf<'session.start'>, resumeToken: string): Promise<void> {
    const outcome = await this.deps.registry.resume(this.principal, resumeToken);
    if (this.closing) return;
    if (!outcome.ok) {
      const e = outcome.error;
      // A refusal that carries a close (the store could not answer: 1011, reconnect and resume)
      // closes the connection; its error event is the connection's, so it names no request.
      if (e.closeCode !== undefined) this.fail(e);
      else this.sendError(e.code, e.message, msg.id);
      return;
    }
    const session = outcome.session;
    const previous = session.takeOver();
    previous?.fail(new ParleyError('session_taken_over', 'the session was resumed on another connection'));
    this.bind(session);
    this.sendEvent(sessionEvent('session.resumed', session, msg.id));
    void session.attach(this);
    for (const id of outcome.lost) {
      session.sendError('internal_error', 'this request was in flight on a replica that went away; send it again', id);
    }
    this.log.info({ previous: outcome.previous }, 'session resumed');
    session.quotaNow();
  }

  private bind(session: Session): void {
    this.session = session;
    this.childLog = undefined;
    this.startTimer?.unsubscribe();
    this.startTimer = undefined;
  }

  private invalid(message: string, code: 'invalid_message' | 'unknown_type' = 'invalid_message', requestId?: RequestId): void {
    this.strikes ??= new StrikeCounter(MAX_STRIKES, STRIKE_WINDOW_MS);
    if (this.strikes.strike(this.deps.scheduler.now())) {
      this.fail(new ParleyError('invalid_message', `more than ${MAX_STRIKES} invalid messages within 60 s (last: ${message})`, { closeCode: CloseCode.policyViolation }));
      return;
    }
    this.sendError(code, message, requestId);
  }

  private sendError(code: ParleyError['code'], message: string, requestId?: RequestId, retryAfterMs?: number): void {
    this.sendEvent(errorEvent(code, message, { requestId, retryAfterMs }));
  }

  // ---- outgoing bound ----------------------------------------------------------------------------

  /**
   * A client that stops reading makes the socket's send buffer grow. Past `maxBufferedBytes` the
   * connection is closed with 1008 and nothing more is queued, so memory stays bounded; the client
   * gets `slowConsumerGraceSeconds` to read what is queued (including the error) before the socket
   * is destroyed.
   */
  private overBuffered(): boolean {
    if (this.ws.bufferedAmount <= this.deps.server.maxBufferedBytes) return false;
    this.log.warn({ buffered_bytes: this.ws.bufferedAmount }, 'slow consumer');
    this.fail(new ParleyError('slow_consumer', `more than ${this.deps.server.maxBufferedBytes} bytes waiting to be sent`));
    this.killTimer = this.deps.scheduler.schedule(() => this.ws.terminate(), this.deps.server.slowConsumerGraceSeconds * 1000);
    return true;
  }

  private internal(err: unknown): ParleyError {
    this.log.error({ err }, 'connection pipeline failed');
    return new ParleyError('internal_error', 'internal error', { cause: err });
  }

  /** Releases everything the connection holds. Idempotent. */
  teardown(): void {
    if (this.tornDown) return;
    this.tornDown = true;
    this.closing = true;
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    this.frames$.complete();
    this.startTimer?.unsubscribe();
    this.startTimer = undefined;
    this.deferred = undefined;
    if (this.session) {
      this.session.detach(this);
      this.session = undefined;
    }
    this.deps.store.release(this.deps.leases, this.id).catch((err: unknown) => this.log.warn({ err }, 'could not release connection leases'));
    this.deps.onClosed(this);
  }

  /** For tests: what the connection still holds. */
  holdings(): { subscribed: boolean; startTimer: boolean; session: boolean } {
    return { subscribed: this.subscription !== undefined && !this.subscription.closed, startTimer: this.startTimer !== undefined, session: this.session !== undefined };
  }
}
