/**
 * The provider seam: one interface per upstream kind (CONTRACT.md §1, §3). Adapters (`simulated`,
 * and the OpenAI-compatible HTTP adapter of the upstream issue) fill it; the session's pipeline only
 * sees these calls. Every call takes an AbortSignal so a closed session cancels its work.
 */

/** A message in the conversation history, in the chat-completions shape. */
export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

/** Raw audio as the session received it. */
export interface AudioInput {
  /** PCM16 little-endian samples (format `pcm16`) or an encoded file (`wav`). */
  readonly data: Buffer;
  readonly format: 'pcm16' | 'wav';
  readonly sampleRate: number;
  readonly channels: number;
}

export interface CallOptions {
  readonly signal?: AbortSignal;
  /** Who the call is for: fairness in the upstream queue, the queue deadline, queue position. */
  readonly context?: CallContext;
}

export interface CallContext {
  readonly accountId: string;
  readonly sessionId: string;
  /** Scheduler time the gateway accepted the request (`maxQueueWaitSeconds` counts from here). */
  readonly acceptedAt: number;
  /**
   * Called when the call has to wait for upstream capacity, and when its position improves; `queue`
   * names the upstream account's queue and its wait budget (for quota.updated).
   */
  readonly onQueued?: (position: number, queue: { readonly name: string; readonly maxQueueWaitSeconds: number }) => void;
  /** Called when an upstream attempt of the call starts (the work has reached the upstream). */
  readonly onStart?: () => void;
}

export interface ConversationRequest {
  readonly language: string;
  readonly nativeLanguage?: string | undefined;
  readonly scenario?: string | undefined;
  /** System prompt first, then the bounded history, then the learner's new turn last. */
  readonly messages: readonly ChatMessage[];
  /** Sent as `max_tokens`: the most completion tokens the reply may use (reserved before the call). */
  readonly maxOutputTokens?: number | undefined;
}

export interface SttRequest {
  readonly audio: AudioInput;
  readonly language: string;
}

export interface TtsRequest {
  readonly text: string;
  readonly voice?: string | undefined;
  readonly language: string;
}

/** Reply audio: raw PCM16 little-endian mono. */
export interface TtsResult {
  readonly audio: Buffer;
  readonly sampleRate: number;
}

export interface PronunciationRequest {
  readonly audio: AudioInput;
  readonly referenceText: string;
  readonly language: string;
}

export interface PronunciationResult {
  /** 0-100 */
  readonly score: number;
  readonly words: readonly { readonly word: string; readonly score: number }[];
}

export interface TranslationRequest {
  readonly text: string;
  readonly sourceLanguage?: string | undefined;
  readonly targetLanguage: string;
}

/** Token counts an upstream reports for a call (OpenAI `usage`). */
export interface ChatUsage {
  readonly promptTokens: number;
  readonly completionTokens: number;
}

/** A whole conversation reply, and its usage when the upstream reported it. */
export interface ChatReply {
  readonly text: string;
  readonly usage?: ChatUsage | undefined;
}

/**
 * Receives reply audio as it arrives: PCM16 little-endian mono at `sampleRate`. Returning a
 * promise asks the producer to wait for it before reading more (backpressure).
 */
export type AudioSink = (chunk: Buffer, sampleRate: number) => void | Promise<void>;

export interface ConversationProvider {
  reply(req: ConversationRequest, opts?: CallOptions): Promise<string>;
  /**
   * Streams the reply (CONTRACT §6): `onDelta` gets each piece of text as it arrives; resolves with
   * the whole reply (and its usage) once the upstream has finished. An answer that does not stream
   * (plain JSON) is one delta.
   */
  stream?(req: ConversationRequest, opts: CallOptions | undefined, onDelta: (text: string) => void): Promise<ChatReply>;
}
export interface SttProvider {
  transcribe(req: SttRequest, opts?: CallOptions): Promise<string>;
}
export interface TtsProvider {
  speak(req: TtsRequest, opts?: CallOptions): Promise<TtsResult>;
  /**
   * Speaks `req.text` (one upstream request), handing the audio to `sink` as the answer body
   * arrives, never waiting for the whole body; resolves once the body has been read.
   */
  stream?(req: TtsRequest, opts: CallOptions | undefined, sink: AudioSink): Promise<void>;
}
export interface PronunciationProvider {
  assess(req: PronunciationRequest, opts?: CallOptions): Promise<PronunciationResult>;
}
export interface TranslationProvider {
  translate(req: TranslationRequest, opts?: CallOptions): Promise<string>;
}

/** One provider per upstream kind. */
export interface Providers {
  readonly conversation: ConversationProvider;
  readonly stt: SttProvider;
  readonly tts: TtsProvider;
  readonly pronunciation: PronunciationProvider;
  readonly translation: TranslationProvider;
}

/** A provider failure the session reports as `upstream_error` (or `upstream_busy`). */
export class UpstreamError extends Error {
  constructor(
    readonly upstream: string,
    message: string,
    readonly status?: number,
    readonly busy = false,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}
