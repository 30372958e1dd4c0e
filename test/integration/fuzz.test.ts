/**
 * A seeded 5,000-frame cut of `npm run fuzz` (test/fuzz/): the real app in its own process, hostile
 * frames and raw upgrades over real sockets, a learner doing a turn every second beside them. The
 * full run (100,000 frames, memory and handles read before, right after and 30 s later) is
 * `npm run fuzz`; docs/operations.md "Fuzzing" explains its report.
 */
import { describe, expect, it } from 'vitest';
import { formatReport } from '../fuzz/report.js';
import { runFuzz } from '../fuzz/runner.js';

describe('fuzzing', () => {
  it('answers 5,000 hostile frames and raw upgrades as documented, without a crash, an internal_error or harm to a learner', async () => {
    const report = await runFuzz({
      seed: 12,
      frames: 5000,
      // No memory readings here: the 30 s wait belongs to npm run fuzz.
      settleSeconds: 0,
      // The CLI's heartbeat (3 s): a shorter one would make a busy machine's late pong look like a
      // dead peer. Slowloris sockets drip for 1.5 s instead of 4.
      slowlorisMs: 1500,
    });
    // The whole report when anything fails: the seed, the case and the input reproduce it
    // (npm run fuzz -- --seed 12 --case N).
    const detail = formatReport(report);
    expect(report.crash, detail).toBeUndefined();
    expect(report.stats.framesSent).toBeGreaterThanOrEqual(5000);
    expect(report.stats.internalErrors, detail).toBe(0);
    expect(report.stats.schemaViolations, detail).toBe(0);
    expect(report.stats.unexpected, detail).toBe(0);
    expect(report.control?.failures, detail).toBe(0);
    expect(report.control?.completed, detail).toBeGreaterThan(0);
    expect(report.slotsAfter, detail).toBe(0);
  }, 180_000);
});
