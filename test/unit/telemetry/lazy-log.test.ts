import { describe, expect, it } from 'vitest';
import { logWith, type LogContext } from '../../../src/telemetry/lazy-log.js';
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
