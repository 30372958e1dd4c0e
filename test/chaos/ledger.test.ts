/**
 * The chaos run's accounting (test/chaos/ledger.ts): it decides the verdict, so it is tested
 * like product code. Runs in `npm test` (pure, instant); the chaos run itself does not.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Ledger } from './ledger.js';

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(1_000_000);
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Ledger', () => {
  it('counts a turn once: a later error or loss of an answered turn changes nothing', () => {
    const l = new Ledger();
    l.begin('warm-up');
    const t = l.turnSent(1);
    vi.advanceTimersByTime(450);
    l.answered(t);
    l.errored(t, 'internal_error');
    l.lost(t, 'r1', 'request_lost', true);
    expect(l.current).toMatchObject({ turns: 1, answered: 1, turnErrors: {}, lost: [], latencies: [450] });
    expect(l.inFlight).toBe(0);
  });

  it('moves a turn still in flight into the phase that begins, where it is then lost', () => {
    const l = new Ledger();
    const warm = l.begin('warm-up');
    l.turnSent(1);
    const t = l.turnSent(2);
    l.answered(l.turnSent(3));
    const fault = l.begin('replica-kill');
    expect(warm.turns).toBe(1);
    expect(fault.turns).toBe(2);
    l.lost(t, 'l2s1-9', 'request_lost', true, 'closed 1006');
    expect(warm.lost).toEqual([]);
    expect(fault.lost).toEqual([{ phase: 'replica-kill', learner: 2, requestId: 'l2s1-9', reason: 'request_lost', sent: true, at: 1_000_000, history: 'closed 1006' }]);
  });

  it('keeps an answered turn in the phase it ended in', () => {
    const l = new Ledger();
    const warm = l.begin('warm-up');
    l.answered(l.turnSent(1));
    const fault = l.begin('redis-kill');
    expect(warm).toMatchObject({ turns: 1, answered: 1 });
    expect(fault).toMatchObject({ turns: 0, answered: 0 });
  });

  it('counts errors with a request_id by code, and loses every unsettled turn at the end', () => {
    const l = new Ledger();
    l.begin('redis-pause');
    l.errored(l.turnSent(1), 'upstream_busy');
    l.errored(l.turnSent(2), 'upstream_busy');
    l.turnSent(3);
    l.begin('end');
    l.loseUnsettled();
    expect(l.phases.find((p) => p.name === 'redis-pause')!.turnErrors).toEqual({ upstream_busy: 2 });
    expect(l.current.lost.map((x) => [x.learner, x.reason])).toEqual([[3, 'unanswered at the end']]);
    expect(l.inFlight).toBe(0);
  });

  it('closes the previous phase when the next begins', () => {
    const l = new Ledger();
    const a = l.begin('a');
    vi.advanceTimersByTime(1500);
    l.begin('b');
    expect(a.endedAt! - a.startedAt).toBe(1500);
  });
});
