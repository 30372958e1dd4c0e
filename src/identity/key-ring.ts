/**
 * The configured API keys. Keys are looked up by the SHA-256 of the presented secret and confirmed
 * with a constant-time comparison, so neither the lookup nor the check leaks how much of a guess
 * was right.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AccountConfig, Config, KeyConfig, PlanConfig } from '../config/schema.js';
import type { Principal } from './principal.js';

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

export class KeyRing {
  private readonly byHash = new Map<string, { digest: Buffer; account: AccountConfig; key: KeyConfig }>();
  private readonly accounts = new Map<string, AccountConfig>();

  constructor(private readonly config: Config) {
    for (const account of config.accounts) {
      this.accounts.set(account.id, account);
      for (const key of account.keys) {
        const digest = sha256(key.secret);
        this.byHash.set(digest.toString('hex'), { digest, account, key });
      }
    }
  }

  account(id: string): AccountConfig | undefined {
    return this.accounts.get(id);
  }

  plan(account: AccountConfig): PlanConfig {
    const plan = this.config.plans[account.plan];
    if (!plan) throw new Error(`account ${account.id} names unknown plan ${account.plan}`);
    return plan;
  }

  /** The principal for a presented API key, or undefined (unknown, disabled key or account). */
  authenticate(secret: string): Principal | undefined {
    const digest = sha256(secret);
    const entry = this.byHash.get(digest.toString('hex'));
    if (!entry || !timingSafeEqual(entry.digest, digest)) return undefined;
    if (entry.key.disabled || entry.account.disabled) return undefined;
    return { account: entry.account, key: entry.key, plan: this.plan(entry.account) };
  }

  /** The principal a stored token stands for, if its account and key are still enabled. */
  principalFor(accountId: string, keyId: string, learnerId?: string): Principal | undefined {
    const account = this.accounts.get(accountId);
    const key = account?.keys.find((k) => k.id === keyId);
    if (!account || !key || key.disabled || account.disabled) return undefined;
    return { account, key, plan: this.plan(account), learnerId };
  }
}
