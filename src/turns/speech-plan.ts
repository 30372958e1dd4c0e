/**
 * Which text goes to text-to-speech in which request (CONTRACT §6 "Speech segments"): the first
 * sentence alone, the moment it is complete, so the learner hears the tutor early; later sentences
 * joined up to the TTS upstream's `maxChars`, so a long reply costs few requests (a request per
 * sentence trips TTS rate limits: livekit/agents #2878). A sentence that alone exceeds `maxChars` is
 * cut at clause ends, then at spaces, and only as a last resort inside a word. So a turn makes at
 * most 1 + ceil((chars − first sentence) / maxChars) requests, plus one per over-long sentence.
 *
 * Everything is offsets into the reply: a part's text is the reply's own (whitespace included),
 * and each part lists the sentences (or pieces of one) it speaks, for "history keeps what the
 * learner heard".
 */
import { SentenceSegmenter, type Segment } from './segmenter.js';

/** One TTS request: `reply.slice(start, end)`, speaking `sentences` in order. */
export interface SpeechPart {
  readonly index: number;
  readonly start: number;
  readonly end: number;
  readonly sentences: readonly Segment[];
}

/** Clause ends a long sentence may be cut after (Latin and CJK). */
const CLAUSE_END = /[,;:、，；：—–]\s*/gu;

/** Cuts [start, end) of `text` into pieces of at most `maxChars`, preferring clause ends, then spaces. */
function cutLong(text: string, start: number, end: number, maxChars: number): [number, number][] {
  const out: [number, number][] = [];
  let at = start;
  while (end - at > maxChars) {
    const window = text.slice(at, at + maxChars);
    let cut = -1;
    for (const m of window.matchAll(CLAUSE_END)) cut = m.index + m[0].length;
    if (cut <= 0) {
      const space = window.search(/\s\S*$/u);
      if (space > 0) cut = space + 1;
    }
    if (cut <= 0) {
      cut = maxChars;
      // Never between the two halves of a surrogate pair.
      const code = text.charCodeAt(at + cut - 1);
      if (code >= 0xd800 && code <= 0xdbff && cut > 1) cut--;
    }
    out.push([at, at + cut]);
    at += cut;
  }
  if (at < end) out.push([at, end]);
  return out;
}

/** Turns completed sentences into TTS requests as they come. */
export class SpeechPlanner {
  private next = 0;
  private pieceIndex = 0;
  private pending: Segment[] = [];
  private firstDone: boolean;

  constructor(
    private readonly maxChars: number,
    opts: { readonly firstAlone?: boolean } = {},
  ) {
    if (!(maxChars >= 1)) throw new RangeError(`maxChars must be >= 1, got ${maxChars}`);
    this.firstDone = opts.firstAlone === false;
  }

  /** Adds completed sentences of `reply`; returns the requests ready to start now. */
  add(reply: string, sentences: readonly Segment[]): SpeechPart[] {
    const out: SpeechPart[] = [];
    for (const s of sentences) {
      if (!/\S/.test(reply.slice(s.start, s.end))) {
        // Whitespace alone is spoken by no one: it joins whatever is pending (or is dropped).
        const last = this.pending[this.pending.length - 1];
        if (last) this.pending[this.pending.length - 1] = { ...last, end: s.end };
        continue;
      }
      const pieces = s.end - s.start > this.maxChars ? cutLong(reply, s.start, s.end, this.maxChars) : [[s.start, s.end] as [number, number]];
      for (const [start, end] of pieces) {
        const piece: Segment = { index: this.pieceIndex++, start, end };
        if (!this.firstDone) {
          this.firstDone = true;
          out.push(this.part([piece]));
          continue;
        }
        const head = this.pending[0];
        if (head && end - head.start > this.maxChars) {
          out.push(this.part(this.pending));
          this.pending = [];
        }
        this.pending.push(piece);
      }
    }
    return out;
  }

  /** The reply is complete: what is pending goes as the last request. */
  end(): SpeechPart[] {
    if (this.pending.length === 0) return [];
    const part = this.part(this.pending);
    this.pending = [];
    return [part];
  }

  private part(sentences: Segment[]): SpeechPart {
    return { index: this.next++, start: sentences[0]!.start, end: sentences[sentences.length - 1]!.end, sentences };
  }
}

/** A whole text at once (e.g. a translation over the upstream's `maxChars`): parts of at most `maxChars`, cut at sentences. */
export function planText(text: string, language: string, maxChars: number): SpeechPart[] {
  const seg = new SentenceSegmenter(language);
  const planner = new SpeechPlanner(maxChars, { firstAlone: false });
  return [...planner.add(text, [...seg.push(text), ...seg.end()]), ...planner.end()];
}
