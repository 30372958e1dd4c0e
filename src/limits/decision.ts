/**
 * A limit decision is a value, not an exception (STYLE.md §5). Faults (a store that is down) throw;
 * refusals do not.
 */
export interface LimitState {
  /** Stable limit name, e.g. `account.conversation.turn` (used in quota.updated and /v1/usage). */
  readonly name: string;
  readonly limit: number;
  readonly remaining: number;
  /** Milliseconds until the limit is fully reset (window slides out, bucket refills, day ends). */
  readonly resetMs: number;
}

export type Decision =
  | { readonly allowed: true; readonly states: readonly LimitState[] }
  | {
      readonly allowed: false;
      /** Milliseconds until the refused request would be allowed. */
      readonly retryAfterMs: number;
      /** Name of the (first) limit that refused. */
      readonly limitName: string;
      readonly states: readonly LimitState[];
    };
