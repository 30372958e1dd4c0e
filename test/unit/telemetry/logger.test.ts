/**
 * The logger's redaction layers (src/telemetry/logger.ts), each on its own: censored fields, URL
 * fields, the err and req serializers, the message hook, and the line scrub of configured secrets.
 */
import { describe, expect, it } from 'vitest';
import { serializeError } from '../../../src/telemetry/logger.js';
import { logSink } from '../../helpers/log-sink.js';

const RT = `rt_${'r'.repeat(32)}`;
const PT = `pt_${'p'.repeat(43)}`;

/** An error shaped as ioredis makes them: a ReplyError with the command and its arguments. */
function replyError(message: string, name: string, args: unknown[]): Error {
  const err = new Error(message);
  Object.defineProperty(err, 'name', { value: 'ReplyError' });
  return Object.assign(err, { command: { name, args } });
}

describe('err serializer', () => {
  it('keeps type, message, stack and code, and drops the command and arguments of an ioredis error (D5)', () => {
    const record = JSON.stringify({ resumeToken: RT, learnerId: 'learner-42', history: [{ role: 'user', content: 'my secret diary' }] });
    const refused = replyError("NOPERM this user has no permissions to run the 'set' command", 'set', [`parley:sess:1`, record, 'PX', 60000]);
    const aborted = Object.assign(replyError('EXECABORT Transaction discarded because of previous errors.', 'exec', []), {
      previousErrors: [refused, replyError('NOPERM again', 'set', [`parley:resume:${RT}`, 'sess_1'])],
      code: 'EXECABORT',
    });
    const sink = logSink();
    sink.logger.warn({ err: aborted }, 'store unreachable');
    const line = sink.raw.join('\n');
    for (const leaked of [RT, 'learner-42', 'my secret diary', 'parley:sess:1', '"args"', '"command"']) expect(line).not.toContain(leaked);
    const err = sink.lines[0]!.err as Record<string, unknown>;
    expect(err).toMatchObject({ type: 'Error', message: 'EXECABORT Transaction discarded because of previous errors.', code: 'EXECABORT' });
    expect(String(err.stack)).toContain('EXECABORT');
    expect((err.previousErrors as { message: string }[]).map((e) => e.message)).toEqual(["NOPERM this user has no permissions to run the 'set' command", 'NOPERM again']);
  });

  it('drops every field it does not know, such as the raw request of a parser error', () => {
    const err = Object.assign(new Error('Parse Error: Invalid header value char'), {
      code: 'HPE_INVALID_HEADER_TOKEN',
      rawPacket: Buffer.from('GET / HTTP/1.1\r\nAuthorization: Bearer sk_live_0123456789abcdef\r\n'),
      config: { apiKey: 'abc' },
    });
    expect(serializeError(err)).toEqual({ type: 'Error', message: 'Parse Error: Invalid header value char', stack: err.stack, code: 'HPE_INVALID_HEADER_TOKEN' });
  });

  it('redacts the message, the stack and the cause, and a message logged in place of an error', () => {
    const err = new Error('connect to redis://default:hunter2hunter2@cache:6379 failed', { cause: new Error(`token ${PT} refused`) });
    const out = serializeError(err) as { message: string; stack: string; cause: { message: string } };
    expect(out.message).toBe('connect to redis://[REDACTED]@cache:6379 failed');
    expect(out.stack).not.toContain('hunter2');
    expect(out.cause.message).toBe('token pt_[REDACTED] refused');
    expect(serializeError('HTTP 401: Bearer abcdef0123456789')).toBe('HTTP 401: Bearer [REDACTED]');
  });

  it('serializes the errors of an AggregateError (a connection refused on every address)', () => {
    const agg = new AggregateError([Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED', address: '127.0.0.1', port: 6379 })], 'all failed');
    expect(serializeError(agg)).toMatchObject({ type: 'AggregateError', errors: [{ message: 'connect ECONNREFUSED 127.0.0.1:6379', code: 'ECONNREFUSED', address: '127.0.0.1', port: 6379 }] });
  });
});

describe('fields', () => {
  it('censors credentials by name, at the top and one level down, and in headers', () => {
    const sink = logSink();
    sink.logger.info(
      {
        token: PT,
        apiKey: 'upstream0123456789',
        password: 'hunter2hunter2',
        nested: { secret: 'sk_secret3', resume_token: RT, resumeToken: RT, authorization: 'Bearer x' },
        headers: { authorization: 'Bearer sk_x', 'sec-websocket-protocol': `parley.v1, parley.token.${PT}`, cookie: 'a=b' },
      },
      'hello',
    );
    const line = sink.lines[0]!;
    expect(line).toMatchObject({ token: '[REDACTED]', apiKey: '[REDACTED]', password: '[REDACTED]' });
    expect(line.nested).toEqual({ secret: '[REDACTED]', resume_token: '[REDACTED]', resumeToken: '[REDACTED]', authorization: '[REDACTED]' });
    expect(line.headers).toEqual({ authorization: '[REDACTED]', 'sec-websocket-protocol': '[REDACTED]', cookie: '[REDACTED]' });
  });

  it('keeps URLs without their credentials: url, path, redis (one or a list), baseUrl', () => {
    const sink = logSink();
    sink.logger.info({
      url: '/v1/usage?secret=abc&lang=es',
      path: '/v1/realtime?token=abc',
      redis: 'redis://default:hunter2@cache:6379',
      baseUrl: 'https://u:p@api.example/v1',
      upstream: { baseUrl: 'https://api.example/v1?api-key=abc' },
    });
    sink.logger.info({ redis: ['redis://:pw1@n1:7000', 'redis://:pw2@n2:7001'] });
    expect(sink.lines[0]).toMatchObject({
      url: '/v1/usage?secret=[REDACTED]&lang=es',
      path: '/v1/realtime?token=[REDACTED]',
      redis: 'redis://[REDACTED]@cache:6379',
      baseUrl: 'https://[REDACTED]@api.example/v1',
      upstream: { baseUrl: 'https://api.example/v1?api-key=[REDACTED]' },
    });
    expect(sink.lines[1]!.redis).toEqual(['redis://[REDACTED]@n1:7000', 'redis://[REDACTED]@n2:7001']);
  });

  it('keeps the harmless keys of a query object and censors the credential-like ones', () => {
    const sink = logSink();
    sink.logger.info({ query: { token: PT, Api_Key: 'k', lang: 'es' } });
    expect(sink.lines[0]!.query).toEqual({ token: '[REDACTED]', Api_Key: '[REDACTED]', lang: 'es' });
  });

  it('censors the secrets of a configuration logged whole', () => {
    const sink = logSink();
    sink.logger.info({
      config: {
        accounts: [{ id: 'acct', keys: [{ id: 'k1', secret: 'account-secret-1' }] }],
        upstreams: { stt: { provider: 'openai', apiKey: 'upstream-secret-1' } },
        store: { kind: 'redis', url: 'redis://:store-secret-1@cache:6379' },
      },
    });
    const raw = sink.raw.join('\n');
    for (const s of ['account-secret-1', 'upstream-secret-1', 'store-secret-1']) expect(raw).not.toContain(s);
    expect(raw).toContain('redis://[REDACTED]@cache:6379');
  });

  it('logs a request as method, redacted URL and address, never its headers', () => {
    const sink = logSink();
    sink.logger.info({ req: { method: 'GET', url: `/v1/realtime?token=${PT}`, ip: '10.0.0.1', headers: { authorization: 'Bearer sk_live_0123456789abcdef' } } }, 'incoming request');
    expect(sink.lines[0]!.req).toEqual({ method: 'GET', url: '/v1/realtime?token=[REDACTED]', remoteAddress: '10.0.0.1' });
  });
});

describe('messages', () => {
  it('redacts URLs, Bearer credentials and token shapes in the message and printf-style arguments', () => {
    const sink = logSink();
    sink.logger.info('Route GET:/v1/usage?api_key=abc not found');
    sink.logger.warn({ code: 1 }, 'reached %s with %s', 'redis://u:hunter2@cache', `Bearer ${PT}`);
    expect(sink.lines[0]!.msg).toBe('Route GET:/v1/usage?api_key=[REDACTED] not found');
    expect(sink.lines[1]!.msg).toBe('reached redis://[REDACTED]@cache with Bearer [REDACTED]');
  });
});

describe('line scrub (the last line of defence)', () => {
  const secret = 'operator-chosen-key-0042';
  const unforeseen = { label: `a field nobody foresaw: ${secret}`, note: `resume with ${RT}` };

  it('without configured secrets, a secret in an unforeseen field reaches the line (the layers above are by name and shape)', () => {
    const sink = logSink();
    sink.logger.info({ ...unforeseen, extra: { deeper: { still: secret } } });
    expect(sink.raw[0]).toContain(secret);
  });

  it('with them, every occurrence in the finished line is replaced, and so are token shapes', () => {
    const sink = logSink('info', { secrets: [secret, 'short'] });
    sink.logger.info({ ...unforeseen, extra: { deeper: { still: secret } } });
    const raw = sink.raw[0]!;
    expect(raw).not.toContain(secret);
    expect(raw).not.toContain(RT);
    expect(sink.lines[0]).toMatchObject({ label: 'a field nobody foresaw: [REDACTED]', note: 'resume with rt_[REDACTED]', extra: { deeper: { still: '[REDACTED]' } } });
  });
});
