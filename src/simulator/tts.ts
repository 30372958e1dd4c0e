/**
 * The simulated text-to-speech: {@link synthesizeSpeech} at 24 kHz, PCM16 mono, streamed as a real
 * TTS streams its body (CONTRACT §6): the first audio `firstByteMs` after the call (default
 * `latencyMs`), then chunks of {@link AUDIO_CHUNK_MS} of sound, chunk i due `i × 100 /
 * realTimeFactor` ms after the first (all at once without a factor). The producer waits for the
 * sink's promise before handing it more (backpressure); audio that fell due while it waited goes
 * out as soon as the sink lets it, because synthesis runs on its own schedule, as a real server's
 * does while TCP holds its writes.
 */
import type { AudioSink, CallOptions, TtsProvider, TtsRequest, TtsResult } from '../upstream/provider.js';
import { synthesizeSpeech } from './speech-synth.js';
import { AUDIO_CHUNK_MS, jittered, orAbort, SimulatedAbortError, Timeline, type SimulatedTiming } from './timing.js';

/** TTS output rate. */
export const SIMULATED_TTS_SAMPLE_RATE = 24000;

/** Bytes of one chunk: AUDIO_CHUNK_MS of PCM16 mono (4,800 at 24 kHz). */
const CHUNK_BYTES = ((SIMULATED_TTS_SAMPLE_RATE * AUDIO_CHUNK_MS) / 1000) * 2;

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

  /** Hands the audio to `sink` in timed chunks; resolves once the last chunk was taken. */
  async stream(req: TtsRequest, opts: CallOptions | undefined, sink: AudioSink): Promise<void> {
    const signal = opts?.signal;
    if (signal?.aborted) throw new SimulatedAbortError(signal.reason);
    const timeline = new Timeline();
    const audio = synthesizeSpeech(req.text, { sampleRate: SIMULATED_TTS_SAMPLE_RATE, voice: req.voice, language: req.language });
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
