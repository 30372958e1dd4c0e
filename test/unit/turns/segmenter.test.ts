import { describe, expect, it } from 'vitest';
import { SentenceSegmenter, type Segment } from '../../../src/turns/segmenter.js';
import { mulberry32 } from '../limits/virtual-time.js';

/** The sentences of `reply` given as one delta, then ended. */
function sentences(reply: string, language = 'en'): string[] {
  const seg = new SentenceSegmenter(language);
  const out = [...seg.push(reply), ...seg.end()];
  return out.map((s) => reply.slice(s.start, s.end));
}

/** The sentences of `reply` fed in the given chunks. */
function chunked(reply: string, cuts: number[], language = 'en'): Segment[] {
  const seg = new SentenceSegmenter(language);
  const out: Segment[] = [];
  let at = 0;
  for (const c of [...cuts, reply.length]) {
    out.push(...seg.push(reply.slice(at, c)));
    at = c;
  }
  out.push(...seg.end());
  return out;
}

describe('SentenceSegmenter: where sentences end', () => {
  it.each([
    ['decimals', 'It costs 3.50 dollars. Then more.', ['It costs 3.50 dollars. ', 'Then more.']],
    ['titles before a capital', 'Dr. Smith is here. Mr. Brown and Mrs. Green too.', ['Dr. Smith is here. ', 'Mr. Brown and Mrs. Green too.']],
    ['e.g. and U.S.', 'See e.g. the U.S. Army today. Done.', ['See e.g. the U.S. Army today. ', 'Done.']],
    ['quotes and brackets stay with their sentence', 'He said "Hi." Then left. (Really.) Yes!', ['He said "Hi." ', 'Then left. ', '(Really.) ', 'Yes!']],
    ['CJK marks, with no spaces added', 'こんにちは。元気ですか？はい！', ['こんにちは。', '元気ですか？', 'はい！']],
    ['Spanish marks', 'Hola. ¿Qué tal? ¡Bien!', ['Hola. ', '¿Qué tal? ', '¡Bien!']],
    ['no sentence end at all', 'just words with no end', ['just words with no end']],
    ['whitespace kept as it was', 'One.  Two.\n\nThree.  ', ['One.  ', 'Two.\n\n', 'Three.  ']],
    ['Spanish titles', 'La Sra. García llegó. Bien.', ['La Sra. García llegó. ', 'Bien.']],
  ])('%s', (_name, reply, expected) => {
    expect(sentences(reply, _name.startsWith('Spanish') ? 'es' : _name.startsWith('CJK') ? 'ja' : 'en')).toEqual(expected);
  });

  it('holds a sentence until text follows its end: "3." then "50" is one sentence', () => {
    const seg = new SentenceSegmenter('en');
    expect(seg.push('It costs 3.')).toEqual([]);
    expect(seg.push('50 now. ')).toEqual([]);
    const out = seg.push('Bye');
    expect(out.map((s) => seg.reply.slice(s.start, s.end))).toEqual(['It costs 3.50 now. ']);
    expect(seg.end().map((s) => seg.reply.slice(s.start, s.end))).toEqual(['Bye']);
  });

  it('gives the first sentence as soon as the second has begun', () => {
    const seg = new SentenceSegmenter('en');
    expect(seg.push('Hello there. ')).toEqual([]);
    expect(seg.push('H')).toEqual([{ index: 0, start: 0, end: 13 }]);
  });

  it('gives the same sentences however the deltas were cut, and they concatenate to the reply', () => {
    const replies = [
      'Dr. Smith paid $3.50 for e.g. coffee. Then he left!  Was it good? Yes. 元気ですか？はい。',
      'No end here at all',
      '"Quoted." (Bracketed.) Mr. X. Done.\n\nNew paragraph.   ',
    ];
    const random = mulberry32(7);
    for (const reply of replies) {
      const whole = chunked(reply, []);
      expect(whole.map((s) => reply.slice(s.start, s.end)).join('')).toBe(reply);
      for (let trial = 0; trial < 200; trial++) {
        const cuts = Array.from({ length: 1 + Math.floor(random() * 12) }, () => Math.floor(random() * reply.length)).sort((a, b) => a - b);
        expect(chunked(reply, cuts)).toEqual(whole);
      }
    }
  });
});
