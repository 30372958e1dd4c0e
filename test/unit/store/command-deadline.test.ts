import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CommandDeadline, CommandTimeoutError } from '../../../src/store/command-deadline.js';

/**
 * The deadline on a virtual clock: `clock.t` is what the deadline reads as "now"; a stall is the
 * clock moving on while no timer could run (the event loop was blocked), then the timers running late.
 */
describe('CommandDeadline', () => {
  const clock = { t: 0 };
  beforeEach(() => {
    clock.t = 0;
    // Timeouts only: the deadline defers its verdict with setImmediate, which stays real here (as in
    // Node, it runs once the sockets have been read).
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  });
  afterEach(() => vi.useRealTimers());

  /** Runs the timers due within `ms`, then the (real) immediates they queued. */
  const timers = async (ms: number): Promise<void> => {
    await vi.advanceTimersByTimeAsync(ms);
    await new Promise<void>((resolve) => setImmediate(resolve));
  };
  const advance = async (ms: number): Promise<void> => {
    clock.t += ms;
    await timers(ms);
  };
  const never = (): Promise<never> => new Promise<never>(() => undefined);

  it('rejects a command unanswered for the timeout while the loop was free', async () => {
    const d = new CommandDeadline({ timeoutMs: 500, now: () => clock.t });
    const p = d.track(never());
    const outcome = p.then(() => 'answered', (err: unknown) => err);
    await advance(499);
    expect(d.pending).toBe(1);
    await advance(1);
    expect(await outcome).toBeInstanceOf(CommandTimeoutError);
    expect(String(await outcome)).toMatch(/timed out/);
    expect(d.pending).toBe(0);
  });

  it('gives a command in flight during a stall a fresh timeout, and answers it when its answer comes', async () => {
    const d = new CommandDeadline({ timeoutMs: 500, now: () => clock.t });
    let answer!: (v: string) => void;
    const p = d.track(new Promise<string>((r) => (answer = r)));
    // A synchronous task holds the loop for 3 s: the clock moves, no timer runs.
    clock.t += 3000;
    // The loop is free again: the late deadline check forgives the stall…
    await timers(500);
    expect(d.stallsForgiven).toBe(1);
    expect(d.pending).toBe(1);
    // …and the answer read right after is the command's.
    answer('OK');
    expect(await p).toBe('OK');
  });

  it('still finds a command that stays unanswered after a stall, one timeout later', async () => {
    const d = new CommandDeadline({ timeoutMs: 500, now: () => clock.t });
    const outcome = d.track(never()).then(() => 'answered', (err: unknown) => err);
    clock.t += 3000;
    await timers(500);
    expect(d.pending).toBe(1);
    await advance(499);
    expect(d.pending).toBe(1);
    await advance(1);
    expect(await outcome).toBeInstanceOf(CommandTimeoutError);
  });

  it('on a loop that is late at every check, gives up after three fresh timeouts', async () => {
    const d = new CommandDeadline({ timeoutMs: 500, now: () => clock.t });
    const outcome = d.track(never()).then(() => 'answered', (err: unknown) => err);
    for (let i = 0; i < 3; i++) {
      clock.t += 3000;
      await timers(500);
      expect(d.pending).toBe(1);
    }
    clock.t += 3000;
    await timers(500);
    expect(await outcome).toBeInstanceOf(CommandTimeoutError);
  });

  it('times many commands with one timer, each from its own start', async () => {
    const d = new CommandDeadline({ timeoutMs: 500, now: () => clock.t });
    const settled: string[] = [];
    d.track(never()).catch(() => settled.push('a'));
    await advance(200);
    d.track(never()).catch(() => settled.push('b'));
    const c = d.track(Promise.resolve('c'));
    expect(await c).toBe('c');
    expect(vi.getTimerCount()).toBe(1);
    await advance(300);
    expect(settled).toEqual(['a']);
    await advance(200);
    expect(settled).toEqual(['a', 'b']);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('CommandDeadline while answers keep coming', () => {
  const clock = { t: 0 };
  beforeEach(() => {
    clock.t = 0;
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  });
  afterEach(() => vi.useRealTimers());
  const advance = async (ms: number): Promise<void> => {
    clock.t += ms;
    await vi.advanceTimersByTimeAsync(ms);
    await new Promise<void>((resolve) => setImmediate(resolve));
  };

  it('a burst answered in order is not timed out while the answers before each command keep coming, up to maxWaitMs', async () => {
    const d = new CommandDeadline({ timeoutMs: 500, now: () => clock.t });
    // 30 commands sent at once; Redis answers one every 100 ms, in order (a burst of our own).
    const answers: ((v: number) => void)[] = [];
    const outcomes = Array.from({ length: 30 }, (_, i) =>
      d.track(new Promise<number>((r) => (answers[i] = r))).then((v) => `ok${v}`, () => `timeout${i}`),
    );
    for (let i = 0; i < 30; i++) {
      await advance(100);
      answers[i]!(i);
    }
    const got = await Promise.all(outcomes);
    // Each answered within 4 × 500 ms of being sent gets its answer (the 19th at 1,900 ms); at
    // 2,000 ms the rest have waited maxWaitMs and fail.
    expect(got).toEqual([...Array.from({ length: 19 }, (_, i) => `ok${i}`), ...Array.from({ length: 11 }, (_, i) => `timeout${i + 19}`)]);
  });

  it('answers to commands sent later (another node) do not keep an unanswered one alive', async () => {
    const d = new CommandDeadline({ timeoutMs: 500, now: () => clock.t });
    const hung = d.track(new Promise<never>(() => undefined)).then(() => 'answered', () => 'timeout');
    for (let i = 0; i < 5; i++) {
      await advance(100);
      await d.track(Promise.resolve(i));
    }
    expect(await hung).toBe('timeout');
    expect(clock.t).toBe(500);
  });
});
