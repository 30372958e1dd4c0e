/**
 * Credentials: API keys (REST, server-side WebSocket clients) and single-use browser tokens.
 * Keys are looked up by the SHA-256 of the presented secret and confirmed with a constant-time
 * comparison, so neither the lookup nor the check leaks how much of a guess was right.
 * Tokens are stored by their hash too: a store dump holds nothing that opens a connection.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AccountConfig, Config, KeyConfig, PlanConfig } from '../config/schema.js';

export interface Principal {
  readonly account: AccountConfig;
  readonly key: KeyConfig;
  readonly plan: PlanConfig;
  readonly learnerId?: string | undefined;
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Tokens use only letters, digits, `-`, `_` and `.` so they are valid subprotocol names. */
export const TOKEN_PATTERN = /^pt_[A-Za-z0-9_-]{20,200}$/;

export function newToken(): string {
  return `pt_${randomBytes(32).toString('base64url')}`;
}

/** The store key of a token: its hash, never the token itself. */
export function tokenKey(token: string): string {
  return sha256(token).toString('base64url');
}

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

/** Extracts the secret from `Authorization: Bearer <secret>`. */
export function bearer(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

/**
 * Whether a browser Origin may open a session for the account. No Origin header means a
 * server-side client (browsers always send one on a WebSocket handshake).
 */
export function originAllowed(account: AccountConfig, origin: string | undefined, extra?: string): boolean {
  if (origin === undefined) return true;
  if (extra !== undefined && origin === extra) return true;
  return account.origins.includes('*') || account.origins.includes(origin);
}
