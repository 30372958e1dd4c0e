/**
 * Pieces of `quota.updated` (CONTRACT.md §5) that are not the session's own state: the upstream
 * queue entry and the rule for what counts as a change.
 */
import type { LimitState } from '../limits/decision.js';

/** A request of the session waiting for capacity in an upstream account's queue. */
export interface QueueWait {
  /** Upstream account name (the kind, unless `upstreams.<kind>.account` names a shared one). */
  readonly upstream: string;
  readonly maxQueueWaitSeconds: number;
  /** Scheduler time after which the request gets `upstream_busy`. */
  readonly deadline: number;
}

/**
 * `upstream.<name>.queue`: `limit` is the queue wait budget (`maxQueueWaitSeconds`), `remaining`
 * the whole seconds of it left before the waiting request gets `upstream_busy`, `reset_seconds`
 * the same rounded up. Present only while a request of the session waits in that queue.
 */
export function queueWaitState(wait: QueueWait, nowMs: number): LimitState {
  const leftMs = Math.max(0, wait.deadline - nowMs);
  return { name: `upstream.${wait.upstream}.queue`, limit: wait.maxQueueWaitSeconds, remaining: Math.floor(leftMs / 1000), resetMs: leftMs };
}

/** Countdowns tick by themselves; only an entry appearing or going is a change for them. */
const isCountdown = (name: string): boolean => name.startsWith('session.') || name.endsWith('.queue');

/**
 * What must differ between two readings of the session's own limits (its connection buckets and
 * queue entry) for a `quota.updated` to be worth sending: a whole unit of any `remaining` other
 * than a countdown's, or the set of entries.
 */
export function quotaChangeKey(limits: readonly { readonly name: string; readonly remaining: number }[]): string {
  let key = '';
  for (const l of limits) key += isCountdown(l.name) ? `${l.name};` : `${l.name}=${Math.floor(l.remaining)};`;
  return key;
}
