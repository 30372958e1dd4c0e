/**
 * The rate-limit fields of a REST answer (CONTRACT §4, §9): the seeds' `X-RateLimit-*` and the
 * IETF draft's structured fields `RateLimit-Policy` and `RateLimit`
 * (draft-ietf-httpapi-ratelimit-headers, the working group's latest text, September 2025):
 *
 *     RateLimit-Policy: "rest";q=60;w=61
 *     RateLimit: "rest";r=59;t=61
 *
 * `q` is the quota, `w` the window in seconds, `r` the quota left, `t` the seconds until more
 * quota is made available (draft §3-4). `w` is the longest a spent request is held: the store
 * counts a minute's window in 1 s buckets and a request counts whole with its bucket
 * (src/limits/window-counter.ts), so it comes back between 60 and 61 s after it was spent. A client
 * pacing at q per w is then never refused, which q per 60 s would not promise, and `t` never
 * exceeds `w`. On a 429 `t` is exactly the `Retry-After` (draft §5: Retry-After must not point
 * earlier than `t`; here they are one value).
 */
import type { FastifyReply } from 'fastify';
import type { LimitState } from '../limits/decision.js';
import type { LimitSpec } from '../limits/spec.js';
import { windowGeometry } from '../limits/window-counter.js';

/** A quota policy as the draft's `RateLimit-Policy` item: `"name";q=…;w=…`. */
export interface QuotaPolicy {
  /** The policy's name, an sf-string (letters, digits, `.`, `_`, `-` here). */
  readonly name: string;
  /** Quota units per window. */
  readonly quota: number;
  /** Seconds a spent unit is held at most; absent for a policy with no time window (a concurrency cap). */
  readonly windowSeconds?: number;
  /** `qu`, when not the default `requests`. */
  readonly unit?: 'concurrent-requests' | 'content-bytes';
}

/** The `rest` policy of a limit spec (a sliding window): its quota and the longest hold of a unit. */
export function restPolicy(spec: LimitSpec): QuotaPolicy {
  if (spec.kind !== 'window') return { name: 'rest', quota: spec.kind === 'bucket' ? spec.burst : spec.limit };
  const { bucketMs, span } = windowGeometry(spec.windowMs);
  return { name: 'rest', quota: spec.limit, windowSeconds: Math.ceil(((span + 1) * bucketMs) / 1000) };
}

/** `"name";q=…[;qu=…][;w=…]`, an item of the draft's RateLimit-Policy list. */
export function policyItem(policy: QuotaPolicy): string {
  return `"${policy.name}";q=${Math.max(0, Math.floor(policy.quota))}${policy.unit ? `;qu="${policy.unit}"` : ''}${policy.windowSeconds !== undefined ? `;w=${policy.windowSeconds}` : ''}`;
}

/** `"name";r=…;t=…`, an item of the draft's RateLimit list; `t` is clamped to the policy's `w`. */
export function limitItem(policy: QuotaPolicy, remaining: number, resetSeconds: number): string {
  const t = policy.windowSeconds !== undefined ? Math.min(resetSeconds, policy.windowSeconds) : resetSeconds;
  return `"${policy.name}";r=${Math.max(0, Math.floor(remaining))};t=${Math.max(0, Math.ceil(t))}`;
}

/** Sets the rate-limit fields of an answer the `rest` quota allowed. */
export function setRateLimitHeaders(reply: FastifyReply, spec: LimitSpec, state: LimitState, nowMs: number): void {
  const policy = restPolicy(spec);
  const remaining = Math.max(0, Math.floor(state.remaining));
  setCommon(reply, policy, state, remaining, nowMs);
  reply.header('RateLimit', limitItem(policy, remaining, Math.ceil(state.resetMs / 1000)));
}

/**
 * Sets the fields of a 429 from the `rest` quota and returns the `Retry-After` sent (whole seconds,
 * at least 1): the same value is `RateLimit`'s `t`, clamped to the policy's `w` (a refusal of the
 * sliding window never waits longer than `w`, so the clamp only guards the rounding).
 */
export function setRateLimitRefusal(reply: FastifyReply, spec: LimitSpec, state: LimitState | undefined, nowMs: number, retryAfterMs: number): number {
  const policy = restPolicy(spec);
  const retryAfter = Math.min(Math.max(1, Math.ceil(retryAfterMs / 1000)), policy.windowSeconds ?? Infinity);
  if (state) setCommon(reply, policy, state, 0, nowMs);
  reply.header('Retry-After', retryAfter);
  reply.header('RateLimit', limitItem(policy, 0, retryAfter));
  return retryAfter;
}

function setCommon(reply: FastifyReply, policy: QuotaPolicy, state: LimitState, remaining: number, nowMs: number): void {
  reply.header('X-RateLimit-Limit', state.limit);
  reply.header('X-RateLimit-Remaining', remaining);
  reply.header('X-RateLimit-Reset', Math.ceil((nowMs + state.resetMs) / 1000));
  reply.header('RateLimit-Policy', policyItem(policy));
}

/**
 * A 429 from a concurrency cap (no time window): its own policy item replaces the `RateLimit`
 * item set for the `rest` quota, so the one `RateLimit` of the answer is the policy that refused,
 * with `t` equal to `Retry-After`. The `rest` policy stays listed in `RateLimit-Policy`.
 */
export function setConcurrencyRefusal(reply: FastifyReply, name: string, cap: number, retryAfterSeconds: number): void {
  const policy: QuotaPolicy = { name, quota: cap, unit: 'concurrent-requests' };
  const previous = reply.getHeader('RateLimit-Policy');
  reply.header('RateLimit-Policy', previous !== undefined ? `${String(previous)}, ${policyItem(policy)}` : policyItem(policy));
  reply.header('Retry-After', retryAfterSeconds);
  reply.header('RateLimit', limitItem(policy, 0, retryAfterSeconds));
}
