/**
 * The shared limits of an account and its keys, as store specs. Keys are hash-tagged by account
 * (`{acct}`) so that every limit one decision touches lives in one Redis Cluster slot.
 */
import type { PlanConfig, RequestKind } from '../config/schema.js';
import type { LeaseSpec, LimitSpec } from './spec.js';

const MINUTE_MS = 60_000;

export const accountTag = (accountId: string): string => `{${accountId}}`;

/** `requestsPerMinute[kind]` per account (the `rest` quota is per API key). */
export function requestLimit(plan: PlanConfig, accountId: string, kind: RequestKind, keyId?: string): LimitSpec {
  const perKey = kind === 'rest';
  return {
    kind: 'window',
    key: perKey ? `rpm:${accountTag(accountId)}:key:${keyId ?? ''}:${kind}` : `rpm:${accountTag(accountId)}:${kind}`,
    name: perKey ? 'key.rest' : `account.${kind}`,
    limit: plan.requestsPerMinute[kind],
    windowMs: MINUTE_MS,
  };
}

/** `dailyAudioMinutes` per account, costed in fractional minutes. */
export function audioMinutesLimit(plan: PlanConfig, accountId: string, minutes = 0): LimitSpec {
  return { kind: 'daily', key: `audio:${accountTag(accountId)}`, name: 'account.audio_minutes', limit: plan.dailyAudioMinutes, cost: minutes };
}

/** Every account-level limit, for quota.updated and /v1/usage. */
export function accountLimits(plan: PlanConfig, accountId: string): LimitSpec[] {
  return [
    requestLimit(plan, accountId, 'conversation.start'),
    requestLimit(plan, accountId, 'conversation.turn'),
    requestLimit(plan, accountId, 'pronunciation.assess'),
    requestLimit(plan, accountId, 'translate'),
    audioMinutesLimit(plan, accountId),
  ];
}

/** Connection caps: one slot per key and one per account, across replicas. */
export function connectionLeases(plan: PlanConfig, accountId: string, keyId: string): LeaseSpec[] {
  return [
    { key: `conns:${accountTag(accountId)}:key:${keyId}`, name: 'key.connections', limit: plan.connectionsPerKey },
    { key: `conns:${accountTag(accountId)}`, name: 'account.connections', limit: plan.connectionsPerAccount },
  ];
}
