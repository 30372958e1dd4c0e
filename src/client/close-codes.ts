/**
 * What the client does after each close code of the contract (CONTRACT.md §5 "Close codes").
 * Plain data with no runtime import from src/protocol (that module calls a Node-only API); a unit
 * test checks this table against `src/protocol/codes.ts` so a new contract code cannot be missed.
 */

/**
 * - `retry`: reconnect after `retry_after_ms` (or the backoff) and resume the same session.
 * - `resume`: reconnect at once (fresh token) and resume the same session.
 * - `new_token`: fetch a new token, then retry with backoff and resume.
 * - `new_session`: this session cannot continue here; the client stops, the app may start a new one.
 * - `stop`: do not reconnect (ended normally, by the operator, or taken over elsewhere).
 * - `fix_client`: the client broke the protocol; reconnecting would repeat it.
 */
export type CloseAction = 'retry' | 'resume' | 'new_token' | 'new_session' | 'stop' | 'fix_client';

export interface CloseCodeInfo {
  readonly action: CloseAction;
  /** Human-readable, for display (the demo shows it). */
  readonly message: string;
}

/** Every close code of the contract, and what the client does about it. */
export const CLOSE_CODES = {
  1000: { action: 'stop', message: 'The session ended normally.' },
  1002: { action: 'fix_client', message: 'The WebSocket frames broke the protocol (RFC 6455); a client or proxy bug. Reconnecting would repeat it.' },
  1006: { action: 'retry', message: 'The connection dropped without a close frame (network or dead peer); reconnecting to resume the session.' },
  1007: { action: 'fix_client', message: 'A close frame carried a reason that is not UTF-8; a client bug.' },
  1008: { action: 'fix_client', message: 'Policy violation: origin not allowed or repeated invalid messages. Reconnecting would not help.' },
  1009: { action: 'fix_client', message: 'A frame was larger than max_frame_bytes. Send smaller frames.' },
  1011: { action: 'retry', message: 'Internal server error; reconnecting to resume the session.' },
  1012: { action: 'resume', message: 'The server is restarting; resuming the session on another replica at once.' },
  1013: { action: 'retry', message: 'The server is full; retrying after the delay it asked for.' },
  4001: { action: 'new_token', message: 'The token was missing, invalid, expired or already used; fetching a new one.' },
  4003: { action: 'stop', message: 'Forbidden: the key was revoked, the account disabled, or the session ended by the operator.' },
  4008: { action: 'new_session', message: 'The session reached its maximum length. Start a new session.' },
  4029: { action: 'retry', message: 'Too many messages, bytes or connections; retrying after the delay the server asked for.' },
  4030: { action: 'stop', message: 'The session was resumed on another connection; this one stops.' },
  4031: { action: 'new_session', message: 'The session was idle too long (or never started). Start or resume a session when the learner is back.' },
} as const satisfies Record<number, CloseCodeInfo>;

export type KnownCloseCode = keyof typeof CLOSE_CODES;

/**
 * Error codes that change the action of their close code: a slow consumer (1008) did nothing
 * wrong in its protocol use and may resume (docs/protocol.md: "read faster; resume").
 */
export const ERROR_CODE_ACTIONS: Readonly<Record<string, CloseAction>> = {
  slow_consumer: 'retry',
};

/** Codes a browser or `ws` reports for a connection that never opened or broke (not sent by the gateway). */
const TRANSPORT_DEFAULT: CloseCodeInfo = { action: 'retry', message: 'The connection closed unexpectedly; reconnecting to resume the session.' };

/**
 * The action and message for a close. `errorCode` is the `error.code` of the event that
 * preceded the close, if any. Unknown codes are treated like a network drop (`retry`).
 */
export function closeInfo(code: number, errorCode?: string): CloseCodeInfo {
  const known = (CLOSE_CODES as Record<number, CloseCodeInfo>)[code];
  const base = known ?? { action: TRANSPORT_DEFAULT.action, message: `Closed with code ${code}. ${TRANSPORT_DEFAULT.message}` };
  const override = errorCode !== undefined ? ERROR_CODE_ACTIONS[errorCode] : undefined;
  if (override !== undefined && override !== base.action) {
    return { action: override, message: `${base.message} (${errorCode}: reconnecting to resume.)` };
  }
  return base;
}

/** Whether the client reconnects by itself after this action. */
export function reconnects(action: CloseAction): boolean {
  return action === 'retry' || action === 'resume' || action === 'new_token';
}
