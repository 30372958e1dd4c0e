/**
 * The simulated providers' streaming forms on virtual time (vi.useFakeTimers moves setTimeout and
 * performance.now together): when each delta and audio chunk comes, how big the chunks are, that
 * an abort stops a stream at once, and that a sink's promise holds the producer.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { defaultConfig } from '../../../src/config/load.js';
import { createSimulatedProviders, REFERENCE_TIMING, SIMULATED_TTS_SAMPLE_RATE } from '../../../src/simulator/index.js';
import { SimulatedLimiter, withSimulatedLimits } from '../../../src/simulator/limits.js';
import { synthesizeSpeech } from '../../../src/simulator/speech-synth.js';
import { SpeechCache } from '../../../src/simulator/tts.js';
import { promptTokens, tokenPieces } from '../../../src/simulator/tokens.js';
import { tutorReply } from '../../../src/simulator/tutor.js';
import type { ChatMessage, ConversationRequest } from '../../../src/upstream/provider.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const messages: ChatMessage[] = [
  { role: 'system', content: 'You are a friendly speaking tutor.' },
  { role: 'user', content: 'Hola, quiero un café con leche.' },
];
const request: ConversationRequest = { language: 'es', scenario: 'ordering coffee', messages };

/** Settles-or-not probe: whether `p` has settled after the microtasks queued so far. */
function probe<T>(p: Promise<T>): { readonly settled: boolean; readonly error: unknown } {
  const state = { settled: false, error: undefined as unknown };
  p.then(
    () => (state.settled = true),
    (err: unknown) => {
      state.settled = true;
      state.error = err;
    },
  );
  return state;
}

describe('token pieces', () => {
  it('cuts words with their spaces and punctuation, CJK characters one by one, and concatenates back', () => {
    expect(tokenPieces('Hello, world! How are you?')).toEqual(['Hello,', ' world!', ' How', ' are', ' you?']);
    expect(tokenPieces('¡Hola! ¿Qué tal?')).toEqual(['¡Hola!', ' ¿Qué', ' tal?']);
    expect(tokenPieces('コーヒーをください。')).toEqual(['コ', 'ー', 'ヒ', 'ー', 'を', 'く', 'だ', 'さ', 'い', '。']);
    expect(tokenPieces('  two  spaces \n')).toEqual(['  two', '  spaces', ' \n']);
    expect(tokenPieces('')).toEqual([]);
    for (const text of ['Dr. Smith paid $3.50.', '「駅」はどこですか？ Where?', ' a\tb ', tutorReply(request)]) {
      expect(tokenPieces(text).join('')).toBe(text);
    }
  });

  it('counts prompt tokens as pieces plus OpenAI’s chat framing (4 a message, 3 to prime the reply)', () => {
    // 'You are a friendly speaking tutor.' is 6 pieces, 'Hola, quiero un café con leche.' 6.
    expect(promptTokens(messages)).toBe(3 + (4 + 6) + (4 + 6));
    expect(promptTokens([])).toBe(3);
  });
});

describe('simulated conversation stream', () => {
  it('delivers the first token after firstTokenMs, then one every 1000 / tokensPerSecond ms, with usage', async () => {
    const sim = createSimulatedProviders({ firstTokenMs: 350, tokensPerSecond: 40 });
    const start = performance.now();
    const deltas: { at: number; text: string }[] = [];
    const done = sim.conversation.stream(request, undefined, (text) => deltas.push({ at: performance.now() - start, text }));
    await vi.advanceTimersByTimeAsync(349);
    expect(deltas).toEqual([]);
    await vi.advanceTimersByTimeAsync(10_000);
    const reply = await done;
    const expected = tutorReply(request);
    const pieces = tokenPieces(expected);
    expect(pieces.length).toBeGreaterThan(5);
    expect(deltas.map((d) => d.text)).toEqual(pieces);
    expect(deltas.map((d) => d.at)).toEqual(pieces.map((_, i) => 350 + 25 * i));
    expect(reply).toEqual({ text: expected, usage: { promptTokens: promptTokens(messages), completionTokens: pieces.length } });
  });

  it('keeps to the schedule when the gap is a fraction of a ms (each token at its due time rounded up)', async () => {
    const sim = createSimulatedProviders({ firstTokenMs: 0, tokensPerSecond: 3 });
    const start = performance.now();
    const at: number[] = [];
    const done = sim.conversation.stream(request, undefined, () => at.push(performance.now() - start));
    await vi.advanceTimersByTimeAsync(60_000);
    await done;
    expect(at.slice(0, 4)).toEqual([0, 334, 667, 1000]);
    expect(at.at(-1)).toBe(Math.ceil(((at.length - 1) * 1000) / 3));
  });

  it('reply() is the stream gathered: it resolves when the last token is due', async () => {
    const sim = createSimulatedProviders({ firstTokenMs: 350, tokensPerSecond: 40 });
    const n = tokenPieces(tutorReply(request)).length;
    const reply = sim.conversation.reply(request);
    const state = probe(reply);
    await vi.advanceTimersByTimeAsync(350 + 25 * (n - 1) - 1);
    expect(state.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(state.settled).toBe(true);
    expect(await reply).toBe(tutorReply(request));
  });

  it('jitters only the first wait', async () => {
    const sim = createSimulatedProviders({ firstTokenMs: 100, tokensPerSecond: 10, random: () => 1 });
    const start = performance.now();
    const at: number[] = [];
    const done = sim.conversation.stream(request, undefined, () => at.push(performance.now() - start));
    await vi.advanceTimersByTimeAsync(60_000);
    await done;
    expect(at.slice(0, 3)).toEqual([125, 225, 325]);
  });

  it('firstTokenMs defaults to latencyMs, and no tokensPerSecond means the whole reply at once', async () => {
    const sim = createSimulatedProviders({ latencyMs: 200 });
    const start = performance.now();
    const at: number[] = [];
    const done = sim.conversation.stream(request, undefined, () => at.push(performance.now() - start));
    await vi.advanceTimersByTimeAsync(200);
    await done;
    expect(new Set(at)).toEqual(new Set([200]));
    expect(at).toHaveLength(tokenPieces(tutorReply(request)).length);
  });

  it('stops at once when aborted mid-stream: rejects with AbortError, no more deltas, no timer left', async () => {
    const sim = createSimulatedProviders({ firstTokenMs: 350, tokensPerSecond: 40 });
    const ac = new AbortController();
    const deltas: string[] = [];
    const done = sim.conversation.stream(request, { signal: ac.signal }, (d) => deltas.push(d));
    const state = probe(done);
    await vi.advanceTimersByTimeAsync(400); // tokens at 350, 375, 400
    expect(deltas).toHaveLength(3);
    ac.abort(new Error('learner barged in'));
    await vi.advanceTimersByTimeAsync(0); // microtasks only: the clock does not move
    expect(state.settled).toBe(true);
    expect(state.error).toMatchObject({ name: 'AbortError', cause: { message: 'learner barged in' } });
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(deltas).toHaveLength(3);
  });

  it('translation waits as a chat model would: the last token of its answer', async () => {
    const sim = createSimulatedProviders({ firstTokenMs: 350, tokensPerSecond: 40 });
    const answer = sim.translation.translate({ text: 'thank you very much', targetLanguage: 'es' }); // "muchas gracias": 2 tokens
    const state = probe(answer);
    await vi.advanceTimersByTimeAsync(374);
    expect(state.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await answer).toBe('muchas gracias');
  });
});

describe('simulated TTS stream', () => {
  const text = 'Claro que sí. Un café con leche cuesta dos euros.';
  const audio = synthesizeSpeech(text, { sampleRate: SIMULATED_TTS_SAMPLE_RATE, language: 'es' });

  it('sends the first 100 ms chunk after firstByteMs, then one every 100 / realTimeFactor ms, in 4,800-byte chunks', async () => {
    const sim = createSimulatedProviders({ firstByteMs: 150, realTimeFactor: 5 });
    const start = performance.now();
    const chunks: { at: number; bytes: number; rate: number }[] = [];
    const done = sim.tts.stream({ text, language: 'es' }, undefined, (chunk, rate) => {
      chunks.push({ at: performance.now() - start, bytes: chunk.length, rate });
    });
    await vi.advanceTimersByTimeAsync(149);
    expect(chunks).toEqual([]);
    await vi.advanceTimersByTimeAsync(60_000);
    await done;
    const n = Math.ceil(audio.length / 4800);
    expect(n).toBeGreaterThan(10);
    expect(chunks.map((c) => c.at)).toEqual(Array.from({ length: n }, (_, i) => 150 + 20 * i));
    expect(chunks.slice(0, -1).every((c) => c.bytes === 4800)).toBe(true);
    expect(chunks.at(-1)!.bytes).toBe(audio.length - 4800 * (n - 1));
    expect(chunks.every((c) => c.rate === 24000)).toBe(true);
  });

  it('hands over exactly the synthesized audio; speak() gathers it when the last chunk is due', async () => {
    const sim = createSimulatedProviders({ firstByteMs: 150, realTimeFactor: 5 });
    const parts: Buffer[] = [];
    const streamed = sim.tts.stream({ text, language: 'es' }, undefined, (chunk) => {
      parts.push(Buffer.from(chunk));
    });
    const spoken = sim.tts.speak({ text, language: 'es' });
    const state = probe(spoken);
    const last = 150 + 20 * (Math.ceil(audio.length / 4800) - 1);
    await vi.advanceTimersByTimeAsync(last - 1);
    expect(state.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await streamed;
    expect(Buffer.concat(parts).equals(audio)).toBe(true);
    expect((await spoken).audio.equals(audio)).toBe(true);
    expect((await spoken).sampleRate).toBe(24000);
  });

  it('backpressure: a pending sink holds the producer; audio that fell due meanwhile follows at once', async () => {
    const sim = createSimulatedProviders({ firstByteMs: 150, realTimeFactor: 5 });
    let release!: () => void;
    let calls = 0;
    const done = sim.tts.stream({ text, language: 'es' }, undefined, () => {
      calls++;
      if (calls === 2) return new Promise<void>((r) => (release = r));
      return undefined;
    });
    const state = probe(done);
    await vi.advanceTimersByTimeAsync(170); // chunks at 150 and 170; the second is held
    expect(calls).toBe(2);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toBe(2);
    expect(state.settled).toBe(false);
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toBe(Math.ceil(audio.length / 4800));
    expect(state.settled).toBe(true);
    expect(state.error).toBeUndefined();
  });

  it('stops at once when aborted while the sink holds it, and while waiting for the next chunk', async () => {
    const sim = createSimulatedProviders({ firstByteMs: 150, realTimeFactor: 5 });
    const held = new AbortController();
    let heldCalls = 0;
    const a = probe(sim.tts.stream({ text, language: 'es' }, { signal: held.signal }, () => {
      heldCalls++;
      return new Promise<void>(() => undefined); // never released
    }));
    const paced = new AbortController();
    let pacedCalls = 0;
    const b = probe(sim.tts.stream({ text, language: 'es' }, { signal: paced.signal }, () => {
      pacedCalls++;
    }));
    await vi.advanceTimersByTimeAsync(180); // b: chunks at 150 and 170, the next due at 190
    held.abort();
    paced.abort();
    await vi.advanceTimersByTimeAsync(0); // microtasks only: the clock does not move
    expect(a).toMatchObject({ settled: true, error: { name: 'AbortError' } });
    expect(b).toMatchObject({ settled: true, error: { name: 'AbortError' } });
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect([heldCalls, pacedCalls]).toEqual([1, 2]);
  });

  it('an abort before the first byte rejects at once and sends nothing', async () => {
    const sim = createSimulatedProviders({ firstByteMs: 150, realTimeFactor: 5 });
    const ac = new AbortController();
    const sink = vi.fn();
    const state = probe(sim.tts.stream({ text, language: 'es' }, { signal: ac.signal }, sink));
    await vi.advanceTimersByTimeAsync(100);
    ac.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(state).toMatchObject({ settled: true, error: { name: 'AbortError' } });
    await vi.advanceTimersByTimeAsync(1000);
    expect(sink).not.toHaveBeenCalled();
  });
});

describe('speech cache', () => {
  it('synthesizes a key once, and evicts the least recently used past its byte bound', () => {
    const cache = new SpeechCache(10);
    const made: string[] = [];
    const get = (key: string, bytes: number): Buffer =>
      cache.get(key, () => {
        made.push(key);
        return Buffer.alloc(bytes);
      });
    const a = get('a', 4);
    expect(get('a', 4)).toBe(a);
    get('b', 4);
    get('a', 4); // a is now the most recently used
    get('c', 4); // 12 bytes: b goes
    expect(cache.size).toBe(2);
    get('a', 4);
    get('b', 4);
    get('big', 11); // larger than the whole bound: answered, not kept
    expect(made).toEqual(['a', 'b', 'c', 'b', 'big']);
    expect(cache.size).toBe(2);
  });
});

describe('latency of the other kinds, the limiter and the embedded profile', () => {
  it('STT keeps its latencyMs', async () => {
    const sim = createSimulatedProviders({ latencyMs: 250, firstTokenMs: 350, firstByteMs: 150 });
    const state = probe(sim.stt.transcribe({ audio: { data: Buffer.alloc(3200), format: 'pcm16', sampleRate: 16000, channels: 1 }, language: 'en' }));
    await vi.advanceTimersByTimeAsync(249);
    expect(state.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(state.settled).toBe(true);
  });

  it('a stream holds its simulated concurrency slot until its last chunk', async () => {
    const limiter = new SimulatedLimiter({ concurrency: 1 }, () => performance.now());
    const p = withSimulatedLimits(createSimulatedProviders({ firstByteMs: 150, realTimeFactor: 5 }), limiter);
    const first = p.tts.stream!({ text: 'Hola.', language: 'es' }, undefined, () => undefined);
    await vi.advanceTimersByTimeAsync(150);
    await expect(p.conversation.stream!(request, undefined, () => undefined)).rejects.toMatchObject({ status: 429 });
    await vi.advanceTimersByTimeAsync(10_000);
    await first;
    expect(limiter.counters).toMatchObject({ inFlight: 0, maxInFlight: 1, rejected429: 1 });
    const text = p.conversation.stream!(request, undefined, () => undefined);
    await vi.advanceTimersByTimeAsync(0);
    expect((await text).text).toBe(tutorReply(request));
  });

  it('the embedded default config runs the simulator on the reference profile', () => {
    const u = defaultConfig({}).upstreams;
    expect(REFERENCE_TIMING).toEqual({ latencyMs: 250, firstTokenMs: 350, tokensPerSecond: 40, firstByteMs: 150, realTimeFactor: 5 });
    expect(u.stt.latencyMs).toBe(REFERENCE_TIMING.latencyMs);
    expect(u.pronunciation.latencyMs).toBe(REFERENCE_TIMING.latencyMs);
    for (const kind of ['conversation', 'translation'] as const) {
      expect(u[kind].simulatedTiming).toEqual({ firstTokenMs: REFERENCE_TIMING.firstTokenMs, tokensPerSecond: REFERENCE_TIMING.tokensPerSecond });
    }
    expect(u.tts.simulatedTiming).toEqual({ firstByteMs: REFERENCE_TIMING.firstByteMs, realTimeFactor: REFERENCE_TIMING.realTimeFactor });
  });
});
