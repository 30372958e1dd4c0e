/**
 * Payload generators: what goes inside the frames. Each draws only from the case's Rng, so a
 * payload reproduces from its seed. Valid messages are valid by docs/protocol.md; hostile ones
 * are chosen to be clearly wrong (fields.ts says which values the docs leave open).
 */
import { MESSAGE_FIELDS, MESSAGE_TYPES, type FieldSpec } from './fields.js';
import type { Rng } from './random.js';

/** Valid BCP 47 tags of the common shapes. */
export const LANGUAGES = ['es', 'en', 'fr', 'de', 'it', 'pt-BR', 'en-US', 'zh-Hant-TW', 'ja', 'es-419'];

/** Strings that are valid JSON strings but odd: the server must carry them without harm. */
const ODD_TEXTS = [
  'Hola, ¿qué tal?',
  'Ich möchte einen Kaffee, bitte.',
  '你好，我想要一杯咖啡。',
  '🙂🙃 emoji 👩‍👩‍👧‍👦',
  'a\u0000b',
  '\ud800 lone high surrogate',
  'lone low \udfff',
  '\u202e right-to-left override',
  '<script>alert(1)</script>',
  '${jndi:ldap://x}',
  '%s%s%s%n',
  'line\nbreak\r\ttab',
  '\\u0000 escaped',
  ' ',
];

/** Supplies request ids unique within one connection (a repeat would be a duplicate-id case). */
export class IdSource {
  private n = 0;
  constructor(private readonly rng: Rng) {}

  next(): string | number {
    this.n++;
    switch (this.rng.int(0, 5)) {
      case 0:
        return this.n; // an integer id
      case 1:
        return `r${this.n}-${'x'.repeat(this.rng.int(0, 100))}`.slice(0, 128); // up to the 128-character bound
      case 2:
        return `é${this.n}`; // non-ASCII
      case 3:
        return `\u0000${this.n}`; // a NUL inside
      default:
        return `req-${this.n}`;
    }
  }
}

export function pick<T>(rng: Rng, xs: readonly T[]): T {
  return rng.pick(xs);
}

/** A text of 1-`max` characters, sometimes odd. */
export function text(rng: Rng, max = 120): string {
  if (rng.bool(0.3)) return rng.pick(ODD_TEXTS);
  return rng.string(rng.int(1, max), 'abcdefghij klmnopqrstuvwxyz,.?¿ñáé');
}

/** A valid message of `type` (ids from `ids`), as an object ready for JSON.stringify. */
export function validMessage(rng: Rng, type: string, ids: IdSource): Record<string, unknown> {
  switch (type) {
    case 'session.start': {
      const m: Record<string, unknown> = { type, language: rng.pick(LANGUAGES) };
      if (rng.bool(0.3)) m.id = ids.next();
      if (rng.bool(0.3)) m.native_language = rng.pick(LANGUAGES);
      if (rng.bool(0.3)) m.scenario = text(rng, 200).slice(0, 200);
      if (rng.bool(0.2)) m.voice = rng.pick(['alloy', 'verse', 'x']);
      if (rng.bool(0.2)) m.audio = rng.pick([{ format: 'pcm16', sample_rate: 16000 }, { format: 'wav' }, { sample_rate: 8000 }, { sample_rate: 48000 }, {}]);
      return m;
    }
    case 'input_audio.commit': {
      const m: Record<string, unknown> = { type, id: ids.next(), purpose: rng.bool(0.7) ? 'turn' : 'assessment' };
      if (m.purpose === 'assessment' || rng.bool(0.1)) m.reference_text = text(rng, 80);
      return m;
    }
    case 'input_audio.clear':
      return rng.bool(0.5) ? { type, id: ids.next() } : { type };
    case 'turn.text': {
      // Now and then exactly at, or just past, maxTextChars (2000) in ASCII: text_too_long is certain then.
      const t = rng.bool(0.05) ? 'a'.repeat(rng.pick([2000, 2001])) : text(rng);
      return { type, id: ids.next(), text: t };
    }
    case 'translate': {
      const m: Record<string, unknown> = { type, id: ids.next(), text: text(rng), target_language: rng.pick(LANGUAGES) };
      if (rng.bool(0.3)) m.source_language = rng.pick(LANGUAGES);
      return m;
    }
    case 'cancel': {
      // Naming a request this connection never sent: ignored, no answer (CONTRACT §6).
      const m: Record<string, unknown> = { type, request_id: `never-sent-${rng.int(0, 1e6)}` };
      if (rng.bool(0.5)) m.played_ms = rng.pick([0, 1.5, 250, 1e9]);
      if (rng.bool(0.3)) m.id = ids.next();
      return m;
    }
    case 'ping':
      return rng.bool(0.7) ? { type, id: ids.next() } : { type };
    case 'session.end':
      return rng.bool(0.5) ? { type, id: ids.next() } : { type };
    default:
      throw new Error(`no valid message of type ${type}`);
  }
}

/**
 * A readable WAV (RIFF/WAVE, 16-bit PCM) of a few thousand samples, now and then with chunks
 * before `fmt ` (a 28-byte JUNK chunk, as in issue 12 D2) or between `fmt ` and `data`.
 */
export function wavFile(rng: Rng): Buffer {
  const channels = rng.pick([1, 1, 2]);
  const rate = rng.pick([8000, 16_000, 24_000, 48_000]);
  const samples = rng.bytes(rng.int(0, 8000) * 2 * channels);
  const chunk = (id: string, body: Buffer): Buffer => {
    const head = Buffer.alloc(8);
    head.write(id, 0, 'latin1');
    head.writeUInt32LE(body.length, 4);
    return Buffer.concat([head, body, body.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]);
  };
  const fmt = Buffer.alloc(16);
  fmt.writeUInt16LE(1, 0);
  fmt.writeUInt16LE(channels, 2);
  fmt.writeUInt32LE(rate, 4);
  fmt.writeUInt32LE(rate * channels * 2, 8);
  fmt.writeUInt16LE(channels * 2, 12);
  fmt.writeUInt16LE(16, 14);
  const before = rng.bool(0.3) ? [chunk('JUNK', Buffer.alloc(28))] : rng.bool(0.2) ? [chunk('LIST', Buffer.from('INFOISFT\u0005\u0000\u0000\u0000fuzz\u0000', 'latin1'))] : [];
  const between = rng.bool(0.2) ? [chunk('fact', Buffer.alloc(4))] : [];
  const body = Buffer.concat([Buffer.from('WAVE', 'latin1'), ...before, chunk('fmt ', fmt), ...between, chunk('data', samples)]);
  const riff = Buffer.alloc(8);
  riff.write('RIFF', 0, 'latin1');
  riff.writeUInt32LE(body.length, 4);
  return Buffer.concat([riff, body]);
}

// ---- hostile text -------------------------------------------------------------------------------

/** Byte sequences that are not UTF-8 (RFC 3629 §3-4): overlong, surrogates, out of range, cut short. */
export const INVALID_UTF8: readonly number[][] = [
  [0xff],
  [0xfe],
  [0x80],
  [0xc0, 0x80],
  [0xc1, 0xbf],
  [0xe0, 0x80, 0x80],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf5, 0x80, 0x80, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xc3],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x98],
];

/** A JSON message with an invalid UTF-8 sequence spliced in (inside a string, a key, or around it). */
export function invalidUtf8(rng: Rng): Buffer {
  const base = Buffer.from(JSON.stringify({ type: 'turn.text', id: 'u', text: text(rng) }));
  const bad = Buffer.from(rng.pick(INVALID_UTF8));
  const at = rng.int(0, base.length);
  return Buffer.concat([base.subarray(0, at), bad, base.subarray(at)]);
}

const KEYS = ['type', 'id', 'text', 'language', 'purpose', 'reference_text', 'target_language', 'audio', 'resume_token', 'format', 'sample_rate', '__proto__', 'constructor', 'prototype', '', 'x'];

/** A random JSON text, up to `depth` levels, keys drawn from the protocol's own field names. */
export function randomJson(rng: Rng, depth = 4): string {
  const r = rng.int(0, depth <= 0 ? 5 : 8);
  switch (r) {
    case 0:
      return 'null';
    case 1:
      return rng.bool() ? 'true' : 'false';
    case 2:
      return rng.pick(['0', '-1', '1.5', '1e308', '-1e-308', '1e400', '123456789012345678901234567890', '-0', '2147483648', String(rng.int(-1000, 1000))]);
    case 3:
    case 4:
      return JSON.stringify(rng.bool(0.4) ? rng.pick(MESSAGE_TYPES) : text(rng, 40));
    case 5:
      return JSON.stringify(rng.string(rng.int(0, 12)));
    case 6: {
      const n = rng.int(0, 4);
      return `[${Array.from({ length: n }, () => randomJson(rng, depth - 1)).join(',')}]`;
    }
    default: {
      const n = rng.int(0, 5);
      const entries: string[] = [];
      if (rng.bool(0.7)) entries.push(`"type":${rng.bool(0.8) ? JSON.stringify(rng.pick(MESSAGE_TYPES)) : randomJson(rng, 0)}`);
      for (let i = 0; i < n; i++) entries.push(`${JSON.stringify(rng.pick(KEYS))}:${randomJson(rng, depth - 1)}`);
      return `{${entries.join(',')}}`;
    }
  }
}

/** JSON syntax at its edges: what JSON.parse refuses, and what it accepts that looks wrong. */
export const JSON_EDGES: readonly string[] = [
  '',
  ' ',
  '{',
  '}',
  '{}',
  '[]',
  '"ping"',
  'null',
  'NaN',
  'undefined',
  '{"type":"ping",}',
  "{'type':'ping'}",
  '{type:"ping"}',
  '{"type":"ping"} trailing',
  '\ufeff{"type":"ping"}',
  '{"type":"ping"}\n\t ',
  '/* comment */{"type":"ping"}',
  '{"type":"ping","id":1}{"type":"ping"}',
  '{"type":"ping","type":"dance"}',
  '{"type":"dance","type":"ping"}',
  '{"type":"ping","id":01}',
  '{"type":"ping","id":1e2}',
  '{"type":"ping","id":1.0}',
  '{"type":"ping","id":-0}',
  '{"type":"ping","id":1e400}',
  '{"type":"ping","id":9007199254740993}',
  '{"type":"ping","id":"\\ud800"}',
  '{"type":"ping","id":"\\u0000"}',
  '{"type":"ping","id":"\\uZZZZ"}',
  '{"type":"ping","id":"\u0001raw control"}',
  '{"type":"p\\u0069ng"}',
  '{"type":"PING"}',
  '{"type":" ping"}',
  '{"type":"ping\\u0000"}',
  '{"type":"session.start","language":"es","language":5}',
  '{"type":"turn.text","id":"t","text":"\\ud83d\\ude00"}',
];

/** Deep nesting, as deep as the frame bound allows (JSON.parse and the validators must not fall over). */
export function deepNesting(rng: Rng, maxBytes: number): string {
  const depth = rng.pick([100, 1000, 10_000, 50_000, Math.floor(maxBytes / 2) - 64, Math.floor(maxBytes / 2) + 10]);
  const arr = (d: number): string => '['.repeat(d) + ']'.repeat(d);
  const obj = (d: number): string => '{"a":'.repeat(d) + '1' + '}'.repeat(d);
  switch (rng.int(0, 5)) {
    case 0:
      return arr(depth);
    case 1:
      return `{"type":"ping","id":1,"x":${arr(depth - 10)}}`;
    case 2:
      return `{"type":"turn.text","id":"d","text":${arr(depth - 10)}}`;
    case 3:
      return `{"type":"ping","id":${arr(depth - 10)}}`;
    case 4:
      return `{"type":"session.start","language":"es","audio":${obj(Math.floor(depth / 3))}}`;
    default:
      return `{"type":${obj(Math.floor(depth / 3))}}`;
  }
}

/** Keys and types that name what every JS object inherits: no pollution, no confusion. */
export const PROTO_PAYLOADS: readonly string[] = [
  '{"type":"__proto__"}',
  '{"type":"constructor","id":"c"}',
  '{"type":"toString","id":1}',
  '{"type":"hasOwnProperty"}',
  '{"type":"valueOf"}',
  '{"type":"__defineGetter__"}',
  '{"type":"prototype"}',
  '{"type":"ping","__proto__":{"id":"x"}}',
  '{"__proto__":{"type":"ping"}}',
  '{"__proto__":{"polluted":"yes"},"type":"ping"}',
  '{"type":"ping","constructor":{"prototype":{"polluted":"yes"}}}',
  '{"type":"session.start","language":"es","audio":{"__proto__":{"format":"wav"}}}',
  '{"type":"session.start","language":"es","audio":{"constructor":{"prototype":{"polluted":1}}}}',
  '{"type":"turn.text","id":"p","text":"x","__proto__":null}',
  '{"type":"input_audio.commit","id":"p","purpose":"turn","__proto__":{"reference_text":"x"}}',
  '{"type":"translate","id":"p","text":"x","target_language":"es","__proto__":{"source_language":"en"}}',
  '{"type":"ping","id":{"__proto__":{"toString":"x"}}}',
  '{"type":"ping","id":"__proto__"}',
  '{"type":"ping","id":"constructor"}',
];

// ---- field mutations ----------------------------------------------------------------------------

/** A wrong value, as JSON text (so values JSON.stringify cannot write, like 1e400, are possible). */
export interface Wrong {
  readonly label: string;
  readonly json: string | undefined; // undefined: remove the field
}

const common: Wrong[] = [
  { label: 'null', json: 'null' },
  { label: 'true', json: 'true' },
  { label: 'number', json: '42' },
  { label: 'negative', json: '-1' },
  { label: 'float', json: '1.5' },
  { label: '1e400', json: '1e400' },
  { label: 'array', json: '["x"]' },
  { label: 'empty array', json: '[]' },
  { label: 'object', json: '{"a":1}' },
  { label: 'empty object', json: '{}' },
];
const big = (n: number): string => JSON.stringify('a'.repeat(n));

/** Wrong values for a field, by what it holds: wrong types, and strings of the wrong size. */
function wrongValues(spec: FieldSpec): Wrong[] {
  switch (spec.kind) {
    case 'id':
      return [
        ...common.filter((w) => w.label !== 'number' && w.label !== 'negative'),
        { label: 'empty string', json: '""' },
        { label: '129 chars', json: big(129) },
        { label: '200,000 chars', json: big(200_000) },
        { label: 'unsafe integer', json: '9007199254740993' },
      ];
    case 'language':
      return [
        ...common,
        { label: 'empty string', json: '""' },
        { label: 'one letter', json: '"e"' },
        { label: 'underscore', json: '"en_US"' },
        { label: 'space', json: '"en US"' },
        { label: 'non-ASCII', json: '"español"' },
        { label: '60,000 chars with a space', json: JSON.stringify(`${'a'.repeat(30_000)} ${'a'.repeat(30_000)}`) },
      ];
    case 'enum':
      return [...common, { label: 'empty string', json: '""' }, { label: 'wrong case', json: '"Turn"' }, { label: 'unknown value', json: '"song"' }];
    case 'number':
      return [
        ...common.filter((w) => !['number', 'float', '1e400'].includes(w.label)),
        { label: 'string', json: '"250"' },
        { label: 'below 0', json: '-0.5' },
      ];
    case 'object':
      return [
        { label: 'null', json: 'null' },
        { label: 'string', json: '"pcm16"' },
        { label: 'number', json: '1' },
        { label: 'array', json: '[]' },
        { label: 'unknown format', json: '{"format":"mp3"}' },
        { label: 'rate below', json: '{"sample_rate":7999}' },
        { label: 'rate above', json: '{"sample_rate":48001}' },
        { label: 'fractional rate', json: '{"sample_rate":16000.5}' },
        { label: 'rate as string', json: '{"sample_rate":"16000"}' },
        { label: 'unknown key', json: '{"format":"wav","channels":2}' },
      ];
    case 'string': {
      const out = [...common];
      if (spec.minChars === 1) out.push({ label: 'empty string', json: '""' });
      if (spec.maxChars !== undefined) out.push({ label: `${spec.maxChars + 1} chars`, json: big(spec.maxChars + 1) }, { label: '60,000 chars', json: big(60_000) });
      return out;
    }
  }
}

export interface Mutation {
  readonly type: string;
  readonly field: string;
  readonly wrong: Wrong;
}

/** Every (message type × field × wrong value), plus a missing required field and an unknown field. */
export const MUTATIONS: readonly Mutation[] = (() => {
  const out: Mutation[] = [];
  for (const type of MESSAGE_TYPES) {
    const fields = MESSAGE_FIELDS[type]!;
    for (const [field, spec] of Object.entries(fields)) {
      for (const wrong of wrongValues(spec)) out.push({ type, field, wrong });
      if (spec.required) out.push({ type, field, wrong: { label: 'missing', json: undefined } });
    }
    out.push({ type, field: 'colour', wrong: { label: 'unknown field', json: '"blue"' } });
    out.push({ type, field: 'type', wrong: { label: 'type as number', json: '1' } });
  }
  return out;
})();

/** A valid message of the mutation's type with the one field replaced (or removed), as JSON text. */
export function mutate(rng: Rng, m: Mutation, ids: IdSource): string {
  const base = validMessage(rng, m.type, ids);
  // session.start without language is refused for another reason; keep the mutation the only fault.
  const entries: [string, string][] = Object.entries(base).map(([k, v]) => [k, JSON.stringify(v)]);
  const idx = entries.findIndex(([k]) => k === m.field);
  if (m.wrong.json === undefined) {
    if (idx >= 0) entries.splice(idx, 1);
  } else if (idx >= 0) entries[idx] = [m.field, m.wrong.json];
  else entries.push([m.field, m.wrong.json]);
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
}
