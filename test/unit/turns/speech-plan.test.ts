import { describe, expect, it } from 'vitest';
import { SentenceSegmenter } from '../../../src/turns/segmenter.js';
import { planText, SpeechPlanner, type SpeechPart } from '../../../src/turns/speech-plan.js';
import { mulberry32 } from '../limits/virtual-time.js';

/** Streams `reply` in the given chunks through segmenter and planner; returns the parts as text, with when each became ready. */
function stream(reply: string, maxChars: number, cuts: number[] = []): { parts: string[]; readyAtChunk: number[] } {
  const seg = new SentenceSegmenter('en');
  const planner = new SpeechPlanner(maxChars);
  const parts: SpeechPart[] = [];
  const readyAtChunk: number[] = [];
  let at = 0;
  const chunks = [...cuts, reply.length];
  chunks.forEach((c, i) => {
    for (const p of planner.add(reply, seg.push(reply.slice(at, c)))) {
      parts.push(p);
      readyAtChunk.push(i);
    }
    at = c;
  });
  for (const p of planner.add(reply, seg.end())) (parts.push(p), readyAtChunk.push(chunks.length));
  for (const p of planner.end()) (parts.push(p), readyAtChunk.push(chunks.length));
  return { parts: parts.map((p) => reply.slice(p.start, p.end)), readyAtChunk };
}

describe('SpeechPlanner', () => {
  it('sends the first sentence alone as soon as it is complete, then joins the rest up to maxChars', () => {
    const reply = 'Hola. Me llamo Ana. Vivo en Madrid. Trabajo en un café. Y tú?';
    const { parts, readyAtChunk } = stream(reply, 40, [6, 20, 36, 56]);
    expect(parts).toEqual(['Hola. ', 'Me llamo Ana. Vivo en Madrid. ', 'Trabajo en un café. Y tú?']);
    expect(readyAtChunk[0]).toBe(1); // as soon as "M" of the second sentence arrived
  });

  it('cuts a sentence over maxChars at clause ends, then spaces', () => {
    const reply = 'First. Alpha beta gamma, delta epsilon zeta eta theta iota kappa.';
    expect(stream(reply, 20).parts).toEqual(['First. ', 'Alpha beta gamma, ', 'delta epsilon zeta ', 'eta theta iota ', 'kappa.']);
  });

  it('cuts inside a word only when there is no space', () => {
    expect(planText('abcdefghij', 'en', 4).map((p) => 'abcdefghij'.slice(p.start, p.end))).toEqual(['abcd', 'efgh', 'ij']);
  });

  it('keeps CJK sentences as written (no spaces added)', () => {
    const text = 'こんにちは。元気ですか？はい。';
    expect(planText(text, 'ja', 7).map((p) => text.slice(p.start, p.end))).toEqual(['こんにちは。', '元気ですか？', 'はい。']);
  });

  it('a reply with no sentence end is one request at the end', () => {
    expect(stream('just words and no end', 100, [4, 9]).parts).toEqual(['just words and no end']);
  });

  it('packs greedily: a later request is sent only when its next sentence would not fit, and parts concatenate to the reply', () => {
    const random = mulberry32(11);
    const words = ['la', 'casa', 'es', 'grande', 'y', 'bonita', 'Dr.', 'Pérez', '3.50', 'euros', 'vale'];
    for (let trial = 0; trial < 200; trial++) {
      let reply = '';
      const sentences = 1 + Math.floor(random() * 12);
      for (let s = 0; s < sentences; s++) {
        const n = 1 + Math.floor(random() * 14);
        const sentence = Array.from({ length: n }, () => words[Math.floor(random() * words.length)]).join(' ');
        reply += sentence[0]!.toUpperCase() + sentence.slice(1) + (random() < 0.5 ? '. ' : '? ');
      }
      const maxChars = 20 + Math.floor(random() * 60);
      const cuts = Array.from({ length: Math.floor(random() * 10) }, () => Math.floor(random() * reply.length)).sort((a, b) => a - b);
      const seg = new SentenceSegmenter('en');
      const planner = new SpeechPlanner(maxChars);
      const parts: SpeechPart[] = [];
      let at = 0;
      for (const c of [...cuts, reply.length]) {
        parts.push(...planner.add(reply, seg.push(reply.slice(at, c))));
        at = c;
      }
      parts.push(...planner.add(reply, seg.end()), ...planner.end());
      expect(parts.map((p) => reply.slice(p.start, p.end)).join('')).toBe(reply);
      expect(parts.every((p) => p.end - p.start <= maxChars)).toBe(true);
      // Every later request but the last was full: its next sentence (or piece) did not fit.
      for (let i = 1; i < parts.length - 1; i++) {
        const next = parts[i + 1]!.sentences[0]!;
        expect(next.end - parts[i]!.start).toBeGreaterThan(maxChars);
      }
    }
  });

  it('meets the contract\'s request bound for replies of ordinary sentences: 1 + ceil((chars − first) / maxChars)', () => {
    const sentence = 'Me gusta mucho el café con leche por la mañana. ';
    const reply = sentence.repeat(20); // 20 sentences of 49 characters
    const parts = stream(reply, 245).parts; // five sentences fit a request exactly
    expect(parts.length).toBe(1 + Math.ceil((reply.length - sentence.length) / 245));
  });
});
