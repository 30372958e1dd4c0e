/**
 * What the learner heard of a reply, for "history keeps what the learner heard" (CONTRACT §6).
 * Audio is sent faster than it plays, so the client's playback position (`played_ms`, from the
 * request's first audio byte) is the truth; the gateway only knows which text each TTS request
 * spoke and how much audio it sent. Inside a request that joins several sentences there is no
 * alignment data, so a sentence's start is estimated from its share of the request's characters
 * (Vocode's estimate; TURNS.md), and positions are clamped to the audio actually sent (OpenAI
 * Realtime rejects a truncation past it; pipecat #931).
 */
import type { Segment } from './segmenter.js';

/** One TTS request of a reply, as far as it was spoken. */
export interface SpokenPart {
  /** Offsets of the request's text in the reply, and the sentences (or pieces) it speaks. */
  readonly start: number;
  readonly end: number;
  readonly sentences: readonly Segment[];
  /** Audio sent for this request so far, in ms. */
  audioMs: number;
  /** Whether the request's whole audio was sent (its duration is then known, not estimated). */
  complete: boolean;
}

/** Speaking rate assumed for a request whose audio is still arriving, before any request of the reply completed (about 15 characters a second). */
const DEFAULT_MS_PER_CHAR = 65;

/**
 * The text the learner heard: the sentences whose audio started before `playedMs` (clamped to the
 * audio sent), or without `playedMs`, those whose audio started being sent. Trailing whitespace is
 * dropped; an empty string means nothing was heard.
 */
export function heardText(reply: string, parts: readonly SpokenPart[], playedMs: number | undefined): string {
  const sentMs = parts.reduce((sum, p) => sum + p.audioMs, 0);
  const position = Math.min(Math.max(0, playedMs ?? sentMs), sentMs);
  // Speaking rate of this reply's finished requests, for requests still arriving.
  let doneMs = 0;
  let doneChars = 0;
  for (const p of parts) {
    if (!p.complete) continue;
    doneMs += p.audioMs;
    doneChars += p.end - p.start;
  }
  const msPerChar = doneChars > 0 ? doneMs / doneChars : DEFAULT_MS_PER_CHAR;
  let keptEnd = -1;
  let startMs = 0;
  for (const p of parts) {
    const chars = Math.max(1, p.end - p.start);
    const durationMs = p.complete ? p.audioMs : Math.max(p.audioMs, chars * msPerChar);
    for (const s of p.sentences) {
      const sentenceStartMs = startMs + (durationMs * (s.start - p.start)) / chars;
      if (sentenceStartMs < position && sentenceStartMs < startMs + p.audioMs) keptEnd = s.end;
      else return keptEnd < 0 ? '' : reply.slice(parts[0]!.start, keptEnd).trimEnd();
    }
    startMs += p.audioMs;
  }
  return keptEnd < 0 ? '' : reply.slice(parts[0]!.start, keptEnd).trimEnd();
}
