/**
 * ParleyClient: one learner conversation session over the gateway's WebSocket, in browsers and
 * Node (ESM, no Node-only imports). See docs/client.md.
 *
 * Every outgoing frame (except `session.start`, which opens each connection) goes through one
 * in-order pacing queue (pacing.ts), released only while a session is open, so requests made
 * while the client reconnects simply wait. Answers are matched to requests by `request_id`;
 * a request stays pending across an automatic resume until the server answers it or reports it.
 */
import type { RequestId, ServerEvent, ServerEventOf } from '../protocol/messages.js';
import { Backoff, DEFAULT_BACKOFF } from './backoff.js';
import { closeInfo, reconnects, type CloseAction } from './close-codes.js';
import { Emitter } from './emitter.js';
import { ParleyClientError } from './errors.js';
import { DEFAULT_PACER, Pacer, pacingLimits } from './pacing.js';
import type {
  AssessmentResult,
  ClientState,
  ClientTimers,
  ClosedEvent,
  CommitOptions,
  ParleyClientEventType,
  ParleyClientEvents,
  ParleyClientOptions,
  ReconnectBlock,
  ReplyAudio,
  SessionInfo,
  SessionLimits,
  SessionUsage,
  TurnResult,
  WebSocketConstructor,
  WebSocketLike,
} from './types.js';

export type Handler<K extends ParleyClientEventType> = (event: ParleyClientEvents[K]) => void;

/** WebSocket readyState OPEN (the same in browsers and `ws`). */
const OPEN = 1;
/** Above this many bytes buffered in the socket, frames wait in the pacer instead (kept for a resume). */
const MAX_SOCKET_BUFFER_BYTES = 256 * 1024;
const SOCKET_BUFFER_POLL_MS = 20;
const DEFAULT_LOST_REQUEST_TIMEOUT_MS = 60_000;
const DEFAULT_HEARTBEAT_TIMEOUT_MS = 10_000;

type RequestKind = 'turn' | 'assessment' | 'translate' | 'ping' | 'end';

interface Pending {
  readonly id: RequestId;
  readonly kind: RequestKind;
  readonly resolve: (value: never) => void;
  readonly reject: (err: ParleyClientError) => void;
  /** When the request left the queue (ping's round trip is measured from here). */
  sentAt: number;
  /** Generation of the connection the request went out on; undefined while it waits in the queue. */
  conn: number | undefined;
  transcript?: string;
  text?: string;
  audio?: ReplyAudio;
  lostTimer?: unknown;
}

type OutFrame =
  | { readonly kind: 'text'; readonly data: string; readonly requestId?: RequestId; readonly resetsUtterance?: boolean; readonly heartbeat?: boolean }
  | {
      readonly kind: 'audio';
      readonly data: Uint8Array;
      /** Set on the last frame of a sendAudio() call. */
      readonly done?: { resolve: () => void; reject: (err: ParleyClientError) => void };
    };

const defaultTimers: ClientTimers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof globalThis.setTimeout>),
};

const textEncoder = new TextEncoder();
/** Token alphabet (docs/protocol.md "Connecting"): letters, digits, `-`, `_`, `.`. */
const TOKEN_RE = /^[A-Za-z0-9._-]+$/;

function utf8Bytes(s: string): number {
  // Fast path: ASCII strings are one byte per character.
  return /^[\x00-\x7f]*$/.test(s) ? s.length : textEncoder.encode(s).length;
}

function toBytes(audio: Uint8Array | ArrayBuffer | ArrayBufferView): Uint8Array {
  // A copy: the caller may reuse its buffer (an AudioWorklet does) while frames wait in the queue.
  // isView first: `instanceof ArrayBuffer` fails for buffers from another realm (an iframe).
  if (ArrayBuffer.isView(audio)) return new Uint8Array(audio.buffer.slice(audio.byteOffset, audio.byteOffset + audio.byteLength));
  return new Uint8Array(audio.slice(0));
}

/** Cuts an audio frame into pieces of at most maxBytes (even, so PCM16 samples stay whole); the last keeps `done`. */
function splitAudio(frame: OutFrame, maxBytes: number): { value: OutFrame; bytes: number }[] | undefined {
  if (frame.kind !== 'audio') return undefined;
  const out: { value: OutFrame; bytes: number }[] = [];
  const data = frame.data;
  for (let off = 0; off < data.length; off += maxBytes) {
    const piece = data.subarray(off, Math.min(off + maxBytes, data.length));
    const last = off + maxBytes >= data.length;
    out.push({ value: last && frame.done ? { kind: 'audio', data: piece, done: frame.done } : { kind: 'audio', data: piece }, bytes: piece.length });
  }
  return out;
}

export class ParleyClient {
  private readonly opts: ParleyClientOptions;
  private readonly WS: WebSocketConstructor;
  private readonly timers: ClientTimers;
  private readonly emitter = new Emitter<ParleyClientEvents>();
  private readonly backoff: Backoff;
  private readonly pacer: Pacer<OutFrame>;
  private readonly reconnectEnabled: boolean;
  private readonly maxAttempts: number;
  private readonly lostRequestTimeoutMs: number;
  private readonly heartbeatMs: number;
  private readonly heartbeatTimeoutMs: number;

  private _state: ClientState = 'idle';
  private ws: WebSocketLike | undefined;
  /** Increments per socket, so events of a replaced socket are ignored. */
  private generation = 0;
  private sessionOpen = false;
  private info: SessionInfo | undefined;
  private tokenSpent = false;
  private nextId = 0;
  private startId: RequestId | undefined;
  private startBytes = 0;
  private readonly pending = new Map<RequestId, Pending>();
  /** The request whose reply audio is streaming (binary frames carry no request id). */
  private audioRequest: RequestId | undefined;
  /** Audio frames sent since the last commit/clear: the server clears its buffer on a drop, so they are sent again after a resume. */
  private utterance: Uint8Array[] = [];
  private utteranceBytes = 0;
  /** The last `error` with a `close_code` on the current connection. */
  private closeError: ParleyClientError | undefined;
  /** The latest conversation turn (barge-in cancels it). */
  private lastTurn: RequestId | undefined;
  /** Whether audio of an utterance not yet committed or cleared has been sent. */
  private speaking = false;
  private pumpTimer: unknown;
  private reconnectTimer: unknown;
  private heartbeatTimer: unknown;
  private heartbeatDeadline: unknown;
  /** Ids of heartbeat pings sent and not yet answered; their pongs are not emitted. */
  private readonly heartbeatPongs = new Set<string>();
  private lastCloseCode = 1006;
  private closedByUser = false;
  private ending = false;
  private connecting: { promise: Promise<SessionInfo>; resolve: (i: SessionInfo) => void; reject: (e: ParleyClientError) => void } | undefined;

  constructor(options: ParleyClientOptions) {
    if (typeof options.url !== 'string' || !/^wss?:\/\//.test(options.url)) {
      throw new TypeError(`ParleyClient: "url" must be a ws:// or wss:// URL, got ${JSON.stringify(options.url)}`);
    }
    if (typeof options.token !== 'string' && typeof options.token !== 'function') {
      throw new TypeError('ParleyClient: "token" must be a string or a function returning a promise of one');
    }
    if (typeof options.session?.language !== 'string') {
      throw new TypeError('ParleyClient: "session.language" is required (BCP 47, e.g. "es")');
    }
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (WS === undefined) {
      throw new TypeError('ParleyClient: no global WebSocket; pass one as the "WebSocket" option (in Node: import { WebSocket } from "ws")');
    }
    this.opts = options;
    this.WS = WS;
    this.timers = options.timers ?? defaultTimers;
    const r = options.reconnect ?? {};
    this.reconnectEnabled = r.enabled ?? true;
    this.maxAttempts = r.maxAttempts ?? Infinity;
    this.lostRequestTimeoutMs = r.lostRequestTimeoutMs ?? DEFAULT_LOST_REQUEST_TIMEOUT_MS;
    this.heartbeatMs = r.heartbeatMs ?? 0;
    this.heartbeatTimeoutMs = r.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
    this.backoff = new Backoff(
      { baseMs: r.baseMs ?? DEFAULT_BACKOFF.baseMs, capMs: r.capMs ?? Math.max(DEFAULT_BACKOFF.capMs, r.baseMs ?? 0), stableMs: r.stableMs ?? DEFAULT_BACKOFF.stableMs },
      options.random ?? Math.random,
    );
    this.pacer = new Pacer<OutFrame>({
      margin: options.pacing?.margin ?? DEFAULT_PACER.margin,
      maxChunkBytes: options.pacing?.maxChunkBytes ?? DEFAULT_PACER.maxChunkBytes,
    });
  }

  /** Current lifecycle state. */
  get state(): ClientState {
    return this._state;
  }

  /** The session id once created (kept across resumes). */
  get sessionId(): string | undefined {
    return this.info?.sessionId;
  }

  /** The latest session facts (`session.created`/`session.resumed`). */
  get session(): SessionInfo | undefined {
    return this.info;
  }

  /** The limits of the latest `session.created`/`session.resumed`. */
  get limits(): SessionLimits | undefined {
    return this.info?.limits;
  }

  /** Requests sent or queued and not yet answered. */
  get pendingRequests(): number {
    return this.pending.size;
  }

  /** Outgoing frames waiting for pacing tokens or for a connection, and their bytes. */
  get queued(): { frames: number; bytes: number } {
    return { frames: this.pacer.size, bytes: this.pacer.waitingBytes };
  }

  /**
   * Opens the connection and starts the session; resolves on `session.created` (or
   * `session.resumed` with `{resume: true}` after a final close that left a resume token, e.g.
   * 4031). Rejects with a {@link ParleyClientError} if the client gives up before a session opens.
   * While connecting or open it returns the same promise / the current session.
   */
  connect(opts: { resume?: boolean } = {}): Promise<SessionInfo> {
    if (this.connecting) return this.connecting.promise;
    if (this._state === 'open' && this.info) return Promise.resolve(this.info);
    if (this._state === 'reconnecting') return this.waitForOpen();
    if (opts.resume !== true) {
      this.info = undefined;
      this.utterance = [];
      this.utteranceBytes = 0;
    } else if (this.info === undefined) {
      return Promise.reject(new ParleyClientError('not_connected', 'connect({resume: true}): there is no session to resume'));
    }
    this.closedByUser = false;
    this.ending = false;
    this.backoff.reset();
    const promise = this.waitForOpen();
    this.setState('connecting');
    void this.open();
    return promise;
  }

  /** A text turn: resolves after `reply.audio.end` with the tutor's text and audio. */
  turnText(text: string): Promise<TurnResult> {
    this.bargeIn();
    return this.request<TurnResult>('turn', (id) => ({ type: 'turn.text', id, text }), false, true);
  }

  /**
   * Cancels a request wherever it is (CONTRACT §6 `cancel`): waiting, queued, running, or while its
   * reply is spoken; also the latest reply after it ended, to keep only what the learner heard in
   * the history. `playedMs`: the learner's playback position in that request's reply audio (ms from
   * its first byte). The request's promise then resolves with `cancelled` (a turn) or rejects with
   * code `cancelled` (other requests). Sent ahead of frames still waiting to go out.
   */
  cancel(requestId: RequestId, opts: { playedMs?: number } = {}): void {
    if (this.refuseIfClosed()) return;
    const played = opts.playedMs;
    const msg = { type: 'cancel', request_id: requestId, ...(played !== undefined && Number.isFinite(played) ? { played_ms: Math.max(0, played) } : {}) };
    const data = JSON.stringify(msg);
    this.pacer.unshift([{ value: { kind: 'text', data } as OutFrame, bytes: utf8Bytes(data) }]);
    this.pump();
  }

  /** Barge-in: a new turn while the latest reply is still spoken cancels that reply first. */
  private bargeIn(): void {
    const option = this.opts.bargeIn;
    const last = this.lastTurn;
    if (!option || last === undefined) return;
    if (typeof option === 'object') {
      const played = option.playedMs(last);
      if (played === undefined) return; // playback is over: nothing to stop
      this.lastTurn = undefined;
      this.cancel(last, { playedMs: played });
      return;
    }
    if (!this.pending.has(last)) return; // its audio has all arrived: nothing left to stop
    this.lastTurn = undefined;
    this.cancel(last);
  }

  /**
   * Appends audio to the session's input buffer (format of `session.start.audio`, default PCM16
   * 16 kHz mono). Large buffers are cut into frames of at most the pacing chunk size and paced
   * under the server's limits. Resolves once every frame of this call has been handed to the socket.
   */
  sendAudio(audio: Uint8Array | ArrayBuffer | ArrayBufferView): Promise<void> {
    const refused = this.refuseIfClosed();
    if (refused) return Promise.reject(refused);
    const bytes = toBytes(audio);
    if (bytes.length === 0) return Promise.resolve();
    // The first audio of a new utterance: the learner started talking (barge-in).
    if (!this.speaking) {
      this.speaking = true;
      this.bargeIn();
    }
    return new Promise<void>((resolve, reject) => {
      const size = this.pacer.chunkBytes;
      for (let off = 0; off < bytes.length; off += size) {
        const data = bytes.subarray(off, Math.min(off + size, bytes.length));
        const last = off + size >= bytes.length;
        this.pacer.enqueue(last ? { kind: 'audio', data, done: { resolve, reject } } : { kind: 'audio', data }, data.length);
      }
      this.pump();
    });
  }

  /** Empties the session's input buffer (`input_audio.clear`). */
  clearAudio(): void {
    if (this.refuseIfClosed()) return;
    this.speaking = false;
    this.enqueueText({ type: 'input_audio.clear' }, undefined, true);
  }

  /** Commits the audio sent since the last commit/clear as a turn or an assessment. */
  commitAudio(opts: { purpose: 'turn' }): Promise<TurnResult>;
  commitAudio(opts: { purpose: 'assessment'; reference_text: string }): Promise<AssessmentResult>;
  commitAudio(opts: CommitOptions): Promise<TurnResult | AssessmentResult>;
  commitAudio(opts: CommitOptions): Promise<TurnResult | AssessmentResult> {
    const kind: RequestKind = opts.purpose === 'assessment' ? 'assessment' : 'turn';
    this.speaking = false;
    return this.request<TurnResult | AssessmentResult>(
      kind,
      (id) => ({
        type: 'input_audio.commit',
        id,
        purpose: opts.purpose,
        ...(opts.reference_text !== undefined ? { reference_text: opts.reference_text } : {}),
      }),
      true,
      kind === 'turn',
    );
  }

  /** Assesses the audio sent since the last commit against `referenceText`. */
  assess(referenceText: string): Promise<AssessmentResult> {
    return this.commitAudio({ purpose: 'assessment', reference_text: referenceText });
  }

  /** Translates `text` into `targetLanguage` (BCP 47). */
  translate(text: string, targetLanguage: string, opts: { sourceLanguage?: string } = {}): Promise<string> {
    return this.request<string>('translate', (id) => ({
      type: 'translate',
      id,
      text,
      target_language: targetLanguage,
      ...(opts.sourceLanguage !== undefined ? { source_language: opts.sourceLanguage } : {}),
    }));
  }

  /** Round trip through the gateway; resolves with the round-trip time in ms. */
  ping(): Promise<number> {
    return this.request<number>('ping', (id) => ({ type: 'ping', id }));
  }

  /** Ends the session (`session.end`); resolves with its usage. The client is then `closed`. */
  end(): Promise<SessionUsage> {
    const p = this.request<SessionUsage>('end', (id) => ({ type: 'session.end', id }));
    // Set after request(): refuseIfClosed() refuses new requests once the session is ending.
    if (this._state !== 'idle' && this._state !== 'closed') this.ending = true;
    return p;
  }

  /**
   * Closes the socket at once without ending the session (it stays resumable for
   * `resume_window_seconds`); pending requests reject with `connection_closed`. The client is
   * then `closed` and does not reconnect.
   */
  close(): void {
    if (this._state === 'closed' || this._state === 'idle') return;
    this.closedByUser = true;
    // finish() closes the socket; the server sees a drop and keeps the session for a resume.
    this.finish({ code: 1000, reason: 'client closed', action: 'stop', message: 'Closed by the client.', willReconnect: false, blockedBy: 'client_closed' });
  }

  /** Subscribes to a server event or a client lifecycle event; returns an unsubscribe function. */
  on<K extends ParleyClientEventType>(type: K, handler: Handler<K>): () => void {
    return this.emitter.on(type, handler);
  }

  off<K extends ParleyClientEventType>(type: K, handler: Handler<K>): void {
    this.emitter.off(type, handler);
  }

  /** Subscribes for one event only. */
  once<K extends ParleyClientEventType>(type: K, handler: Handler<K>): () => void {
    return this.emitter.once(type, handler);
  }

  // ---- requests ---------------------------------------------------------------------------------

  private newId(): string {
    this.nextId += 1;
    return `${this.opts.idPrefix ?? 'r'}${this.nextId}`;
  }

  private refuseIfClosed(): ParleyClientError | undefined {
    if (this._state === 'idle' || this._state === 'closed') {
      return new ParleyClientError('not_connected', `the client is ${this._state}; call connect() first`);
    }
    if (this.ending) return new ParleyClientError('not_connected', 'the session is ending');
    return undefined;
  }

  private request<T>(kind: RequestKind, build: (id: RequestId) => Record<string, unknown>, resetsUtterance = false, isTurn = false): Promise<T> {
    const refused = this.refuseIfClosed();
    if (refused) return Promise.reject(refused);
    const id = this.newId();
    if (isTurn) this.lastTurn = id;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, {
        id,
        kind,
        resolve: resolve as (value: never) => void,
        reject,
        sentAt: this.timers.now(),
        conn: undefined,
      });
      this.enqueueText(build(id), id, resetsUtterance);
    });
  }

  private enqueueText(msg: Record<string, unknown>, requestId: RequestId | undefined, resetsUtterance = false): void {
    const data = JSON.stringify(msg);
    const heartbeat = msg.type === 'ping' && typeof msg.id === 'string' && this.heartbeatPongs.has(msg.id);
    const frame: OutFrame = {
      kind: 'text',
      data,
      ...(requestId !== undefined ? { requestId } : {}),
      ...(resetsUtterance ? { resetsUtterance } : {}),
      ...(heartbeat ? { heartbeat } : {}),
    };
    this.pacer.enqueue(frame, utf8Bytes(data));
    this.pump();
  }

  private settle(id: RequestId, value: unknown): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    if (p.lostTimer !== undefined) this.timers.clearTimeout(p.lostTimer);
    if (this.audioRequest === id) this.audioRequest = undefined;
    (p.resolve as (v: unknown) => void)(value);
  }

  private fail(id: RequestId, err: ParleyClientError): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    if (p.lostTimer !== undefined) this.timers.clearTimeout(p.lostTimer);
    if (this.audioRequest === id) this.audioRequest = undefined;
    p.reject(err);
  }

  /** Any event for a request proves it is alive: restart its lost-request timer. */
  private touch(p: Pending): void {
    if (p.lostTimer === undefined) return;
    this.timers.clearTimeout(p.lostTimer);
    this.armLostTimer(p);
  }

  private armLostTimer(p: Pending): void {
    p.lostTimer = this.timers.setTimeout(() => {
      p.lostTimer = undefined;
      this.fail(
        p.id,
        new ParleyClientError('request_lost', `no answer to request ${String(p.id)} within ${this.lostRequestTimeoutMs} ms after the session resumed; send it again`, {
          requestId: p.id,
        }),
      );
    }, this.lostRequestTimeoutMs);
  }

  // ---- pacing -----------------------------------------------------------------------------------

  /** Sends what the pacer releases now and schedules the next release. */
  private pump(): void {
    if (this.pumpTimer !== undefined) {
      this.timers.clearTimeout(this.pumpTimer);
      this.pumpTimer = undefined;
    }
    const ws = this.ws;
    if (ws === undefined || !this.sessionOpen || ws.readyState !== OPEN) return;
    if (ws.bufferedAmount > MAX_SOCKET_BUFFER_BYTES) {
      // A slow uplink: keep frames here, where a resume can still send them, not in the socket.
      this.pumpTimer = this.timers.setTimeout(() => this.pump(), SOCKET_BUFFER_POLL_MS);
      return;
    }
    const now = this.timers.now();
    for (const frame of this.pacer.take(now)) this.transmit(ws, frame);
    const wait = this.pacer.waitMs(now);
    if (wait !== undefined) {
      this.pumpTimer = this.timers.setTimeout(() => {
        this.pumpTimer = undefined;
        this.pump();
      }, wait);
    }
  }

  private transmit(ws: WebSocketLike, frame: OutFrame): void {
    ws.send(frame.data);
    if (frame.kind === 'audio') {
      this.utterance.push(frame.data);
      this.utteranceBytes += frame.data.length;
      const max = this.info?.limits.max_utterance_bytes;
      if (max !== undefined && this.utteranceBytes > max) {
        // The server refuses this utterance anyway (audio_too_large clears its buffer).
        this.utterance = [];
        this.utteranceBytes = 0;
      }
      frame.done?.resolve();
      return;
    }
    if (frame.resetsUtterance) {
      this.utterance = [];
      this.utteranceBytes = 0;
    }
    if (frame.heartbeat) this.onHeartbeatSent();
    if (frame.requestId !== undefined) {
      const p = this.pending.get(frame.requestId);
      if (p !== undefined) {
        p.conn = this.generation;
        p.sentAt = this.timers.now();
      }
    }
  }

  // ---- connection -------------------------------------------------------------------------------

  private waitForOpen(): Promise<SessionInfo> {
    if (this.connecting) return this.connecting.promise;
    let resolve!: (i: SessionInfo) => void;
    let reject!: (e: ParleyClientError) => void;
    const promise = new Promise<SessionInfo>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.connecting = { promise, resolve, reject };
    return promise;
  }

  private setState(state: ClientState): void {
    const previous = this._state;
    if (previous === state) return;
    this._state = state;
    this.emitter.emit('state', { state, previous });
  }

  private async open(): Promise<void> {
    // The first connection of a connect() call; later ones happen in state `reconnecting`.
    const first = this._state === 'connecting';
    let token: string;
    const source = this.opts.token;
    try {
      if (typeof source === 'string') {
        if (this.tokenSpent) {
          this.finish(this.closedEvent(this.lastCloseCode, '', 'token_spent'));
          return;
        }
        token = source;
      } else {
        token = await source();
      }
      // Tokens travel as a subprotocol name (CONTRACT.md §5): anything else cannot even be offered.
      if (typeof token !== 'string' || !TOKEN_RE.test(token)) {
        throw new Error(typeof token === 'string' && token.length > 0 ? 'the token has characters a subprotocol cannot carry' : 'no token');
      }
    } catch (err) {
      if (this._state === 'closed') return;
      const message = `token provider failed: ${err instanceof Error ? err.message : String(err)}`;
      if (first || typeof source === 'string') {
        this.finish({ code: 1006, reason: message, action: 'new_token', message, willReconnect: false, error: new ParleyClientError('token_error', message) });
      } else {
        this.scheduleReconnect(this.lastCloseCode, 'new_token', undefined);
      }
      return;
    }
    if (this._state === 'closed') return;
    this.tokenSpent = true;
    this.generation += 1;
    const gen = this.generation;
    this.closeError = undefined;
    let ws: WebSocketLike;
    try {
      ws = new this.WS(this.opts.url, ['parley.v1', `parley.token.${token}`]);
    } catch (err) {
      // A malformed URL or token throws synchronously (SyntaxError): no retry can fix that.
      const message = `cannot open the WebSocket: ${err instanceof Error ? err.message : String(err)}`;
      this.finish({ code: 1006, reason: message, action: 'fix_client', message, willReconnect: false, error: new ParleyClientError('connection_closed', message) });
      return;
    }
    this.ws = ws;
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      if (gen === this.generation) this.onOpen(ws);
    };
    ws.onmessage = (ev: { data: unknown }) => {
      if (gen === this.generation) this.onMessage(ev.data);
    };
    ws.onclose = (ev: { code?: number; reason?: string }) => {
      if (gen === this.generation) this.onClose(ev.code ?? 1006, typeof ev.reason === 'string' ? ev.reason : '');
    };
    ws.onerror = () => {
      // A close event always follows; the close code carries the information.
    };
  }

  private onOpen(ws: WebSocketLike): void {
    const s = this.opts.session;
    const resumeToken = this.info?.resumeToken;
    this.startId = this.newId();
    const msg: Record<string, unknown> =
      resumeToken !== undefined
        ? { type: 'session.start', id: this.startId, resume_token: resumeToken }
        : {
            type: 'session.start',
            id: this.startId,
            language: s.language,
            ...(s.native_language !== undefined ? { native_language: s.native_language } : {}),
            ...(s.scenario !== undefined ? { scenario: s.scenario } : {}),
            ...(s.voice !== undefined ? { voice: s.voice } : {}),
            ...(s.audio !== undefined ? { audio: s.audio } : {}),
          };
    const data = JSON.stringify(msg);
    this.startBytes = utf8Bytes(data);
    ws.send(data);
  }

  private onMessage(data: unknown): void {
    this.heard();
    if (typeof data === 'string') {
      let event: ServerEvent;
      try {
        event = JSON.parse(data) as ServerEvent;
      } catch {
        return; // The gateway only sends JSON; a proxy's garbage is not ours to act on.
      }
      if (event === null || typeof event !== 'object' || typeof event.type !== 'string') return;
      // The pong of our own heartbeat is not the app's business.
      if (event.type === 'pong' && typeof event.request_id === 'string' && this.heartbeatPongs.delete(event.request_id)) return;
      this.handleEvent(event);
      return;
    }
    let chunk: Uint8Array;
    if (data instanceof ArrayBuffer) chunk = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) chunk = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else return;
    const requestId = this.audioRequest;
    if (requestId !== undefined) {
      const p = this.pending.get(requestId);
      if (p?.audio !== undefined) p.audio.chunks.push(chunk);
    }
    this.emitter.emit('audio', { requestId, chunk });
  }

  private handleEvent(event: ServerEvent): void {
    if (event.type === 'error') {
      // Emitted first: an error may close the client, and its `closed` event should come after.
      this.emitter.emit('error', event);
      this.onError(event);
      return;
    }
    switch (event.type) {
      case 'session.created':
      case 'session.resumed':
        this.onSession(event);
        break;
      case 'transcript': {
        const p = this.pending.get(event.request_id);
        if (p) {
          p.transcript = event.text;
          this.touch(p);
        }
        break;
      }
      case 'reply.text': {
        const p = this.pending.get(event.request_id);
        if (p) {
          p.text = event.text;
          this.touch(p);
        }
        break;
      }
      case 'reply.audio.start': {
        this.audioRequest = event.request_id;
        const p = this.pending.get(event.request_id);
        if (p) {
          p.audio = { format: event.format, sample_rate: event.sample_rate, bytes: 0, chunks: [] };
          this.touch(p);
        }
        break;
      }
      case 'reply.audio.end': {
        if (this.audioRequest === event.request_id) this.audioRequest = undefined;
        const p = this.pending.get(event.request_id);
        if (p) {
          const audio = p.audio ?? { format: 'pcm16', sample_rate: 0, bytes: 0, chunks: [] };
          audio.bytes = event.bytes;
          const result: TurnResult = { requestId: p.id, text: p.text ?? '', audio, ...(p.transcript !== undefined ? { transcript: p.transcript } : {}) };
          this.settle(p.id, result);
        }
        break;
      }
      case 'assessment.result': {
        const result: AssessmentResult = { requestId: event.request_id, score: event.score, words: event.words };
        this.settle(event.request_id, result);
        break;
      }
      case 'translation.result':
        this.settle(event.request_id, event.text);
        break;
      case 'pong':
        if (event.request_id !== undefined) {
          const p = this.pending.get(event.request_id);
          if (p) this.settle(p.id, Math.max(0, this.timers.now() - p.sentAt));
        }
        break;
      case 'session.ended':
        if (event.request_id !== undefined) this.settle(event.request_id, event.usage);
        break;
      case 'request.cancelled': {
        const p = this.pending.get(event.request_id);
        if (p?.kind === 'turn') {
          const audio = p.audio ?? { format: 'pcm16', sample_rate: 0, bytes: 0, chunks: [] };
          audio.bytes = event.audio_bytes_sent;
          const result: TurnResult = {
            requestId: p.id,
            text: p.text ?? '',
            audio,
            ...(p.transcript !== undefined ? { transcript: p.transcript } : {}),
            cancelled: { stage: event.stage, keptText: event.kept_text, audioBytesSent: event.audio_bytes_sent },
          };
          this.settle(p.id, result);
        } else if (p) {
          this.fail(p.id, new ParleyClientError('cancelled', 'the request was cancelled', { requestId: p.id }));
        }
        break;
      }
      case 'reply.text.delta': {
        const p = this.pending.get(event.request_id);
        if (p) {
          p.text = (p.text ?? '') + event.delta;
          this.touch(p);
        }
        break;
      }
      case 'request.queued': {
        const p = this.pending.get(event.request_id);
        if (p) this.touch(p);
        break;
      }
      default:
        break;
    }
    // Emitted after the client's own bookkeeping, so a handler sees a settled state.
    this.emitter.emit(event.type, event as never);
  }

  private onSession(event: ServerEventOf<'session.created'> | ServerEventOf<'session.resumed'>): void {
    const resumed = event.type === 'session.resumed';
    this.info = { sessionId: event.session_id, resumeToken: event.resume_token, expiresAt: event.expires_at, limits: event.limits, resumed };
    const now = this.timers.now();
    this.pacer.configure(pacingLimits(event.limits), now, { frames: 1, bytes: this.startBytes });
    this.sessionOpen = true;
    this.backoff.opened(now);
    this.startHeartbeat();
    if (resumed) {
      // The server emptied the input buffer at the drop: send the unfinished utterance again first.
      if (this.utterance.length > 0) {
        this.pacer.unshift(this.utterance.map((data) => ({ value: { kind: 'audio', data } as OutFrame, bytes: data.length })));
        this.utterance = [];
        this.utteranceBytes = 0;
      }
      for (const p of this.pending.values()) {
        if (p.conn !== undefined && p.conn !== this.generation) this.armLostTimer(p);
      }
    }
    // Frames cut before the limits were known may exceed max_frame_bytes.
    this.pacer.rechunk(this.pacer.chunkBytes, splitAudio);
    this.setState('open');
    const connecting = this.connecting;
    this.connecting = undefined;
    connecting?.resolve(this.info);
    if (resumed) this.emitter.emit('resumed', { sessionId: event.session_id, pending: this.pending.size });
    this.pump();
  }

  private onError(event: ServerEventOf<'error'>): void {
    const err = new ParleyClientError(event.code, event.message, {
      retryAfterMs: event.retry_after_ms,
      closeCode: event.close_code,
      requestId: event.request_id,
    });
    if (event.close_code !== undefined) this.closeError = err;
    const id = event.request_id;
    if (id !== undefined && id === this.startId && !this.sessionOpen) {
      this.onStartRefused(err);
      return;
    }
    if (id !== undefined) this.fail(id, err);
  }

  /**
   * `session.start` was refused without a close. An expired resume token means the session is
   * gone (final, `new_session`); a quota (`rate_limited` on `conversation.start`) or a store fault
   * (`internal_error`) is retried on a new connection after `retry_after_ms` / the backoff; anything
   * else is a client bug (`fix_client`, final).
   */
  private onStartRefused(err: ParleyClientError): void {
    if (err.closeCode !== undefined) return; // the close follows and decides
    const gone = err.code === 'session_expired';
    const retry = err.code === 'rate_limited' || err.code === 'internal_error';
    const action: CloseAction = gone ? 'new_session' : retry ? 'retry' : 'fix_client';
    const message = gone
      ? 'The session could not be resumed (resume window passed or session ended). Start a new session.'
      : `session.start was refused: ${err.message}`;
    const base = { code: 1000, reason: err.code, action, message, error: err };
    if (retry) {
      const blockedBy = this.reconnectBlock();
      if (blockedBy === undefined) {
        this.detachSocket(true);
        this.emitter.emit('closed', { ...base, willReconnect: true });
        this.scheduleReconnect(1000, action, err.retryAfterMs);
        return;
      }
      this.finish({ ...base, willReconnect: false, blockedBy });
      return;
    }
    this.finish({ ...base, willReconnect: false, ...(gone ? { blockedBy: 'session_gone' as const } : {}) });
  }

  private onClose(code: number, reason: string): void {
    this.detachSocket(false);
    this.afterClose(code, reason);
  }

  /**
   * Forgets the current socket: its late events are ignored (new generation), its pacing limits
   * and timers are dropped. `closeIt` closes it too (the client gives up on it, e.g. a silent
   * socket or a refused session.start).
   */
  private detachSocket(closeIt: boolean): void {
    const ws = this.ws;
    this.ws = undefined;
    this.generation += 1;
    this.sessionOpen = false;
    this.pacer.unconfigure();
    if (this.pumpTimer !== undefined) {
      this.timers.clearTimeout(this.pumpTimer);
      this.pumpTimer = undefined;
    }
    this.stopHeartbeat();
    this.backoff.closed(this.timers.now());
    // Lost-request timers run only while a resumed session could answer; re-armed on resume.
    for (const p of this.pending.values()) {
      if (p.lostTimer !== undefined) {
        this.timers.clearTimeout(p.lostTimer);
        p.lostTimer = undefined;
      }
    }
    if (closeIt && ws !== undefined) {
      try {
        ws.close(1000, 'client gave up on this connection');
      } catch {
        // already closing
      }
    }
  }

  /** The close-code policy, after the socket is gone. */
  private afterClose(code: number, reason: string): void {
    this.lastCloseCode = code;
    if (this._state === 'closed') return;
    const error = this.closeError;
    this.closeError = undefined;
    if (this.ending || this.closedByUser) {
      this.finish({ code, reason, action: 'stop', message: closeInfo(code).message, willReconnect: false, ...(error ? { error } : {}) });
      return;
    }
    const { action, message } = closeInfo(code, error?.code);
    if (!reconnects(action)) {
      this.finish({ code, reason, action, message, willReconnect: false, ...(error ? { error } : {}) });
      return;
    }
    const blockedBy = this.reconnectBlock();
    if (blockedBy !== undefined) {
      this.finish({ code, reason, action, message, willReconnect: false, blockedBy, ...(error ? { error } : {}) });
      return;
    }
    this.emitter.emit('closed', { code, reason, action, message, willReconnect: true, ...(error ? { error } : {}) });
    this.scheduleReconnect(code, action, error?.retryAfterMs);
  }

  // ---- heartbeat ----------------------------------------------------------------------------------

  private startHeartbeat(): void {
    this.stopHeartbeat();
    if (!(this.heartbeatMs > 0)) return;
    this.heartbeatTimer = this.timers.setTimeout(() => {
      this.heartbeatTimer = undefined;
      if (!this.sessionOpen) return;
      // Queued like any frame; its deadline starts when it leaves (see transmit), so a long
      // paced upload ahead of it cannot make a healthy connection look dead.
      const id = `${this.opts.idPrefix ?? 'r'}hb${++this.nextId}`;
      this.heartbeatPongs.add(id);
      this.enqueueText({ type: 'ping', id }, undefined);
    }, this.heartbeatMs);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer !== undefined) this.timers.clearTimeout(this.heartbeatTimer);
    if (this.heartbeatDeadline !== undefined) this.timers.clearTimeout(this.heartbeatDeadline);
    this.heartbeatTimer = this.heartbeatDeadline = undefined;
  }

  /** Anything from the server proves the connection alive. */
  private heard(): void {
    if (this.heartbeatDeadline === undefined) return;
    this.timers.clearTimeout(this.heartbeatDeadline);
    this.heartbeatDeadline = undefined;
    this.startHeartbeat();
  }

  private onHeartbeatSent(): void {
    this.heartbeatDeadline = this.timers.setTimeout(() => {
      this.heartbeatDeadline = undefined;
      // A silent socket (e.g. the network vanished without a FIN): treat it as a drop.
      this.detachSocket(true);
      this.afterClose(1006, 'heartbeat timeout');
    }, this.heartbeatTimeoutMs);
  }

  private reconnectBlock(): ReconnectBlock | undefined {
    if (!this.reconnectEnabled) return 'disabled';
    if (typeof this.opts.token === 'string') return 'token_spent';
    if (this.backoff.attempts >= this.maxAttempts) return 'max_attempts';
    return undefined;
  }

  private scheduleReconnect(code: number, action: CloseAction, retryAfterMs: number | undefined): void {
    const blockedBy = this.reconnectBlock();
    if (blockedBy !== undefined) {
      this.finish(this.closedEvent(code, '', blockedBy));
      return;
    }
    const step = this.backoff.next({ retryAfterMs, immediate: action === 'resume' });
    this.setState('reconnecting');
    this.emitter.emit('reconnect', { attempt: step.attempt, delayMs: step.delayMs, code, action });
    this.reconnectTimer = this.timers.setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this._state === 'reconnecting') void this.open();
    }, step.delayMs);
  }

  private closedEvent(code: number, reason: string, blockedBy: ReconnectBlock): ClosedEvent {
    const { action, message } = closeInfo(code);
    return { code, reason, action, message, willReconnect: false, blockedBy };
  }

  /** The client is done: everything still waiting is rejected, once. */
  private finish(event: ClosedEvent): void {
    if (this._state === 'closed') return;
    if (this.reconnectTimer !== undefined) {
      this.timers.clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
    }
    if (this.pumpTimer !== undefined) {
      this.timers.clearTimeout(this.pumpTimer);
      this.pumpTimer = undefined;
    }
    this.stopHeartbeat();
    this.heartbeatPongs.clear();
    const ws = this.ws;
    this.ws = undefined;
    this.generation += 1; // late events of the old socket are ignored
    this.sessionOpen = false;
    this.pacer.unconfigure();
    if (ws !== undefined && ws.readyState <= OPEN) {
      try {
        ws.close(1000, 'client done');
      } catch {
        // already closing
      }
    }
    const err =
      event.error ??
      new ParleyClientError('connection_closed', `${event.message} (close ${event.code})`, { closeCode: event.code });
    const requestError = (id: RequestId): ParleyClientError =>
      new ParleyClientError(err.code, err.message, { retryAfterMs: err.retryAfterMs, closeCode: event.code, requestId: id });
    for (const id of [...this.pending.keys()]) this.fail(id, requestError(id));
    for (const frame of this.pacer.clear()) {
      if (frame.kind === 'audio') frame.done?.reject(new ParleyClientError(err.code, err.message, { closeCode: event.code }));
    }
    this.utterance = [];
    this.utteranceBytes = 0;
    this.audioRequest = undefined;
    this.ending = false;
    this.setState('closed');
    this.emitter.emit('closed', event);
    const connecting = this.connecting;
    this.connecting = undefined;
    connecting?.reject(new ParleyClientError(err.code, err.message, { retryAfterMs: err.retryAfterMs, closeCode: event.code }));
  }
}

export type { RequestId };
