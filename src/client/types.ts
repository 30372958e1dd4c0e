/**
 * Public types of the Parley client SDK. Server event shapes come from the contract's schemas as
 * type-only imports (erased at build time), so the browser bundle carries no TypeBox or ajv.
 */
import type { RequestId, ServerEventOf, ServerEventType, SessionLimits } from '../protocol/messages.js';
import type { CloseAction } from './close-codes.js';
import type { ParleyClientError } from './errors.js';

export type { RequestId, SessionLimits, ServerEventType };

/** Every server event, keyed by its `type` (CONTRACT.md §5 "Server → client"). */
export type ServerEventMap = { [K in ServerEventType]: ServerEventOf<K> };

/** The `usage` of `session.ended`. */
export type SessionUsage = ServerEventOf<'session.ended'>['usage'];

/** One entry of `quota.updated.limits`. */
export type LimitState = ServerEventOf<'quota.updated'>['limits'][number];

/** One word of an `assessment.result`. */
export type WordScore = ServerEventOf<'assessment.result'>['words'][number];

/**
 * The subset of the WebSocket API the client uses. Both the browser's `WebSocket` and the `ws`
 * package's `WebSocket` satisfy it. Handler parameters are typed `never` on purpose: the two
 * implementations type their event objects differently, and the client reads only `data`,
 * `code` and `reason` from them.
 */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  readonly bufferedAmount: number;
  binaryType: string;
  send(data: string | ArrayBuffer | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: never) => void) | null;
  onmessage: ((ev: never) => void) | null;
  onclose: ((ev: never) => void) | null;
  onerror: ((ev: never) => void) | null;
}

/** A WebSocket constructor: `globalThis.WebSocket` in browsers, `ws`'s `WebSocket` in Node. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** Clock and timers; injectable so tests drive time (defaults: `Date.now`, `setTimeout`). */
export interface ClientTimers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** What `session.start` carries (except `resume_token`, which the client manages). */
export interface SessionOptions {
  /** BCP 47 language the learner practises, e.g. `es`. */
  language: string;
  native_language?: string;
  /** At most 200 characters. */
  scenario?: string;
  voice?: string;
  /** Input audio format; default PCM16 little-endian 16 kHz mono. */
  audio?: { format?: 'pcm16' | 'wav'; sample_rate?: number };
}

/** Automatic reconnect and resume (see docs/client.md "Reconnect"). */
export interface ReconnectOptions {
  /** Default true. When false every close is final. */
  enabled?: boolean;
  /** First backoff step in ms (default 500); attempt n waits up to min(capMs, baseMs * 2^(n-1)). */
  baseMs?: number;
  /** Largest backoff in ms (default 30000). */
  capMs?: number;
  /** A connection open this long (default 5000 ms) resets the attempt counter. */
  stableMs?: number;
  /** Give up after this many consecutive failed attempts (default Infinity). */
  maxAttempts?: number;
  /**
   * A request that was sent on a connection that dropped, and hears nothing for this long after the
   * session resumed, is rejected with `request_lost` (default 60000 ms). The server answers or
   * reports every request it received; this catches one lost in transit before it arrived.
   */
  lostRequestTimeoutMs?: number;
  /**
   * Off by default (0). When > 0, after this many ms of an open session the client sends a `ping`
   * (not activity for the idle timeout) and, if nothing at all arrives within
   * `heartbeatTimeoutMs` of it leaving the queue, treats the socket as dropped (close 1006,
   * reason `heartbeat timeout`) and resumes on a new one. For networks that vanish silently
   * (mobile hand-overs) where the browser would otherwise wait for TCP to give up.
   */
  heartbeatMs?: number;
  /** Default 10000. */
  heartbeatTimeoutMs?: number;
}

/** Client-side pacing of outgoing frames (see docs/client.md "Pacing"). */
export interface PacingOptions {
  /**
   * Fraction of the server's limits kept in reserve (default 0.1): the client's buckets refill at
   * (1 - margin) of `messages_per_second`/`bytes_per_second` and hold (1 - margin) of the bursts.
   */
  margin?: number;
  /** Largest audio frame the client sends (default 32768; never more than `max_frame_bytes`). */
  maxChunkBytes?: number;
}

export interface ParleyClientOptions {
  /** `ws(s)://host/v1/realtime` (the `url` of `POST /v1/tokens`). */
  url: string;
  /**
   * A token opens exactly one connection. A string therefore allows one connection only (no
   * automatic reconnect); a provider function is called for every connection (e.g. it calls the
   * app back end, which calls `POST /v1/tokens`).
   */
  token: string | (() => Promise<string>);
  session: SessionOptions;
  /** Default `globalThis.WebSocket`; pass `ws`'s `WebSocket` in Node. */
  WebSocket?: WebSocketConstructor;
  reconnect?: ReconnectOptions;
  pacing?: PacingOptions;
  timers?: ClientTimers;
  /** Uniform random in [0, 1) for backoff jitter (default `Math.random`). */
  random?: () => number;
  /** Prefix of generated request ids (default `r`); ids are `<prefix><n>` and unique per client. */
  idPrefix?: string;
  /**
   * Barge-in (CONTRACT §6): when the learner starts a new turn (`turnText`, or the first
   * `sendAudio` after a commit or clear) while the tutor's latest reply is still being spoken, the
   * client sends `cancel` for that reply first, so the tutor stops and the history keeps only what
   * the learner heard. `true`: cancel while the reply's audio is still arriving (no `played_ms`).
   * With `playedMs`, the app's player says where playback is (ms from the reply's first audio byte),
   * or `undefined` once playback is over (then nothing is cancelled). Default off.
   */
  bargeIn?: boolean | { playedMs: (requestId: RequestId) => number | undefined };
}

/** How a cancelled turn ended (`request.cancelled`). */
export interface TurnCancellation {
  /** Where the request was when it was cancelled. */
  stage: 'waiting' | 'queued' | 'running' | 'speaking' | 'done';
  /** The reply text the history kept (what the learner heard). */
  keptText: string;
  audioBytesSent: number;
}

/** Session facts from `session.created` / `session.resumed`. */
export interface SessionInfo {
  sessionId: string;
  resumeToken: string;
  /** ISO 8601. */
  expiresAt: string;
  limits: SessionLimits;
  /** True when this connection resumed an existing session. */
  resumed: boolean;
}

/** Reply audio of one turn: PCM16 little-endian mono at `sample_rate`. */
export interface ReplyAudio {
  format: string;
  sample_rate: number;
  /** Total bytes as announced by `reply.audio.end`. */
  bytes: number;
  /** The binary frames in order of arrival. */
  chunks: Uint8Array[];
}

export interface TurnResult {
  requestId: RequestId;
  /** The learner's words (audio turns only; `""` for silence). */
  transcript?: string;
  /** The tutor's reply (when cancelled: the text received until then). */
  text: string;
  audio: ReplyAudio;
  /** Set when the turn was cancelled (`cancel()` or barge-in) before it was answered. */
  cancelled?: TurnCancellation;
}

export interface AssessmentResult {
  requestId: RequestId;
  score: number;
  words: WordScore[];
}

export interface CommitOptions {
  purpose: 'turn' | 'assessment';
  /** Required for an assessment. */
  reference_text?: string;
}

/** Lifecycle of a client. */
export type ClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Why the client will not reconnect although the close code allows it. */
export type ReconnectBlock = 'token_spent' | 'disabled' | 'max_attempts' | 'client_closed' | 'session_gone';

export interface StateEvent {
  state: ClientState;
  previous: ClientState;
}

export interface ReconnectEvent {
  /** 1 for the first attempt after a drop. */
  attempt: number;
  delayMs: number;
  /** The close code that caused it. */
  code: number;
  action: CloseAction;
}

export interface ResumedEvent {
  sessionId: string;
  /** Requests still waiting for an answer after the resume. */
  pending: number;
}

export interface ClosedEvent {
  code: number;
  reason: string;
  action: CloseAction;
  /** Human-readable explanation of the code, for display. */
  message: string;
  /** The `error` event that preceded the close, if any. */
  error?: ParleyClientError;
  /** True when the client reconnects (state `reconnecting`); false when this close is final. */
  willReconnect: boolean;
  /** Set when the action would allow a reconnect but the client cannot or may not. */
  blockedBy?: ReconnectBlock;
}

/** A binary reply-audio frame. */
export interface AudioEvent {
  /** The request whose reply this is (from the preceding `reply.audio.start`). */
  requestId: RequestId | undefined;
  chunk: Uint8Array;
}

/** Every event `on()` accepts: the server events plus the client's own. */
export interface ParleyClientEvents extends ServerEventMap {
  audio: AudioEvent;
  state: StateEvent;
  reconnect: ReconnectEvent;
  resumed: ResumedEvent;
  closed: ClosedEvent;
}

export type ParleyClientEventType = keyof ParleyClientEvents;
