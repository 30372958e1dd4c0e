/**
 * A small formant speech synthesiser for the simulated TTS: PCM16 little-endian mono that sounds
 * like speech (pitch, vowels, consonants, pauses), deterministic for the same text, voice and
 * language, so the whole pipeline can be heard and measured offline.
 */
import { fnv1a } from '../util/hash.js';

export interface SynthesizeOptions {
  /** Output sample rate in Hz (default 24000). */
  readonly sampleRate?: number | undefined;
  /** Voice name: changes pitch and timbre ("alloy", "echo", "nova", ...; any other name is hashed). */
  readonly voice?: string | undefined;
  /** BCP 47 tag; picks letter-to-sound and word-stress rules (en, es, fr, de, it, pt, ja). */
  readonly language?: string | undefined;
}

interface VoiceProfile {
  readonly f0: number; // base pitch, Hz
  readonly formantScale: number; // vocal-tract length: higher voices have higher formants
}

const VOICES: Readonly<Record<string, VoiceProfile>> = {
  alloy: { f0: 165, formantScale: 1.08 },
  ash: { f0: 118, formantScale: 1.0 },
  ballad: { f0: 128, formantScale: 1.02 },
  coral: { f0: 205, formantScale: 1.14 },
  echo: { f0: 106, formantScale: 0.98 },
  fable: { f0: 138, formantScale: 1.03 },
  nova: { f0: 215, formantScale: 1.15 },
  onyx: { f0: 92, formantScale: 0.95 },
  sage: { f0: 190, formantScale: 1.12 },
  shimmer: { f0: 232, formantScale: 1.17 },
  verse: { f0: 145, formantScale: 1.04 },
};
const DEFAULT_VOICE: VoiceProfile = { f0: 150, formantScale: 1.05 };

function voiceProfile(voice: string | undefined): VoiceProfile {
  if (!voice) return DEFAULT_VOICE;
  const known = VOICES[voice.toLowerCase()];
  if (known) return known;
  const f0 = 95 + (fnv1a(voice.toLowerCase()) % 140);
  return { f0, formantScale: 0.95 + ((f0 - 95) / 140) * 0.22 };
}

/** Formant frequencies (F1, F2, F3, Hz) of an adult male voice; scaled per voice. */
type Formants = readonly [number, number, number];
const VOWELS: Readonly<Record<string, Formants>> = {
  a: [730, 1090, 2440],
  e: [530, 1840, 2480],
  i: [290, 2250, 2950],
  o: [570, 840, 2410],
  u: [320, 870, 2240],
  y: [290, 1750, 2200], // ü
  ø: [420, 1550, 2350], // ö, eu
  ə: [500, 1450, 2450], // schwa
};
const VOWEL_KEYS = 'aeiouyøə';

/** How a consonant is rendered. Durations in seconds before the global tempo factor. */
interface ConsonantSpec {
  /** Silence (or a quiet voice bar) before a burst: stops. */
  readonly closure?: number;
  /** Noise part: centre frequency and Q of the band, amplitude, duration. */
  readonly noise?: { readonly f: number; readonly q: number; readonly amp: number; readonly dur: number };
  /** Voiced part: amplitude, formants, duration. */
  readonly voice?: { readonly amp: number; readonly formants: Formants; readonly dur: number };
  /** Aspiration through the next vowel's formants after the burst. */
  readonly aspiration?: number;
  /** A voiced stop: quiet voicing during the closure. */
  readonly voicedClosure?: boolean;
}

const NASAL_M: Formants = [260, 1100, 2200];
const NASAL_N: Formants = [260, 1650, 2500];
const CONSONANTS: Readonly<Record<string, ConsonantSpec>> = {
  p: { closure: 0.045, noise: { f: 900, q: 0.9, amp: 0.26, dur: 0.014 }, aspiration: 0.025 },
  t: { closure: 0.04, noise: { f: 4200, q: 1.4, amp: 0.3, dur: 0.016 }, aspiration: 0.025 },
  k: { closure: 0.045, noise: { f: 2300, q: 1.6, amp: 0.3, dur: 0.02 }, aspiration: 0.025 },
  b: { closure: 0.035, voicedClosure: true, noise: { f: 900, q: 0.9, amp: 0.13, dur: 0.01 } },
  d: { closure: 0.03, voicedClosure: true, noise: { f: 3800, q: 1.4, amp: 0.15, dur: 0.01 } },
  g: { closure: 0.035, voicedClosure: true, noise: { f: 2200, q: 1.6, amp: 0.15, dur: 0.012 } },
  f: { noise: { f: 5500, q: 0.7, amp: 0.16, dur: 0.085 } },
  θ: { noise: { f: 6000, q: 0.6, amp: 0.12, dur: 0.075 } },
  s: { noise: { f: 6200, q: 2.8, amp: 0.3, dur: 0.095 } },
  ʃ: { noise: { f: 3000, q: 2.2, amp: 0.3, dur: 0.095 } },
  x: { noise: { f: 2000, q: 1.5, amp: 0.28, dur: 0.08 } },
  h: { aspiration: 0.06 },
  v: { noise: { f: 5000, q: 0.7, amp: 0.08, dur: 0.065 }, voice: { amp: 0.35, formants: [280, 1300, 2300], dur: 0.065 } },
  z: { noise: { f: 6000, q: 2.8, amp: 0.16, dur: 0.075 }, voice: { amp: 0.3, formants: [260, 1700, 2600], dur: 0.075 } },
  ʒ: { noise: { f: 3000, q: 2.2, amp: 0.16, dur: 0.075 }, voice: { amp: 0.3, formants: [280, 1800, 2500], dur: 0.075 } },
  m: { voice: { amp: 0.5, formants: NASAL_M, dur: 0.065 } },
  n: { voice: { amp: 0.5, formants: NASAL_N, dur: 0.06 } },
  l: { voice: { amp: 0.62, formants: [360, 1250, 2700], dur: 0.055 } },
  r: { voice: { amp: 0.55, formants: [430, 1250, 1700], dur: 0.048 } },
  w: { voice: { amp: 0.6, formants: [310, 720, 2250], dur: 0.045 } },
  j: { voice: { amp: 0.6, formants: [280, 2200, 2950], dur: 0.045 } },
  Q: { closure: 0.075 }, // Japanese small tsu: a held pause
};

type Phone = { readonly kind: 'V'; readonly v: string; readonly long?: boolean } | { readonly kind: 'C'; readonly c: string };

const V = (v: string, long = false): Phone => ({ kind: 'V', v, long });
const C = (c: string): Phone => ({ kind: 'C', c });

/** Single letters outside a-z, mapped to plain phone strings (upper case = consonant keys above). */
const LETTER_MAP: Readonly<Record<string, string>> = {
  ä: 'e', æ: 'e', ö: 'ø', œ: 'ø', ø: 'ø', ü: 'y', ß: 's', ç: 's', ñ: 'nj', ł: 'w', đ: 'd', þ: 'θ', ð: 'θ',
  // Cyrillic
  а: 'a', е: 'e', ё: 'jo', и: 'i', о: 'o', у: 'u', ы: 'i', э: 'e', ю: 'ju', я: 'ja', й: 'j',
  б: 'b', в: 'v', г: 'g', д: 'd', ж: 'ʒ', з: 'z', к: 'k', л: 'l', м: 'm', н: 'n', п: 'p', р: 'r',
  с: 's', т: 't', ф: 'f', х: 'x', ц: 'ts', ч: 'tʃ', ш: 'ʃ', щ: 'ʃ', ъ: '', ь: '',
  // Greek
  α: 'a', ε: 'e', η: 'i', ι: 'i', ο: 'o', υ: 'i', ω: 'o', β: 'v', γ: 'g', δ: 'θ', ζ: 'z', θ: 'θ',
  κ: 'k', λ: 'l', μ: 'm', ν: 'n', ξ: 'ks', π: 'p', ρ: 'r', σ: 's', ς: 's', τ: 't', φ: 'f', χ: 'x', ψ: 'ps',
};

/** Hiragana U+3041..U+3096: vowel and consonant of each kana ('_' none, 'Q' small tsu, 'N' moraic n). */
const KANA_VOWEL = 'aaiiuueeooaaiiuueeooaaiiuueeooaaiiQuueeooaiueoaaaiiiuuueeeoooaiueoaauuooaiueoaaieoNuae';
const KANA_CONS = '__________kgkgkgkgkgszszszszsztdtdQtdtdtdnnnnnhbphbphbphbphbpmmmmmjjjjjjrrrrrwwwwwNvkk';
const SMALL_KANA = new Set([0x3041, 0x3043, 0x3045, 0x3047, 0x3049, 0x3083, 0x3085, 0x3087, 0x308e]);
const HASH_CONSONANTS = ['k', 't', 's', 'n', 'm', 'r', 'h', 'g', 'd', 'b', 'p', 'ʃ', 'l', 'j', 'w'];

function hashPhones(ch: string, morae: number): Phone[] {
  const h = fnv1a(ch);
  const out: Phone[] = [];
  for (let i = 0; i < morae; i++) {
    const x = (h >>> (i * 8)) & 0xff;
    out.push(C(HASH_CONSONANTS[x % HASH_CONSONANTS.length]!), V('aeiou'[(x >>> 4) % 5]!));
  }
  return out;
}

function kanaPhones(code: number, prev: Phone[]): Phone[] {
  const idx = code - 0x3041;
  const v = KANA_VOWEL[idx];
  const c = KANA_CONS[idx];
  if (v === undefined || c === undefined) return [];
  if (v === 'Q') return [C('Q')];
  if (v === 'N') return [C('n')];
  if (SMALL_KANA.has(code)) {
    // きゃ: the small kana glides the previous mora into a new vowel.
    const last = prev[prev.length - 1];
    if (last?.kind === 'V') prev.pop();
    return code >= 0x3083 ? [C('j'), V(v)] : [V(v)];
  }
  const cons = c === '_' ? [] : c === 'h' && v === 'u' ? [C('f')] : c === 's' && v === 'i' ? [C('ʃ')] : c === 'z' && v === 'i' ? [C('ʒ')] : [C(c)];
  return [...cons, V(v)];
}

const VOWEL_DIGRAPHS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  en: { ee: 'i', ea: 'i', oo: 'u', ou: 'au', ow: 'au', ai: 'ei', ay: 'ei', oa: 'o', ie: 'i' },
  fr: { eau: 'o', au: 'o', ou: 'u', oi: 'wa', ai: 'e', ei: 'e', eu: 'ø', œu: 'ø', an: 'a', on: 'o', en: 'a', in: 'e', un: 'ø' },
  de: { ie: 'i', ei: 'ai', eu: 'oi', äu: 'oi', au: 'au', aa: 'a', ee: 'e', oo: 'o', ah: 'a', eh: 'e', oh: 'o', uh: 'u' },
  pt: { ão: 'au', õe: 'oi', ou: 'o' },
};

/** Letter-to-sound rules: rough but language-aware enough to give each language its own rhythm. */
function wordToPhones(word: string, lang: string): Phone[] {
  const out: Phone[] = [];
  const chars = [...word.toLowerCase()];
  const isVowelChar = (ch: string | undefined): boolean => ch !== undefined && /^[aeiouyäöüàáâãèéêëìíîïòóôõùúûœæø]$/.test(ch);
  const base = (ch: string): string => ch.normalize('NFD').replace(/\p{M}/gu, '');
  const digraphs = VOWEL_DIGRAPHS[lang] ?? {};
  const silentH = lang === 'es' || lang === 'fr' || lang === 'it' || lang === 'pt';

  // Silent endings: French final consonants and e, English final e.
  let end = chars.length;
  if (lang === 'fr' && end > 2) {
    while (end > 1 && /[stxdzp]/.test(chars[end - 1]!)) end--;
    if (end > 2 && chars[end - 1] === 'e') end--;
  } else if (lang === 'en' && end > 3 && chars[end - 1] === 'e' && !isVowelChar(chars[end - 2]) && chars.slice(0, end - 1).some(isVowelChar)) {
    end--;
  }

  for (let i = 0; i < end; ) {
    const ch = chars[i]!;
    const code = ch.codePointAt(0)!;
    const next = chars[i + 1];
    const next2 = chars[i + 2];

    // Japanese kana, kanji and other scripts without a letter table.
    if (code >= 0x3041 && code <= 0x3096) { out.push(...kanaPhones(code, out)); i++; continue; }
    if (code >= 0x30a1 && code <= 0x30f6) { out.push(...kanaPhones(code - 0x60, out)); i++; continue; }
    if (code === 0x30fc) { // ー: lengthen the previous vowel
      const last = out[out.length - 1];
      if (last?.kind === 'V') out[out.length - 1] = V(last.v, true);
      i++;
      continue;
    }
    if ((code >= 0x4e00 && code <= 0x9fff) || (code >= 0x3400 && code <= 0x4dbf)) { out.push(...hashPhones(ch, 2)); i++; continue; }

    // Vowel digraphs/trigraphs of the language.
    const tri = chars.slice(i, i + 3).join('');
    const di = chars.slice(i, i + 2).join('');
    const vd = digraphs[tri] ?? digraphs[di];
    const nasal = digraphs[tri] === undefined && (di.endsWith('n') || di.endsWith('m'));
    if (vd !== undefined && (digraphs[tri] !== undefined || isVowelChar(ch)) && !(nasal && isVowelChar(next2))) {
      for (const p of vd) out.push(p === 'w' ? C('w') : V(p));
      i += digraphs[tri] !== undefined ? 3 : 2;
      continue;
    }
    if (isVowelChar(ch)) {
      const mapped = LETTER_MAP[ch] ?? base(ch);
      if (mapped === 'y') {
        // y: glide before a vowel, otherwise an i (happy, my) - except German/French ü-like letters.
        if (ch === 'y' && isVowelChar(next)) out.push(C('j'));
        else out.push(V(ch === 'y' ? 'i' : 'y'));
      } else {
        const long = next === ch && lang !== 'it';
        out.push(V(mapped[0] ?? 'ə', long));
        if (long) i++;
      }
      i++;
      continue;
    }

    let phones: string;
    let used = 1;
    const front = next === 'e' || next === 'i' || next === 'y' || next === 'é' || next === 'è';
    switch (ch) {
      case 'c':
        if (next === 'h') {
          phones = lang === 'de' ? 'x' : lang === 'fr' || lang === 'pt' ? 'ʃ' : lang === 'it' ? 'k' : 'tʃ';
          used = 2;
        } else if (next === 'k') { phones = 'k'; used = 2; }
        else if (front) phones = lang === 'es' ? 'θ' : lang === 'it' ? 'tʃ' : lang === 'de' ? 'ts' : 's';
        else phones = 'k';
        break;
      case 's':
        if (next === 'c' && next2 === 'h') { phones = 'ʃ'; used = 3; }
        else if (next === 'h') { phones = 'ʃ'; used = 2; }
        else if (lang === 'de' && (next === 't' || next === 'p') && i === 0) phones = 'ʃ';
        else phones = 's';
        break;
      case 'g':
        if (lang === 'fr' || lang === 'it') {
          if (next === 'n') { phones = 'nj'; used = 2; break; }
        }
        phones = front ? (lang === 'es' ? 'x' : lang === 'fr' || lang === 'pt' ? 'ʒ' : lang === 'de' ? 'g' : 'dʒ') : 'g';
        break;
      case 'j':
        phones = lang === 'es' ? 'x' : lang === 'de' || lang === 'it' ? 'j' : lang === 'fr' || lang === 'pt' ? 'ʒ' : 'dʒ';
        break;
      case 'q':
        phones = next === 'u' && (lang === 'en' || lang === 'it' || lang === 'de') ? 'kw' : 'k';
        if (next === 'u') used = 2;
        break;
      case 'x': phones = lang === 'pt' ? 'ʃ' : 'ks'; break;
      case 'z': phones = lang === 'es' ? 'θ' : lang === 'de' || lang === 'it' ? 'ts' : 'z'; break;
      case 'w': phones = lang === 'de' ? 'v' : 'w'; break;
      case 'v': phones = lang === 'es' ? 'b' : lang === 'de' ? 'f' : 'v'; break;
      case 'h': phones = silentH ? '' : 'h'; break;
      case 't': if (next === 'h' && lang === 'en') { phones = 'θ'; used = 2; } else phones = 't'; break;
      case 'p': if (next === 'h') { phones = 'f'; used = 2; } else phones = 'p'; break;
      case 'l': if (next === 'l' && lang === 'es') { phones = 'j'; used = 2; } else phones = 'l'; break;
      default: {
        const mapped = LETTER_MAP[ch];
        if (mapped !== undefined) phones = mapped;
        else if (/^[a-z]$/.test(ch)) phones = ch;
        else if (/^\d$/.test(ch)) { out.push(...hashPhones(ch, 2)); i++; continue; }
        else if (/^\p{L}$/u.test(ch)) { out.push(...hashPhones(ch, 1)); i++; continue; }
        else phones = '';
      }
    }
    // Doubled consonants collapse (coffee, latte).
    if (used === 1 && next === ch) used = 2;
    for (const p of phones) {
      if (VOWEL_KEYS.includes(p)) out.push(V(p));
      else if (CONSONANTS[p]) out.push(C(p));
    }
    i += used;
  }
  return out;
}

interface Syllable {
  readonly onset: Phone[];
  readonly nucleus: Phone[];
  readonly coda: Phone[];
}

function syllabify(phones: Phone[]): Syllable[] {
  const syls: Syllable[] = [];
  let pending: Phone[] = [];
  let i = 0;
  while (i < phones.length) {
    const p = phones[i]!;
    if (p.kind === 'C') { pending.push(p); i++; continue; }
    const nucleus: Phone[] = [];
    while (i < phones.length && phones[i]!.kind === 'V') nucleus.push(phones[i++]!);
    const prev = syls[syls.length - 1];
    if (prev && pending.length > 1) prev.coda.push(...pending.splice(0, pending.length - 1));
    syls.push({ onset: pending, nucleus, coda: [] });
    pending = [];
  }
  if (pending.length) {
    const prev = syls[syls.length - 1];
    if (prev) prev.coda.push(...pending);
    else if (pending.length) syls.push({ onset: pending.slice(0, 1), nucleus: [V('ə')], coda: pending.slice(1) }); // "hmm", "Mr"
  }
  return syls;
}

function stressedSyllable(count: number, lang: string): number {
  if (count <= 1) return 0;
  switch (lang) {
    case 'es': case 'it': case 'pt': return count - 2;
    case 'fr': return count - 1;
    case 'ja': return -1;
    default: return 0;
  }
}

type PhraseEnd = 'fall' | 'rise' | 'cont' | 'excl' | 'none';

interface Segment {
  n: number; // samples
  voice: number; // target voicing amplitude
  noise: number; // target frication amplitude (own band)
  asp: number; // aspiration amplitude (noise through the formants)
  formants: Formants;
  nf: number; // frication band centre
  nq: number;
  attack: number; // envelope time constant, seconds
  pitchBoost: number; // stress
  start: number; // first sample
  phrase: number; // phrase index, -1 for pauses outside phrases
}

interface PhraseSpan {
  start: number;
  end: number;
  finalWordStart: number;
  kind: PhraseEnd;
}

const TEMPO = 1.0; // global stretch so text comes out at ~13 characters per second
const WORD_GAP = 0.055;
const PAUSES: Readonly<Record<PhraseEnd, number>> = { fall: 0.4, rise: 0.42, excl: 0.4, cont: 0.24, none: 0.12 };

/** Tokenises text into phrases (split at punctuation) of words. */
function phrasesOf(text: string): { words: string[]; end: PhraseEnd }[] {
  const phrases: { words: string[]; end: PhraseEnd }[] = [];
  let words: string[] = [];
  const tokens = text.normalize('NFC').match(/[\p{L}\p{N}\p{M}'’-]+|\.{3}|…|[.!?;:,。、！？，；：—–]/gu) ?? [];
  const endOf = (t: string): PhraseEnd | undefined => {
    if (t === '?' || t === '？') return 'rise';
    if (t === '!' || t === '！') return 'excl';
    if (t === '.' || t === '。') return 'fall';
    if (t === '...' || t === '…') return 'cont';
    if (/^[,;:、，；：—–]$/.test(t)) return 'cont';
    return undefined;
  };
  for (const t of tokens) {
    const end = endOf(t);
    if (end) {
      if (words.length) phrases.push({ words, end });
      else if (phrases.length && end !== 'cont') phrases[phrases.length - 1]!.end = end; // "?!" or ". ."
      words = [];
    } else {
      // Long runs without spaces (Japanese) become words of a few characters.
      const clean = t.replace(/['’-]/g, '');
      if (clean.length > 4 && /[\u3040-\u30ff\u3400-\u9fff]/u.test(clean)) {
        const cs = [...clean];
        for (let i = 0; i < cs.length; i += 3) words.push(cs.slice(i, i + 3).join(''));
      } else if (clean) words.push(clean);
    }
  }
  if (words.length) phrases.push({ words, end: 'fall' });
  return phrases;
}

/** Builds the segment plan: timings, envelopes and formant targets. Pitch is filled in later. */
function planSpeech(text: string, lang: string, sr: number): { segs: Segment[]; spans: PhraseSpan[]; voiced: boolean; total: number } {
  const segs: Segment[] = [];
  const spans: PhraseSpan[] = [];
  let pos = 0;
  const tempo = TEMPO * (lang === 'ja' ? 0.85 : 1); // Japanese is mora-timed and brisker per kana
  const samples = (sec: number): number => Math.max(1, Math.round(sec * tempo * sr));
  const push = (sec: number, s: Omit<Segment, 'n' | 'start'>): void => {
    const n = samples(sec);
    segs.push({ ...s, n, start: pos });
    pos += n;
  };
  const silence = (sec: number, phrase = -1, formants: Formants = VOWELS.ə!): void =>
    push(sec, { voice: 0, noise: 0, asp: 0, formants, nf: 3000, nq: 1, attack: 0.006, pitchBoost: 1, phrase });

  silence(0.05);
  const phrases = phrasesOf(text);
  phrases.forEach((ph, pi) => {
    const span: PhraseSpan = { start: pos, end: pos, finalWordStart: pos, kind: ph.end };
    ph.words.forEach((word, wi) => {
      const syls = syllabify(wordToPhones(word, lang));
      if (!syls.length) return;
      const lastWord = wi === ph.words.length - 1;
      if (wi > 0) silence(WORD_GAP, pi);
      if (lastWord) span.finalWordStart = pos;
      const stress = stressedSyllable(syls.length, lang);
      syls.forEach((syl, si) => {
        const stressed = si === stress;
        const finalSyl = lastWord && si === syls.length - 1;
        const amp = stressed ? 1 : 0.78;
        const boost = stressed ? 1.1 : 1;
        const vowelFormants = VOWELS[(syl.nucleus[0] as { v: string }).v] ?? VOWELS.ə!;
        const consonant = (p: Phone, nextFormants: Formants): void => {
          if (p.kind !== 'C') return;
          const spec = CONSONANTS[p.c];
          if (!spec) return;
          if (spec.closure) {
            push(spec.closure, {
              voice: spec.voicedClosure ? 0.12 : 0, noise: 0, asp: 0, formants: [250, 1100, 2400], nf: 3000, nq: 1,
              attack: 0.004, pitchBoost: boost, phrase: pi,
            });
          }
          if (spec.noise) {
            const burst = !!spec.closure;
            push(spec.noise.dur, {
              voice: spec.voice?.amp ?? (spec.voicedClosure ? 0.15 : 0), noise: spec.noise.amp, asp: 0,
              formants: spec.voice?.formants ?? nextFormants, nf: spec.noise.f, nq: spec.noise.q,
              attack: burst ? 0.0012 : 0.008, pitchBoost: boost, phrase: pi,
            });
          } else if (spec.voice) {
            push(spec.voice.dur, {
              voice: spec.voice.amp * amp, noise: 0, asp: 0, formants: spec.voice.formants, nf: 3000, nq: 1,
              attack: 0.008, pitchBoost: boost, phrase: pi,
            });
          }
          if (spec.aspiration) {
            push(spec.aspiration, {
              voice: 0, noise: 0, asp: p.c === 'h' ? 0.35 : 0.22, formants: nextFormants, nf: 3000, nq: 1,
              attack: 0.004, pitchBoost: boost, phrase: pi,
            });
          }
        };
        for (const p of syl.onset) consonant(p, vowelFormants);
        syl.nucleus.forEach((p, ni) => {
          if (p.kind !== 'V') return;
          let dur = ni === 0 ? 0.085 : 0.045;
          if (p.long) dur += 0.05;
          if (stressed) dur *= 1.25;
          if (finalSyl) dur *= 1.35; // phrase-final lengthening
          push(dur, {
            voice: amp, noise: 0, asp: 0, formants: VOWELS[p.v] ?? VOWELS.ə!, nf: 3000, nq: 1,
            attack: 0.012, pitchBoost: boost, phrase: pi,
          });
        });
        for (const p of syl.coda) consonant(p, vowelFormants);
      });
    });
    span.end = pos;
    spans.push(span); // index = phrase index
    silence(pi === phrases.length - 1 ? 0.12 : PAUSES[ph.end], -1);
  });
  return { segs, spans, voiced: spans.some((sp) => sp.end > sp.start), total: pos };
}

/** Pitch multiplier at sample `t` of a phrase: declination plus the phrase-final contour. */
function contour(span: PhraseSpan, t: number): number {
  const p = Math.min(1, Math.max(0, (t - span.start) / Math.max(1, span.end - span.start)));
  let m = 1.08 - 0.16 * p;
  if (span.kind === 'excl') m *= 1.1;
  if (t >= span.finalWordStart) {
    const q = Math.min(1, (t - span.finalWordStart) / Math.max(1, span.end - span.finalWordStart));
    switch (span.kind) {
      case 'fall': m *= 1 - 0.2 * q; break;
      case 'excl': m *= 1 + 0.12 * Math.sin(Math.PI * q) - 0.3 * q * q; break;
      case 'rise': m *= 1 + 0.5 * q * q; break;
      case 'cont': m *= 1 + 0.12 * q; break;
      default: break;
    }
  }
  return m;
}

/** Bandpass biquad (RBJ, 0 dB peak): writes b0, a1, a2 (b1 = 0, b2 = -b0) into `co` at `i`. */
function bandpass(co: Float64Array, i: number, f: number, q: number, sr: number): void {
  const fc = Math.min(f, sr * 0.45);
  const w = (2 * Math.PI * fc) / sr;
  const alpha = Math.sin(w) / (2 * q);
  const a0 = 1 + alpha;
  co[i] = alpha / a0;
  co[i + 1] = (-2 * Math.cos(w)) / a0;
  co[i + 2] = (1 - alpha) / a0;
}

/**
 * Klatt resonator (two poles, unity gain at 0 Hz): writes A, B, C of y = A x + B y1 + C y2 into
 * `co` at `i`. Three in cascade shape the voiced source into a vowel with a natural spectral tilt.
 */
function resonator(co: Float64Array, i: number, f: number, bw: number, sr: number): void {
  const fc = Math.min(f, sr * 0.45);
  const r = Math.exp((-Math.PI * bw) / sr);
  const c = -r * r;
  const b = 2 * r * Math.cos((2 * Math.PI * fc) / sr);
  co[i] = 1 - b - c;
  co[i + 1] = b;
  co[i + 2] = c;
}

const BANDWIDTHS = [80, 100, 150] as const;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const BLOCK = 32; // samples between formant-coefficient updates

/**
 * Derivative of one period of the Rosenberg glottal flow (opening 40 %, closing 16 %, closed
 * after), sampled at GLOTTAL_TABLE points and scaled: the voicing source, lip radiation included.
 */
const GLOTTAL_TABLE = 2048;
const GLOTTAL = (() => {
  const t = new Float64Array(GLOTTAL_TABLE);
  for (let i = 0; i < GLOTTAL_TABLE; i++) {
    const ph = i / GLOTTAL_TABLE;
    let d = 0;
    if (ph < 0.4) {
      const x = ph / 0.4;
      d = (6 * x * (1 - x)) / 0.4; // d/dphase of 3x^2 - 2x^3
    } else if (ph < 0.56) {
      d = (-2 * (ph - 0.4)) / (0.16 * 0.16); // d/dphase of 1 - y^2
    }
    t[i] = d * 0.08;
  }
  return t;
})();

/** Amplitudes below this count as silent (the renderer skips the work). */
const QUIET = 1e-5;

/** Runs the source-filter model over the segment plan: float samples, not yet normalised. */
const P = 12; // numbers per segment in the render program
const [P_N, P_VOICE, P_NOISE, P_ASP, P_F1, P_F2, P_F3, P_NF, P_NQ, P_KAMP, P_F0A, P_F0B] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] as const;

/**
 * Flattens the plan into a Float64Array program for the renderer (P numbers per segment): sample
 * count, target amplitudes, scaled formants, frication band, envelope rate and the pitch at the
 * segment's start and end from the intonation contour. Pauses between phrases hold the pitch.
 */
function compile(segs: readonly Segment[], spans: readonly PhraseSpan[], voice: VoiceProfile, sr: number): Float64Array {
  const prog = new Float64Array(segs.length * P);
  const fs = voice.formantScale;
  let f0 = voice.f0;
  segs.forEach((seg, k) => {
    const o = k * P;
    const span = seg.phrase >= 0 ? spans[seg.phrase] : undefined;
    const f0a = span ? voice.f0 * contour(span, seg.start) * seg.pitchBoost : f0;
    const f0b = span ? voice.f0 * contour(span, seg.start + seg.n) * seg.pitchBoost : f0;
    f0 = f0b;
    prog[o + P_N] = seg.n;
    prog[o + P_VOICE] = seg.voice;
    prog[o + P_NOISE] = seg.noise;
    prog[o + P_ASP] = seg.asp;
    prog[o + P_F1] = seg.formants[0] * fs;
    prog[o + P_F2] = seg.formants[1] * fs;
    prog[o + P_F3] = seg.formants[2] * fs;
    prog[o + P_NF] = seg.nf;
    prog[o + P_NQ] = seg.nq;
    prog[o + P_KAMP] = 1 - Math.exp(-1 / (seg.attack * sr));
    prog[o + P_F0A] = f0a;
    prog[o + P_F0B] = f0b;
  });
  return prog;
}

function render(prog: Float64Array, total: number, sr: number, seed: number, f0Start: number, formantScale: number): Float32Array {
  const out = new Float32Array(total);
  const glottal = GLOTTAL;
  let rs = seed | 0; // xorshift32 state: deterministic noise

  const fs = formantScale;
  const co = new Float64Array(12); // 3 formant resonators (A, B, C) + 1 frication bandpass (b0, a1, a2)
  // Filter state.
  let y11 = 0, y12 = 0, y21 = 0, y22 = 0, y31 = 0, y32 = 0;
  let nx1 = 0, nx2 = 0, ny1 = 0, ny2 = 0;
  // Smoothed parameters.
  let F1 = VOWELS.ə![0] * fs, F2 = VOWELS.ə![1] * fs, F3 = VOWELS.ə![2] * fs, NF = 3000;
  let vg = 0, ng = 0, ag = 0, f0s = f0Start;
  let phase = 0, jitter = 1, shimmer = 1, dphase = f0s / sr;
  const kF0 = 1 - Math.exp(-BLOCK / (0.025 * sr));
  const kFormant = 1 - Math.exp(-BLOCK / (0.012 * sr));
  const vibStep = (2 * Math.PI * 5.2 * BLOCK) / sr;
  let vibPhase = 0;
  let pos = 0;

  for (let o = 0; o < prog.length; o += P) {
    const n = prog[o + P_N]!;
    const tV = prog[o + P_VOICE]!, tN = prog[o + P_NOISE]!, tA = prog[o + P_ASP]!;
    const tF1 = prog[o + P_F1]!, tF2 = prog[o + P_F2]!, tF3 = prog[o + P_F3]!;
    const tNF = prog[o + P_NF]!, nq = prog[o + P_NQ]!, kAmp = prog[o + P_KAMP]!;
    const f0a = prog[o + P_F0A]!, f0b = prog[o + P_F0B]!;
    const end = pos + n;
    const silent = tV === 0 && tN === 0 && tA === 0;
    const f0Slope = (f0b - f0a) / n;

    while (pos < end) {
      // Once a pause has rung out, the rest of it is silence: skip to the next segment.
      if (silent && vg < QUIET && ng < QUIET && ag < QUIET && Math.abs(y11) + Math.abs(y21) + Math.abs(y31) + Math.abs(ny1) < QUIET) {
        vg = ng = ag = 0;
        y11 = y12 = y21 = y22 = y31 = y32 = nx1 = nx2 = ny1 = ny2 = 0;
        F1 = tF1; F2 = tF2; F3 = tF3;
        const skipped = Math.floor((end - 1) / BLOCK) - Math.floor(pos / BLOCK);
        vibPhase += vibStep * skipped;
        f0s += (f0b - f0s) * (1 - Math.pow(1 - kF0, skipped));
        pos = end;
        break;
      }
      // Control rate (every BLOCK samples): formants, pitch and vibrato glide to their targets.
      if ((pos & (BLOCK - 1)) === 0) {
        F1 += (tF1 - F1) * kFormant;
        F2 += (tF2 - F2) * kFormant;
        F3 += (tF3 - F3) * kFormant;
        NF += (tNF - NF) * 0.5;
        resonator(co, 0, F1, BANDWIDTHS[0], sr);
        resonator(co, 3, F2, BANDWIDTHS[1], sr);
        resonator(co, 6, F3, BANDWIDTHS[2], sr);
        bandpass(co, 9, NF, nq, sr);
        f0s += (f0a + f0Slope * (pos + n - end) - f0s) * kF0;
        vibPhase += vibStep;
        dphase = (f0s * jitter * (1 + 0.006 * Math.sin(vibPhase))) / sr;
      }
      // Audio rate, up to the next control-rate boundary.
      const blockEnd = Math.min(end, (pos | (BLOCK - 1)) + 1);
      const A1 = co[0]!, B1 = co[1]!, C1 = co[2]!, A2 = co[3]!, B2 = co[4]!, C2 = co[5]!;
      const A3 = co[6]!, B3 = co[7]!, C3 = co[8]!, bn = co[9]!, an1 = co[10]!, an2 = co[11]!;
      for (; pos < blockEnd; pos++) {
        // Glottal source, with per-period jitter (pitch) and shimmer (amplitude).
        phase += dphase;
        if (phase >= 1) {
          phase -= 1;
          rs ^= rs << 13; rs ^= rs >>> 17; rs ^= rs << 5;
          const j = 1 + (rs / 2147483648) * 0.012;
          dphase *= j / jitter;
          jitter = j;
          rs ^= rs << 13; rs ^= rs >>> 17; rs ^= rs << 5;
          shimmer = 1 + (rs / 2147483648) * 0.06;
        }
        const src = glottal[(phase * GLOTTAL_TABLE) | 0]!;

        vg += (tV - vg) * kAmp;
        ng += (tN - ng) * kAmp;
        ag += (tA - ag) * kAmp;
        rs ^= rs << 13; rs ^= rs >>> 17; rs ^= rs << 5;
        const white = rs / 2147483648; // -1..1
        const exc = src * vg * shimmer + white * (vg * 0.03 + ag * 1.6);

        // Cascade of formant resonators.
        const o1 = A1 * exc + B1 * y11 + C1 * y12;
        y12 = y11; y11 = o1;
        const o2 = A2 * o1 + B2 * y21 + C2 * y22;
        y22 = y21; y21 = o2;
        const o3 = A3 * o2 + B3 * y31 + C3 * y32;
        y32 = y31; y31 = o3;
        // Frication band.
        const nin = white * ng;
        const on = bn * (nin - nx2) - an1 * ny1 - an2 * ny2;
        nx2 = nx1; nx1 = nin;
        ny2 = ny1; ny1 = on;
        out[pos] = o3 + 2.5 * on;
      }
    }
  }
  return out;
}

/**
 * Synthesises speech-like audio for `text`: PCM16 little-endian mono. A glottal-pulse source at a
 * pitch following the sentence intonation (declining, falling at '.', rising at '?') drives three
 * formant resonators picked from the vowels; consonants add noise bursts and frication; words are
 * separated by short gaps and punctuation by longer pauses; every envelope is smoothed (no
 * clicks). Deterministic for the same text, voice and language. Empty text gives an empty buffer.
 */
export function synthesizeSpeech(text: string, opts: SynthesizeOptions = {}): Buffer {
  const sr = Math.round(opts.sampleRate ?? 24000);
  if (!Number.isFinite(sr) || sr < 4000 || sr > 192000) throw new Error(`synthesizeSpeech: unsupported sample rate ${opts.sampleRate}`);
  const lang = (opts.language ?? 'en').toLowerCase().split(/[-_]/)[0] ?? 'en';
  const voice = voiceProfile(opts.voice);
  const { segs, spans, voiced, total } = planSpeech(text, lang, sr);
  if (!voiced) return Buffer.alloc(0);

  const seed = fnv1a(`${opts.voice ?? ''}\u0000${lang}\u0000${text}`) || 1;
  const out = render(compile(segs, spans, voice, sr), total, sr, seed, voice.f0, voice.formantScale);

  // Normalise to -1 dBFS peak and convert (rounding half up with integer arithmetic).
  let peak = 0;
  for (let i = 0; i < total; i++) {
    const v = out[i]!;
    if (v > peak) peak = v;
    else if (-v > peak) peak = -v;
  }
  const gain = peak > 0 ? (0.89 * 32767) / peak : 0;
  const pcm = new Int16Array(total);
  for (let i = 0; i < total; i++) pcm[i] = ((out[i]! * gain + 32768.5) | 0) - 32768;
  if (LITTLE_ENDIAN) return Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  const buf = Buffer.alloc(total * 2);
  for (let i = 0; i < total; i++) buf.writeInt16LE(pcm[i]!, i * 2);
  return buf;
}
