/** configSecrets (src/config/secrets.ts): what the logger's line scrub searches for. */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { configSecrets } from '../../../src/config/secrets.js';

const accounts = [
  { id: 'a', plan: 'p', keys: [{ id: 'k1', secret: 'file-secret-1' }, { id: 'k2', secret: 'env:KEY_TWO' }] },
  { id: 'b', plan: 'p', keys: [{ id: 'k3', secret: 'file-secret-3' }] },
];
const upstreams = { stt: { provider: 'openai', baseUrl: 'http://127.0.0.1:9000/v1', apiKey: 'env:UPSTREAM' } };

describe('configSecrets', () => {
  it('lists the account keys and upstream keys as resolved from env:, and the password of REDIS_URL raw and decoded', () => {
    const config = parseConfig({ plans: { p: {} }, accounts, upstreams }, { KEY_TWO: 'env-secret-2', UPSTREAM: 'upstream-secret', REDIS_URL: 'redis://default:p%40ssw0rd@cache:6379' });
    expect(configSecrets(config).sort()).toEqual(['env-secret-2', 'file-secret-1', 'file-secret-3', 'p%40ssw0rd', 'p@ssw0rd', 'upstream-secret'].sort());
  });

  it('takes a lone user name as the credential (redis://token@host), and every Cluster node URL', () => {
    const config = parseConfig({ plans: { p: {} }, accounts: [], server: { demo: false }, store: { kind: 'redis', url: 'redis://tokenonly@cache:6379', cluster: ['redis://:node-secret@n1:7000', 'redis://n2:7001'] } }, {});
    expect(configSecrets(config).sort()).toEqual(['node-secret', 'tokenonly']);
  });

  it('has nothing to add for the memory store', () => {
    const config = parseConfig({ plans: { p: {} }, accounts: [{ id: 'a', plan: 'p', keys: [{ id: 'k', secret: 'only-this-one' }] }] }, {});
    expect(configSecrets(config)).toEqual(['only-this-one']);
  });
});

describe('config errors name the bad value without its credentials', () => {
  it('REDIS_URL that is not redis://: the user and password are not shown, the host is', () => {
    expect(() => parseConfig({ plans: { p: {} }, accounts }, { KEY_TWO: 'env-secret-2', REDIS_URL: 'http://admin:hunter2-redis@cache:6379' })).toThrow(
      'config: environment variable REDIS_URL must be a redis:// or rediss:// URL, got "http://[REDACTED]@cache:6379"',
    );
  });

  it('an upstream baseUrl of the wrong scheme: the password is not shown, even where the value is cut', () => {
    const baseUrl = `ftp://user:${'x'.repeat(40)}hunter2@files.example/v1`;
    let message = '';
    try {
      parseConfig({ plans: { p: {} }, accounts, upstreams: { stt: { provider: 'openai', baseUrl } } }, { KEY_TWO: 'env-secret-2' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^config: upstreams\.stt\.baseUrl must be an http:\/\/ or https:\/\/ URL, got "ftp:\/\/\[REDACTED\]@files\.example\/v1"/);
    expect(message).not.toContain('xxxx');
  });
});
