/**
 * The configuration `npm run cluster` gives its replicas: deploy/parley.yaml (the file both
 * replicas of deploy/compose.yaml mount), read as it is, with only what differs on one machine
 * changed: the store's URL (the redis-server the launcher spawned) and `expectedReplicas` (the
 * replicas it starts). Everything else (ports aside, which the launcher passes as PORT) is the
 * Compose stack's.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { PROJECT_DIR } from './replica.js';

/** deploy/parley.yaml */
export const DEPLOY_CONFIG = path.join(PROJECT_DIR, 'deploy', 'parley.yaml');

/**
 * Reads and checks `file` as the gateway would (the real loader, with `env` for its `env:NAME`
 * secrets), and returns the raw document, so the replicas read exactly what the file says.
 * Throws the loader's ConfigError, which names the key, the value and what is allowed.
 */
export function readClusterConfig(file: string, env: NodeJS.ProcessEnv): Record<string, unknown> {
  loadConfig({ ...env, PARLEY_CONFIG: file, REDIS_URL: undefined });
  const raw: unknown = parseYaml(readFileSync(file, 'utf8'));
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${file}: the configuration must be an object`);
  return raw as Record<string, unknown>;
}

/** The document with the store on `redisUrl`, shared by `replicas` replicas. */
export function onLocalRedis(raw: Record<string, unknown>, redisUrl: string, replicas: number): Record<string, unknown> {
  const store = typeof raw.store === 'object' && raw.store !== null ? (raw.store as Record<string, unknown>) : {};
  // `cluster` (Redis Cluster nodes) would take precedence over url: one local redis-server replaces it.
  const { cluster: _nodes, tls: _tls, ...rest } = store;
  return { ...raw, store: { ...rest, kind: 'redis', url: redisUrl, expectedReplicas: replicas } };
}
