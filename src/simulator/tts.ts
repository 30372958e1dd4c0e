/**
 * The simulated text-to-speech: {@link synthesizeSpeech} at 24 kHz, PCM16 mono.
 */
import type { CallOptions, TtsProvider, TtsRequest, TtsResult } from '../upstream/provider.js';
import { synthesizeSpeech } from './speech-synth.js';
import { latency, type SimulatedTiming } from './timing.js';

/** TTS output rate. */
export const SIMULATED_TTS_SAMPLE_RATE = 24000;

export class SimulatedTtsProvider implements TtsProvider {
  constructor(private readonly timing: SimulatedTiming = {}) {}

  async speak(req: TtsRequest, opts?: CallOptions): Promise<TtsResult> {
    await latency(this.timing, opts?.signal);
    const audio = synthesizeSpeech(req.text, { sampleRate: SIMULATED_TTS_SAMPLE_RATE, voice: req.voice, language: req.language });
    return { audio, sampleRate: SIMULATED_TTS_SAMPLE_RATE };
  }
}
