/**
 * The account limit specs sessions hand to the store, built once per plan and account and then
 * shared. Each spec's `key` is a string the store looks up in a map on every decision; a key built
 * afresh for every call (a concatenated string) must be flattened and hashed on each lookup, and
 * those lookups were a tenth of the JS cost of opening a session. A kept string is flat and keeps
 * its hash. Accounts and plans come from the configuration, so these maps stay small.
 */
import type { PlanConfig, RequestKind } from '../config/schema.js';
import { accountLimits, audioMinutesLimit, requestLimit } from '../limits/account-limits.js';
import type { LimitSpec } from '../limits/spec.js';

interface AccountSpecs {
  readonly all: readonly LimitSpec[];
  readonly requests: Map<RequestKind, LimitSpec>;
  readonly audio: LimitSpec;
}

const byPlan = new WeakMap<PlanConfig, Map<string, AccountSpecs>>();

function specsOf(plan: PlanConfig, accountId: string): AccountSpecs {
  let byAccount = byPlan.get(plan);
  if (byAccount === undefined) byPlan.set(plan, (byAccount = new Map()));
  let specs = byAccount.get(accountId);
  if (specs === undefined) {
    specs = { all: Object.freeze(accountLimits(plan, accountId)), requests: new Map(), audio: audioMinutesLimit(plan, accountId) };
    byAccount.set(accountId, specs);
  }
  return specs;
}

/** Every account-level limit (quota.updated), as `accountLimits` gives them. */
export function accountSpecs(plan: PlanConfig, accountId: string): readonly LimitSpec[] {
  return specsOf(plan, accountId).all;
}

/** `requestLimit(plan, accountId, kind)` for the account-wide kinds (not `rest`, which is per key). */
export function requestSpec(plan: PlanConfig, accountId: string, kind: Exclude<RequestKind, 'rest'>): LimitSpec {
  const specs = specsOf(plan, accountId);
  let spec = specs.requests.get(kind);
  if (spec === undefined) specs.requests.set(kind, (spec = requestLimit(plan, accountId, kind)));
  return spec;
}

/** `audioMinutesLimit(plan, accountId, minutes)`: the kept spec with this call's cost. */
export function audioSpec(plan: PlanConfig, accountId: string, minutes: number): LimitSpec {
  return { ...specsOf(plan, accountId).audio, cost: minutes };
}
