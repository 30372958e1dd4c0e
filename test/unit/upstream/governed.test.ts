/**
 * Governed streaming calls (CONTRACT §6): an attempt holds its concurrency lease until its answer
 * has been read, a failure before any piece was delivered is retried, one after is reported.
 */
import { asyncScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { MemoryStore } from '../../../src/store/memory.js';
import { createLogger } from '../../../src/telemetry/logger.js';
import { createGovernedProviders } from '../../../src/upstream/governed.js';
import { UpstreamError, type AudioSink, type ChatReply, type Providers } from '../../../src/upstream/provider.js';
import { createSimulatedProviders } from '../../../src/simulator/index.js';

const REQ = { language: 'es', messages: [{ role: 'user' as const, content: 'Hola' }] };

function governed(adapters: Partial<Providers>, limits: Record<string, unknown> = {}) {
  const config = parseConfig({ upstreams: { conversation: { limits: { concurrency: 1, maxRetries: 2, ...limits } }, tts: { limits: { concurrency: 1 } } } }, {});
  const store = new MemoryStore();
  const up = createGovernedProviders({
    config,
    store,
    scheduler: asyncScheduler,
    logger: createLogger({ level: 'silent' }),
    adapters: { ...createSimulatedProviders(), ...adapters } as Providers,
  });
  return { up, store };
}

describe('governed streaming calls', () => {
  it('holds the concurrency lease until the stream has been read: a second stream starts only after the first ends', async () => {
    const events: string[] = [];
    const ends: (() => void)[] = [];
    const { up, store } = governed({
      conversation: {
        reply: async () => '',
        stream: (_req, _opts, onDelta): Promise<ChatReply> => {
          const n = ends.length + 1;
          events.push(`start ${n}`);
          onDelta(`delta ${n}`);
          return new Promise((resolve) => ends.push(() => resolve({ text: `delta ${n}` })));
        },
      },
    });
    const a = up.providers.conversation.stream!(REQ, undefined, (d) => events.push(d));
    const b = up.providers.conversation.stream!(REQ, undefined, (d) => events.push(d));
    await expect.poll(() => events).toEqual(['start 1', 'delta 1']);
    expect(await store.countLeases('up:{conversation}:conc')).toBe(1);
    ends[0]!();
    await a;
    await expect.poll(() => events).toEqual(['start 1', 'delta 1', 'start 2', 'delta 2']);
    ends[1]!();
    expect(await b).toEqual({ text: 'delta 2' });
    up.close();
  });

  it('retries a stream that failed before any delta, and reports one that failed after', async () => {
    let attempts = 0;
    const { up } = governed({
      conversation: {
        reply: async () => '',
        stream: async (_req, _opts, onDelta): Promise<ChatReply> => {
          attempts++;
          if (attempts === 1) throw new Error('ECONNRESET before the answer');
          onDelta('Hola');
          throw new Error('ECONNRESET mid-stream');
        },
      },
    });
    const deltas: string[] = [];
    const err = await up.providers.conversation.stream!(REQ, undefined, (d) => deltas.push(d)).catch((e: unknown) => e);
    expect(attempts).toBe(2); // one retry (network), then no retry after the delta
    expect(deltas).toEqual(['Hola']);
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).message).toContain('after part of its answer was delivered: ECONNRESET mid-stream');
    up.close();
  });

  it('a TTS stream hands its chunks to the sink in order', async () => {
    const { up } = governed({
      tts: {
        speak: async () => ({ audio: Buffer.alloc(0), sampleRate: 24_000 }),
        stream: async (_req, _opts, sink: AudioSink) => {
          await sink(Buffer.from([1, 1]), 24_000);
          await sink(Buffer.from([2, 2]), 24_000);
        },
      },
    });
    const got: number[] = [];
    await up.providers.tts.stream!({ text: 'Hola', language: 'es' }, undefined, (c) => void got.push(c[0]!));
    expect(got).toEqual([1, 2]);
    up.close();
  });
});
