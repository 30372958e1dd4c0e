/**
 * docs/config.schema.json (CONTRACT §9): generated from the TypeBox schema and up to date, a valid
 * JSON Schema that editors can use (ajv, draft 07, strict), keys with defaults not required; and
 * the example/ configs, which must pass both that schema and the gateway's own loader.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { CONFIG_SCHEMA_FILE } from '../../../src/config/schema.js';
import { staleFiles } from '../../../scripts/gen-schemas.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const schema = JSON.parse(fs.readFileSync(path.join(ROOT, CONFIG_SCHEMA_FILE), 'utf8')) as Record<string, unknown>;
// strict: unknown keywords or formats in the file are errors, as a careful editor would report them.
const validate = new Ajv({ strict: true, allErrors: true, allowUnionTypes: true }).compile(schema);

const EXAMPLES = fs.readdirSync(path.join(ROOT, 'example')).filter((f) => /\.(json|ya?ml)$/.test(f));
const readExample = (file: string): unknown => {
  const text = fs.readFileSync(path.join(ROOT, 'example', file), 'utf8');
  return file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
};
const ENV = { PARLEY_API_KEY: 'sk_example_0123456789', OPENAI_API_KEY: 'sk-openai-0123456789' };

describe('docs/config.schema.json', () => {
  it('is what scripts/gen-schemas.ts makes from src/config/schema.ts now', () => {
    expect(staleFiles().filter((f) => f === CONFIG_SCHEMA_FILE)).toEqual([]);
  });

  it('is a draft-07 schema that accepts the smallest config: keys with defaults are not required', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    const smallest = { accounts: [{ id: 'a', plan: 'p', keys: [{ id: 'k', secret: 'sk_12345678' }] }], plans: { p: {} } };
    expect(validate(smallest), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({}), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ $schema: './config.schema.json', store: { kind: 'redis' } }), JSON.stringify(validate.errors)).toBe(true);
  });

  it('no key that has a default is required, anywhere', () => {
    const offenders: string[] = [];
    const visit = (node: unknown, at: string): void => {
      if (typeof node !== 'object' || node === null) return;
      const o = node as Record<string, unknown>;
      const props = o.properties as Record<string, Record<string, unknown>> | undefined;
      for (const key of (o.required as string[] | undefined) ?? []) if (props?.[key] && 'default' in props[key]) offenders.push(`${at}.${key}`);
      for (const [k, v] of Object.entries(o)) visit(v, `${at}/${k}`);
    };
    visit(schema, '');
    expect(offenders).toEqual([]);
  });

  it('still refuses what the loader refuses by schema: unknown keys, wrong types, missing required keys', () => {
    expect(validate({ plan: {} })).toBe(false);
    expect(validate({ server: { port: 'eighty' } })).toBe(false);
    expect(validate({ accounts: [{ id: 'a', plan: 'p' }] })).toBe(false);
    expect(validate({ store: { kind: 'mongo' } })).toBe(false);
    expect(validate({ accounts: [{ id: 'a', plan: 'p', keys: [{ id: 'k', secret: 'short' }] }] })).toBe(false);
  });
});

describe('example/ configs', () => {
  it('cover a single replica, two replicas on Redis, and real OpenAI-compatible upstreams', () => {
    expect(EXAMPLES.sort()).toEqual(['openai.yaml', 'replicas-redis.yaml', 'single.json']);
  });

  it.each(EXAMPLES)('%s is valid against docs/config.schema.json and points editors at it', (file) => {
    const doc = readExample(file) as Record<string, unknown>;
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
    const text = fs.readFileSync(path.join(ROOT, 'example', file), 'utf8');
    const ref = file.endsWith('.json') ? (doc.$schema as string) : /^# yaml-language-server: \$schema=(\S+)$/m.exec(text)?.[1];
    expect(ref).toBeDefined();
    expect(path.resolve(ROOT, 'example', ref!)).toBe(path.join(ROOT, CONFIG_SCHEMA_FILE));
  });

  it('single.json: one replica, in-memory store, simulated upstreams, demo and dashboard', () => {
    const { config } = loadConfig({ ...ENV, PARLEY_CONFIG: path.join(ROOT, 'example/single.json') });
    expect(config.store.kind).toBe('memory');
    expect(config.server.demo && config.server.dashboard).toBe(true);
    expect(config.accounts[0]!.keys[0]!.secret).toBe(ENV.PARLEY_API_KEY);
    expect(Object.values(config.upstreams).every((u) => u.provider === 'simulated')).toBe(true);
  });

  it('replicas-redis.yaml: a Redis store shared by two replicas behind a proxy', () => {
    const { config } = loadConfig({ ...ENV, PARLEY_CONFIG: path.join(ROOT, 'example/replicas-redis.yaml') });
    expect(config.store).toMatchObject({ kind: 'redis', url: 'redis://127.0.0.1:6379', expectedReplicas: 2 });
    expect(config.server.trustProxy).toBe(true);
    expect(config.upstreams.tts.limits.burst).toBe(10);
  });

  it('openai.yaml: OpenAI-compatible upstreams with keys from the environment, pronunciation simulated', () => {
    const { config } = loadConfig({ ...ENV, PARLEY_CONFIG: path.join(ROOT, 'example/openai.yaml') });
    for (const kind of ['conversation', 'stt', 'tts', 'translation'] as const) {
      expect(config.upstreams[kind]).toMatchObject({ provider: 'openai', baseUrl: 'https://api.openai.com/v1', apiKey: ENV.OPENAI_API_KEY });
    }
    expect(config.upstreams.pronunciation.provider).toBe('simulated');
    expect(config.upstreams.conversation.account).toBe(config.upstreams.translation.account);
  });
});
