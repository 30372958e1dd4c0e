import type { RequestId } from '../protocol/messages.js';

/**
 * Codes the client itself produces, beside the contract's `error.code` values:
 * `request_lost` (no answer after a resume), `connection_closed` (the client closed for good
 * with the request unanswered), `not_connected` (a request while the client is idle or closed),
 * `token_error` (the token provider failed), `cancelled` (a request other than a turn was
 * cancelled; a cancelled turn resolves with `cancelled` instead).
 */
export type ClientOnlyErrorCode = 'request_lost' | 'connection_closed' | 'not_connected' | 'token_error' | 'cancelled';

/** A refused or failed request, or the error before a close. */
export class ParleyClientError extends Error {
  /** The contract's `error.code` (e.g. `text_too_long`) or a {@link ClientOnlyErrorCode}. */
  readonly code: string;
  readonly retryAfterMs: number | undefined;
  /** The close code that followed (for errors that closed the connection). */
  readonly closeCode: number | undefined;
  readonly requestId: RequestId | undefined;

  constructor(
    code: string,
    message: string,
    opts: { retryAfterMs?: number | undefined; closeCode?: number | undefined; requestId?: RequestId | undefined } = {},
  ) {
    super(message);
    this.name = 'ParleyClientError';
    this.code = code;
    this.retryAfterMs = opts.retryAfterMs;
    this.closeCode = opts.closeCode;
    this.requestId = opts.requestId;
  }
}
