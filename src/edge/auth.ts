/**
 * Credentials as an HTTP request presents them: `Authorization: Bearer`, single-use browser tokens
 * (stored by their hash: a store dump holds nothing that opens a connection), and the browser
 * Origin check. Who a valid key or token stands for is `identity/` (KeyRing, Principal).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { AccountConfig } from '../config/schema.js';

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

/**
 * The host name of a `Host` header (no port; an IPv6 literal keeps its brackets), lower-cased, or
 * undefined when there is none.
 */
export function hostName(host: string | undefined): string | undefined {
  if (!host) return undefined;
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end > 0 ? h.slice(0, end + 1) : undefined;
  }
  return h.split(':')[0] || undefined;
}

/**
 * Whether a `Host` header names one of `allowed` (exact names; a leading "." allows that domain and
 * its subdomains). Vite and webpack-dev-server check the same against DNS rebinding: a page on an
 * attacker's name that resolves to this gateway carries that name in `Host`.
 */
export function hostAllowed(host: string | undefined, allowed: readonly string[]): boolean {
  const name = hostName(host);
  if (name === undefined) return false;
  for (const a of allowed) {
    const entry = a.toLowerCase();
    if (entry === name) return true;
    if (entry.startsWith('.') && (name === entry.slice(1) || name.endsWith(entry))) return true;
  }
  return false;
}
