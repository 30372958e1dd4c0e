/**
 * Cuts a reply into sentences as it streams (CONTRACT §6 "Speech segments"), so the first sentence
 * can go to text-to-speech while the rest is still being written.
 *
 * The engine is `Intl.Segmenter` (ICU's sentence rules: it keeps `3.50`, `e.g. in`, splits after
 * `。！？`, keeps closing quotes and brackets with their sentence, keeps trailing spaces). Two
 * corrections on top, both from what voice stacks hit (TURNS.md; pipecat #1756, #3203):
 * - a boundary counts only once non-space text follows it: `It costs 3.` is not a sentence until
 *   the next delta shows whether `50` follows;
 * - V8's ICU ignores its own abbreviation suppressions, so it cuts after `Dr. ` or `Mr. ` before a
 *   capital, and after dotted initials (`U.S. Army`): a sentence ending in a known abbreviation or
 *   in dotted initials is joined to the next.
 * Segments are offsets into the reply, so their text is the reply's own, whitespace included, and
 * they concatenate back to it.
 */

/** A sentence of the reply: `text.slice(start, end)`. */
export interface Segment {
  readonly index: number;
  readonly start: number;
  readonly end: number;
}

/**
 * Words that end in a dot without ending a sentence, lower-case, dot included (titles and common
 * abbreviations of the languages learners practise most). Dotted initials (`U.S.`, `e.g.`, `z.B.`)
 * are recognised by shape, not listed.
 */
const ABBREVIATIONS = new Set(
  [
    // English
    'mr.', 'mrs.', 'ms.', 'dr.', 'prof.', 'sr.', 'jr.', 'st.', 'mt.', 'vs.', 'etc.', 'approx.', 'no.', 'fig.', 'inc.', 'ltd.', 'co.', 'corp.', 'dept.', 'est.', 'vol.', 'p.m.', 'a.m.',
    'jan.', 'feb.', 'mar.', 'apr.', 'jun.', 'jul.', 'aug.', 'sep.', 'sept.', 'oct.', 'nov.', 'dec.',
    // Spanish, Portuguese, Italian
    'sra.', 'srta.', 'dra.', 'ud.', 'uds.', 'pág.', 'núm.', 'av.', 'avda.', 'sig.', 'dott.',
    // French
    'm.', 'mme.', 'mlle.', 'mm.',
    // German
    'hr.', 'fr.', 'nr.', 'bzw.', 'ca.', 'str.',
  ],
);

/** A sentence whose last word is an abbreviation or dotted initials does not end there. */
function endsInAbbreviation(sentence: string): boolean {
  const trimmed = sentence.trimEnd();
  if (!trimmed.endsWith('.')) return false;
  const word = /(\S+)$/.exec(trimmed)?.[1]?.toLowerCase() ?? '';
  // Opening quotes or brackets before the word do not change it ("(Dr." is still "dr.").
  const bare = word.replace(/^[("'“‘«¿¡[]+/, '');
  if (ABBREVIATIONS.has(bare)) return true;
  // Dotted initials: U.S. / e.g. / i.e. / z.B. (two or more single letters, each with a dot).
  return /^(?:\p{L}\.){2,}$/u.test(bare);
}

const hasText = (s: string): boolean => /\S/.test(s);

/** Streaming sentence segmentation of one reply. */
export class SentenceSegmenter {
  private readonly engine: Intl.Segmenter;
  private text = '';
  /** Offset up to which sentences have been handed out. */
  private committed = 0;
  private next = 0;

  constructor(language: string) {
    let engine: Intl.Segmenter;
    try {
      engine = new Intl.Segmenter(language, { granularity: 'sentence' });
    } catch {
      engine = new Intl.Segmenter('en', { granularity: 'sentence' }); // an unknown tag: ICU's root rules
    }
    this.engine = engine;
  }

  /** The reply so far. */
  get reply(): string {
    return this.text;
  }

  /** Appends a delta; returns the sentences it completed (none while the last one is still open). */
  push(delta: string): Segment[] {
    this.text += delta;
    return this.cut(false);
  }

  /** The reply is complete: returns what is left as its last sentence(s). */
  end(): Segment[] {
    return this.cut(true);
  }

  private cut(final: boolean): Segment[] {
    const tail = this.text.slice(this.committed);
    if (tail.length === 0) return [];
    // Raw ICU sentences of the uncommitted tail, as [start, end) offsets into the reply.
    const raw: [number, number][] = [];
    for (const s of this.engine.segment(tail)) raw.push([this.committed + s.index, this.committed + s.index + s.segment.length]);
    // Join what must not stand alone (whitespace-only pieces, sentences ending in an abbreviation),
    // and give a sentence's leading whitespace to the one before it (ICU starts a sentence after a
    // paragraph break with the second newline), so every sentence but the first starts with text.
    const joined: [number, number][] = [];
    for (const r of raw) {
      const prev = joined[joined.length - 1];
      if (prev && (!hasText(this.text.slice(prev[0], prev[1])) || endsInAbbreviation(this.text.slice(prev[0], prev[1])))) {
        prev[1] = r[1];
        continue;
      }
      let start = r[0];
      if (prev) {
        while (start < r[1] && /\s/.test(this.text[start]!)) start++;
        prev[1] = start;
        if (start === r[1]) {
          prev[1] = r[1];
          continue;
        }
      }
      joined.push([start, r[1]]);
    }
    // Every sentence but the last is complete (non-space text follows it); the last only at the end.
    const out: Segment[] = [];
    const complete = final ? joined.length : joined.length - 1;
    for (let i = 0; i < complete; i++) {
      const [start, end] = joined[i]!;
      if (!final && !hasText(this.text.slice(end))) break;
      out.push({ index: this.next++, start, end });
      this.committed = end;
    }
    return out;
  }
}
