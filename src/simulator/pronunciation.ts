/**
 * The simulated pronunciation assessment: per-word and overall 0-100 scores from the energy and
 * timing of the audio against the reference text (silence scores near 0, speech of about the right
 * length and loudness scores well). Deterministic for the same audio and reference.
 */
import type { CallOptions, PronunciationProvider, PronunciationRequest, PronunciationResult } from '../upstream/provider.js';
import { fnv1a } from '../util/hash.js';
import { decodeInput, MIN_SPEECH_MS, SILENCE_RMS } from './input-audio.js';
import { CJK, mix, supportedLanguage } from './language.js';
import { frameRms, pcm16Stats, VOICED_FRAME_RMS } from './signal.js';
import { latency, type SimulatedTiming } from './timing.js';

/** Assumed speaking rates of learners. */
const WORDS_PER_SECOND = 2.5;

/** The words of a reference text; Japanese runs without spaces are split where the script changes. */
function referenceWords(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\s+/)) {
    const token = raw.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '');
    if (!token) continue;
    if (CJK.test(token)) {
      const runs = token.match(/\p{Script=Han}+[\p{Script=Hiragana}]*|[\p{Script=Katakana}ー]+|\p{Script=Hiragana}+|[^\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}ー\p{P}]+/gu);
      out.push(...(runs ?? [token]));
    } else out.push(token);
  }
  return out;
}

const clamp01 = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x);

/** The simulated assessment of `req.audio` against `req.referenceText`. */
export function assessAudio(req: PronunciationRequest): PronunciationResult {
  const { pcm16, sampleRate } = decodeInput(req.audio, 'pronunciation');
  const stats = pcm16Stats(pcm16, sampleRate);
  const refWords = referenceWords(req.referenceText);
  const lang = supportedLanguage(req.language) ?? 'en';
  const wordHash = (w: string, i: number): number => mix(fnv1a(w.toLowerCase(), stats.fingerprint), i) / 2 ** 32;

  const silent = stats.rms < SILENCE_RMS || (stats.voicedMs ?? 0) < MIN_SPEECH_MS;
  let quality = 0;
  let perWord: number[] = refWords.map(() => 0);
  if (!silent) {
    // Timing: the speech should last about as long as the reference takes to say.
    // About 2.5 words a second, a long word counting as several (one per ~5.5 letters).
    const expected = lang === 'ja'
      ? Math.max(0.5, [...req.referenceText.replace(/\s+/g, '')].length / 7)
      : Math.max(0.5, refWords.reduce((n, w) => n + Math.max(1, [...w].length / 5.5), 0) / WORDS_PER_SECOND);
    const spanMs = Math.max(1, (stats.speechEndMs ?? 0) - (stats.speechStartMs ?? 0));
    const r = spanMs / 1000 / expected;
    const timing = r < 0.25 ? 0.1 : r < 0.6 ? 0.1 + (0.9 * (r - 0.25)) / 0.35 : r <= 1.7 ? 1 : r < 3.5 ? 1 - (0.75 * (r - 1.7)) / 1.8 : 0.25;
    // Energy of the speech itself, and how much of it is actually voiced.
    const frames = frameRms(pcm16, sampleRate, 20);
    const first = Math.floor((stats.speechStartMs ?? 0) / 20);
    const last = Math.max(first + 1, Math.ceil((stats.speechEndMs ?? 0) / 20));
    const speech = frames.slice(first, last);
    const energyOf = (fs: readonly number[]): number => Math.sqrt(fs.reduce((s, f) => s + f * f, 0) / Math.max(1, fs.length));
    const active = energyOf(speech);
    const energy = clamp01((active - SILENCE_RMS) / 0.04);
    const continuity = clamp01(0.3 + (1.4 * (stats.voicedMs ?? 0)) / spanMs);
    quality = timing * energy * continuity;

    // Each word gets its share of the speech (by length, at least 200 ms): quiet stretches score lower.
    const weights = refWords.map((w) => [...w].length + 1);
    const total = weights.reduce((a, b) => a + b, 0) || 1;
    let at = 0;
    perWord = refWords.map((_, i) => {
      const share = (weights[i]! / total) * speech.length;
      const mid = at + share / 2;
      at += share;
      const half = Math.max(5, share / 2);
      const local = energyOf(speech.slice(Math.max(0, Math.floor(mid - half)), Math.ceil(mid + half)));
      return clamp01(local / Math.max(VOICED_FRAME_RMS, 0.35 * active));
    });
  }

  const scored = refWords.map((word, i) => {
    const v = wordHash(word, i);
    if (silent) return { word, score: Math.floor(v * 12) };
    const hard = Math.min(0.4, 0.05 * Math.max(0, [...word].length - 6)); // long words are harder
    const raw = 60 + 35 * v * (1 - hard);
    return { word, score: Math.max(0, Math.min(100, Math.round(raw * quality * (0.4 + 0.6 * perWord[i]!)))) };
  });
  let score: number;
  if (scored.length) {
    const weights = scored.map((w) => Math.min(8, [...w.word].length));
    const sum = weights.reduce((a, b) => a + b, 0);
    score = Math.round(scored.reduce((s, w, i) => s + w.score * weights[i]!, 0) / sum);
  } else {
    score = silent ? 0 : Math.round(quality * (60 + 35 * (stats.fingerprint / 2 ** 32)));
  }
  return { score, words: scored };
}

export class SimulatedPronunciationProvider implements PronunciationProvider {
  constructor(private readonly timing: SimulatedTiming = {}) {}

  async assess(req: PronunciationRequest, opts?: CallOptions): Promise<PronunciationResult> {
    await latency(this.timing, opts?.signal);
    return assessAudio(req);
  }
}
