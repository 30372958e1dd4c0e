/**
 * The contract's error codes and close codes (CONTRACT.md §4, §5 "Close codes", "Error codes").
 * This file is the single source of truth: `docs/protocol.md` lists the same codes and a test keeps
 * both in step (fastify's `lib/errors.js` habit).
 */

/** WebSocket close codes the gateway uses. */
export const CloseCode = {
  normal: 1000,
  /** RFC 6455 framing broken by the client (bad opcode, mask, RSV bits, fragmentation, close code). */
  protocolError: 1002,
  /** Abnormal closure: never sent, reported when a dead peer is dropped without a close frame. */
  abnormal: 1006,
  /** A close frame whose reason is not UTF-8 (RFC 6455 §7.4.1). */
  invalidPayload: 1007,
  policyViolation: 1008,
  messageTooBig: 1009,
  internalError: 1011,
  serviceRestart: 1012,
  tryAgainLater: 1013,
  unauthorized: 4001,
  forbidden: 4003,
  sessionExpired: 4008,
  rateLimited: 4029,
  sessionTakenOver: 4030,
  idleTimeout: 4031,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

export interface ErrorCodeInfo {
  /** Default human message; call sites may give a more specific one. */
  readonly message: string;
  /** The close code that follows this error, when it always closes the connection. */
  readonly closeCode?: CloseCode;
  /** HTTP status when the code is used by the REST API. */
  readonly httpStatus?: number;
  /** What a client should do (docs/protocol.md). */
  readonly advice: string;
}

/** Every `error.code` of the contract, with its message, close code and HTTP status. */
export const ErrorCodes = {
  invalid_message: { message: 'The message is not valid JSON or does not match its schema', advice: 'fix the client; more than 10 within 60 s close the connection with 1008' },
  unknown_type: { message: 'Unknown message type', advice: 'fix the client; counts towards the invalid-message limit' },
  session_not_started: { message: 'Send session.start first', advice: 'send session.start' },
  session_already_started: { message: 'The session is already started on this connection', advice: 'open a new connection for a new session' },
  audio_too_large: { message: 'The utterance is larger than maxUtteranceBytes; the input buffer was cleared', httpStatus: 413, advice: 'commit shorter utterances' },
  text_too_long: { message: 'The text is longer than maxTextChars', httpStatus: 413, advice: 'send shorter text' },
  rate_limited: { message: 'Request rate limit exceeded', httpStatus: 429, advice: 'retry after retry_after_ms' },
  quota_exhausted: { message: 'Daily audio minutes exhausted', httpStatus: 429, advice: 'retry after retry_after_ms (the next UTC day)' },
  upstream_busy: { message: 'The request waited longer than maxQueueWaitSeconds for upstream capacity', httpStatus: 503, advice: 'retry later' },
  upstream_error: { message: 'The upstream provider failed', httpStatus: 502, advice: 'retry the request' },
  unauthorized: { message: 'Missing, invalid, expired or reused credentials', closeCode: CloseCode.unauthorized, httpStatus: 401, advice: 'mint a new token' },
  forbidden: { message: 'Forbidden', closeCode: CloseCode.forbidden, httpStatus: 403, advice: 'stop (origin not allowed: 1008; revoked or ended by the operator: 4003)' },
  connection_limit: { message: 'Too many connections for this key or account', closeCode: CloseCode.rateLimited, httpStatus: 429, advice: 'retry after retry_after_ms' },
  message_rate: { message: 'Too many messages waiting: message rate exceeded', closeCode: CloseCode.rateLimited, advice: 'slow down; retry after retry_after_ms' },
  byte_rate: { message: 'Too many bytes waiting: audio byte rate exceeded', closeCode: CloseCode.rateLimited, advice: 'slow down; retry after retry_after_ms' },
  session_expired: { message: 'The session reached maxSessionSeconds', closeCode: CloseCode.sessionExpired, advice: 'start a new session' },
  idle_timeout: { message: 'Idle timeout', closeCode: CloseCode.idleTimeout, advice: 'start or resume a session' },
  session_taken_over: { message: 'The session was resumed on another connection', closeCode: CloseCode.sessionTakenOver, advice: 'stop using this connection' },
  slow_consumer: { message: 'Too much data waiting to be sent: the client is not reading', closeCode: CloseCode.policyViolation, advice: 'read faster; reconnect and resume' },
  frame_too_large: { message: 'Frame larger than maxFrameBytes', closeCode: CloseCode.messageTooBig, advice: 'send smaller frames' },
  server_draining: { message: 'This replica is shutting down; resume on another', closeCode: CloseCode.serviceRestart, httpStatus: 503, advice: 'reconnect and resume at once' },
  server_full: { message: 'This replica is at its connection limit', closeCode: CloseCode.tryAgainLater, httpStatus: 503, advice: 'retry after retry_after_ms' },
  invalid_request: { message: 'Invalid request', httpStatus: 400, advice: 'fix the request (REST)' },
  protocol_error: {
    message: 'The WebSocket framing broke RFC 6455 (opcode, mask, RSV bits, fragmentation, close frame)',
    closeCode: CloseCode.protocolError,
    advice: 'fix the client, or the proxy in between (1007: a close reason that is not UTF-8)',
  },
  internal_error: { message: 'Internal error', closeCode: CloseCode.internalError, httpStatus: 500, advice: 'reconnect and resume' },
  not_found: { message: 'Not found', httpStatus: 404, advice: 'check the id (REST)' },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ErrorCodes;

export const errorCodeList = Object.keys(ErrorCodes) as ErrorCode[];
export const closeCodeList = Object.values(CloseCode) as CloseCode[];

/**
 * A fault or refusal that the client is told about. It carries its close code (ws habit: the
 * error knows how the connection ends), so every close goes through one function.
 */
export class ParleyError extends Error {
  readonly code: ErrorCode;
  readonly closeCode: CloseCode | undefined;
  readonly retryAfterMs: number | undefined;
  readonly requestId: string | undefined;

  constructor(
    code: ErrorCode,
    message?: string,
    opts: { closeCode?: CloseCode; retryAfterMs?: number; requestId?: string; cause?: unknown } = {},
  ) {
    super(message ?? ErrorCodes[code].message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ParleyError';
    this.code = code;
    const info: ErrorCodeInfo = ErrorCodes[code];
    this.closeCode = 'closeCode' in opts ? opts.closeCode : info.closeCode;
    this.retryAfterMs = opts.retryAfterMs;
    this.requestId = opts.requestId;
  }
}

/** Close reasons are limited to 123 bytes by RFC 6455 §5.5 (125-byte control payload minus the code). */
export function closeReason(text: string): string {
  if (Buffer.byteLength(text) <= 123) return text;
  let out = text.slice(0, 123);
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -1);
  return out;
}
