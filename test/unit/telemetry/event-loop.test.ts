import { afterEach, describe, expect, it } from 'vitest';
import { EventLoopLag } from '../../../src/telemetry/event-loop.js';

let lag: EventLoopLag | undefined;
afterEach(() => lag?.stop());

describe('EventLoopLag', () => {
  it('reports zeros before any window has closed', () => {
    lag = new EventLoopLag({ windowMs: 60_000 });
    expect(lag.snapshot()).toEqual({ p50: 0, p99: 0, max: 0 });
  });

  it('sees a blocked loop in the window that contains it, and starts the next window afresh', async () => {
    lag = new EventLoopLag({ resolutionMs: 10, windowMs: 60_000 });
    await new Promise((r) => setTimeout(r, 30));
    const until = Date.now() + 80;
    while (Date.now() < until) {
      /* block the loop */
    }
    await new Promise((r) => setTimeout(r, 30));
    const blocked = lag.roll();
    expect(blocked.max).toBeGreaterThan(0);
    expect(blocked.max).toBeGreaterThanOrEqual(blocked.p99);
    expect(lag.snapshot()).toEqual(blocked);
  });
});
