/** Readiness arithmetic of the chaos run's /readyz monitor (test/chaos/watch.ts readinessSpan). */
import { describe, expect, it } from 'vitest';
import { readinessSpan } from './watch.js';

describe('readinessSpan', () => {
  const samples = [
    { at: 0, status: 200 },
    { at: 100, status: 503 },
    { at: 300, status: 200 },
    { at: 400, status: 503 },
    { at: 500, status: undefined },
    { at: 800, status: 200 },
  ];

  it('adds the time each status stood until the next sample, and counts spells of 503', () => {
    expect(readinessSpan(samples, 0, 1000)).toEqual({ notReadyMs: 300, unreachableMs: 300, first503At: 100, lastNotReadyAt: 800, episodes503: 2 });
  });

  it('clips to the interval asked for', () => {
    expect(readinessSpan(samples, 200, 450)).toEqual({ notReadyMs: 150, unreachableMs: 0, first503At: 100, lastNotReadyAt: 450, episodes503: 1 });
  });

  it('lets the last sample stand until the end of the interval', () => {
    expect(readinessSpan([{ at: 0, status: 200 }, { at: 100, status: 503 }], 0, 2000)).toMatchObject({ notReadyMs: 1900, episodes503: 1 });
  });

  it('reports a replica that was ready throughout as never not ready', () => {
    expect(readinessSpan([{ at: 0, status: 200 }], 0, 500)).toEqual({ notReadyMs: 0, unreachableMs: 0, first503At: undefined, lastNotReadyAt: undefined, episodes503: 0 });
  });
});
