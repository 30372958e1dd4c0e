import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, defaultConfig, describeSchema, loadConfig, parseConfig, planFor } from '../../../src/config/index.js';
import { PlanSchema, ServerSchema, UpstreamKinds } from '../../../src/config/schema.js';
import { DOC_PATH, withTables } from '../../../scripts/gen-config-docs.js';

/** The smallest valid config. */
const minimal = () => ({
  plans: { p: {} } as Record<string, Record<string, unknown>>,
  accounts: [{ id: 'a', plan: 'p', keys: [{ id: 'k', secret: 'sk_12345678' }] }] as Record<string, unknown>[],
});

/** The ConfigError thrown by fn; fails the test if fn does not throw one. */
function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

const parseError = (raw: unknown, env: NodeJS.ProcessEnv = {}) => errorOf(() => parseConfig(raw, env));

describe('parseConfig: defaults', () => {
  it('fills every default into a minimal config', () => {
    const config = parseConfig(minimal(), {});
    const plan = config.plans.p!;
    expect(plan.messagesPerSecond).toBe(100);
    expect(plan.maxFrameBytes).toBe(262144);
    expect(plan.requestsPerMinute.translate).toBe(120);
    expect(plan.requestsPerMinute).toEqual({
      rest: 60,
      'conversation.start': 20,
      'conversation.turn': 60,
      'pronunciation.assess': 30,
      translate: 120,
    });
    expect(config.server.port).toBe(8080);
    expect(config.server.host).toBe('0.0.0.0');
    expect(config.server.demo).toBe(false);
    expect(config.store).toEqual({ kind: 'memory' });
    expect(config.logLevel).toBe('info');
    expect(config.upstreams.stt.provider).toBe('simulated');
    expect(config.accounts[0]!.origins).toEqual([]);
    expect(config.accounts[0]!.keys[0]!.disabled).toBe(false);
  });

  it('gives every upstream kind a simulated provider with only the always-on limit defaults', () => {
    const config = parseConfig(minimal(), {});
    expect(Object.keys(config.upstreams).sort()).toEqual([...UpstreamKinds].sort());
    for (const kind of UpstreamKinds) {
      expect(config.upstreams[kind]).toEqual({
        provider: 'simulated',
        limits: { timeoutSeconds: 30, maxRetries: 5, maxQueueWaitSeconds: 30 },
      });
    }
  });

  it('keeps the given requestsPerMinute kinds and defaults the others', () => {
    const raw = minimal();
    raw.plans.p = { requestsPerMinute: { rest: 5 } };
    expect(parseConfig(raw, {}).plans.p!.requestsPerMinute).toEqual({
      rest: 5,
      'conversation.start': 20,
      'conversation.turn': 60,
      'pronunciation.assess': 30,
      translate: 120,
    });
  });

  it('leaves rate limits unset unless configured, and defaults burst to requestsPerSecond rounded up', () => {
    const config = parseConfig({ ...minimal(), upstreams: { tts: { limits: { requestsPerSecond: 2.5, maxChars: 500 } } } }, {});
    expect(config.upstreams.tts.limits).toEqual({
      requestsPerSecond: 2.5,
      burst: 3,
      maxChars: 500,
      timeoutSeconds: 30,
      maxRetries: 5,
      maxQueueWaitSeconds: 30,
    });
    expect(config.upstreams.tts.limits.concurrency).toBeUndefined();
  });

  it('defaults a redis store', () => {
    expect(parseConfig({ ...minimal(), store: { kind: 'redis' } }, {}).store).toEqual({
      kind: 'redis',
      url: 'redis://127.0.0.1:6379',
      prefix: 'parley:',
      expectedReplicas: 1,
      leaseSeconds: 30,
      commandTimeoutMs: 500,
    });
  });

  it('refuses a store.tls.caFile it cannot read, naming the key', () => {
    const err = parseError({ ...minimal(), store: { kind: 'redis', url: 'rediss://redis.example:6380', tls: { caFile: '/nonexistent/ca.pem' } } });
    expect(err.key).toBe('store.tls.caFile');
    expect(err.message).toMatch(/store\.tls\.caFile "\/nonexistent\/ca\.pem" cannot be read/);
  });

  it('sets server.demoAccount to the first account when not given', () => {
    expect(parseConfig(minimal(), {}).server.demoAccount).toBe('a');
  });

  it('does not modify its input', () => {
    const raw = minimal();
    const before = JSON.stringify(raw);
    parseConfig(raw, {});
    expect(JSON.stringify(raw)).toBe(before);
  });

  it('returns a deeply frozen config', () => {
    const config = parseConfig(minimal(), {});
    expect(Object.isFrozen(config)).toBe(true);
    // ES modules are strict mode: writing to a frozen object throws.
    expect(() => {
      (config.server as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.plans.p!.requestsPerMinute as { rest: number }).rest = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.accounts as unknown[]).push({});
    }).toThrow(TypeError);
    expect(() => {
      (config.accounts[0]!.keys[0] as { secret: string }).secret = 'x';
    }).toThrow(TypeError);
    expect(() => {
      (config.upstreams.stt.limits as { concurrency?: number }).concurrency = 1;
    }).toThrow(TypeError);
  });
});

describe('parseConfig: schema errors name the key, the value and what is allowed', () => {
  it('wrong type', () => {
    const raw = minimal();
    raw.plans.standard = { messagesPerSecond: 'fast' };
    raw.accounts = [];
    const err = parseError(raw);
    expect(err.message).toBe('config: plans.standard.messagesPerSecond must be a number > 0, got "fast"');
    expect(err.key).toBe('plans.standard.messagesPerSecond');
  });

  it('out of range', () => {
    expect(parseError({ plans: { standard: { messagesPerSecond: 0 } } }).message).toBe(
      'config: plans.standard.messagesPerSecond must be a number > 0, got 0',
    );
    expect(parseError({ server: { port: 70000 } }).message).toBe('config: server.port must be an integer from 0 to 65535, got 70000');
    expect(parseError({ plans: { p: { connectionsPerKey: 1.5 } } }).message).toBe(
      'config: plans.p.connectionsPerKey must be an integer >= 1, got 1.5',
    );
  });

  it('quotes keys that are not identifiers', () => {
    expect(parseError({ plans: { p: { requestsPerMinute: { 'conversation.start': 0 } } } }).message).toBe(
      'config: plans.p.requestsPerMinute["conversation.start"] must be an integer >= 1, got 0',
    );
  });

  it('unknown key: names it, suggests the nearest and lists the allowed keys', () => {
    const err = parseError({ plans: { standard: { messagesPerSecnd: 5 } } });
    expect(err.message).toBe(
      'config: unknown key plans.standard.messagesPerSecnd (did you mean messagesPerSecond?); allowed keys in plans.standard: ' +
        Object.keys(PlanSchema.properties).join(', '),
    );
    expect(err.message).toContain('connectionsPerKey, connectionsPerAccount, messagesPerSecond, messageBurst');
    expect(err.key).toBe('plans.standard.messagesPerSecnd');
  });

  it('unknown top-level key', () => {
    expect(parseError({ plan: {} }).message).toBe(
      'config: unknown key plan (did you mean plans?); allowed keys at the top level: server, store, logLevel, plans, accounts, upstreams, $schema',
    );
  });

  it('unknown key without a near match has no suggestion', () => {
    expect(parseError({ server: { colour: 'blue' } }).message).toMatch(/^config: unknown key server\.colour; allowed keys in server: host, port, /);
  });

  it('missing required key', () => {
    const raw = minimal();
    delete raw.accounts[0]!.plan;
    expect(parseError(raw).message).toBe('config: accounts[0].plan is required and must be a non-empty string');
  });

  it('bad enum', () => {
    expect(parseError({ logLevel: 'verbose' }).message).toBe(
      'config: logLevel must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "verbose"',
    );
  });

  it('bad literal', () => {
    expect(parseError({ upstreams: { stt: { provider: 'azure' } } }).message).toBe(
      'config: upstreams.stt.provider must be "simulated" or "openai", got "azure"',
    );
  });

  it('pattern mismatch', () => {
    const raw = minimal();
    raw.accounts[0]!.id = 'acct one';
    expect(parseError(raw).message).toBe(
      'config: accounts[0].id must be a non-empty string of letters, digits, "_", "." and "-", got "acct one"',
    );
    expect(parseError({ upstreams: { stt: { provider: 'openai', baseUrl: 'ftp://x' } } }).message).toBe(
      'config: upstreams.stt.baseUrl must be an http:// or https:// URL, got "ftp://x"',
    );
  });

  it('store: names the allowed kinds', () => {
    expect(parseError({ store: { kind: 'postgres' } }).message).toBe('config: store.kind must be "memory" or "redis", got "postgres"');
    expect(parseError({ store: { url: 'redis://x' } }).message).toBe('config: store.kind is required and must be "memory" or "redis"');
    expect(parseError({ store: 'redis' }).message).toBe('config: store must be an object with kind "memory" or "redis", got "redis"');
  });

  it('store: reports the error inside the variant its kind names', () => {
    expect(parseError({ store: { kind: 'redis', url: 5 } }).message).toBe('config: store.url must be a string, got 5');
    expect(parseError({ store: { kind: 'memory', url: 'redis://x' } }).message).toBe(
      'config: unknown key store.url; allowed keys in store: kind',
    );
  });

  it('an array where an object belongs, and an object where an array belongs', () => {
    expect(parseError({ server: [] }).message).toBe('config: server must be an object, got an empty array');
    expect(parseError({ plans: [] }).message).toBe('config: plans must be an object, got an empty array');
    expect(parseError({ accounts: {} }).message).toBe('config: accounts must be an array, got an object');
  });

  it('the configuration itself must be an object', () => {
    expect(parseError([1]).message).toBe('config: the configuration must be an object, got an array of 1 item');
    expect(parseError('x').message).toBe('config: the configuration must be an object, got "x"');
  });

  it('never prints a value under accounts[].keys', () => {
    const raw = minimal();
    raw.accounts[0]!.keys = [{ id: 'k', secret: 'short' }];
    const err = parseError(raw);
    expect(err.message).toBe(
      'config: accounts[0].keys[0].secret must be a secret of at least 8 characters, or "env:NAME", got a string of 5 characters (value not shown)',
    );
    raw.accounts[0]!.keys = ['sk_live_misplaced'];
    const misplaced = parseError(raw);
    expect(misplaced.message).toBe('config: accounts[0].keys[0] must be an object, got a string of 17 characters (value not shown)');
    expect(misplaced.message).not.toContain('sk_live');
  });

  it('an empty keys array', () => {
    const raw = minimal();
    raw.accounts[0]!.keys = [];
    expect(parseError(raw).message).toBe('config: accounts[0].keys must be a non-empty array, got an empty array');
  });
});

describe('parseConfig: cross-field checks', () => {
  it('an account plan must name a plan', () => {
    const raw = minimal();
    raw.plans.gold = {};
    raw.accounts[0]!.plan = 'silver';
    const err = parseError(raw);
    expect(err.message).toBe('config: accounts[0].plan names unknown plan "silver"; plans: p, gold');
    expect(err.key).toBe('accounts[0].plan');
  });

  it('account ids are unique', () => {
    const raw = minimal();
    raw.accounts.push({ id: 'a', plan: 'p', keys: [{ id: 'k2', secret: 'sk_87654321' }] });
    expect(parseError(raw).message).toBe('config: accounts[1].id "a" is already used by accounts[0]; account ids must be unique');
  });

  it('key ids are unique across accounts', () => {
    const raw = minimal();
    raw.accounts.push({ id: 'b', plan: 'p', keys: [{ id: 'k', secret: 'sk_87654321' }] });
    expect(parseError(raw).message).toBe(
      'config: accounts[1].keys[0].id "k" is already used by accounts[0].keys[0]; key ids must be unique across all accounts',
    );
  });

  it('key secrets are unique, and the message does not show the secret', () => {
    const raw = minimal();
    raw.accounts.push({ id: 'b', plan: 'p', keys: [{ id: 'k2', secret: 'sk_12345678' }] });
    const err = parseError(raw);
    expect(err.message).toBe('config: accounts[1].keys[0].secret is the same as accounts[0].keys[0].secret; every key needs its own secret');
    expect(err.message).not.toContain('sk_12345678');
  });

  it('secrets are compared after env: resolution', () => {
    const raw = minimal();
    raw.accounts.push({ id: 'b', plan: 'p', keys: [{ id: 'k2', secret: 'env:SECOND' }] });
    expect(parseError(raw, { SECOND: 'sk_12345678' }).message).toBe(
      'config: accounts[1].keys[0].secret is the same as accounts[0].keys[0].secret; every key needs its own secret',
    );
  });

  it('maxFrameBytes must fit in byteBurst', () => {
    const raw = minimal();
    raw.plans.p = { maxFrameBytes: 2_000_000 };
    expect(parseError(raw).message).toBe(
      'config: plans.p.maxFrameBytes (2000000) must be <= plans.p.byteBurst (1048576): a frame larger than the byte burst could never pass',
    );
  });

  it('expiryWarningSeconds must be below maxSessionSeconds', () => {
    const raw = minimal();
    raw.plans.p = { maxSessionSeconds: 60 };
    expect(parseError(raw).message).toBe('config: plans.p.expiryWarningSeconds (60) must be < plans.p.maxSessionSeconds (60)');
  });

  it('server.demoAccount must name an account', () => {
    expect(parseError({ ...minimal(), server: { demoAccount: 'nobody' } }).message).toBe(
      'config: server.demoAccount names unknown account "nobody"; accounts: a',
    );
  });

  it('server.demo needs an account', () => {
    expect(parseError({ server: { demo: true } }).message).toBe(
      'config: server.demo needs at least one account in accounts (the demo mints tokens for server.demoAccount)',
    );
  });

  it('server.maxPayloadBytes must admit every plan frame', () => {
    expect(parseError({ ...minimal(), server: { maxPayloadBytes: 65536 } }).message).toBe(
      'config: server.maxPayloadBytes (65536) must be >= plans.p.maxFrameBytes (262144), or the WebSocket layer would refuse frames the plan allows',
    );
  });

  it('an openai upstream needs baseUrl', () => {
    const err = parseError({ ...minimal(), upstreams: { tts: { provider: 'openai' } } });
    expect(err.message).toBe('config: upstreams.tts.baseUrl is required when upstreams.tts.provider is "openai"');
    expect(err.key).toBe('upstreams.tts.baseUrl');
  });

  it('limits.burst needs requestsPerSecond', () => {
    expect(parseError({ ...minimal(), upstreams: { stt: { limits: { burst: 10 } } } }).message).toBe(
      'config: upstreams.stt.limits.burst needs upstreams.stt.limits.requestsPerSecond (burst is the capacity of that token bucket)',
    );
  });
});

describe('parseConfig: env:NAME secrets', () => {
  const withEnvSecrets = () => ({
    ...minimal(),
    accounts: [
      { id: 'a', plan: 'p', keys: [{ id: 'k1', secret: 'sk_literal_secret' }, { id: 'k2', secret: 'env:KEY_TWO' }] },
    ],
    upstreams: { stt: { provider: 'openai', baseUrl: 'http://127.0.0.1:9000/v1', apiKey: 'env:STT_KEY' } },
  });

  it('resolves key secrets and upstream API keys from env', () => {
    const config = parseConfig(withEnvSecrets(), { KEY_TWO: 'sk_from_env_2', STT_KEY: 'upstream-key' });
    expect(config.accounts[0]!.keys[1]!.secret).toBe('sk_from_env_2');
    expect(config.upstreams.stt.apiKey).toBe('upstream-key');
  });

  it('a missing variable names the key and the variable, and shows no secret', () => {
    const env = { STT_KEY: 'upstream-key-value' };
    const err = parseError(withEnvSecrets(), env);
    expect(err.message).toBe('config: accounts[0].keys[1].secret reads environment variable KEY_TWO, which is not set');
    expect(err.key).toBe('accounts[0].keys[1].secret');
    expect(err.message).not.toContain('sk_literal_secret');
    expect(err.message).not.toContain('upstream-key-value');

    const apiErr = parseError(withEnvSecrets(), { KEY_TWO: 'sk_from_env_2' });
    expect(apiErr.message).toBe('config: upstreams.stt.apiKey reads environment variable STT_KEY, which is not set');
    expect(apiErr.message).not.toContain('sk_from_env_2');
    expect(apiErr.message).not.toContain('sk_literal_secret');
  });

  it('an empty variable is refused like a missing one', () => {
    expect(parseError(withEnvSecrets(), { KEY_TWO: '', STT_KEY: 'x' }).message).toBe(
      'config: accounts[0].keys[1].secret reads environment variable KEY_TWO, which is empty',
    );
  });

  it('a key secret from env must still be 8 characters, and is not shown', () => {
    const err = parseError(withEnvSecrets(), { KEY_TWO: 'abc', STT_KEY: 'x' });
    expect(err.message).toBe('config: accounts[0].keys[1].secret must be at least 8 characters, but environment variable KEY_TWO has 3');
  });

  it('an apiKey env: reference must be a variable name', () => {
    const raw = withEnvSecrets();
    raw.upstreams.stt.apiKey = 'env:1-bad';
    expect(parseError(raw, { KEY_TWO: 'sk_from_env_2' }).message).toBe(
      'config: upstreams.stt.apiKey must be "env:NAME" with NAME an environment variable name (letters, digits and "_"), got "env:" followed by a string of 5 characters',
    );
  });
});

describe('parseConfig: environment overrides', () => {
  it('PORT, HOST, REDIS_URL and LOG_LEVEL override the file', () => {
    const config = parseConfig(minimal(), { PORT: '9000', HOST: '127.0.0.1', REDIS_URL: 'redis://redis:6379/0', LOG_LEVEL: 'DEBUG' });
    expect(config.server.port).toBe(9000);
    expect(config.server.host).toBe('127.0.0.1');
    expect(config.store).toEqual({ kind: 'redis', url: 'redis://redis:6379/0', prefix: 'parley:', expectedReplicas: 1, leaseSeconds: 30, commandTimeoutMs: 500 });
    expect(config.logLevel).toBe('debug');
  });

  it('REDIS_URL keeps the file redis prefix and replica count, and drops cluster', () => {
    const raw = { ...minimal(), store: { kind: 'redis', prefix: 'x:', expectedReplicas: 3, cluster: ['redis://n1:6379'] } };
    expect(parseConfig(raw, { REDIS_URL: 'rediss://r:6380' }).store).toEqual({
      kind: 'redis',
      url: 'rediss://r:6380',
      prefix: 'x:',
      expectedReplicas: 3,
      leaseSeconds: 30,
      commandTimeoutMs: 500,
    });
  });

  it('empty variables are ignored', () => {
    const config = parseConfig(minimal(), { PORT: '', HOST: '', REDIS_URL: '', LOG_LEVEL: '' });
    expect(config.server.port).toBe(8080);
    expect(config.store.kind).toBe('memory');
  });

  it('a bad PORT is an error naming the variable', () => {
    const err = parseError(minimal(), { PORT: 'abc' });
    expect(err.message).toBe('config: environment variable PORT must be an integer from 0 to 65535, got "abc"');
    expect(err.key).toBe('PORT');
    expect(parseError(minimal(), { PORT: '65536' }).message).toBe(
      'config: environment variable PORT must be an integer from 0 to 65535, got "65536"',
    );
  });

  it('a bad REDIS_URL is an error that hides its password', () => {
    const err = parseError(minimal(), { REDIS_URL: 'http://user:hunter22@redis:6379' });
    expect(err.message).toBe('config: environment variable REDIS_URL must be a redis:// or rediss:// URL, got "http://[REDACTED]@redis:6379"');
    expect(err.message).not.toContain('hunter22');
  });

  it('a bad LOG_LEVEL is an error naming the variable', () => {
    expect(parseError(minimal(), { LOG_LEVEL: 'loud' }).message).toBe(
      'config: environment variable LOG_LEVEL must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "loud"',
    );
  });
});

describe('defaultConfig', () => {
  it('is one demo account with a random sk_demo_ key, the demo on, port 8080', () => {
    const config = defaultConfig({});
    expect(config.accounts).toHaveLength(1);
    const account = config.accounts[0]!;
    expect(account.id).toBe('acct_demo');
    expect(account.plan).toBe('standard');
    expect(account.origins).toEqual(['http://localhost:8080', 'http://127.0.0.1:8080']);
    expect(account.keys).toHaveLength(1);
    expect(account.keys[0]!.id).toBe('key_demo');
    expect(account.keys[0]!.secret).toMatch(/^sk_demo_[A-Za-z0-9_-]{32}$/);
    expect(config.server.demo).toBe(true);
    expect(config.server.demoAccount).toBe('acct_demo');
    expect(config.server.port).toBe(8080);
    expect(config.store).toEqual({ kind: 'memory' });
    expect(Object.keys(config.plans)).toEqual(['standard']);
    expect(config.plans.standard!.messagesPerSecond).toBe(100);
    for (const kind of UpstreamKinds) expect(config.upstreams[kind].provider).toBe('simulated');
    expect(Object.isFrozen(config.accounts[0]!.keys[0])).toBe(true);
  });

  it('gives a different secret on every call', () => {
    expect(defaultConfig({}).accounts[0]!.keys[0]!.secret).not.toBe(defaultConfig({}).accounts[0]!.keys[0]!.secret);
  });

  it('applies the environment overrides, and the demo origins follow PORT', () => {
    const config = defaultConfig({ PORT: '9100', REDIS_URL: 'redis://r:6379', LOG_LEVEL: 'warn' });
    expect(config.server.port).toBe(9100);
    expect(config.accounts[0]!.origins).toEqual(['http://localhost:9100', 'http://127.0.0.1:9100']);
    expect(config.store.kind).toBe('redis');
    expect(config.logLevel).toBe('warn');
  });

  it('refuses a bad PORT', () => {
    expect(errorOf(() => defaultConfig({ PORT: 'abc' })).message).toBe(
      'config: environment variable PORT must be an integer from 0 to 65535, got "abc"',
    );
  });
});

describe('loadConfig', () => {
  it('uses the embedded default without PARLEY_CONFIG', () => {
    const { config, source } = loadConfig({}, () => {
      throw new Error('must not read');
    });
    expect(source).toBe('default');
    expect(config.accounts[0]!.id).toBe('acct_demo');
  });

  it('reads PARLEY_CONFIG and applies the environment on top', () => {
    const read: string[] = [];
    const { config, source } = loadConfig({ PARLEY_CONFIG: '/etc/parley.json', PORT: '7000' }, (p) => {
      read.push(p);
      return `\uFEFF${JSON.stringify(minimal())}`;
    });
    expect(read).toEqual(['/etc/parley.json']);
    expect(source).toBe('/etc/parley.json');
    expect(config.server.port).toBe(7000);
    expect(config.accounts[0]!.id).toBe('a');
  });

  it('an unreadable file is an error naming the path', () => {
    const err = errorOf(() => loadConfig({ PARLEY_CONFIG: '/nonexistent/parley.json' }));
    expect(err.message).toBe(
      `config: cannot read PARLEY_CONFIG file "/nonexistent/parley.json": ENOENT: no such file or directory, open '/nonexistent/parley.json'`,
    );
    expect(err.key).toBe('PARLEY_CONFIG');
  });

  it('invalid JSON is an error with the path and the position', () => {
    const text = '{\n  "plans": { "p": {}, }\n}';
    const err = errorOf(() => loadConfig({ PARLEY_CONFIG: 'c.json' }, () => text));
    expect(err.message).toBe(
      'config: PARLEY_CONFIG file "c.json" is not valid JSON: unexpected "}" at line 2, column 23 (position 24; expected a property name in double quotes)',
    );
  });

  it('invalid JSON does not quote the text around the error', () => {
    const text = '{"accounts": [{"keys": [{"secret": sk_live_unquoted}]}]}';
    const err = errorOf(() => loadConfig({ PARLEY_CONFIG: 'c.json' }, () => text));
    expect(err.message).toBe(
      'config: PARLEY_CONFIG file "c.json" is not valid JSON: unexpected "s" at line 1, column 36 (position 35; expected a value)',
    );
    expect(err.message).not.toContain('sk_live');
  });

  it('empty and truncated files', () => {
    const load = (text: string) => errorOf(() => loadConfig({ PARLEY_CONFIG: 'c.json' }, () => text)).message;
    expect(load('')).toBe('config: PARLEY_CONFIG file "c.json" is not valid JSON: unexpected end of text at line 1, column 1 (position 0; expected a value)');
    expect(load('{"plans": {')).toBe(
      'config: PARLEY_CONFIG file "c.json" is not valid JSON: unexpected end of text at line 1, column 12 (position 11; expected a property name in double quotes or "}")',
    );
  });
});

describe('loadConfig: JSON syntax errors (jsonc-parser, strict JSON)', () => {
  const load = (text: string) => errorOf(() => loadConfig({ PARLEY_CONFIG: 'c.json' }, () => text)).message.replace('config: PARLEY_CONFIG file "c.json" is not valid JSON: ', '');
  it.each([
    ['{"a": 1,}', 'unexpected "}" at line 1, column 9 (position 8; expected a property name in double quotes)'],
    ['[1,]', 'unexpected "]" at line 1, column 4 (position 3; expected a value)'],
    ['{"a" 1}', 'unexpected "1" at line 1, column 6 (position 5; expected ":")'],
    ['{"a": 1 "b": 2}', 'unexpected "\\"" at line 1, column 9 (position 8; expected ",")'],
    ['{"a": [1 2]}', 'unexpected "2" at line 1, column 10 (position 9; expected ",")'],
    ['{"a": 1}\n{"b": 2}', 'unexpected "{" at line 2, column 1 (position 9; expected the end of the text)'],
    ['// note\n{}', 'unexpected "/" at line 1, column 1 (position 0; expected no comment (JSON has none; a .yaml config may have them))'],
    ['{"a": "x', 'unexpected end of text at line 1, column 9 (position 8; expected a closing ")'],
    ['{"a": "x\n"}', 'unexpected "\\n" at line 1, column 9 (position 8; expected a closing ")'],
  ])('%j', (text, message) => {
    expect(load(text)).toBe(message);
  });

  it('takes a file with a "$schema" key', () => {
    const text = JSON.stringify({ $schema: '../docs/config.schema.json', ...minimal() });
    expect(loadConfig({ PARLEY_CONFIG: 'c.json' }, () => text).config.accounts[0]!.id).toBe('a');
  });
});

describe('loadConfig: YAML (.yaml, .yml)', () => {
  const yaml = [
    '# yaml-language-server: $schema=../docs/config.schema.json',
    'server:',
    '  port: 9000   # a comment',
    'plans:',
    '  p: {}',
    'accounts:',
    '  - id: a',
    '    plan: p',
    '    keys:',
    '      - id: k',
    '        secret: sk_12345678',
    '',
  ].join('\n');

  it('reads a .yaml or .yml file (any case) as YAML, to the same config as its JSON', () => {
    const fromJson = loadConfig({ PARLEY_CONFIG: 'c.json' }, () => JSON.stringify({ ...minimal(), server: { port: 9000 } })).config;
    for (const path of ['c.yaml', 'c.yml', 'C.YAML']) {
      const { config, source } = loadConfig({ PARLEY_CONFIG: path }, () => yaml);
      expect(source).toBe(path);
      expect(config).toEqual(fromJson);
    }
  });

  it('reports a syntax error with its line and column, without the text around it', () => {
    const text = 'server:\n  port: 80\n   host: x\naccounts:\n  - keys: [{secret: sk_live_leaky}\n';
    const err = errorOf(() => loadConfig({ PARLEY_CONFIG: '/etc/parley.yaml' }, () => text));
    expect(err.key).toBe('PARLEY_CONFIG');
    expect(err.message).toBe('config: PARLEY_CONFIG file "/etc/parley.yaml" is not valid YAML: Nested mappings are not allowed in compact mappings at line 2, column 9 (BLOCK_AS_IMPLICIT_KEY)');
    const leaky = errorOf(() => loadConfig({ PARLEY_CONFIG: 'c.yml' }, () => 'accounts:\n  - keys: [{secret: sk_live_leaky}\n')).message;
    expect(leaky).toMatch(/^config: PARLEY_CONFIG file "c.yml" is not valid YAML: .* at line 3, column 1 \(BAD_INDENT\)$/);
    expect(leaky).not.toContain('sk_live');
  });

  it('refuses a key given twice, an unknown tag, an alias to nothing and several documents', () => {
    const load = (text: string) => errorOf(() => loadConfig({ PARLEY_CONFIG: 'c.yaml' }, () => text)).message.replace('config: PARLEY_CONFIG file "c.yaml" is not valid YAML: ', '');
    expect(load('plans: {}\nplans: {}\n')).toBe('Map keys must be unique at line 2, column 1 (DUPLICATE_KEY)');
    expect(load('logLevel: !secret info\n')).toBe('Unresolved tag: !secret at line 1, column 11 (TAG_RESOLVE_FAILED)');
    expect(load('logLevel: *level\n')).toBe('Unresolved alias (the anchor must be set before the alias): level');
    expect(load('plans: {}\n---\naccounts: []\n')).toMatch(/^Source contains multiple documents.* at line 2, column 1 \(MULTIPLE_DOCS\)$/);
  });

  it('refuses an alias bomb', () => {
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 0; i < 8; i++) lines.push(`${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`);
    const message = errorOf(() => loadConfig({ PARLEY_CONFIG: 'c.yaml' }, () => lines.join('\n'))).message;
    expect(message).toMatch(/^config: PARLEY_CONFIG file "c.yaml" is not valid YAML: Excessive alias count/);
  });

  it('validates a YAML document like a JSON one: the schema error names the key', () => {
    const err = errorOf(() => loadConfig({ PARLEY_CONFIG: 'c.yaml' }, () => yaml.replace('port: 9000', 'port: ninety')));
    expect(err.message).toBe('config: server.port must be an integer from 0 to 65535, got "ninety"');
  });

  it('an empty YAML file is not a configuration', () => {
    expect(errorOf(() => loadConfig({ PARLEY_CONFIG: 'c.yaml' }, () => '# nothing\n')).message).toBe('config: the configuration must be an object, got null');
  });
});

describe('planFor', () => {
  it("returns the account's plan", () => {
    const raw = minimal();
    raw.plans.q = { messagesPerSecond: 7 };
    raw.accounts.push({ id: 'b', plan: 'q', keys: [{ id: 'k2', secret: 'sk_87654321' }] });
    const config = parseConfig(raw, {});
    expect(planFor(config, 'b').messagesPerSecond).toBe(7);
    expect(planFor(config, 'a')).toBe(config.plans.p);
  });

  it('throws for an unknown account', () => {
    expect(() => planFor(parseConfig(minimal(), {}), 'zz')).toThrow('planFor: unknown account "zz"');
  });
});

describe('describeSchema', () => {
  it('puts a schema into words', () => {
    expect(describeSchema(ServerSchema.properties.port)).toBe('an integer from 0 to 65535');
    expect(describeSchema(PlanSchema.properties.messagesPerSecond)).toBe('a number > 0');
    expect(describeSchema(PlanSchema.properties.messageQueue)).toBe('an integer >= 0');
  });
});

describe('docs/configuration.md', () => {
  const doc = fs.readFileSync(DOC_PATH, 'utf8');

  it('has reference tables generated from the schema (npx tsx scripts/gen-config-docs.ts)', () => {
    expect(withTables(doc)).toBe(doc);
  });

  it('has a full example that is valid', () => {
    const example = /## Full example[\s\S]*?```json\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(example).toBeDefined();
    const config = parseConfig(JSON.parse(example!), { STT_KEY: 'stt-key', TTS_KEY: 'tts-key', LLM_KEY: 'llm-key' });
    expect(config.upstreams.stt.limits.burst).toBe(60);
    expect(config.upstreams.tts.apiKey).toBe('tts-key');
    expect(config.accounts[0]!.keys[0]!.secret).toBe('sk_demo_change_me');
  });
});
