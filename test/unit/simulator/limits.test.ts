import { describe, expect, it } from 'vitest';
import { UpstreamHttpError } from '../../../src/upstream/http-error.js';
import { SimulatedLimiter, withSimulatedLimits } from '../../../src/simulator/limits.js';
import { createSimulatedProviders } from '../../../src/simulator/index.js';

describe('simulated provider limits', () => {
  it('answers a call over the burst with 429 and the exact Retry-After', async () => {
    let now = 1_000_000;
    const limiter = new SimulatedLimiter({ requestsPerSecond: 2, burst: 2 }, () => now);
    const p = withSimulatedLimits(createSimulatedProviders(), limiter);
    const req = { text: 'thank you', targetLanguage: 'es' };
    expect(await p.translation.translate(req)).toBe('gracias');
    await p.translation.translate(req);
    const err = await p.translation.translate(req).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamHttpError);
    expect((err as UpstreamHttpError).status).toBe(429);
    expect((err as UpstreamHttpError).retryAfterMs).toBe(500);
    now += 500;
    expect(await p.translation.translate(req)).toBe('gracias');
    expect(limiter.counters).toMatchObject({ calls: 4, rejected429: 1 });
  });

  it('answers a call over the concurrency with 429', async () => {
    const limiter = new SimulatedLimiter({ concurrency: 1 });
    const p = withSimulatedLimits(createSimulatedProviders({ latencyMs: 20 }), limiter);
    const first = p.translation.translate({ text: 'hello', targetLanguage: 'es' });
    await expect(p.translation.translate({ text: 'hello', targetLanguage: 'es' })).rejects.toMatchObject({ status: 429 });
    await first;
    expect(limiter.counters).toMatchObject({ maxInFlight: 1, inFlight: 0, rejected429: 1 });
  });
});
