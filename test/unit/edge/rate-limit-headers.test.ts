/** The IETF draft's rate-limit items (src/edge/rate-limit-headers.ts), as values. */
import { describe, expect, it } from 'vitest';
import { limitItem, policyItem, restPolicy } from '../../../src/edge/rate-limit-headers.js';

const window = (limit: number, windowMs: number) => ({ kind: 'window' as const, key: 'k', name: 'key.rest', limit, windowMs });

describe('rate-limit items', () => {
  it('a minute window held in 1 s buckets is w = 61: the longest a spent request counts', () => {
    expect(policyItem(restPolicy(window(60, 60_000)))).toBe('"rest";q=60;w=61');
    // An hour counts in 60 s buckets: held up to 61 minutes.
    expect(restPolicy(window(1000, 3_600_000)).windowSeconds).toBe(3660);
  });

  it('t is clamped to w and never negative; r is a whole, non-negative count', () => {
    const policy = restPolicy(window(60, 60_000));
    expect(limitItem(policy, 12.7, 12.2)).toBe('"rest";r=12;t=13');
    expect(limitItem(policy, -3, 75)).toBe('"rest";r=0;t=61');
    expect(limitItem(policy, 5, -1)).toBe('"rest";r=5;t=0');
  });

  it('a concurrency policy has a unit and no window', () => {
    expect(policyItem({ name: 'dashboard-streams', quota: 4, unit: 'concurrent-requests' })).toBe('"dashboard-streams";q=4;qu="concurrent-requests"');
    expect(limitItem({ name: 'dashboard-streams', quota: 4 }, 0, 5)).toBe('"dashboard-streams";r=0;t=5');
  });
});
