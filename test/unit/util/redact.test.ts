/** The one redaction (src/util/redact.ts): tables of inputs and what must come out. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isCredentialName, redactText, redactUrl, secretRedactor } from '../../../src/util/redact.js';

describe('redactUrl', () => {
  it.each([
    // userinfo: user and password, whatever the scheme
    ['redis://user:PASSWORD@host:6379/0', 'redis://[REDACTED]@host:6379/0'],
    ['rediss://default:p%40ss@cache.example:6380', 'rediss://[REDACTED]@cache.example:6380'],
    ['redis://:PASSWORD@127.0.0.1', 'redis://[REDACTED]@127.0.0.1'],
    ['redis://TOKENONLY@host', 'redis://[REDACTED]@host'],
    ['https://user:pw@api.example/v1?x=1', 'https://[REDACTED]@api.example/v1?x=1'],
    // an unescaped "@", "/" or "?" inside the password: the last "@" ends the userinfo
    ['redis://user:p@ss@host', 'redis://[REDACTED]@host'],
    ['redis://:pa/ss@host:6379', 'redis://[REDACTED]@host:6379'],
    ['redis://u:pa?ss@host', 'redis://[REDACTED]@host'],
    // no userinfo: nothing to take out, even with "@" in the path or query
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    ['https://registry.example/@scope/pkg', 'https://registry.example/@scope/pkg'],
    ['https://api.example/x?email=a@b.example', 'https://api.example/x?email=a@b.example'],
    // credential-like query and fragment parameters, case-insensitive; the others kept
    ['/v1/realtime?token=pt_abc&x=1', '/v1/realtime?token=[REDACTED]&x=1'],
    ['/v1/usage?secret=S&key=K&api_key=A&apikey=B&apiKey=C', '/v1/usage?secret=[REDACTED]&key=[REDACTED]&api_key=[REDACTED]&apikey=[REDACTED]&apiKey=[REDACTED]'],
    ['/x?ACCESS_TOKEN=a&password=b&auth=c&sig=d&signature=e&resume_token=f', '/x?ACCESS_TOKEN=[REDACTED]&password=[REDACTED]&auth=[REDACTED]&sig=[REDACTED]&signature=[REDACTED]&resume_token=[REDACTED]'],
    ['https://bucket.example/o?X-Amz-Credential=c&X-Amz-Security-Token=t&X-Amz-Date=20260101', 'https://bucket.example/o?X-Amz-Credential=[REDACTED]&X-Amz-Security-Token=[REDACTED]&X-Amz-Date=20260101'],
    ['/dashboard#key=sk_abc', '/dashboard#key=[REDACTED]'],
    ['/x?api%5Fkey=zz', '/x?api%5Fkey=[REDACTED]'],
    ['/x?token=&lang=es', '/x?token=&lang=es'],
    ['/v1/sessions?limit=10&lang=es', '/v1/sessions?limit=10&lang=es'],
    // both at once
    ['rediss://u:pw@h:1/0?password=zz&db=1', 'rediss://[REDACTED]@h:1/0?password=[REDACTED]&db=1'],
    ['', ''],
  ])('%s → %s', (input, output) => {
    expect(redactUrl(input)).toBe(output);
  });

  it('is idempotent', () => {
    const once = redactUrl('redis://u:pw@h/0?token=t');
    expect(redactUrl(once)).toBe(once);
  });
});

describe('redactText', () => {
  const pt = `pt_${'A'.repeat(43)}`;
  const rt = `rt_${'b'.repeat(32)}`;
  it.each([
    ['connect to redis://u:PASSWORD@cache:6379 failed: ECONNREFUSED', 'connect to redis://[REDACTED]@cache:6379 failed: ECONNREFUSED'],
    ['Route GET:/v1/usage?secret=S3CR3T not found', 'Route GET:/v1/usage?secret=[REDACTED] not found'],
    ['upstream said: Authorization: Bearer abc.DEF-123_xyz~+/= was refused', 'upstream said: Authorization: Bearer [REDACTED] was refused'],
    ['bearer lowercase-token', 'bearer [REDACTED]'],
    [`parley.token.${pt}`, 'parley.token.pt_[REDACTED]'],
    [`GET parley:resume:${rt}`, 'GET parley:resume:rt_[REDACTED]'],
    [`{"resumeToken":"${rt}","history":[]}`, '{"resumeToken":"rt_[REDACTED]","history":[]}'],
    ['Incorrect API key provided: sk-proj-abcdefghijklmnop1234.', 'Incorrect API key provided: sk-[REDACTED].'],
    ['the demo key sk_demo_abcdefghijklmnopqrstuv', 'the demo key sk_[REDACTED]'],
    [`ws://h/v1/realtime/${pt}?lang=es`, 'ws://h/v1/realtime/pt_[REDACTED]?lang=es'],
    // left alone: ordinary words that merely contain the shapes, messages that name a credential without one
    ['start_session_with_the_thing_right_now and task_runner_number_one_two', 'start_session_with_the_thing_right_now and task_runner_number_one_two'],
    ['missing Authorization: Bearer <api key>', 'missing Authorization: Bearer <api key>'],
    ['no token: use the subprotocol "parley.token.<token>", ?token= or Authorization: Bearer', 'no token: use the subprotocol "parley.token.<token>", ?token= or Authorization: Bearer'],
    ['pt_short rt_short sk_short', 'pt_short rt_short sk_short'],
    ['EXECABORT Transaction discarded because of previous errors.', 'EXECABORT Transaction discarded because of previous errors.'],
    ['', ''],
  ])('%s → %s', (input, output) => {
    expect(redactText(input)).toBe(output);
  });
});

describe('isCredentialName', () => {
  it.each([
    ['token', true],
    ['Token', true],
    ['access_token', true],
    ['resume_token', true],
    ['X-Amz-Security-Token', true],
    ['key', true],
    ['api_key', true],
    ['api-key', true],
    ['apiKey', true],
    ['client_secret', true],
    ['password', true],
    ['passwd', true],
    ['auth', true],
    ['Authorization', true],
    ['sig', true],
    ['signature', true],
    ['credentials', true],
    ['api%5Fkey', true],
    ['lang', false],
    ['limit', false],
    ['session_id', false],
    ['learner_id', false],
    ['token_type', false],
  ])('%s → %s', (name, expected) => {
    expect(isCredentialName(name)).toBe(expected);
  });
});

describe('secretRedactor', () => {
  it('replaces each secret, its JSON-escaped and its percent-encoded form; ignores secrets under 8 characters', () => {
    const redact = secretRedactor(['s3cret"pass/word', 'abcdefgh', 'short']);
    expect(redact('a abcdefgh b')).toBe('a [REDACTED] b');
    expect(redact(JSON.stringify({ v: 'x s3cret"pass/word y' }))).toBe('{"v":"x [REDACTED] y"}');
    expect(redact('/x?p=s3cret%22pass%2Fword')).toBe('/x?p=[REDACTED]');
    expect(redact('short and sweet')).toBe('short and sweet');
  });

  it('replaces a secret that contains another one whole', () => {
    expect(secretRedactor(['abcdefgh', 'abcdefgh-and-more'])('[abcdefgh-and-more] [abcdefgh]')).toBe('[[REDACTED]] [[REDACTED]]');
  });

  it('finds the same with thousands of secrets (the rolling-hash index) as with a few (one search each)', () => {
    const secrets = Array.from({ length: 2000 }, () => randomBytes(12).toString('base64url'));
    const many = secretRedactor(secrets);
    const few = secretRedactor(secrets.slice(0, 3));
    const line = `{"a":"${secrets[0]}","b":"x${secrets[1]}y","c":"${secrets[2]}${secrets[2]}","d":"${secrets[1999]}"}`;
    expect(few(line)).toBe('{"a":"[REDACTED]","b":"x[REDACTED]y","c":"[REDACTED][REDACTED]","d":"' + secrets[1999] + '"}');
    expect(many(line)).toBe('{"a":"[REDACTED]","b":"x[REDACTED]y","c":"[REDACTED][REDACTED]","d":"[REDACTED]"}');
    expect(many('no secret here at all')).toBe('no secret here at all');
    expect(many(secrets[5]!)).toBe('[REDACTED]');
    expect(many('1234567')).toBe('1234567');
  });

  it('with no secrets long enough, returns the text as it is', () => {
    expect(secretRedactor([])('anything')).toBe('anything');
    expect(secretRedactor(['1234567'])('1234567')).toBe('1234567');
  });
});
