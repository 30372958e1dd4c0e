import { describe, expect, it } from 'vitest';
import type { ServerEvent } from '../../../src/protocol/messages.js';
import { AUDIO_FRAME_BYTES, SpeechQueue, type SpeechCall } from '../../../src/turns/speech-queue.js';
import type { SpeechPart } from '../../../src/turns/speech-plan.js';
import { Turn } from '../../../src/turns/turn.js';

/** A TTS call the test drives: it pushes chunks and ends the body when told. */
interface FakeCall {
  readonly text: string;
  readonly signal: AbortSignal;
  push(chunk: Buffer): Promise<void>;
  end(): void;
  fail(err: Error): void;
}

function harness(opts: { segmentsInFlight?: number; readAheadBytes?: number } = {}) {
  const events: ServerEvent[] = [];
  const frames: Buffer[] = [];
  const turn = new Turn('t', 'conversation', { output: { event: (e) => events.push(e), audio: (c) => frames.push(c) }, now: () => 0 });
  const calls: FakeCall[] = [];
  const speak: SpeechCall = (text, signal, sink) =>
    new Promise<void>((resolve, reject) => {
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      calls.push({ text, signal, push: async (chunk) => sink(chunk, 24_000), end: resolve, fail: reject });
    });
  const reply = 'One. Two. Three.';
  const queue = new SpeechQueue(turn, () => reply, speak, opts);
  const part = (index: number, start: number, end: number): SpeechPart => ({ index, start, end, sentences: [{ index, start, end }] });
  return { turn, events, frames, calls, queue, parts: [part(0, 0, 5), part(1, 5, 10), part(2, 10, 16)] };
}

const settled = async <T>(p: Promise<T>): Promise<'pending' | 'resolved' | 'rejected'> => {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  p.then(() => (state = 'resolved'), () => (state = 'rejected'));
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return state;
};

describe('SpeechQueue', () => {
  it('keeps at most segmentsInFlight requests open and speaks in order when a later request answers first', async () => {
    const h = harness({ segmentsInFlight: 2 });
    h.queue.add(h.parts);
    h.queue.end();
    expect(h.calls.map((c) => c.text)).toEqual(['One. ', 'Two. ']); // the third waits for a slot
    await h.calls[1]!.push(Buffer.alloc(10, 2)); // the second answers first: read ahead, not sent
    expect(h.frames).toEqual([]);
    await h.calls[0]!.push(Buffer.alloc(10, 1));
    expect(h.frames.map((f) => f[0])).toEqual([1]);
    h.calls[1]!.end(); // the second's body is done, but it is not the head yet
    await Promise.resolve();
    expect(h.calls).toHaveLength(3); // its slot is free, so the third starts
    h.calls[0]!.end();
    await Promise.resolve();
    expect(h.frames.map((f) => f[0])).toEqual([1, 2]); // the second's read-ahead goes out after the first
    await h.calls[2]!.push(Buffer.alloc(4, 3));
    h.calls[2]!.end();
    expect(await settled(h.queue.done)).toBe('resolved');
    expect(h.frames.map((f) => f[0])).toEqual([1, 2, 3]);
    expect(h.turn.ttsRequests).toBe(3);
  });

  it('reads a later request ahead only up to its bound, then leaves its body unread until it is the head', async () => {
    const h = harness({ readAheadBytes: 100 });
    h.queue.add(h.parts.slice(0, 2));
    h.queue.end();
    expect(await settled(h.calls[1]!.push(Buffer.alloc(60)))).toBe('resolved');
    const blocked = h.calls[1]!.push(Buffer.alloc(60)); // 120 bytes ahead: over the bound
    expect(await settled(blocked)).toBe('pending');
    h.calls[0]!.end();
    expect(await settled(blocked)).toBe('resolved');
  });

  it('sends frames of at most 32 KiB that never split a sample, whatever the chunking', async () => {
    const h = harness();
    h.queue.add(h.parts.slice(0, 1));
    h.queue.end();
    const body = Buffer.alloc(70_001 + 1);
    for (let i = 0; i < body.length; i++) body[i] = i % 251;
    await h.calls[0]!.push(body.subarray(0, 3));
    await h.calls[0]!.push(body.subarray(3, 40_001));
    await h.calls[0]!.push(body.subarray(40_001));
    h.calls[0]!.end();
    await h.queue.done;
    expect(h.frames.every((f) => f.length <= AUDIO_FRAME_BYTES && f.length % 2 === 0)).toBe(true);
    expect(Buffer.concat(h.frames).equals(body)).toBe(true);
  });

  it('a cancel of the turn aborts every open request and nothing more is sent', async () => {
    const h = harness();
    h.queue.add(h.parts);
    await h.calls[0]!.push(Buffer.alloc(10));
    h.turn.cancel(undefined);
    expect(h.calls.every((c) => c.signal.aborted)).toBe(true);
    expect(await settled(h.queue.done)).toBe('rejected');
    await h.calls[0]!.push(Buffer.alloc(10));
    expect(h.frames).toHaveLength(1);
    expect(h.calls).toHaveLength(2); // nothing new started
  });

  it('a failed request rejects done', async () => {
    const h = harness();
    h.queue.add(h.parts.slice(0, 1));
    h.calls[0]!.fail(new Error('tts 500'));
    await expect(h.queue.done).rejects.toThrow('tts 500');
  });
});
