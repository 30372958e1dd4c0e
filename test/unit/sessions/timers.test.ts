import type { SchedulerAction, SchedulerLike, Subscription } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { TimerQueue, type TimerEntry } from '../../../src/sessions/timers.js';
import { ManualScheduler } from '../../helpers/scheduler.js';
import { mulberry32 } from '../limits/virtual-time.js';

/** An entry that records when it was woken (and can re-arm itself). */
class Probe implements TimerEntry {
  timerAt = Number.NaN;
  timerIndex = -1;
  readonly woken: number[] = [];
  constructor(
    readonly name: string,
    private readonly then?: (now: number, self: Probe) => void,
  ) {}
  onTimer(now: number): void {
    this.woken.push(now);
    this.then?.(now, this);
  }
}

function setup(): { s: ManualScheduler; q: TimerQueue; t0: number } {
  const s = new ManualScheduler(1_000_000);
  return { s, q: new TimerQueue(s), t0: s.now() };
}

describe('TimerQueue', () => {
  it('wakes each entry once, at its deadline, earliest first', () => {
    const { s, q, t0 } = setup();
    const order: string[] = [];
    const probes = [300, 100, 200].map((d) => new Probe(`p${d}`, (_now, self) => order.push(self.name)));
    probes.forEach((p, i) => q.set(p, t0 + [300, 100, 200][i]!));
    s.advanceBy(99);
    expect(order).toEqual([]);
    s.advanceBy(1);
    expect(order).toEqual(['p100']);
    s.advanceBy(1_000);
    expect(order).toEqual(['p100', 'p200', 'p300']);
    expect(probes.map((p) => p.woken[0]! - t0)).toEqual([300, 100, 200]);
    expect(probes.every((p) => p.woken.length === 1 && p.timerIndex === -1 && Number.isNaN(p.timerAt))).toBe(true);
  });

  it('keeps one scheduler action for any number of entries, and none once empty', () => {
    const { s, q, t0 } = setup();
    const probes = Array.from({ length: 500 }, (_, i) => new Probe(`p${i}`));
    probes.forEach((p, i) => q.set(p, t0 + 1_000 + (i % 37) * 10));
    expect(q.size).toBe(500);
    expect(s.pending).toBe(1);
    for (const p of probes.slice(0, 250)) q.cancel(p);
    expect(s.pending).toBe(1);
    for (const p of probes.slice(250)) q.cancel(p);
    expect(q.size).toBe(0);
    expect(s.pending).toBe(0);
    s.advanceBy(10_000);
    expect(probes.every((p) => p.woken.length === 0)).toBe(true);
  });

  it('moves an entry that is set again, and never wakes a cancelled one', () => {
    const { s, q, t0 } = setup();
    const a = new Probe('a');
    const b = new Probe('b');
    q.set(a, t0 + 100);
    q.set(b, t0 + 200);
    q.set(a, t0 + 500); // later: the wake-up at 100 finds nothing due and re-arms
    q.cancel(b);
    s.advanceBy(499);
    expect(a.woken).toEqual([]);
    expect(b.woken).toEqual([]);
    expect(s.pending).toBe(1);
    s.advanceBy(1);
    expect(a.woken).toEqual([t0 + 500]);
    q.set(b, t0 + 600);
    q.set(b, t0 + 550); // earlier: the wake-up moves forward
    s.advanceBy(50);
    expect(b.woken).toEqual([t0 + 550]);
    expect(s.pending).toBe(0);
  });

  it('lets an entry re-arm itself from onTimer; one set for now or earlier runs again in the same pass', () => {
    const { s, q, t0 } = setup();
    let again = 2;
    const ticker = new Probe('ticker', (now, self) => q.set(self, now + 1_000));
    const burst = new Probe('burst', (now, self) => {
      if (again-- > 0) q.set(self, now);
    });
    q.set(ticker, t0 + 1_000);
    q.set(burst, t0 + 1_500);
    s.advanceBy(3_000);
    expect(ticker.woken.map((t) => t - t0)).toEqual([1_000, 2_000, 3_000]);
    expect(burst.woken.map((t) => t - t0)).toEqual([1_500, 1_500, 1_500]);
    expect(q.size).toBe(1);
  });

  it('runs every due entry even when one throws, and reports the error', () => {
    const s = new ManualScheduler(0);
    const errors: unknown[] = [];
    const q = new TimerQueue(s, (err) => errors.push(err));
    const bad = new Probe('bad', () => {
      throw new Error('boom');
    });
    const good = new Probe('good');
    q.set(bad, 10);
    q.set(good, 10);
    s.advanceBy(10);
    expect(good.woken).toEqual([10]);
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toBe('boom');
  });

  it('wakes late entries on a late scheduler, and never before their deadline', () => {
    const vts = new ManualScheduler(0);
    // A busy event loop: every timer fires 7 ms late.
    const late: SchedulerLike = {
      now: () => vts.now(),
      schedule: ((work: (this: SchedulerAction<unknown>, state?: unknown) => void, delay?: number, state?: unknown): Subscription =>
        vts.schedule(work, (delay ?? 0) + 7, state)) as SchedulerLike['schedule'],
    };
    const q = new TimerQueue(late);
    const a = new Probe('a');
    const b = new Probe('b');
    q.set(a, 100);
    q.set(b, 103);
    vts.advanceBy(200);
    expect(a.woken).toEqual([107]);
    expect(b.woken).toEqual([107]);
  });

  it('reaches a deadline beyond what a Node timer can take by waking early and re-arming', () => {
    const vts = new ManualScheduler(0);
    const delays: number[] = [];
    const recording: SchedulerLike = {
      now: () => vts.now(),
      schedule: ((work: (this: SchedulerAction<unknown>, state?: unknown) => void, delay?: number, state?: unknown): Subscription => {
        delays.push(delay ?? 0);
        return vts.schedule(work, delay, state);
      }) as SchedulerLike['schedule'],
    };
    const q = new TimerQueue(recording);
    const far = new Probe('far');
    const at = 2 ** 32; // ~50 days
    q.set(far, at);
    vts.advanceBy(2 ** 31);
    expect(far.woken).toEqual([]);
    vts.advanceBy(2 ** 31);
    expect(far.woken).toEqual([at]);
    // Node's timers fire at once past 2^31 - 1 ms; every delay asked for stays below it.
    expect(delays.length).toBeGreaterThan(1);
    expect(Math.max(...delays)).toBeLessThan(2 ** 31 - 1);
  });

  it('orders like a sorted list through random sets, moves and cancels (seeded)', () => {
    const rand = mulberry32(18);
    const { s, q, t0 } = setup();
    const woken: { name: string; at: number; deadline: number }[] = [];
    const model = new Map<Probe, number>();
    const probes = Array.from({ length: 200 }, (_, i) => {
      const p: Probe = new Probe(`p${i}`, (now) => {
        woken.push({ name: p.name, at: now, deadline: model.get(p)! });
        model.delete(p);
      });
      return p;
    });
    for (let step = 0; step < 5_000; step++) {
      const p = probes[Math.floor(rand() * probes.length)]!;
      const r = rand();
      if (r < 0.6) {
        const at = s.now() + Math.floor(rand() * 5_000);
        q.set(p, at);
        model.set(p, at);
      } else if (r < 0.8) {
        q.cancel(p);
        model.delete(p);
      } else {
        s.advanceBy(Math.floor(rand() * 300));
      }
      expect(q.size).toBe(model.size);
    }
    s.advanceBy(10_000);
    expect(model.size).toBe(0);
    expect(woken.length).toBeGreaterThan(100);
    for (const w of woken) expect(w.at).toBe(w.deadline); // exact: the virtual clock is on time
    for (let i = 1; i < woken.length; i++) expect(woken[i]!.at).toBeGreaterThanOrEqual(woken[i - 1]!.at);
    expect(s.now()).toBeGreaterThan(t0);
  });

  it('clear() drops every entry and the wake-up', () => {
    const { s, q, t0 } = setup();
    const a = new Probe('a');
    q.set(a, t0 + 10);
    q.clear();
    expect(s.pending).toBe(0);
    expect(a.timerIndex).toBe(-1);
    s.advanceBy(100);
    expect(a.woken).toEqual([]);
  });
});
