import { describe, expect, it } from 'vitest';
import { splitText } from '../../../src/upstream/text-split.js';

describe('splitText', () => {
  it('keeps text within the limit as one part', () => {
    expect(splitText('Hola. ¿Qué tal?', 20)).toEqual(['Hola. ¿Qué tal?']);
  });

  it('cuts at sentence ends and packs sentences up to maxChars', () => {
    const text = 'One two three. Four five six! Seven eight nine? Ten.';
    expect(splitText(text, 30)).toEqual(['One two three. Four five six!', 'Seven eight nine? Ten.']);
  });

  it('every part is at most maxChars and the parts give the text back in order', () => {
    const text = 'Buenos días. Quisiera un café con leche, por favor. ¿Tiene pan? Gracias, muy amable. '.repeat(40);
    const parts = splitText(text, 100);
    expect(parts.every((p) => p.length <= 100)).toBe(true);
    expect(parts.join(' ')).toBe(text.trim());
    expect(parts.every((p) => /[.?!]$/.test(p))).toBe(true);
  });

  it('cuts a sentence longer than the limit at a clause break, then a space', () => {
    expect(splitText('alpha beta gamma, delta epsilon zeta eta theta.', 20)).toEqual(['alpha beta gamma,', 'delta epsilon zeta', 'eta theta.']);
  });

  it('cuts inside a word only when nothing else fits', () => {
    expect(splitText('abcdefghij', 4)).toEqual(['abcd', 'efgh', 'ij']);
  });

  it('handles CJK sentence ends', () => {
    expect(splitText('こんにちは。元気ですか？はい。', 7)).toEqual(['こんにちは。', '元気ですか？', 'はい。']);
  });

  it('refuses a limit below 1', () => {
    expect(() => splitText('x', 0)).toThrow('maxChars must be >= 1, got 0');
  });
});
