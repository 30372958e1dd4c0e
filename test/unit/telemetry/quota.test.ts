import { describe, expect, it } from 'vitest';
import { queueWaitState, quotaChangeKey } from '../../../src/telemetry/quota.js';

const wire = (name: string, remaining: number) => ({ name, limit: 100, remaining, reset_seconds: 1 });

describe('quota.updated pieces', () => {
  it('describes a queue wait as upstream.<name>.queue with the seconds of budget left', () => {
    const state = queueWaitState({ upstream: 'stt', maxQueueWaitSeconds: 30, deadline: 40_500 }, 12_000);
    expect(state).toEqual({ name: 'upstream.stt.queue', limit: 30, remaining: 28, resetMs: 28_500 });
    expect(queueWaitState({ upstream: 'stt', maxQueueWaitSeconds: 30, deadline: 1_000 }, 5_000).remaining).toBe(0);
  });

  it('ignores countdowns but not their appearance, and sees every other remaining', () => {
    const base = [wire('connection.messages', 99), wire('session.seconds', 1799), wire('session.idle_seconds', 119)];
    expect(quotaChangeKey(base)).toBe(quotaChangeKey([wire('connection.messages', 99), wire('session.seconds', 1700), wire('session.idle_seconds', 3)]));
    expect(quotaChangeKey(base)).not.toBe(quotaChangeKey([wire('connection.messages', 100), wire('session.seconds', 1799), wire('session.idle_seconds', 119)]));
    const queued = [...base, wire('upstream.stt.queue', 29)];
    expect(quotaChangeKey(queued)).not.toBe(quotaChangeKey(base));
    expect(quotaChangeKey(queued)).toBe(quotaChangeKey([...base, wire('upstream.stt.queue', 3)]));
  });
});
