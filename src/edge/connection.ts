/**
 * One WebSocket. Incoming frames go: size check → byte bucket → message bucket → decode + validate
 * → the session (ARCHITECTURE.md). Over a bucket the connection is throttled (frames wait, in
 * order, in an RxJS stage of two `throttleByBucket` operators); when more wait than allowed it
 * closes with 4029. Outgoing data is bounded by the socket's buffered bytes (slow consumer →
 * 1008). Every close goes through `fail()` or `closeNormally()`, and `teardown()` releases
 * everything the connection holds.
 *
 * An idle connection is most of a replica's connections, so it holds as little as it can (issue
 * 18): the RxJS stage exists only while frames wait, the buckets only once a frame came (and
 * again not once they are full), the no-session.start timeout is an entry in the replica's one
 * timer queue, the socket's listeners are shared functions, and no child logger is made.
 */
import { isUtf8 } from 'node:buffer';
import { Subject, type SchedulerLike, type Subscription } from 'rxjs';
import type { RawData, WebSocket } from 'ws';
import type { ServerConfig } from '../config/schema.js';
import type { LimitState } from '../limits/decision.js';
import { StrikeCounter } from '../limits/strikes.js';
import { throttleByBucket } from '../limits/throttle.js';
import { TokenBucket } from '../limits/token-bucket.js';
import { CloseCode, ParleyError, closeReason } from '../protocol/codes.js';
import { decodeClientMessage, errorEvent, type ClientMessage, type ClientMessageOf, type RequestId, type ServerEvent } from '../protocol/messages.js';
import type { Session, SessionSink } from '../sessions/session.js';
import { requestSpec } from '../sessions/limit-specs.js';
import type { SessionRegistry } from '../sessions/registry.js';
import type { TimerEntry, TimerQueue } from '../sessions/timers.js';
import type { LeaseHolder, Store } from '../store/store.js';
import type { LeaseSpec } from '../limits/spec.js';
import { logWith, type LogContext, type LogLevel } from '../telemetry/lazy-log.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Principal } from '../identity/principal.js';

/** Invalid messages tolerated within `STRIKE_WINDOW_MS` before closing with 1008. */
const MAX_STRIKES = 10;
const STRIKE_WINDOW_MS = 60_000;

interface Frame {
  readonly data: Buffer;
  readonly binary: boolean;
}

/** What every connection of a replica shares (one object for all of them, not one each). */
export interface ConnectionDeps {
  readonly server: ServerConfig;
  readonly scheduler: SchedulerLike;
  readonly logger: Logger;
  readonly store: Store;
  readonly registry: SessionRegistry;
  readonly metrics: Metrics;
  /** The replica's timer queue (the no-session.start timeout). */
  readonly timers: TimerQueue;
  readonly onClosed: (conn: Connection) => void;
}

const one = (): number => 1;
const frameBytes = (f: Frame): number => f.data.length;

/**
 * The socket's listeners are these shared functions, not closures made per connection: `ws` calls
 * a listener with the socket as `this` (node's EventEmitter), and the socket names its Connection.
 */
const CONNECTION = Symbol('parley.connection');
type OwnedSocket = WebSocket & { [CONNECTION]?: Connection };

function onSocketMessage(this: OwnedSocket, data: RawData, isBinary: boolean): void {
  this[CONNECTION]?.receive(data as Buffer, isBinary);
}
function onSocketPong(this: OwnedSocket): void {
  const conn = this[CONNECTION];
  if (conn) conn.awaitingPong = false;
}
/**
 * A client ping ws has answered (or queued a pong for): the pongs still waiting tell a ping flood,
 * which ws ends with `terminate()` once `maxPendingAutoPongs` (60) wait, with no event of its own.
 */
function onSocketPing(this: OwnedSocket): void {
  const c = this[CONNECTION];
  if (c) c.pendingPongs = (this as unknown as { _pendingAutoPongs?: number })._pendingAutoPongs ?? 0;
}
function onSocketClose(this: OwnedSocket, code: number): void {
  this[CONNECTION]?.socketClosed(code);
}
function onSocketError(this: OwnedSocket, err: Error): void {
  this[CONNECTION]?.socketError(err);
}
/** ws's frame parser, private (`_receiver`); see `start()`. */
type OwnedReceiver = {
  [CONNECTION]?: Connection;
  prependListener(e: 'error', l: (this: OwnedReceiver, err: Error) => void): void;
  prependListener(e: 'conclude', l: (this: OwnedReceiver, code: number, reason: Buffer) => void): void;
};
function onReceiverError(this: OwnedReceiver, err: Error): void {
  this[CONNECTION]?.protocolError(err as Error & { code?: string });
}
function onReceiverConclude(this: OwnedReceiver, _code: number, reason: Buffer): void {
  this[CONNECTION]?.closeFrameReceived(reason);
}

/**
 * `session.created` / `session.resumed` as JSON: the same fields, so a client handles both alike.
 * Written out rather than built as an object for JSON.stringify: `limits` is the same for every
 * session of a plan and comes already encoded (`Session.wireLimitsJson`), and the rest are a few
 * strings. Encoding the two opening events was a tenth of the CPU of opening a session.
 */
function sessionEventJson(type: 'session.created' | 'session.resumed', session: Session, requestId: RequestId | undefined): string {
  const rid = requestId !== undefined ? `"request_id":${JSON.stringify(requestId)},` : '';
  const expires = new Date(session.expiresAt).toISOString();
  return `{"type":"${type}",${rid}"session_id":${JSON.stringify(session.id)},"resume_token":${JSON.stringify(session.resumeToken)},"expires_at":"${expires}","limits":${session.wireLimitsJson()}}`;
}

export class Connection implements SessionSink, TimerEntry, LogContext {
  readonly id: string;
  /** Pongs ws still had to send at the client's latest ping (see onSocketPing). */
  pendingPongs = 0;
  /** Set by the heartbeat, cleared when a pong arrives. */
  awaitingPong = false;
  /** The no-session.start timeout's place in the replica's timer queue (TimerEntry). */
  timerAt = Number.NaN;
  timerIndex = -1;
  /**
   * The buckets, made when the first frame comes and dropped by the heartbeat once full again:
   * a full bucket is what a new one is, so an idle connection need not keep two.
   */
  private messageBucket: TokenBucket | undefined;
  private byteBucket: TokenBucket | undefined;
  /**
   * The throttling stage (RxJS: byte bucket, then message bucket), built when a frame has to wait
   * and dropped once every frame in it has come out; `staged` counts the frames inside.
   */
  private stage: Subject<Frame> | undefined;
  private stageSub: Subscription | undefined;
  private staged = 0;
  private strikes: StrikeCounter | undefined;
  private killTimer: Subscription | undefined;
  private session: Session | undefined;
  /** Frames that arrived while session.start was being decided, handled after it. */
  private deferred: Frame[] | undefined;
  private closing = false;
  private tornDown = false;
  private sentCloseCode: number | undefined;

  constructor(
    private readonly ws: WebSocket,
    readonly principal: Principal,
    private readonly deps: ConnectionDeps,
    id: string,
    /** The connection slots it holds (shared by every connection of the same key). */
    private readonly leases: readonly LeaseSpec[],
  ) {
    this.id = id;
  }

  get sessionId(): string | undefined {
    return this.session?.id;
  }

  /** LogContext: the fields of this connection's log lines. */
  logFields(): Record<string, unknown> {
    const fields: Record<string, unknown> = { conn_id: this.id, account_id: this.principal.account.id, key_id: this.principal.key.id };
    if (this.session) fields.session_id = this.session.id;
    return fields;
  }

  private log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    logWith(this.deps.logger, level, this, msg, fields);
  }

  start(): void {
    const ws = this.ws as OwnedSocket;
    ws[CONNECTION] = this;
    ws.on('message', onSocketMessage);
    ws.on('pong', onSocketPong);
    ws.on('close', onSocketClose);
    ws.on('ping', onSocketPing);
    ws.on('error', onSocketError);
    // ws closes a connection whose framing breaks RFC 6455 by itself (1002, 1007, 1008, 1009) and
    // only then emits 'error'. Its receiver's 'error' comes first, while the socket is still open,
    // so a listener put before ws's own sends the contract's `error` event ahead of that close
    // frame. `_receiver` is ws's private field; no public hook runs before the close. (A shared
    // listener, not a once-wrapped closure per connection: `protocolError` acts only once anyway.)
    const receiver = (ws as unknown as { _receiver?: OwnedReceiver })._receiver;
    if (receiver) {
      receiver[CONNECTION] = this;
      receiver.prependListener('error', onReceiverError);
      receiver.prependListener('conclude', onReceiverConclude);
    }
    this.deps.timers.set(this, this.deps.scheduler.now() + this.deps.server.sessionStartTimeoutSeconds * 1000);
  }

  /** TimerEntry: the no-session.start timeout (CONTRACT §5 "No session"). */
  onTimer(): void {
    if (!this.session) this.fail(new ParleyError('idle_timeout', `no session.start within ${this.deps.server.sessionStartTimeoutSeconds} s`));
  }

  /** A frame from the socket (its `message` listener). */
  receive(data: Buffer, binary: boolean): void {
    this.deps.metrics.frameIn(data.length);
    if (this.closing) return;
    const plan = this.principal.plan;
    if (data.length > plan.maxFrameBytes) {
      this.fail(new ParleyError('frame_too_large', `frame of ${data.length} bytes; maxFrameBytes is ${plan.maxFrameBytes}`));
      return;
    }
    if (this.stage === undefined) {
      // Nothing waits: a frame both buckets can pay for now is handled at once, as the stage's
      // operators would pass it (they emit synchronously when nothing waits and tokens are at hand).
      const now = this.deps.scheduler.now();
      const messages = (this.messageBucket ??= new TokenBucket({ ratePerSec: plan.messagesPerSecond, burst: plan.messageBurst }, now));
      const bytes = (this.byteBucket ??= new TokenBucket({ ratePerSec: plan.bytesPerSecond, burst: plan.byteBurst }, now));
      if (messages.msUntil(1, now) === 0 && bytes.tryTake(data.length, now)) {
        messages.tryTake(1, now);
        this.handleFrame(data, binary);
        return;
      }
      this.stage = this.buildStage(plan, messages, bytes);
    }
    this.staged++;
    this.stage.next({ data, binary });
  }

  /**
   * The throttling stage: the per-connection limits as RxJS operators (CONTRACT §5), byte bucket
   * first, then message bucket; built only when a frame has to wait.
   */
  private buildStage(plan: Principal['plan'], messages: TokenBucket, bytes: TokenBucket): Subject<Frame> {
    const scheduler = this.deps.scheduler;
    const metrics = this.deps.metrics;
    const stage = new Subject<Frame>();
    this.stageSub = stage
      .pipe(
        throttleByBucket<Frame>({
          bucket: bytes,
          cost: frameBytes,
          maxQueuedCost: plan.byteBurst,
          scheduler,
          overflowError: (retryAfterMs) => new ParleyError('byte_rate', `more than byteBurst (${plan.byteBurst}) bytes waiting`, { retryAfterMs }),
          onDelay: (ms) => metrics.throttleDelay('bytes', ms),
        }),
        throttleByBucket<Frame>({
          bucket: messages,
          cost: one,
          maxQueuedCost: plan.messageQueue,
          scheduler,
          overflowError: (retryAfterMs) => new ParleyError('message_rate', `more than messageQueue (${plan.messageQueue}) messages waiting`, { retryAfterMs }),
          onDelay: (ms) => metrics.throttleDelay('messages', ms),
        }),
      )
      .subscribe({
        next: (f) => this.fromStage(f),
        error: (err: unknown) => this.fail(err instanceof ParleyError ? err : this.internal(err)),
      });
    return stage;
  }

  private fromStage(f: Frame): void {
    this.staged--;
    this.handleFrame(f.data, f.binary);
    // Everything that waited has come out: back to the direct path, and the stage's memory goes.
    if (this.staged === 0) this.dropStage();
  }

  private dropStage(): void {
    const sub = this.stageSub;
    this.stage = undefined;
    this.stageSub = undefined;
    this.staged = 0;
    sub?.unsubscribe();
  }

  /** The socket closed (its `close` listener). */
  socketClosed(code: number): void {
    this.killTimer?.unsubscribe();
    // ws drops a peer with more than `maxPendingAutoPongs` (60) pings waiting for their pong (a ping
    // flood): no close frame or error event can get through such a socket, but it was the gateway's
    // decision, so it is logged and counted as the gateway's own 1006 (fuzz finding F3).
    const max = (this.ws as unknown as { _maxPendingAutoPongs?: number })._maxPendingAutoPongs ?? 0;
    if (this.sentCloseCode === undefined && max > 0 && this.pendingPongs >= max - 1) {
      this.sentCloseCode = CloseCode.abnormal;
      this.log('info', 'peer dropped: ping flood', { pending_pongs: this.pendingPongs + 1 });
    }
    if (this.sentCloseCode !== undefined) this.deps.metrics.closed(this.sentCloseCode);
    else this.deps.metrics.clientClosed(code);
    this.teardown();
  }

  /** A socket error (its `error` listener); the close that follows tears down. */
  socketError(err: Error): void {
    this.log('warn', 'socket error', { err });
  }

  // ---- SessionSink -------------------------------------------------------------------------------

  sendEvent(event: ServerEvent): void {
    if (this.closing) return;
    this.sendJson(JSON.stringify(event));
  }

  /** Sends an event already encoded as JSON. */
  private sendJson(json: string): void {
    if (this.closing) return;
    if (this.overBuffered()) return;
    // Encoded once: the byte count for the metrics and the frame ws sends are the same buffer.
    const frame = Buffer.from(json);
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
    const m = this.messageBucket;
    const b = this.byteBucket;
    return [
      { name: 'connection.messages', limit: p.messageBurst, remaining: m ? m.available(now) : p.messageBurst, resetMs: m ? m.msUntilFull(now) : 0 },
      { name: 'connection.bytes', limit: p.byteBurst, remaining: b ? b.available(now) : p.byteBurst, resetMs: b ? b.msUntilFull(now) : 0 },
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
      this.log('info', 'closing connection', { code: error.code, close_code: code });
    }
    try {
      this.ws.send(JSON.stringify(event));
      this.ws.close(code, closeReason(error.code));
    } catch (err) {
      this.log('warn', 'could not close cleanly', { err });
      this.ws.terminate();
    }
    this.teardown();
  }

  /**
   * ws is about to close with the status of a framing error: say why first (the error event's
   * close_code is that status), then let ws close.
   */
  /** A framing error from ws's receiver, before ws closes the socket itself. */
  protocolError(err: Error & { code?: string }): void {
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
    this.log('info', 'closing connection: protocol error', { code: error.code, close_code: error.closeCode, ws_code: code });
    try {
      this.ws.send(JSON.stringify(errorEvent(error.code, error.message, { closeCode: error.closeCode })));
    } catch {
      /* the socket is already gone; ws closes it */
    }
    this.teardown();
  }

  /**
   * The client's close frame, before ws echoes it. UTF-8 is checked here, not by ws
   * (`skipUTF8Validation`, so an invalid text frame gets `invalid_message` and the connection
   * stays): a close reason that is not UTF-8 gets `protocol_error` and close 1007 (RFC 6455
   * §5.5.1, §7.4.1), not an echo of the broken bytes.
   */
  closeFrameReceived(reason: Buffer): void {
    if (this.closing || reason.length === 0 || isUtf8(reason)) return;
    const err = Object.assign(new Error('the close frame\'s reason is not valid UTF-8'), { code: 'WS_ERR_INVALID_UTF8' });
    this.protocolError(err);
    this.ws.close(CloseCode.invalidPayload, closeReason('protocol_error'));
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
    this.log('info', 'peer did not answer ping; dropped');
    this.ws.terminate();
    this.teardown();
  }

  /** Whether requests of this connection's session are still being answered (drain waits for them). */
  busy(): boolean {
    return !this.closing && this.session !== undefined && this.session.inFlight > 0;
  }

  /** The slots this connection holds while open (the replica renews them all at once). */
  leaseHolder(): LeaseHolder | undefined {
    return this.tornDown ? undefined : { leases: this.leases, holderId: this.id };
  }

  /** The heartbeat's protocol ping; also lets go of buckets that are full again (see the fields). */
  ping(): void {
    if (this.stage === undefined) {
      const now = this.deps.scheduler.now();
      if (this.messageBucket?.msUntilFull(now) === 0) this.messageBucket = undefined;
      if (this.byteBucket?.msUntilFull(now) === 0) this.byteBucket = undefined;
    }
    this.awaitingPong = true;
    try {
      this.ws.ping();
    } catch {
      /* the socket is closing; the close handler tears down */
    }
  }

  // ---- incoming ----------------------------------------------------------------------------------

  private handleFrame(data: Buffer, binary: boolean): void {
    if (this.closing) return;
    if (this.deferred) {
      this.deferred.push({ data, binary });
      return;
    }
    this.session?.countFrame(data.length);
    if (binary) {
      if (!this.session) {
        this.sendError('session_not_started', 'binary audio before session.start');
        return;
      }
      if (data.length === 0) {
        this.invalid('empty binary frame');
        return;
      }
      this.session.appendAudio(data);
      this.session.quotaMaybeChanged();
      return;
    }
    if (!isUtf8(data)) {
      this.invalid('text frame is not valid UTF-8');
      return;
    }
    const decoded = decodeClientMessage(data.toString('utf8'));
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
      case 'cancel':
        session.cancel(msg);
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
      for (const f of waiting) this.handleFrame(f.data, f.binary);
    };
    const work = msg.resume_token !== undefined ? this.resume(msg, msg.resume_token) : this.create(msg);
    work.then(done, (err: unknown) => {
      this.log('error', 'session.start failed', { err });
      this.sendError('internal_error', 'could not start the session; try again', msg.id);
      done();
    });
  }

  private async create(msg: ClientMessageOf<'session.start'>): Promise<void> {
    const p = this.principal;
    const limit = requestSpec(p.plan, p.account.id, 'conversation.start');
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
    // nothing, so attaching first sends nothing before session.created. The first quota.updated
    // is read meanwhile, so both events leave together.
    const saved = session.attach(this);
    const quota = session.limitStates().catch(() => undefined); // unread: quotaNow reads again, and logs
    await saved;
    const limits = await quota;
    if (this.closing) return; // closed while saving: the close detached the session (resume window)
    this.together(() => {
      this.sendJson(sessionEventJson('session.created', session, msg.id));
      session.quotaNow(limits);
    });
    this.deps.metrics.sessionStarted(p.account.id);
    this.log('info', 'session created');
  }

  /**
   * Runs `send` with the TCP socket corked, so the frames it sends leave in one write (ws writes
   * each frame on its own, one syscall each). `_socket` is ws's private link to the TCP socket.
   */
  private together(send: () => void): void {
    const tcp = (this.ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    tcp?.cork();
    try {
      send();
    } finally {
      tcp?.uncork();
    }
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
    this.sendJson(sessionEventJson('session.resumed', session, msg.id));
    void session.attach(this);
    for (const id of outcome.lost) {
      session.sendError('internal_error', 'this request was in flight on a replica that went away; send it again', id);
    }
    this.log('info', 'session resumed', { previous: outcome.previous });
    session.quotaNow();
  }

  private bind(session: Session): void {
    this.session = session;
    this.deps.timers.cancel(this);
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
    this.log('warn', 'slow consumer', { buffered_bytes: this.ws.bufferedAmount });
    this.fail(new ParleyError('slow_consumer', `more than ${this.deps.server.maxBufferedBytes} bytes waiting to be sent`));
    this.killTimer = this.deps.scheduler.schedule(() => this.ws.terminate(), this.deps.server.slowConsumerGraceSeconds * 1000);
    return true;
  }

  private internal(err: unknown): ParleyError {
    this.log('error', 'connection pipeline failed', { err });
    return new ParleyError('internal_error', 'internal error', { cause: err });
  }

  /** Releases everything the connection holds. Idempotent. */
  teardown(): void {
    if (this.tornDown) return;
    this.tornDown = true;
    this.closing = true;
    this.dropStage();
    this.deps.timers.cancel(this);
    this.deferred = undefined;
    if (this.session) {
      this.session.detach(this);
      this.session = undefined;
    }
    this.deps.store.release(this.leases, this.id).catch((err: unknown) => this.log('warn', 'could not release connection leases', { err }));
    this.deps.onClosed(this);
  }

  /** For tests: what the connection still holds. */
  holdings(): { subscribed: boolean; startTimer: boolean; session: boolean } {
    return { subscribed: this.stageSub !== undefined && !this.stageSub.closed, startTimer: this.timerIndex >= 0, session: this.session !== undefined };
  }
}
