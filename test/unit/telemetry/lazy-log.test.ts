import { describe, expect, it, vi } from 'vitest';
import { LazyRequestLogger, logWith, type LogContext } from '../../../src/telemetry/lazy-log.js';
import { logSink } from '../../helpers/log-sink.js';

class Owner implements LogContext {
  calls = 0;
  logFields(): Record<string, unknown> {
    this.calls++;
    return { conn_id: 'conn_1', account_id: 'acct_a' };
  }
}

describe('logWith', () => {
  it('builds nothing and writes nothing at a level that is off', () => {
    const sink = logSink('warn');
    const owner = new Owner();
    logWith(sink.logger, 'info', owner, 'session created', { extra: 1 });
    logWith(sink.logger, 'debug', owner, 'detail');
    expect(owner.calls).toBe(0);
    expect(sink.lines).toHaveLength(0);
  });

  it("writes the owner's context fields and the line's own fields (which win) at a level that is on", () => {
    const sink = logSink('info');
    const owner = new Owner();
    logWith(sink.logger, 'warn', owner, 'socket error', { account_id: 'acct_b', code: 4029 });
    logWith(sink.logger, 'info', owner, 'session created');
    expect(owner.calls).toBe(2);
    expect(sink.lines).toEqual([
      expect.objectContaining({ level: 40, msg: 'socket error', conn_id: 'conn_1', account_id: 'acct_b', code: 4029 }),
      expect.objectContaining({ level: 30, msg: 'session created', conn_id: 'conn_1', account_id: 'acct_a' }),
    ]);
  });

  it('keeps the logger’s redaction and serializers', () => {
    const sink = logSink('info');
    logWith(sink.logger, 'error', new Owner(), 'failed', { token: 'pt_secret_value_123', err: new Error('boom') });
    expect(sink.raw.join('\n')).not.toContain('pt_secret_value_123');
    expect(sink.lines[0]).toMatchObject({ token: '[REDACTED]', err: { message: 'boom', type: 'Error' } });
  });
});

describe('LazyRequestLogger (fastify childLoggerFactory)', () => {
  it("makes no pino child for a request that writes nothing at the route's level", () => {
    const sink = logSink('info');
    const child = vi.spyOn(sink.logger, 'child');
    const log = LazyRequestLogger.factory(sink.logger, { reqId: 'req-1' }, { level: 'warn' });
    expect(log.level).toBe('warn');
    log.info({ req: 'x' }, 'incoming request');
    log.debug('detail');
    expect(log.isLevelEnabled('info')).toBe(false);
    expect(child).not.toHaveBeenCalled();
    expect(sink.lines).toHaveLength(0);
  });

  it('makes the child on the first enabled line and writes through it, with the bindings and the redaction', () => {
    const sink = logSink('info');
    const child = vi.spyOn(sink.logger, 'child');
    const log = LazyRequestLogger.factory(sink.logger, { reqId: 'req-2' }, { level: 'warn' });
    log.error({ err: new Error('boom'), token: 'pt_secret_value_123' }, 'admission failed');
    log.warn('again');
    expect(child).toHaveBeenCalledTimes(1);
    expect(sink.lines).toEqual([
      expect.objectContaining({ level: 50, msg: 'admission failed', reqId: 'req-2', token: '[REDACTED]', err: expect.objectContaining({ message: 'boom' }) }),
      expect.objectContaining({ level: 40, msg: 'again', reqId: 'req-2' }),
    ]);
  });

  it("follows the parent's level when the route sets none", () => {
    const sink = logSink('warn');
    const log = LazyRequestLogger.factory(sink.logger, { reqId: 'req-3' }, {});
    expect(log.level).toBe('warn');
    log.info('quiet');
    log.warn('heard');
    expect(sink.lines.map((l) => l.msg)).toEqual(['heard']);
  });
});
