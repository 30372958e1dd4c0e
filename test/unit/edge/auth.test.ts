import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { bearer, hostAllowed, newToken, originAllowed, tokenKey, TOKEN_PATTERN } from '../../../src/edge/auth.js';
import { KeyRing } from '../../../src/identity/key-ring.js';
import { redactUrl } from '../../../src/util/redact.js';
import { logSink } from '../../helpers/log-sink.js';

const config = parseConfig(
  {
    plans: { p: {} },
    accounts: [
      { id: 'a', plan: 'p', origins: ['https://app.example'], keys: [{ id: 'k1', secret: 'sk_live_aaaaaaaa' }, { id: 'k2', secret: 'sk_live_bbbbbbbb', disabled: true }] },
      { id: 'b', plan: 'p', disabled: true, keys: [{ id: 'k3', secret: 'sk_live_cccccccc' }] },
    ],
  },
  {},
);

describe('KeyRing', () => {
  const ring = new KeyRing(config);
  it('authenticates a known key and names its account, key and plan', () => {
    const p = ring.authenticate('sk_live_aaaaaaaa');
    expect(p?.account.id).toBe('a');
    expect(p?.key.id).toBe('k1');
    expect(p?.plan.messagesPerSecond).toBe(100);
  });
  it('refuses unknown keys, near misses, disabled keys and disabled accounts', () => {
    expect(ring.authenticate('sk_live_aaaaaaab')).toBeUndefined();
    expect(ring.authenticate('')).toBeUndefined();
    expect(ring.authenticate('sk_live_bbbbbbbb')).toBeUndefined();
    expect(ring.authenticate('sk_live_cccccccc')).toBeUndefined();
  });
  it('resolves a stored token\'s principal only while the key is enabled', () => {
    expect(ring.principalFor('a', 'k1', 'learner')?.learnerId).toBe('learner');
    expect(ring.principalFor('a', 'k2')).toBeUndefined();
    expect(ring.principalFor('zz', 'k1')).toBeUndefined();
  });
});

describe('credentials', () => {
  it('tokens are subprotocol-safe, unique, and stored by hash', () => {
    const a = newToken();
    const b = newToken();
    expect(a).toMatch(TOKEN_PATTERN);
    expect(a).toMatch(/^[A-Za-z0-9_.-]+$/);
    expect(a).not.toBe(b);
    expect(tokenKey(a)).not.toContain(a.slice(3));
    expect(tokenKey(a)).toHaveLength(43);
  });
  it('parses Bearer headers', () => {
    expect(bearer('Bearer sk_x')).toBe('sk_x');
    expect(bearer('bearer   sk_x ')).toBe('sk_x');
    expect(bearer('Basic abc')).toBeUndefined();
    expect(bearer(undefined)).toBeUndefined();
  });
  it('checks browser origins; no Origin is a server-side client', () => {
    const account = config.accounts[0]!;
    expect(originAllowed(account, 'https://app.example')).toBe(true);
    expect(originAllowed(account, 'https://evil.example')).toBe(false);
    expect(originAllowed(account, undefined)).toBe(true);
    expect(originAllowed(account, 'http://localhost:8080', 'http://localhost:8080')).toBe(true);
  });
});

describe('log redaction', () => {
  it('censors keys, tokens and authorization headers, and ?token= in URLs', () => {
    const sink = logSink();
    sink.logger.info({ token: 'pt_secret1', apiKey: 'sk_secret2', nested: { secret: 'sk_secret3', resume_token: 'rt_secret4' }, req: { headers: { authorization: 'Bearer sk_secret5' } } }, 'hello');
    const raw = sink.raw.join('\n');
    for (const s of ['pt_secret1', 'sk_secret2', 'sk_secret3', 'rt_secret4', 'sk_secret5']) expect(raw).not.toContain(s);
    expect(sink.lines[0]!.token).toBe('[REDACTED]');
    expect(redactUrl('/v1/realtime?token=pt_abc&x=1')).toBe('/v1/realtime?token=[REDACTED]&x=1');
  });
});

describe('hostAllowed (server.allowedHosts)', () => {
  it.each([
    ['localhost:8080', ['localhost'], true],
    ['LOCALHOST', ['localhost'], true],
    ['[::1]:8080', ['[::1]'], true],
    ['127.0.0.1:9', ['localhost', '127.0.0.1'], true],
    ['evil.example:8080', ['localhost'], false],
    ['localhost.evil.example', ['localhost'], false],
    ['a.school.example', ['.school.example'], true],
    ['school.example:443', ['.school.example'], true],
    ['notschool.example', ['.school.example'], false],
    [undefined, ['localhost'], false],
  ] as const)('%s under %j → %s', (host, allowed, expected) => {
    expect(hostAllowed(host, allowed)).toBe(expected);
  });
});
