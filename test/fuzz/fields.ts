/**
 * The client messages as docs/protocol.md documents them ("Frames", "Client → server"), written
 * out independently of the TypeBox schemas in src/protocol/messages.ts: the oracle judges the
 * server by the documentation, so a schema that drifts from the docs shows up as an unexpected
 * answer instead of being agreed with.
 *
 * Where the documentation leaves a bound open (a BCP 47 tag's exact grammar, whether "characters"
 * means UTF-16 code units or code points), a value is either clearly valid or clearly invalid
 * under every reading, or it is marked ambiguous and the oracle accepts either answer.
 */

export type Verdict = 'valid' | 'invalid' | 'ambiguous';

const codePoints = (s: string): number => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

/** A string whose length is judged against [min, max] "characters". */
function lengthVerdict(s: string, min: number, max: number): Verdict {
  const units = s.length;
  const points = codePoints(s);
  const ok = (n: number): boolean => n >= min && n <= max;
  if (ok(units) && ok(points)) return 'valid';
  if (!ok(units) && !ok(points)) return 'invalid';
  return 'ambiguous';
}

/** `id`: "a string of 1-128 characters or a safe integer, |id| ≤ 2^53 − 1" (protocol.md "Frames"). */
export function idVerdict(v: unknown): Verdict {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? 'valid' : 'invalid';
  if (typeof v === 'string') return lengthVerdict(v, 1, 128);
  return 'invalid';
}

/**
 * A BCP 47 language tag. Clearly valid: the common shapes (`es`, `pt-BR`, `zh-Hant-TW`). Clearly
 * invalid: not a string, empty, one letter, or containing anything but letters, digits and `-`.
 * Anything else (private-use `x-…`, tags over 35 characters) is ambiguous.
 */
export function languageVerdict(v: unknown): Verdict {
  if (typeof v !== 'string') return 'invalid';
  if (v.length < 2 || !/^[A-Za-z0-9-]+$/.test(v)) return 'invalid';
  if (/^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?$/.test(v)) return 'valid';
  return 'ambiguous';
}

const stringOf = (min: number, max: number) => (v: unknown): Verdict => (typeof v === 'string' ? lengthVerdict(v, min, max) : 'invalid');
const nonEmptyString = (v: unknown): Verdict => (typeof v === 'string' ? (v.length >= 1 ? 'valid' : 'invalid') : 'invalid');
const oneOf = (...values: string[]) => (v: unknown): Verdict => (typeof v === 'string' && values.includes(v) ? 'valid' : 'invalid');

/** `audio: {format: "pcm16"|"wav", sample_rate: 8000-48000}` (both optional). */
function audioVerdict(v: unknown): Verdict {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'invalid';
  let verdict: Verdict = 'valid';
  for (const [k, x] of Object.entries(v)) {
    let f: Verdict;
    if (k === 'format') f = oneOf('pcm16', 'wav')(x);
    else if (k === 'sample_rate') f = typeof x === 'number' && Number.isInteger(x) && x >= 8000 && x <= 48000 ? 'valid' : 'invalid';
    else f = 'invalid';
    verdict = combine(verdict, f);
  }
  return verdict;
}

function combine(a: Verdict, b: Verdict): Verdict {
  if (a === 'invalid' || b === 'invalid') return 'invalid';
  if (a === 'ambiguous' || b === 'ambiguous') return 'ambiguous';
  return 'valid';
}

export interface FieldSpec {
  readonly required: boolean;
  readonly verdict: (v: unknown) => Verdict;
  /** What the field holds, for the mutation generator: which wrong values are wrong for it. */
  readonly kind: 'id' | 'language' | 'string' | 'enum' | 'object' | 'number';
  /** For strings: the documented bounds (characters). */
  readonly minChars?: number;
  readonly maxChars?: number;
}

const id = (required: boolean): FieldSpec => ({ required, verdict: idVerdict, kind: 'id' });
const lang = (required: boolean): FieldSpec => ({ required, verdict: languageVerdict, kind: 'language' });

/** Every client message type and its fields (protocol.md "Client → server"; CONTRACT §5). */
export const MESSAGE_FIELDS: Readonly<Record<string, Readonly<Record<string, FieldSpec>>>> = {
  'session.start': {
    id: id(false),
    // "required unless resuming": checked after the schema, see sessionStartVerdict in the model.
    language: lang(false),
    native_language: lang(false),
    scenario: { required: false, verdict: stringOf(0, 200), kind: 'string', minChars: 0, maxChars: 200 },
    // `voice?` has no documented bound; strings of 1-64 characters are clearly fine, others ambiguous.
    voice: {
      required: false,
      verdict: (v) => (typeof v !== 'string' ? 'invalid' : v.length >= 1 && v.length <= 64 ? 'valid' : 'ambiguous'),
      kind: 'string',
    },
    audio: { required: false, verdict: audioVerdict, kind: 'object' },
    // No documented bound either: short non-empty strings are clearly fine.
    resume_token: { required: false, verdict: (v) => (typeof v !== 'string' ? 'invalid' : v.length >= 1 && v.length <= 256 ? 'valid' : 'ambiguous'), kind: 'string' },
  },
  'input_audio.commit': {
    id: id(true),
    purpose: { required: true, verdict: oneOf('turn', 'assessment'), kind: 'enum' },
    reference_text: { required: false, verdict: nonEmptyString, kind: 'string', minChars: 1 },
  },
  'input_audio.clear': { id: id(false) },
  'turn.text': { id: id(true), text: { required: true, verdict: nonEmptyString, kind: 'string', minChars: 1 } },
  translate: {
    id: id(true),
    text: { required: true, verdict: nonEmptyString, kind: 'string', minChars: 1 },
    target_language: lang(true),
    source_language: lang(false),
  },
  // CONTRACT §6: "played_ms ... (a number ≥ 0; anything else is invalid_message)".
  cancel: {
    request_id: id(true),
    played_ms: {
      required: false,
      // JSON's 1e400 reads as Infinity: a number ≥ 0 to JSON.parse, not one to a schema; either answer.
      verdict: (v) => (typeof v !== 'number' || v < 0 ? 'invalid' : Number.isFinite(v) ? 'valid' : 'ambiguous'),
      kind: 'number',
    },
    id: id(false),
  },
  ping: { id: id(false) },
  'session.end': { id: id(false) },
};

export const MESSAGE_TYPES = Object.keys(MESSAGE_FIELDS);

/**
 * Whether a decoded JSON object is a valid client message by the documentation: `type` must name
 * a message, every field must be known and valid, every required field present.
 */
export function messageVerdict(obj: Record<string, unknown>): Verdict {
  const fields = MESSAGE_FIELDS[obj.type as string];
  if (!fields || !Object.prototype.hasOwnProperty.call(MESSAGE_FIELDS, obj.type as string)) return 'invalid';
  let verdict: Verdict = 'valid';
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'type') continue;
    const spec = Object.prototype.hasOwnProperty.call(fields, k) ? fields[k] : undefined;
    // "Unknown fields are refused (invalid_message naming the field)."
    verdict = combine(verdict, spec ? spec.verdict(v) : 'invalid');
  }
  for (const [k, spec] of Object.entries(fields)) if (spec.required && !Object.prototype.hasOwnProperty.call(obj, k)) verdict = 'invalid';
  return verdict;
}
