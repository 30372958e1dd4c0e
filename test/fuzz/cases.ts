/**
 * Case generation: case N of seed S is a pure function of (S, N). A case is one connection's worth
 * of attack: a WebSocket session driven step by step (through `ws` or through hand-made frames),
 * a raw byte stream, or an attack on the HTTP upgrade itself.
 */
import { attackPlan } from './config.js';
import { MESSAGE_TYPES } from './fields.js';
import { deepNesting, IdSource, invalidUtf8, JSON_EDGES, MUTATIONS, mutate, PROTO_PAYLOADS, randomJson, validMessage, wavFile } from './payloads.js';
import { caseSeed, Rng } from './random.js';
import { closePayload, Opcode, type FrameSpec } from './wire.js';
import { truncate } from './events.js';

/** What a step attacks with; the report counts frames and unexpected answers by it. */
export const STEP_CLASSES = [
  'setup.session-start',
  'text.random-bytes',
  'text.invalid-utf8',
  'text.random-json',
  'text.json-edge',
  'text.field-mutation',
  'text.deep-nesting',
  'text.proto-keys',
  'text.valid',
  'text.duplicate-id',
  'binary.audio',
  'binary.empty',
  'frame.fragmented',
  'frame.too-many-fragments',
  'frame.control',
  'frame.ping-flood',
  'frame.oversize',
  'frame.non-minimal-length',
  'frame.violation',
  'frame.close',
  'frame.truncated',
  'conn.reset',
  'conn.fin',
  'conn.close',
] as const;
export type StepClass = (typeof STEP_CLASSES)[number];

export interface Step {
  readonly cls: StepClass;
  readonly frames: FrameSpec[];
  /** What the runner does after writing the frames: wait for a barrier pong, or end the connection. */
  readonly after: 'barrier' | 'fin' | 'reset';
  /** The input, printable and short (for a failure report). */
  readonly note: string;
  /** Index into MUTATIONS, for the coverage figure. */
  readonly mutation?: number;
}

export interface SessionCase {
  readonly kind: 'session';
  readonly index: number;
  readonly transport: 'ws' | 'raw';
  readonly steps: Step[];
}

export const HTTP_VARIANTS = [
  'bad-credentials',
  'bad-origin',
  'malformed-upgrade',
  'huge-headers',
  'garbage',
  'pipelined',
  'body-on-upgrade',
  'slowloris',
  'dead-peer',
  'half-close',
  'reset-upgrade',
  'random-stream',
] as const;
export type HttpVariant = (typeof HTTP_VARIANTS)[number];

export interface HttpCase {
  readonly kind: 'http';
  readonly index: number;
  readonly variant: HttpVariant;
  readonly seed: number;
}

export type Case = SessionCase | HttpCase;

const textFrame = (payload: Buffer | string): FrameSpec => ({ opcode: Opcode.text, payload: typeof payload === 'string' ? Buffer.from(payload) : payload });
const show = (b: Buffer | string): string => truncate(JSON.stringify(typeof b === 'string' ? b : b.toString('latin1')), 160);

/** Generates case `index` of run `seed`. */
export function generateCase(seed: number, index: number): Case {
  const rng = new Rng(caseSeed(seed, index));
  const kind = rng.weighted({ session: 92, http: 8 });
  if (kind === 'http' && index % 2000 !== 1999) {
    const variant = rng.weighted<HttpVariant>({
      'bad-credentials': 14,
      'bad-origin': 6,
      'malformed-upgrade': 20,
      'huge-headers': 8,
      garbage: 10,
      pipelined: 8,
      'body-on-upgrade': 4,
      slowloris: 6,
      'dead-peer': 5,
      'half-close': 6,
      'reset-upgrade': 6,
      'random-stream': 7,
    });
    return { kind: 'http', index, variant, seed: rng.int(0, 2 ** 31) };
  }
  return sessionCase(rng, index);
}

function sessionCase(rng: Rng, index: number): SessionCase {
  const forcedRaw = index % 2000 === 1999;
  const transport = rng.bool(0.5) || forcedRaw ? 'raw' : 'ws';
  const raw = transport === 'raw';
  const ids = new IdSource(rng);
  const steps: Step[] = [];
  // Most cases start a session first (most of the protocol is behind it); some attack before it.
  if (rng.bool(0.85)) {
    const m = validMessage(rng, 'session.start', ids);
    steps.push({ cls: 'setup.session-start', frames: [textFrame(JSON.stringify(m))], after: 'barrier', note: show(JSON.stringify(m)) });
  }
  // How much of the case is garbage: some cases are nearly well-behaved, some nearly all strikes.
  const hostility = rng.float();
  const n = rng.int(3, 40);
  // A message in more fragments than ws allows is 16,385 frames in one step: once every 2,000
  // cases (once in a 100,000-frame run), not at random, so it neither swamps nor skips a run.
  const tooManyFragments = forcedRaw;
  // Accepted requests run real turns; a few per connection keep the app busy without flooding it.
  const sent: (string | number)[] = [];
  for (let i = 0; i < n; i++) {
    // Early in its case, before the strikes of a hostile case close the connection.
    const cls = tooManyFragments && i === 0 ? 'frame.too-many-fragments' : pickClass(rng, raw, hostility);
    const step = makeStep(rng, cls, ids, sent);
    steps.push(step);
  }
  steps.push(ending(rng, raw, ids));
  return { kind: 'session', index, transport, steps };
}

function pickClass(rng: Rng, raw: boolean, hostility: number): StepClass {
  const bad = hostility;
  const good = 1 - hostility;
  const weights: Partial<Record<StepClass, number>> = {
    'text.random-bytes': 6 * bad,
    'text.invalid-utf8': 6 * bad,
    'text.random-json': 10 * bad,
    'text.json-edge': 5 * bad,
    'text.field-mutation': 18 * bad,
    'text.deep-nesting': 1.5 * bad,
    'text.proto-keys': 5 * bad,
    'text.valid': 16 * good + 2,
    'binary.audio': 10 * good + 1,
    'binary.empty': 1.5 * bad,
    'frame.fragmented': 6,
    'frame.control': 5,
    'frame.oversize': 0.3,
  };
  if (raw) {
    weights['text.duplicate-id'] = 2;
    weights['frame.non-minimal-length'] = 2;
    weights['frame.ping-flood'] = 0.1;
  }
  return rng.weighted(weights as Record<StepClass, number>);
}

/** `sent`: ids of the requests this case has sent so far (a cancel may name one). */
function makeStep(rng: Rng, cls: StepClass, ids: IdSource, sent: (string | number)[]): Step {
  const max = attackPlan.maxFrameBytes;
  switch (cls) {
    case 'text.random-bytes': {
      const b = rng.bytes(rng.size(4096));
      return { cls, frames: [textFrame(b)], after: 'barrier', note: `text frame of ${b.length} random bytes ${show(b)}` };
    }
    case 'text.invalid-utf8': {
      const b = invalidUtf8(rng);
      return { cls, frames: [textFrame(b)], after: 'barrier', note: `text with invalid UTF-8 ${b.toString('hex').slice(0, 120)}` };
    }
    case 'text.random-json': {
      const t = randomJson(rng);
      return { cls, frames: [textFrame(t)], after: 'barrier', note: show(t) };
    }
    case 'text.json-edge': {
      const t = rng.pick(JSON_EDGES);
      return { cls, frames: [textFrame(t)], after: 'barrier', note: show(t) };
    }
    case 'text.field-mutation': {
      const k = rng.int(0, MUTATIONS.length - 1);
      const m = MUTATIONS[k]!;
      const t = mutate(rng, m, ids);
      return { cls, frames: [textFrame(t)], after: 'barrier', note: `${m.type}.${m.field} = ${m.wrong.label}: ${show(t)}`, mutation: k };
    }
    case 'text.deep-nesting': {
      const t = deepNesting(rng, max);
      return { cls, frames: [textFrame(t)], after: 'barrier', note: `${t.length} bytes, ${show(t.slice(0, 40))}…${show(t.slice(-20))}` };
    }
    case 'text.proto-keys': {
      const t = rng.pick(PROTO_PAYLOADS);
      return { cls, frames: [textFrame(t)], after: 'barrier', note: show(t) };
    }
    case 'text.valid': {
      const types = sent.length < 3 ? MESSAGE_TYPES.filter((t) => t !== 'session.end') : ['ping', 'input_audio.clear', 'session.start', 'cancel'];
      const m = validMessage(rng, rng.pick(types), ids);
      if (m.type === 'turn.text' || m.type === 'translate' || m.type === 'input_audio.commit') sent.push(m.id as string | number);
      if (m.type === 'cancel' && sent.length > 0 && rng.bool(0.6)) m.request_id = rng.pick(sent);
      const t = JSON.stringify(m);
      return { cls, frames: [textFrame(t)], after: 'barrier', note: show(t) };
    }
    case 'text.duplicate-id': {
      // Written in one TCP write: the second arrives while the first is certainly still in flight.
      const first = validMessage(rng, rng.pick(['turn.text', 'translate']), ids);
      const second = { ...validMessage(rng, rng.pick(['turn.text', 'translate']), ids), id: first.id };
      const a = JSON.stringify(first);
      const b = JSON.stringify(second);
      return { cls, frames: [textFrame(a), textFrame(b)], after: 'barrier', note: `${show(a)} then ${show(b)}` };
    }
    case 'binary.audio': {
      if (rng.bool(0.3)) {
        const w = wavFile(rng);
        return { cls, frames: [{ opcode: Opcode.binary, payload: w }], after: 'barrier', note: `a WAV file of ${w.length} bytes (${w.toString('latin1', 12, 16)} first)` };
      }
      const size = rng.bool(0.1) ? rng.int(200_000, max) : rng.int(1, 32_000);
      const b = rng.bytes(size);
      return { cls, frames: [{ opcode: Opcode.binary, payload: b }], after: 'barrier', note: `binary frame of ${size} bytes` };
    }
    case 'frame.too-many-fragments': {
      const n = 16_385;
      const frames: FrameSpec[] = Array.from({ length: n }, (_, i) => ({ opcode: i === 0 ? Opcode.text : Opcode.continuation, payload: Buffer.alloc(0), fin: i === n - 1 }));
      return { cls, frames, after: 'barrier', note: `a message in ${n} empty fragments` };
    }
    case 'binary.empty':
      return { cls, frames: [{ opcode: Opcode.binary, payload: Buffer.alloc(0) }], after: 'barrier', note: 'empty binary frame' };
    case 'frame.fragmented':
      return fragmented(rng, ids);
    case 'frame.control': {
      if (rng.bool(0.7)) {
        const p = rng.bytes(rng.int(0, 125));
        return { cls, frames: [{ opcode: Opcode.ping, payload: p }], after: 'barrier', note: `ping with ${p.length} bytes` };
      }
      const p = rng.bytes(rng.int(0, 125));
      return { cls, frames: [{ opcode: Opcode.pong, payload: p }], after: 'barrier', note: `unsolicited pong with ${p.length} bytes` };
    }
    case 'frame.ping-flood': {
      const n = rng.pick([30, 60, 61, 100, 500]);
      const frames: FrameSpec[] = Array.from({ length: n }, () => ({ opcode: Opcode.ping, payload: rng.bytes(rng.int(0, 125)) }));
      return { cls, frames, after: 'barrier', note: `${n} pings in one write` };
    }
    case 'frame.oversize': {
      const size = rng.bool(0.8) ? rng.int(max + 1, max + 20_000) : rng.int(4 * max + 1, 4 * max + 1000);
      const opcode = rng.bool() ? Opcode.text : Opcode.binary;
      const payload = opcode === Opcode.text ? Buffer.from(`{"type":"turn.text","id":"o","text":"${'a'.repeat(size - 40)}"}`) : rng.bytes(size);
      return { cls, frames: [{ opcode, payload }], after: 'barrier', note: `${opcode === Opcode.text ? 'text' : 'binary'} frame of ${payload.length} bytes` };
    }
    case 'frame.non-minimal-length': {
      const m = JSON.stringify(validMessage(rng, 'ping', ids));
      const form = rng.pick(['16', '64'] as const);
      return { cls, frames: [{ ...textFrame(m), lengthForm: form }], after: 'barrier', note: `${show(m)} with a ${form}-bit length` };
    }
    default:
      throw new Error(`makeStep: ${cls} is an ending`);
  }
}

/** A message split into fragments (RFC 6455 §5.4), pings between them now and then. */
function fragmented(rng: Rng, ids: IdSource): Step {
  const cls: StepClass = 'frame.fragmented';
  const binary = rng.bool(0.2);
  let payload: Buffer;
  if (binary) payload = rng.bytes(rng.int(0, 20_000));
  else if (rng.bool(0.6)) payload = Buffer.from(JSON.stringify(validMessage(rng, rng.pick(['ping', 'input_audio.clear', 'session.start']), ids)));
  else if (rng.bool(0.5)) payload = invalidUtf8(rng);
  else payload = Buffer.from(randomJson(rng));
  // Now and then a message in hundreds of fragments, most of them empty (a cheap way to make a
  // receiver keep state); usually a handful.
  const pieces = rng.bool(0.005) ? rng.int(50, 200) : rng.int(2, 8);
  const frames: FrameSpec[] = [];
  // At most 20 pings: more in one write is a ping flood, a class of its own.
  let pings = 0;
  for (let i = 0; i < pieces; i++) {
    const from = Math.floor((payload.length * i) / pieces);
    const to = Math.floor((payload.length * (i + 1)) / pieces);
    frames.push({ opcode: i === 0 ? (binary ? Opcode.binary : Opcode.text) : Opcode.continuation, payload: payload.subarray(from, to), fin: i === pieces - 1 });
    // Control frames may come between the fragments of a message (§5.4).
    if (i < pieces - 1 && pings < 20 && rng.bool(0.1)) {
      pings++;
      frames.push({ opcode: Opcode.ping, payload: rng.bytes(rng.int(0, 20)) });
    }
  }
  return { cls, frames, after: 'barrier', note: `${binary ? 'binary' : 'text'} message of ${payload.length} bytes in ${pieces} fragments: ${show(payload)}` };
}

/** How a session case ends: a frame-level violation, a close, a cut connection, or the protocol's own end. */
function ending(rng: Rng, raw: boolean, ids: IdSource): Step {
  const choice = raw
    ? rng.weighted({ violation: 40, close: 12, truncated: 8, reset: 10, fin: 8, end: 8, normal: 14 })
    : rng.weighted({ close: 30, end: 30, normal: 40 });
  switch (choice) {
    case 'violation':
      return violation(rng);
    case 'close': {
      if (!raw) {
        const code = rng.pick([1000, 1001, 3000, 4000, 4999]);
        return { cls: 'frame.close', frames: [{ opcode: Opcode.close, payload: closePayload(code, 'bye') }], after: 'barrier', note: `close ${code}` };
      }
      const variant = rng.int(0, 3);
      const code = variant === 0 ? rng.pick([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]) : 1000;
      const reason = variant === 1 ? Buffer.from(rng.pick([[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80]])) : variant === 2 ? Buffer.from('x'.repeat(123)) : Buffer.from('bye');
      const payload = variant === 3 ? Buffer.alloc(0) : closePayload(code, reason);
      return { cls: 'frame.close', frames: [{ opcode: Opcode.close, payload }], after: 'barrier', note: `close frame ${payload.toString('hex').slice(0, 40)}` };
    }
    case 'truncated': {
      const full = Buffer.from(JSON.stringify({ type: 'ping', id: 'cut' }));
      const sent = full.subarray(0, rng.int(0, full.length - 1));
      const after = rng.pick(['fin', 'reset'] as const);
      return { cls: 'frame.truncated', frames: [{ opcode: Opcode.text, payload: sent, declaredLength: BigInt(full.length) }], after, note: `frame declaring ${full.length} bytes, ${sent.length} sent, then ${after}` };
    }
    case 'reset':
      return { cls: 'conn.reset', frames: [], after: 'reset', note: 'TCP reset' };
    case 'fin':
      return { cls: 'conn.fin', frames: [], after: 'fin', note: 'TCP FIN without a close frame' };
    case 'end': {
      const m = JSON.stringify(validMessage(rng, 'session.end', ids));
      return { cls: 'text.valid', frames: [textFrame(m)], after: 'barrier', note: show(m) };
    }
    default:
      return { cls: 'conn.close', frames: [{ opcode: Opcode.close, payload: closePayload(1000) }], after: 'barrier', note: 'close 1000' };
  }
}

/** Frames no conforming client sends (RFC 6455 §5.1-5.5): each must be refused with 1002 (or 1009). */
function violation(rng: Rng): Step {
  const cls: StepClass = 'frame.violation';
  const ping = Buffer.from('{"type":"ping"}');
  const kind = rng.int(0, 10);
  let frames: FrameSpec[];
  let what: string;
  switch (kind) {
    case 0: {
      const opcode = rng.pick([3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]);
      frames = [{ opcode, payload: ping }];
      what = `reserved opcode ${opcode}`;
      break;
    }
    case 1: {
      const rsv = rng.int(1, 7);
      frames = [{ opcode: rng.pick([Opcode.text, Opcode.binary, Opcode.ping]), payload: ping, rsv }];
      what = `RSV bits ${rsv}`;
      break;
    }
    case 2:
      frames = [{ opcode: rng.pick([Opcode.text, Opcode.binary, Opcode.ping]), payload: ping, mask: false }];
      what = 'unmasked frame';
      break;
    case 3:
      frames = [{ opcode: rng.pick([Opcode.ping, Opcode.pong, Opcode.close]), payload: Buffer.alloc(2), fin: false }];
      what = 'fragmented control frame';
      break;
    case 4:
      frames = [{ opcode: rng.pick([Opcode.ping, Opcode.pong, Opcode.close]), payload: Buffer.alloc(rng.int(126, 300)) }];
      what = 'control frame over 125 bytes';
      break;
    case 5:
      frames = [{ opcode: Opcode.continuation, payload: ping }];
      what = 'continuation with no message';
      break;
    case 6:
      frames = [
        { opcode: Opcode.text, payload: ping.subarray(0, 5), fin: false },
        { opcode: rng.pick([Opcode.text, Opcode.binary]), payload: ping },
      ];
      what = 'new data frame inside a fragmented message';
      break;
    case 7:
      frames = [{ opcode: Opcode.close, payload: Buffer.from([0x03]) }];
      what = 'close frame with a 1-byte payload';
      break;
    case 8: {
      const code = rng.pick([0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535]);
      frames = [{ opcode: Opcode.close, payload: closePayload(code) }];
      what = `close code ${code}`;
      break;
    }
    case 9:
      frames = [{ opcode: Opcode.binary, payload: Buffer.alloc(0), declaredLength: 2n ** 63n + BigInt(rng.int(0, 1000)) }];
      what = '64-bit length over 2^53';
      break;
    default:
      frames = [{ opcode: Opcode.binary, payload: Buffer.alloc(0), declaredLength: BigInt(rng.int(4 * attackPlan.maxFrameBytes + 1, 2 ** 31)) }];
      what = 'length over the WebSocket layer ceiling, no payload';
      break;
  }
  return { cls, frames, after: 'barrier', note: what };
}
