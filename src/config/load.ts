/**
 * Loading the configuration (CONTRACT.md §2, §9): read `PARLEY_CONFIG` (JSON, or YAML for a
 * `.yaml`/`.yml` file) or use the embedded default,
 * fill the schema's defaults, validate with the compiled checker, run the cross-field checks the
 * schema cannot express, resolve `env:NAME` secrets, apply the environment overrides, freeze.
 *
 * Every failure is a {@link ConfigError} whose message names the key, the bad value and what
 * would be valid (STYLE.md 7), and never contains a secret: values under `accounts[].keys` and
 * `apiKey` are described by type and length only.
 */
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Kind, type TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Errors, ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import {
  ConfigSchema,
  LogLevels,
  SecretPattern,
  ServerSchema,
  UpstreamKinds,
  type Config,
  type LogLevel,
  type PlanConfig,
  type RawConfig,
  type StoreConfig,
} from './schema.js';
import { redactText, redactUrl } from '../util/redact.js';
import { formatOf, parseConfigText } from './syntax.js';

/** An invalid configuration. `key` is the offending key path (or environment variable), if any. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    readonly key?: string,
  ) {
    super(message);
  }
}

// Compiled once, at module load (STYLE.md 6).
const checker = TypeCompiler.Compile(ConfigSchema);

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const REDIS_DEFAULT_PREFIX = 'parley:';
/** The `{8,}` of the schema's SecretPattern, for secrets read from the environment. */
const MIN_SECRET_CHARS = 8;

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/**
 * Validates a parsed config document and returns the defaulted, checked, frozen {@link Config}.
 * `env` supplies `env:NAME` secrets and the `PORT`, `HOST`, `REDIS_URL`, `LOG_LEVEL` overrides.
 * Throws {@link ConfigError}.
 */
export function parseConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env): Config {
  preCheck(ConfigSchema, raw, '');
  const defaulted: unknown = Value.Default(ConfigSchema, Value.Clone(raw));
  if (!checker.Check(defaulted)) {
    const first = checker.Errors(defaulted).First();
    throw first ? schemaError(first) : new ConfigError('config: invalid configuration');
  }
  const config = crossCheck(defaulted, env);
  applyEnvOverrides(config, env);
  checkFiles(config as Config);
  return deepFreeze(config as Config);
}

/** Files the configuration names must be readable now, not at the first Redis connection. */
function checkFiles(config: Config): void {
  const store = config.store;
  if (store.kind !== 'redis' || store.tls?.caFile === undefined) return;
  try {
    fs.accessSync(store.tls.caFile, fs.constants.R_OK);
  } catch (err) {
    throw new ConfigError(`config: store.tls.caFile ${JSON.stringify(store.tls.caFile)} cannot be read: ${(err as Error).message}`, 'store.tls.caFile');
  }
}

/**
 * The embedded configuration used when there is no config file: port 8080 (or `PORT`), the
 * in-memory store (or `REDIS_URL`), simulated upstreams with the reference latency profile, one
 * plan `standard`, one demo account `acct_demo` with a random key, and the demo page and the
 * operator dashboard on.
 */
export function defaultConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = envPort(env) ?? 8080;
  const raw = {
    server: { demo: true, dashboard: true },
    plans: { standard: {} },
    accounts: [
      {
        id: 'acct_demo',
        plan: 'standard',
        origins: [`http://localhost:${port}`, `http://127.0.0.1:${port}`],
        keys: [{ id: 'key_demo', secret: `sk_demo_${randomBytes(24).toString('base64url')}` }],
      },
    ],
    // The simulator answers with ordinary upstream latencies (issue 13's reference profile: STT
    // 250 ms; a chat model with 350 ms to first token at 40 tokens/s; TTS 150 ms to first byte at
    // 5× real time), so the demo shows the timing a learner would meet with real providers.
    upstreams: {
      conversation: { simulatedTiming: { firstTokenMs: 350, tokensPerSecond: 40 } },
      stt: { latencyMs: 250 },
      tts: { simulatedTiming: { firstByteMs: 150, realTimeFactor: 5 } },
      translation: { simulatedTiming: { firstTokenMs: 350, tokensPerSecond: 40 } },
      pronunciation: { latencyMs: 250 },
    },
  };
  return parseConfig(raw, env);
}

/**
 * Loads the configuration named by `PARLEY_CONFIG`, or the embedded default when it is unset: a
 * `.yaml`/`.yml` file is YAML, any other JSON (src/config/syntax.ts); a syntax error names its line
 * and column. `source` is the path read, or `'default'`. Throws {@link ConfigError}.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  readFile: (path: string) => string = (p) => fs.readFileSync(p, 'utf8'),
): { config: Config; source: 'default' | string } {
  const path = env.PARLEY_CONFIG;
  if (path === undefined || path.trim() === '') return { config: defaultConfig(env), source: 'default' };
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    throw new ConfigError(`config: cannot read PARLEY_CONFIG file "${path}": ${(err as Error).message}`, 'PARLEY_CONFIG');
  }
  const parsed = parseConfigText(text, formatOf(path));
  if (!parsed.ok) {
    throw new ConfigError(`config: PARLEY_CONFIG file "${path}" is not valid ${parsed.format === 'yaml' ? 'YAML' : 'JSON'}: ${parsed.message}`, 'PARLEY_CONFIG');
  }
  const raw = parsed.value;
  return { config: parseConfig(raw, env), source: path };
}

const planCache = new WeakMap<Config, Map<string, PlanConfig>>();

/** The plan of an account. Throws if the account does not exist (a caller bug: ids come from auth). */
export function planFor(config: Config, accountId: string): PlanConfig {
  let byAccount = planCache.get(config);
  if (!byAccount) {
    byAccount = new Map();
    for (const account of config.accounts) {
      const plan = config.plans[account.plan];
      if (plan) byAccount.set(account.id, plan);
    }
    planCache.set(config, byAccount);
  }
  const plan = byAccount.get(accountId);
  if (!plan) throw new Error(`planFor: unknown account "${accountId}"`);
  return plan;
}

/**
 * What a schema allows, in words: `a number > 0`, `an integer from 0 to 65535`, `"memory" or
 * "redis"`. Used by the error messages and by `scripts/gen-config-docs.ts`.
 */
export function describeSchema(schema: TSchema): string {
  switch (schema[Kind]) {
    case 'Integer':
    case 'Number':
      return describeNumber(schema, schema[Kind] === 'Integer' ? 'an integer' : 'a number');
    case 'String': {
      const pattern = schema.pattern as string | undefined;
      if (pattern !== undefined) return PATTERN_WORDS[pattern] ?? `a string matching /${pattern}/`;
      const min = schema.minLength as number | undefined;
      if (min === 1) return 'a non-empty string';
      if (min !== undefined) return `a string of at least ${min} characters`;
      return 'a string';
    }
    case 'Boolean':
      return 'true or false';
    case 'Literal':
      return JSON.stringify(schema.const);
    case 'Union': {
      const variants = schema.anyOf as TSchema[];
      const disc = discriminator(variants);
      if (disc) return `an object with ${disc.key} ${orList(disc.values.map((v) => JSON.stringify(v)))}`;
      const words = variants.map(describeSchema);
      return variants.length > 2 ? `one of ${words.join(', ')}` : orList(words);
    }
    case 'Array': {
      const min = schema.minItems as number | undefined;
      if (min === 1) return 'a non-empty array';
      if (min !== undefined) return `an array of at least ${min} items`;
      return 'an array';
    }
    case 'Object':
    case 'Record':
      return 'an object';
    default:
      return 'a valid value';
  }
}

// ---------------------------------------------------------------------------------------------
// Schema errors
// ---------------------------------------------------------------------------------------------

/** The words for the schema's patterns; a regex is no way to tell an operator what is allowed. */
const PATTERN_WORDS: Record<string, string> = {
  '^[A-Za-z0-9_.-]+$': 'a non-empty string of letters, digits, "_", "." and "-"',
  '^https?://': 'an http:// or https:// URL',
  [SecretPattern]: 'a secret of at least 8 characters, or "env:NAME"',
};

function describeNumber(schema: TSchema, noun: string): string {
  const min = schema.minimum as number | undefined;
  const max = schema.maximum as number | undefined;
  const xmin = schema.exclusiveMinimum as number | undefined;
  if (min !== undefined && max !== undefined) return `${noun} from ${min} to ${max}`;
  const parts: string[] = [];
  if (xmin !== undefined) parts.push(`> ${xmin}`);
  if (min !== undefined) parts.push(`>= ${min}`);
  if (max !== undefined) parts.push(`<= ${max}`);
  return parts.length ? `${noun} ${parts.join(' and ')}` : noun;
}

function orList(items: readonly string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

/** A key every variant of a union of objects pins to a literal (`store.kind`), if there is one. */
function discriminator(variants: readonly TSchema[]): { key: string; values: unknown[] } | undefined {
  const first = variants[0];
  if (!first || first[Kind] !== 'Object') return undefined;
  for (const key of Object.keys(first.properties as Record<string, TSchema>)) {
    const values: unknown[] = [];
    for (const v of variants) {
      const prop = v[Kind] === 'Object' ? (v.properties as Record<string, TSchema>)[key] : undefined;
      if (!prop || prop[Kind] !== 'Literal') break;
      values.push(prop.const);
    }
    if (values.length === variants.length) return { key, values };
  }
  return undefined;
}

/** JSON Pointer (`/plans/standard/messagesPerSecond`) to a key path (`plans.standard.messagesPerSecond`). */
function keyPath(pointer: string): string {
  if (pointer === '') return '';
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, seg) => {
      if (/^\d+$/.test(seg)) return `${acc}[${seg}]`;
      if (/^[A-Za-z_$][\w$]*$/.test(seg)) return acc ? `${acc}.${seg}` : seg;
      return `${acc}[${JSON.stringify(seg)}]`;
    }, '');
}

function joinPath(parent: string, key: string): string {
  return keyPath(`${parent}/${escapeKey(key)}`);
}

/** Values at these pointers may be secrets: described, never shown. */
function isSecretPointer(pointer: string): boolean {
  return /^\/accounts\/[^/]+\/keys(\/|$)/.test(pointer) || /^\/upstreams\/[^/]+\/apiKey$/.test(pointer);
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty array' : `an array of ${value.length} item${value.length === 1 ? '' : 's'}`;
  switch (typeof value) {
    case 'string':
      return `a string of ${value.length} character${value.length === 1 ? '' : 's'}`;
    case 'number':
      return 'a number';
    case 'boolean':
      return 'a boolean';
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

/** The value for a message: JSON for scalars (credentials redacted, truncated), the kind for the rest or for secrets. */
function show(value: unknown, secret: boolean): string {
  if (secret) return typeof value === 'object' && value !== null ? kindOf(value) : `${kindOf(value)} (value not shown)`;
  if (typeof value === 'string') {
    // Redacted before the cut: a URL's password (`baseUrl`, `store.url`) never shows, not even in part.
    const json = JSON.stringify(redactText(value));
    return json.length > 60 ? `${json.slice(0, 56)}…" (${value.length} characters)` : json;
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return kindOf(value);
}

/** Damerau-free Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(cur + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

function suggestion(key: string, allowed: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of allowed) {
    const d = distance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(best.length / 3)) ? ` (did you mean ${best}?)` : '';
}

function schemaError(error: ValueError): ConfigError {
  const path = keyPath(error.path);
  switch (error.type) {
    case ValueErrorType.ObjectAdditionalProperties: {
      const allowed = Object.keys((error.schema.properties ?? {}) as Record<string, TSchema>);
      const key = error.path.slice(error.path.lastIndexOf('/') + 1).replace(/~1/g, '/').replace(/~0/g, '~');
      return new ConfigError(
        `config: unknown key ${path}${suggestion(key, allowed)}; allowed keys${parentWords(error.path)}: ${allowed.join(', ')}`,
        path,
      );
    }
    case ValueErrorType.ObjectRequiredProperty:
      return new ConfigError(`config: ${path} is required and must be ${describeSchema(error.schema)}`, path);
    case ValueErrorType.Union:
      return unionError(error);
    default:
      return valueError(error.schema, error.value, error.path);
  }
}

function parentWords(pointer: string): string {
  const parent = keyPath(pointer.slice(0, pointer.lastIndexOf('/')));
  return parent ? ` in ${parent}` : ' at the top level';
}

/**
 * A union's own error says only "no variant matched". For a discriminated union (`store`) pick the
 * variant its `kind` names and report that variant's first error; otherwise name the variants.
 */
function unionError(error: ValueError): ConfigError {
  const variants = error.schema.anyOf as TSchema[];
  const disc = discriminator(variants);
  const value = error.value;
  if (disc && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const tag = (value as Record<string, unknown>)[disc.key];
    const variant = variants[disc.values.findIndex((v) => v === tag)];
    if (variant) {
      // The union's own defaulting kept none of the variant's defaults (the value failed), so
      // default against the variant alone, or a filled-in key would be reported as missing.
      const inner = Errors(variant, Value.Default(variant, Value.Clone(value))).First();
      if (inner) return schemaError({ ...inner, path: error.path + inner.path });
    }
    const tagPath = joinPath(error.path, disc.key);
    const allowed = orList(disc.values.map((v) => JSON.stringify(v)));
    if (tag === undefined) return new ConfigError(`config: ${tagPath} is required and must be ${allowed}`, tagPath);
    return new ConfigError(`config: ${tagPath} must be ${allowed}, got ${show(tag, false)}`, tagPath);
  }
  return valueError(error.schema, value, error.path);
}

/**
 * Checks `Value.Default` would otherwise hide, because it merges a default into any value of
 * `typeof` "object": an array where an object belongs (`server: []`) would become `{}`, an object
 * where an array belongs (`accounts: {}`) would become `[]`, and a `store` without `kind` would
 * become `{kind: "memory", …}`, all passing validation.
 */
function preCheck(schema: TSchema, value: unknown, pointer: string): void {
  if (typeof value !== 'object' || value === null) return;
  const kind = schema[Kind];
  if (Array.isArray(value)) {
    if (kind === 'Array') value.forEach((item, i) => preCheck(schema.items as TSchema, item, `${pointer}/${i}`));
    else if (kind === 'Object' || kind === 'Record' || kind === 'Union') throw valueError(schema, value, pointer);
    return;
  }
  const record = value as Record<string, unknown>;
  if (kind === 'Array') throw valueError(schema, value, pointer);
  if (kind === 'Object') {
    const properties = schema.properties as Record<string, TSchema>;
    for (const [key, child] of Object.entries(record)) {
      if (Object.hasOwn(properties, key)) preCheck(properties[key]!, child, `${pointer}/${escapeKey(key)}`);
    }
  } else if (kind === 'Record') {
    const [itemSchema] = Object.values(schema.patternProperties as Record<string, TSchema>);
    for (const [key, child] of Object.entries(record)) preCheck(itemSchema!, child, `${pointer}/${escapeKey(key)}`);
  } else if (kind === 'Union') {
    const disc = discriminator(schema.anyOf as TSchema[]);
    if (disc && !Object.hasOwn(record, disc.key)) {
      const at = joinPath(pointer, disc.key);
      throw new ConfigError(`config: ${at} is required and must be ${orList(disc.values.map((v) => JSON.stringify(v)))}`, at);
    }
  }
}

function escapeKey(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

function valueError(schema: TSchema, value: unknown, pointer: string): ConfigError {
  const path = keyPath(pointer);
  return new ConfigError(`config: ${path || 'the configuration'} must be ${describeSchema(schema)}, got ${show(value, isSecretPointer(pointer))}`, path);
}

// ---------------------------------------------------------------------------------------------
// Cross-field checks
// ---------------------------------------------------------------------------------------------

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends object ? Mutable<T[K]> : T[K] };
type MutableConfig = Mutable<Config>;

function crossCheck(raw: RawConfig, env: NodeJS.ProcessEnv): MutableConfig {
  const planNames = Object.keys(raw.plans);
  const accountById = new Map<string, number>();
  const keyById = new Map<string, string>();
  const keyBySecret = new Map<string, string>();

  raw.accounts.forEach((account, a) => {
    const at = `accounts[${a}]`;
    if (!Object.hasOwn(raw.plans, account.plan)) {
      throw new ConfigError(
        `config: ${at}.plan names unknown plan ${JSON.stringify(account.plan)}; ${
          planNames.length ? `plans: ${planNames.join(', ')}` : 'plans is empty'
        }`,
        `${at}.plan`,
      );
    }
    const sameAccount = accountById.get(account.id);
    if (sameAccount !== undefined) {
      throw new ConfigError(
        `config: ${at}.id ${JSON.stringify(account.id)} is already used by accounts[${sameAccount}]; account ids must be unique`,
        `${at}.id`,
      );
    }
    accountById.set(account.id, a);
    account.keys.forEach((key, k) => {
      const keyAt = `${at}.keys[${k}]`;
      const sameKey = keyById.get(key.id);
      if (sameKey !== undefined) {
        throw new ConfigError(
          `config: ${keyAt}.id ${JSON.stringify(key.id)} is already used by ${sameKey}; key ids must be unique across all accounts`,
          `${keyAt}.id`,
        );
      }
      keyById.set(key.id, keyAt);
      key.secret = resolveEnv(key.secret, `${keyAt}.secret`, env, MIN_SECRET_CHARS);
      const sameSecret = keyBySecret.get(key.secret);
      if (sameSecret !== undefined) {
        throw new ConfigError(
          `config: ${keyAt}.secret is the same as ${sameSecret}.secret; every key needs its own secret`,
          `${keyAt}.secret`,
        );
      }
      keyBySecret.set(key.secret, keyAt);
    });
  });

  for (const [name, plan] of Object.entries(raw.plans)) {
    const at = joinPath('/plans', name);
    if (plan.maxFrameBytes > plan.byteBurst) {
      throw new ConfigError(
        `config: ${at}.maxFrameBytes (${plan.maxFrameBytes}) must be <= ${at}.byteBurst (${plan.byteBurst}): a frame larger than the byte burst could never pass`,
        `${at}.maxFrameBytes`,
      );
    }
    if (plan.expiryWarningSeconds >= plan.maxSessionSeconds) {
      throw new ConfigError(
        `config: ${at}.expiryWarningSeconds (${plan.expiryWarningSeconds}) must be < ${at}.maxSessionSeconds (${plan.maxSessionSeconds})`,
        `${at}.expiryWarningSeconds`,
      );
    }
  }

  const server = raw.server!;
  const accountIds = raw.accounts.map((a) => a.id);
  if (server.demoAccount !== undefined && !accountById.has(server.demoAccount)) {
    throw new ConfigError(
      `config: server.demoAccount names unknown account ${JSON.stringify(server.demoAccount)}; ${
        accountIds.length ? `accounts: ${accountIds.join(', ')}` : 'accounts is empty'
      }`,
      'server.demoAccount',
    );
  }
  if (server.demo && accountIds.length === 0) {
    throw new ConfigError('config: server.demo needs at least one account in accounts (the demo mints tokens for server.demoAccount)', 'server.demo');
  }
  // CONTRACT §4: the demo account defaults to the first account.
  if (server.demoAccount === undefined && accountIds[0] !== undefined) server.demoAccount = accountIds[0];
  if (server.maxPayloadBytes !== undefined) {
    for (const [name, plan] of Object.entries(raw.plans)) {
      if (plan.maxFrameBytes > server.maxPayloadBytes) {
        throw new ConfigError(
          `config: server.maxPayloadBytes (${server.maxPayloadBytes}) must be >= ${joinPath('/plans', name)}.maxFrameBytes (${plan.maxFrameBytes}), or the WebSocket layer would refuse frames the plan allows`,
          'server.maxPayloadBytes',
        );
      }
    }
  }

  const upstreams = raw.upstreams!;
  for (const kind of UpstreamKinds) {
    const upstream = upstreams[kind]!;
    const at = `upstreams.${kind}`;
    if (upstream.provider === 'openai' && upstream.baseUrl === undefined) {
      throw new ConfigError(`config: ${at}.baseUrl is required when ${at}.provider is "openai"`, `${at}.baseUrl`);
    }
    if (upstream.apiKey !== undefined) upstream.apiKey = resolveEnv(upstream.apiKey, `${at}.apiKey`, env);
    const limits = upstream.limits!;
    if (limits.burst !== undefined && limits.requestsPerSecond === undefined) {
      throw new ConfigError(
        `config: ${at}.limits.burst needs ${at}.limits.requestsPerSecond (burst is the capacity of that token bucket)`,
        `${at}.limits.burst`,
      );
    }
    // The schema's stated default: a bucket as deep as one second of refill.
    if (limits.requestsPerSecond !== undefined && limits.burst === undefined) {
      limits.burst = Math.max(1, Math.ceil(limits.requestsPerSecond));
    }
  }

  return raw as unknown as MutableConfig;
}

/**
 * Resolves `env:NAME`; any other value is returned as is. Messages name the variable, never a
 * value. `minChars` repeats the schema's length rule on the resolved secret.
 */
function resolveEnv(value: string, key: string, env: NodeJS.ProcessEnv, minChars = 1): string {
  if (!value.startsWith('env:')) return value;
  const name = value.slice(4);
  if (!ENV_NAME.test(name)) {
    throw new ConfigError(
      `config: ${key} must be "env:NAME" with NAME an environment variable name (letters, digits and "_"), got "env:" followed by ${kindOf(name)}`,
      key,
    );
  }
  const resolved = env[name];
  if (resolved === undefined || resolved === '') {
    throw new ConfigError(`config: ${key} reads environment variable ${name}, which is ${resolved === undefined ? 'not set' : 'empty'}`, key);
  }
  if (resolved.length < minChars) {
    throw new ConfigError(
      `config: ${key} must be at least ${minChars} characters, but environment variable ${name} has ${resolved.length}`,
      key,
    );
  }
  return resolved;
}

// ---------------------------------------------------------------------------------------------
// Environment overrides
// ---------------------------------------------------------------------------------------------

/** An environment variable, or undefined when unset or empty (`PORT=` in a unit file means unset). */
function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function envPort(env: NodeJS.ProcessEnv): number | undefined {
  const v = envValue(env, 'PORT');
  if (v === undefined) return undefined;
  const port = /^\d{1,5}$/.test(v) ? Number(v) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new ConfigError(
      `config: environment variable PORT must be ${describeSchema(ServerSchema.properties.port)}, got ${show(v, false)}`,
      'PORT',
    );
  }
  return port;
}

function applyEnvOverrides(config: MutableConfig, env: NodeJS.ProcessEnv): void {
  const port = envPort(env);
  if (port !== undefined) config.server.port = port;

  const host = envValue(env, 'HOST');
  if (host !== undefined) config.server.host = host;

  const redisUrl = envValue(env, 'REDIS_URL');
  if (redisUrl !== undefined) {
    if (!/^rediss?:\/\/./.test(redisUrl)) {
      throw new ConfigError(
        `config: environment variable REDIS_URL must be a redis:// or rediss:// URL, got ${show(redactUrl(redisUrl), false)}`,
        'REDIS_URL',
      );
    }
    // Keep the file's prefix and replica count; REDIS_URL names one node, so it replaces `cluster`.
    const previous: Partial<Extract<StoreConfig, { kind: 'redis' }>> = config.store.kind === 'redis' ? config.store : {};
    config.store = {
      kind: 'redis',
      url: redisUrl,
      prefix: previous.prefix ?? REDIS_DEFAULT_PREFIX,
      expectedReplicas: previous.expectedReplicas ?? 1,
      leaseSeconds: previous.leaseSeconds ?? 30,
      commandTimeoutMs: previous.commandTimeoutMs ?? 500,
    };
  }

  const logLevel = envValue(env, 'LOG_LEVEL');
  if (logLevel !== undefined) {
    const level = logLevel.toLowerCase();
    if (!(LogLevels as readonly string[]).includes(level)) {
      throw new ConfigError(
        `config: environment variable LOG_LEVEL must be one of ${LogLevels.map((l) => JSON.stringify(l)).join(', ')}, got ${show(logLevel, false)}`,
        'LOG_LEVEL',
      );
    }
    config.logLevel = level as LogLevel;
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
