/**
 * The simulated text-to-speech: {@link synthesizeSpeech} at 24 kHz, PCM16 mono, streamed as a real
 * TTS streams its body (CONTRACT §6): the first audio `firstByteMs` after the call (default
 * `latencyMs`), then chunks of {@link AUDIO_CHUNK_MS} of sound, chunk i due `i × 100 /
 * realTimeFactor` ms after the first (all at once without a factor). The producer waits for the
 * sink's promise before handing it more (backpressure); audio that fell due while it waited goes
 * out as soon as the sink lets it, because synthesis runs on its own schedule, as a real server's
 * does while TCP holds its writes. Synthesis happens inside the first-byte wait (and is cached), so
 * its CPU time does not add to the profile's first byte.
 */
import type { AudioSink, CallOptions, TtsProvider, TtsRequest, TtsResult } from '../upstream/provider.js';
import { synthesizeSpeech } from './speech-synth.js';
import { AUDIO_CHUNK_MS, jittered, orAbort, SimulatedAbortError, Timeline, type SimulatedTiming } from './timing.js';

/** TTS output rate. */
export const SIMULATED_TTS_SAMPLE_RATE = 24000;

/** Bytes of one chunk: AUDIO_CHUNK_MS of PCM16 mono (4,800 at 24 kHz). */
const CHUNK_BYTES = ((SIMULATED_TTS_SAMPLE_RATE * AUDIO_CHUNK_MS) / 1000) * 2;

/**
 * Recently synthesized speech by voice, language and text, least recently used out first, bounded
 * by bytes. Synthesis costs 15-30 ms of CPU per second of audio on the 2-core machine; the bench and
 * the demo ask for the same sentences again and again, and at 50 concurrent sessions that CPU
 * would show up as the simulator's own latency instead of the configured profile. A Map keeps
 * insertion order, which is all an LRU needs: no dependency for scaffolding.
 */
export class SpeechCache {
  private readonly entries = new Map<string, Buffer>();
  private bytes = 0;

  constructor(readonly maxBytes: number) {}

  /** The audio for `key`, made by `synthesize` unless cached. Callers must not modify it. */
  get(key: string, synthesize: () => Buffer): Buffer {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const audio = synthesize();
    if (audio.length > this.maxBytes) return audio;
    this.entries.set(key, audio);
    this.bytes += audio.length;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= v.length;
    }
    return audio;
  }

  /** Entries held. */
  get size(): number {
    return this.entries.size;
  }
}

/** Shared by every simulated TTS of the process (the audio depends only on the key). */
const speechCache = new SpeechCache(16 * 1024 * 1024);

export class SimulatedTtsProvider implements TtsProvider {
  constructor(private readonly timing: SimulatedTiming = {}) {}

  /** The whole audio, once its last chunk is due (the stream, gathered). */
  async speak(req: TtsRequest, opts?: CallOptions): Promise<TtsResult> {
    const chunks: Buffer[] = [];
    await this.stream(req, opts, (chunk) => {
      chunks.push(chunk);
    });
    return { audio: Buffer.concat(chunks), sampleRate: SIMULATED_TTS_SAMPLE_RATE };
  }

  /**
   * Hands the audio to `sink` in timed chunks; resolves once the last chunk was taken. The chunks
   * are views of cached audio: read them, do not modify them.
   */
  async stream(req: TtsRequest, opts: CallOptions | undefined, sink: AudioSink): Promise<void> {
    const signal = opts?.signal;
    if (signal?.aborted) throw new SimulatedAbortError(signal.reason);
    const timeline = new Timeline();
    const audio = speechCache.get(`${req.voice ?? ''}\u0000${req.language}\u0000${req.text}`, () =>
      synthesizeSpeech(req.text, { sampleRate: SIMULATED_TTS_SAMPLE_RATE, voice: req.voice, language: req.language }),
    );
    const firstMs = jittered(this.timing.firstByteMs ?? this.timing.latencyMs ?? 0, this.timing.random);
    const rtf = this.timing.realTimeFactor;
    const gapMs = rtf !== undefined && rtf > 0 ? AUDIO_CHUNK_MS / rtf : 0;
    await timeline.until(firstMs, signal);
    for (let i = 0, at = 0; at < audio.length; i++, at += CHUNK_BYTES) {
      if (i > 0) await timeline.until(firstMs + i * gapMs, signal);
      const held = sink(audio.subarray(at, at + CHUNK_BYTES), SIMULATED_TTS_SAMPLE_RATE);
      if (held) await orAbort(held, signal);
      else if (signal?.aborted) throw new SimulatedAbortError(signal.reason);
    }
  }
}
