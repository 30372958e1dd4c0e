/**
 * Splits text longer than an upstream's `maxChars` at sentence boundaries (the seeds' TTS
 * character limits: "For text longer than the limit, split it into multiple requests"). A sentence
 * longer than the limit is split at the last clause break or space before it, and only as a last
 * resort inside a word. Parts keep their order and, joined with a space, give the text back
 * (modulo whitespace).
 */

// Sentence ends: . ! ? … and their CJK forms, followed by closing quotes/brackets.
const SENTENCE = /[^.!?…。！？]*(?:[.!?…。！？]+["'»”’)\]]*|$)/gu;

function sentences(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(SENTENCE)) {
    const s = m[0].trim();
    if (s) out.push(s);
  }
  return out;
}

/** Cuts one over-long sentence into pieces of at most maxChars. */
function cutLong(sentence: string, maxChars: number): string[] {
  const out: string[] = [];
  let rest = sentence;
  while (rest.length > maxChars) {
    const window = rest.slice(0, maxChars + 1);
    let cut = Math.max(window.lastIndexOf(', '), window.lastIndexOf('; '), window.lastIndexOf(': '));
    if (cut > 0) cut += 1;
    else cut = window.lastIndexOf(' ');
    if (cut <= 0) cut = maxChars;
    out.push(rest.slice(0, cut).trim());
    rest = rest.slice(cut).trim();
  }
  if (rest) out.push(rest);
  return out;
}

/** Parts of at most `maxChars` characters, cut at sentence ends where possible. */
export function splitText(text: string, maxChars: number): string[] {
  if (maxChars < 1) throw new RangeError(`maxChars must be >= 1, got ${maxChars}`);
  const trimmed = text.trim();
  if (trimmed.length <= maxChars) return trimmed ? [trimmed] : [];
  const parts: string[] = [];
  let current = '';
  for (const s of sentences(trimmed)) {
    for (const piece of s.length > maxChars ? cutLong(s, maxChars) : [s]) {
      if (!current) current = piece;
      else if (current.length + 1 + piece.length <= maxChars) current += ` ${piece}`;
      else {
        parts.push(current);
        current = piece;
      }
    }
  }
  if (current) parts.push(current);
  return parts;
}
