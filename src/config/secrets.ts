/**
 * The secrets a configuration holds, as literal strings: every account key's secret, every
 * upstream's API key (both already resolved from `env:NAME`), and the user name and password of
 * every Redis URL (`store.url`, `store.cluster`). The logger searches each finished line for them
 * as its last line of defence (src/telemetry/logger.ts, CONTRACT.md §10).
 */
import type { Config } from './schema.js';

/** The literal secrets of a loaded configuration (see the file comment), without duplicates. */
export function configSecrets(config: Config): string[] {
  const out = new Set<string>();
  for (const account of config.accounts) for (const key of account.keys) out.add(key.secret);
  for (const upstream of Object.values(config.upstreams)) if (upstream.apiKey) out.add(upstream.apiKey);
  if (config.store.kind === 'redis') {
    for (const url of [config.store.url, ...(config.store.cluster ?? [])]) {
      for (const part of userinfo(url)) out.add(part);
    }
  }
  return [...out];
}

/** The password of a URL, as written and decoded (a user name counts only when it is the sole credential). */
function userinfo(url: string): string[] {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [];
  }
  const parts: string[] = [];
  // `redis://default:pw@…`: the user name is a name, not a secret; `redis://token@…` (no password) is.
  const secret = parsed.password || parsed.username;
  if (secret) {
    parts.push(secret);
    try {
      parts.push(decodeURIComponent(secret));
    } catch {
      // A malformed escape: the raw form is enough.
    }
  }
  return parts;
}
