/**
 * Signal statistics of PCM16 little-endian audio, all pure functions: duration, down-mix, frame
 * energy, voiced time and a stable fingerprint. The simulated STT and pronunciation providers read
 * the learner's audio with them. The WAV codec is src/audio/wav.ts.
 */
import { fnv1a } from '../util/hash.js';

/** Playing time of `pcmBytes` bytes of 16-bit PCM, in milliseconds. */
export function durationMs(pcmBytes: number, sampleRate: number, channels = 1): number {
  if (sampleRate <= 0 || channels <= 0) return 0;
  return (Math.floor(pcmBytes / (2 * channels)) / sampleRate) * 1000;
}

/** Averages interleaved channels into mono PCM16 (returns the input itself when already mono). */
export function toMono(pcm16: Buffer, channels: number): Buffer {
  if (channels <= 1) return pcm16;
  const frames = Math.floor(pcm16.length / (2 * channels));
  const out = Buffer.alloc(frames * 2);
  for (let f = 0; f < frames; f++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += pcm16.readInt16LE((f * channels + c) * 2);
    out.writeInt16LE(Math.round(sum / channels), f * 2);
  }
  return out;
}

/** A frame whose RMS (0..1) exceeds this counts as speech (about -34 dBFS). */
export const VOICED_FRAME_RMS = 0.02;
const FRAME_MS = 20;

export interface Pcm16Stats {
  /** Number of 16-bit samples (all channels). */
  readonly samples: number;
  /** Root mean square, 0..1. */
  readonly rms: number;
  /** Largest absolute sample, 0..1. */
  readonly peak: number;
  /** Zero crossings per sample, 0..1 (high for hiss and fricatives, low for voiced sound). */
  readonly zcr: number;
  /** FNV-1a hash of the sample bytes: the same audio always gives the same number. */
  readonly fingerprint: number;
  /** The fields below need the sample rate (mono audio assumed). */
  readonly durationMs?: number;
  /** Total length of 20 ms frames louder than VOICED_FRAME_RMS. */
  readonly voicedMs?: number;
  /** Start of the first and end of the last voiced frame (0/0 when nothing is voiced). */
  readonly speechStartMs?: number;
  readonly speechEndMs?: number;
}

/** RMS (0..1) of consecutive `frameMs` frames of mono PCM16; the last partial frame is included. */
export function frameRms(pcm16: Buffer, sampleRate: number, frameMs = FRAME_MS): number[] {
  const n = pcm16.length >> 1;
  const frame = Math.max(1, Math.round((sampleRate * frameMs) / 1000));
  const out: number[] = [];
  for (let start = 0; start < n; start += frame) {
    const end = Math.min(n, start + frame);
    let sum = 0;
    for (let i = start; i < end; i++) {
      const s = pcm16.readInt16LE(i * 2) / 32768;
      sum += s * s;
    }
    out.push(Math.sqrt(sum / (end - start)));
  }
  return out;
}

/**
 * Energy, peak, zero-crossing rate and a fingerprint of PCM16 audio; with `sampleRate`, also its
 * duration and voiced time (20 ms frames above VOICED_FRAME_RMS). A trailing odd byte is ignored.
 */
export function pcm16Stats(pcm16: Buffer, sampleRate?: number): Pcm16Stats {
  const n = pcm16.length >> 1;
  let sum = 0;
  let peak = 0;
  let crossings = 0;
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const v = pcm16.readInt16LE(i * 2);
    sum += v * v;
    const a = v < 0 ? -v : v;
    if (a > peak) peak = a;
    if ((v >= 0) !== (prev >= 0)) crossings++;
    prev = v;
  }
  const base = {
    samples: n,
    rms: n ? Math.sqrt(sum / n) / 32768 : 0,
    peak: Math.min(1, peak / 32768),
    zcr: n > 1 ? crossings / (n - 1) : 0,
    fingerprint: fnv1a(pcm16.subarray(0, n * 2)),
  };
  if (!sampleRate || sampleRate <= 0) return base;

  const frames = frameRms(pcm16.subarray(0, n * 2), sampleRate, FRAME_MS);
  const frameLen = Math.max(1, Math.round((sampleRate * FRAME_MS) / 1000));
  let voicedFrames = 0;
  let first = -1;
  let last = -1;
  frames.forEach((r, i) => {
    if (r > VOICED_FRAME_RMS) {
      voicedFrames++;
      if (first < 0) first = i;
      last = i;
    }
  });
  const msPerFrame = (frameLen / sampleRate) * 1000;
  const totalMs = (n / sampleRate) * 1000;
  return {
    ...base,
    durationMs: totalMs,
    voicedMs: Math.min(totalMs, voicedFrames * msPerFrame),
    speechStartMs: first < 0 ? 0 : first * msPerFrame,
    speechEndMs: last < 0 ? 0 : Math.min(totalMs, (last + 1) * msPerFrame),
  };
}
