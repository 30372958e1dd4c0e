/**
 * ParleyClient: one learner conversation session over the gateway's WebSocket, in browsers and
 * Node (ESM, no Node-only imports). See docs/client.md.
 */
import type { RequestId } from '../protocol/messages.js';
import type {
  AssessmentResult,
  ClientState,
  CommitOptions,
  ParleyClientEventType,
  ParleyClientEvents,
  ParleyClientOptions,
  SessionInfo,
  SessionLimits,
  SessionUsage,
  TurnResult,
} from './types.js';

export type Handler<K extends ParleyClientEventType> = (event: ParleyClientEvents[K]) => void;

export class ParleyClient {
  constructor(options: ParleyClientOptions) {
    void options;
    throw new Error('ParleyClient: not implemented yet');
  }

  /** Current lifecycle state. */
  get state(): ClientState {
    return 'idle';
  }

  /** The session id once created (kept across resumes). */
  get sessionId(): string | undefined {
    return undefined;
  }

  /** The limits of the latest `session.created`/`session.resumed`. */
  get limits(): SessionLimits | undefined {
    return undefined;
  }

  /** Requests sent or queued and not yet answered. */
  get pendingRequests(): number {
    return 0;
  }

  /** Outgoing frames waiting for pacing tokens or for a connection, and their bytes. */
  get queued(): { frames: number; bytes: number } {
    return { frames: 0, bytes: 0 };
  }

  /**
   * Opens the connection and starts the session; resolves on `session.created` (or
   * `session.resumed` with `{resume: true}` after a final close that left a resume token, e.g.
   * 4031). Rejects with a {@link ParleyClientError} if the first connection fails for good.
   */
  connect(opts?: { resume?: boolean }): Promise<SessionInfo> {
    void opts;
    throw new Error('not implemented');
  }

  /** A text turn: resolves after `reply.audio.end` with the tutor's text and audio. */
  turnText(text: string): Promise<TurnResult> {
    void text;
    throw new Error('not implemented');
  }

  /**
   * Appends audio to the session's input buffer (format of `session.start.audio`, default PCM16
   * 16 kHz mono). Large buffers are cut into frames of at most the pacing chunk size and paced
   * under the server's limits. Resolves once every frame of this call has been handed to the socket.
   */
  sendAudio(audio: Uint8Array | ArrayBuffer | ArrayBufferView): Promise<void> {
    void audio;
    throw new Error('not implemented');
  }

  /** Empties the session's input buffer (`input_audio.clear`). */
  clearAudio(): void {
    throw new Error('not implemented');
  }

  /** Commits the audio sent since the last commit/clear as a turn or an assessment. */
  commitAudio(opts: { purpose: 'turn' }): Promise<TurnResult>;
  commitAudio(opts: { purpose: 'assessment'; reference_text: string }): Promise<AssessmentResult>;
  commitAudio(opts: CommitOptions): Promise<TurnResult | AssessmentResult>;
  commitAudio(opts: CommitOptions): Promise<TurnResult | AssessmentResult> {
    void opts;
    throw new Error('not implemented');
  }

  /** Assesses the audio sent since the last commit against `referenceText`. */
  assess(referenceText: string): Promise<AssessmentResult> {
    void referenceText;
    throw new Error('not implemented');
  }

  /** Translates `text` into `targetLanguage` (BCP 47). */
  translate(text: string, targetLanguage: string, opts?: { sourceLanguage?: string }): Promise<string> {
    void text;
    void targetLanguage;
    void opts;
    throw new Error('not implemented');
  }

  /** Round trip through the gateway; resolves with the round-trip time in ms. */
  ping(): Promise<number> {
    throw new Error('not implemented');
  }

  /** Ends the session (`session.end`); resolves with its usage. The client is then `closed`. */
  end(): Promise<SessionUsage> {
    throw new Error('not implemented');
  }

  /**
   * Closes the socket at once without ending the session (it stays resumable for
   * `resume_window_seconds`); pending requests reject with `connection_closed`. The client is
   * then `closed` and does not reconnect.
   */
  close(): void {
    throw new Error('not implemented');
  }

  /** Subscribes to a server event or a client lifecycle event; returns an unsubscribe function. */
  on<K extends ParleyClientEventType>(type: K, handler: Handler<K>): () => void {
    void type;
    void handler;
    throw new Error('not implemented');
  }

  off<K extends ParleyClientEventType>(type: K, handler: Handler<K>): void {
    void type;
    void handler;
    throw new Error('not implemented');
  }

  /** Subscribes for one event only. */
  once<K extends ParleyClientEventType>(type: K, handler: Handler<K>): () => void {
    void type;
    void handler;
    throw new Error('not implemented');
  }
}

export type { RequestId };
