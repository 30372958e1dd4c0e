/**
 * The learner's audio as the simulated STT and pronunciation providers read it: decoded to mono
 * PCM16, and told apart from silence.
 */
import { decodeWav } from '../audio/wav.js';
import { UpstreamError, type AudioInput } from '../upstream/provider.js';
import { toMono } from './signal.js';

/** Below this RMS (about -40 dBFS) audio counts as silence. */
export const SILENCE_RMS = 0.01;
/** Less voiced time than this is no speech either (a click, a breath). */
export const MIN_SPEECH_MS = 120;

/** Decodes an AudioInput to mono PCM16, or throws an UpstreamError (status 400) naming the problem. */
export function decodeInput(audio: AudioInput, upstream: string): { pcm16: Buffer; sampleRate: number } {
  if (audio.format === 'wav') {
    let wav: ReturnType<typeof decodeWav>;
    try {
      wav = decodeWav(audio.data);
    } catch (err) {
      throw new UpstreamError(upstream, `invalid audio: ${(err as Error).message}`, 400);
    }
    return { pcm16: toMono(wav.pcm16, wav.channels), sampleRate: wav.sampleRate };
  }
  if (audio.format !== 'pcm16') throw new UpstreamError(upstream, `invalid audio: unsupported format "${String(audio.format)}"`, 400);
  if (!(audio.sampleRate > 0) || !(audio.channels >= 1)) {
    throw new UpstreamError(upstream, `invalid audio: sample rate ${audio.sampleRate}, ${audio.channels} channel(s)`, 400);
  }
  return { pcm16: toMono(audio.data, Math.floor(audio.channels)), sampleRate: audio.sampleRate };
}
