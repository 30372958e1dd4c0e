/**
 * Who a request acts for: the account, the API key it came through (directly or by a token minted
 * with it), the account's plan and, for browser tokens, the learner. Below both the edge (which
 * authenticates) and the sessions (which act for it).
 */
import type { AccountConfig, KeyConfig, PlanConfig } from '../config/schema.js';

export interface Principal {
  readonly account: AccountConfig;
  readonly key: KeyConfig;
  readonly plan: PlanConfig;
  readonly learnerId?: string | undefined;
}
