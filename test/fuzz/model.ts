/**
 * The oracle: a model of one connection as docs/protocol.md and CONTRACT §5 describe it. Given the
 * connection's state and the frames of a step, it says which answers are allowed, as one or more
 * alternatives (an ambiguous input allows more than one); the runner keeps the alternative the
 * server's answer matches and carries on from its state.
 *
 * The model reads each frame's bytes as the server must: WebSocket framing first (RFC 6455 §5),
 * then size, UTF-8, JSON, the message schema of the docs (fields.ts), then the session's rules.
 * The class a generator gave the frame plays no part in the verdict.
 */
import { idVerdict, messageVerdict, type Verdict } from './fields.js';
import { Opcode, type FrameSpec } from './wire.js';

/** The limits of the attackers' plan the model needs (test/fuzz/config.ts). */
export interface ModelLimits {
  readonly maxFrameBytes: number;
  /** The WebSocket layer's hard ceiling (`server.maxPayloadBytes`, default 4 × maxFrameBytes). */
  readonly maxPayloadBytes: number;
  readonly maxUtteranceBytes: number;
  readonly maxTextChars: number;
  /** More than this many invalid messages within 60 s close the connection with 1008. */
  readonly maxStrikes: number;
  /**
   * Pongs the WebSocket layer lets wait to be written before it drops a peer as a ping flood
   * (ws's `maxPendingAutoPongs`, default 60; not in docs/protocol.md).
   */
  readonly maxPendingPongs: number;
  /** Data frames one message may come in (ws's `maxFragments`, default 16384); more: close 1008. */
  readonly maxFragments: number;
}

export type RequestId = string | number;
type RequestKind = 'turn' | 'audio-turn' | 'assessment' | 'translate';

export interface ConnState {
  started: boolean;
  /** The session's audio format (session.start `audio.format`, default pcm16). */
  format: 'pcm16' | 'wav';
  strikes: number;
  audioBytes: number;
  /** The buffered audio itself (a WAV session's commit is judged on it). */
  audio: Buffer[];
  /** A fragmented data message in progress: its opcode, bytes and data frames so far. */
  fragment: { opcode: number; parts: Buffer[]; bytes: number; frames: number } | undefined;
  /** Requests accepted on this connection (their answers may come at any later time). */
  readonly requests: Map<string, RequestKind>;
  /** Ids accepted within the step being judged (a repeat of one is certainly a duplicate). */
  readonly stepIds: Set<string>;
}

export function newState(): ConnState {
  return { started: false, format: 'pcm16', strikes: 0, audioBytes: 0, audio: [], fragment: undefined, requests: new Map(), stepIds: new Set() };
}

function cloneState(s: ConnState): ConnState {
  return {
    ...s,
    audio: [...s.audio],
    fragment: s.fragment ? { ...s.fragment, parts: [...s.fragment.parts] } : undefined,
    requests: new Map(s.requests),
    stepIds: new Set(s.stepIds),
  };
}

/** `request_id` as the answer must carry it: equal to the id, absent, or either (ambiguous id). */
export type IdRule = { readonly mode: 'equal'; readonly value: RequestId } | { readonly mode: 'absent' } | { readonly mode: 'either'; readonly value: RequestId };

export interface EventSpec {
  readonly type: string;
  readonly codes?: readonly string[];
  readonly id: IdRule;
  /** For `error`: the close code it must announce (undefined: none). */
  readonly closeCode?: number;
  /** The event may be missing (1002 closes: the socket may not allow the error event). */
  readonly optional?: boolean;
}

export interface CloseSpec {
  /** Allowed close codes; `null` means a close frame without a status code. */
  readonly codes: readonly (number | null)[];
  /** Where the answer is only the end of TCP (a truncated frame, then our FIN). */
  readonly tcpOnly?: boolean;
}

export interface Outcome {
  state: ConnState;
  readonly events: EventSpec[];
  readonly pongs: Buffer[];
  close: CloseSpec | undefined;
  /** What the model expects, for a failure report. */
  readonly label: string[];
  /**
   * The connection may be dropped anywhere in the step (a ping flood): the step's answers may be
   * cut short, and the end is TCP closing without a close frame.
   */
  dropped?: boolean;
}

const ABSENT: IdRule = { mode: 'absent' };
const idKey = (id: RequestId): string => `${typeof id}:${String(id)}`;

/** The echo rule for an id read from a message (valid: must echo; invalid or missing: must not). */
function echo(obj: Record<string, unknown> | undefined): IdRule {
  if (!obj || !Object.prototype.hasOwnProperty.call(obj, 'id')) return ABSENT;
  const v = obj.id;
  const verdict = idVerdict(v);
  if (verdict === 'valid') return { mode: 'equal', value: v as RequestId };
  if (verdict === 'ambiguous') return { mode: 'either', value: v as RequestId };
  return ABSENT;
}

const isControl = (opcode: number): boolean => opcode >= 0x8;
const KNOWN_OPCODES = new Set<number>([Opcode.continuation, Opcode.text, Opcode.binary, Opcode.close, Opcode.ping, Opcode.pong]);

/** RFC 6455 §7.4.1 / ws: the close codes a peer may send. */
export function validCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

export class Model {
  constructor(readonly limits: ModelLimits) {}

  /** Every allowed outcome of sending `frames` (in one step) to a connection in `state`. */
  step(state: ConnState, frames: readonly FrameSpec[]): Outcome[] {
    const start: ConnState = cloneState(state);
    start.stepIds.clear();
    let branches: Outcome[] = [{ state: start, events: [], pongs: [], close: undefined, label: [] }];
    for (const f of frames) {
      const next: Outcome[] = [];
      for (const b of branches) {
        if (b.close) {
          next.push(b); // the server reads nothing after it has closed
          continue;
        }
        next.push(...this.frame(b, f));
      }
      branches = next;
    }
    const pings = frames.filter((f) => f.opcode === Opcode.ping && (f.fin ?? true) && (f.rsv ?? 0) === 0 && f.mask !== false).length;
    if (pings > this.limits.maxPendingPongs) {
      // All the step's frames come in one write, so their pongs wait together: past the ws bound
      // the peer is dropped as a ping flood (no close frame can be sent to a flooding peer).
      const flood = branches[0]!;
      branches.push({ ...flood, close: { codes: [], tcpOnly: true }, dropped: true, label: [...flood.label, `${pings} pings in one write: more than ${this.limits.maxPendingPongs} pongs waiting, dropped as a ping flood`] });
    }
    return branches;
  }

  /**
   * The outcomes of one frame on one branch. The branch is read into in place (a message in
   * 16,385 fragments must not copy its state 16,385 times); a second alternative is a copy taken
   * before the first changes it.
   */
  private frame(b: Outcome, f: FrameSpec): Outcome[] {
    const L = this.limits;
    const payload = f.payload ?? Buffer.alloc(0);
    const fin = f.fin ?? true;
    const rsv = f.rsv ?? 0;
    const declared = f.declaredLength ?? BigInt(payload.length);
    // --- RFC 6455 §5.2 framing, in the order a receiver reads the header ---
    const violation = (why: string): Outcome[] => [this.protocolError(b, why)];
    if (rsv !== 0) return violation(`RSV bits ${rsv} without an extension (§5.2)`);
    if (!KNOWN_OPCODES.has(f.opcode)) return violation(`reserved opcode ${f.opcode} (§5.2)`);
    if (f.opcode === Opcode.continuation && !b.state.fragment) return violation('continuation frame with no message in progress (§5.4)');
    if ((f.opcode === Opcode.text || f.opcode === Opcode.binary) && b.state.fragment) return violation('new data frame inside a fragmented message (§5.4)');
    if (isControl(f.opcode)) {
      if (!fin) return violation('fragmented control frame (§5.5)');
      if (declared > 125n) return violation('control frame payload over 125 bytes (§5.5)');
      if (f.opcode === Opcode.close && declared === 1n) return violation('close frame with a 1-byte payload (§5.5.1)');
    }
    if (f.mask === false) return violation('unmasked client frame (§5.1)');
    // Over the WebSocket layer's ceiling the payload is never read: close 1009. protocol.md says so
    // twice, once with the error event (close-code table) and once without (per-connection limits):
    // the event is optional here.
    if (declared > BigInt(Number.MAX_SAFE_INTEGER)) return [this.tooLargeForWs(b, 'payload length over 2^53-1')];
    const soFar = b.state.fragment?.bytes ?? 0;
    if (!isControl(f.opcode) && Number(declared) + soFar > L.maxPayloadBytes && declared > 0n) {
      return [this.tooLargeForWs(b, `message over maxPayloadBytes (${L.maxPayloadBytes})`)];
    }
    if (declared !== BigInt(payload.length)) {
      // The header promises bytes that never come: the server waits. The runner ends the case.
      const o = this.copy(b);
      o.label.push('truncated frame: no answer; the connection ends when we end it');
      o.close = { codes: [], tcpOnly: true };
      return [o];
    }
    const nonMinimal = f.lengthForm !== undefined && f.lengthForm !== 'minimal' && !(f.lengthForm === '16' && payload.length > 125 && payload.length <= 0xffff) && !(f.lengthForm === '64' && payload.length > 0xffff);
    // §5.2 "the minimal number of bytes MUST be used": a server may refuse, or read it as meant.
    // (The refusal is copied before the frame is read into the branch.)
    const refused = nonMinimal ? this.protocolError(b, 'non-minimal length encoding (§5.2)') : undefined;
    const normal = this.wellFramed(b, f, payload, fin);
    return refused ? [...normal, refused] : normal;
  }

  private wellFramed(b: Outcome, f: FrameSpec, payload: Buffer, fin: boolean): Outcome[] {
    switch (f.opcode) {
      case Opcode.ping:
        b.pongs.push(payload);
        b.label.push(`ping (${payload.length} bytes): pong with the same payload (§5.5.2)`);
        return [b];
      case Opcode.pong:
        b.label.push('unsolicited pong: no answer (§5.5.3)');
        return [b];
      case Opcode.close:
        return [this.clientClose(b, payload)];
      default:
        break;
    }
    if (!fin || f.opcode === Opcode.continuation) {
      const o = b;
      const frag = o.state.fragment ?? { opcode: f.opcode, parts: [], bytes: 0, frames: 0 };
      frag.frames++;
      if (frag.frames > this.limits.maxFragments) {
        // protocol.md close codes: 1008 "a message in too many fragments".
        o.events.push({ type: 'error', codes: ['invalid_message'], id: ABSENT, closeCode: 1008 });
        o.close = { codes: [1008] };
        o.label.push(`fragment ${frag.frames} of one message, over ${this.limits.maxFragments}: error invalid_message + close 1008`);
        return [o];
      }
      frag.parts.push(payload);
      frag.bytes += payload.length;
      if (!fin) {
        o.state.fragment = frag;
        o.label.push(`fragment (${payload.length} bytes): nothing yet`);
        return [o];
      }
      o.state.fragment = undefined;
      return this.message(o, frag.opcode, Buffer.concat(frag.parts));
    }
    return this.message(b, f.opcode, payload);
  }

  /** A client close frame: the server answers with a close echoing the code (§5.5.1), no error event. */
  private clientClose(b: Outcome, payload: Buffer): Outcome {
    if (payload.length === 0) {
      const o = b;
      o.label.push('close without a code: the server closes back without a code');
      o.close = { codes: [null] };
      return o;
    }
    const code = payload.readUInt16BE(0);
    if (!validCloseCode(code)) return this.protocolError(b, `close code ${code} is not one a peer may send (§7.4)`);
    if (!isValidUtf8(payload.subarray(2))) return this.protocolError(b, 'close reason not UTF-8 (§5.5.1)', 1007);
    const o = b;
    o.label.push(`client close ${code}: the server closes back with ${code}`);
    o.close = { codes: [code] };
    return o;
  }

  /** A complete data message (text or binary), judged by the protocol. */
  private message(o: Outcome, opcode: number, data: Buffer): Outcome[] {
    const L = this.limits;
    if (data.length > L.maxFrameBytes) {
      o.events.push({ type: 'error', codes: ['frame_too_large'], id: ABSENT, closeCode: 1009 });
      o.close = { codes: [1009] };
      o.label.push(`message of ${data.length} bytes over maxFrameBytes: error frame_too_large + close 1009`);
      return [o];
    }
    if (opcode === Opcode.binary) return [this.binary(o, data)];
    if (!isValidUtf8(data)) return [this.strike(o, 'invalid_message', ABSENT, 'text frame not valid UTF-8')];
    let value: unknown;
    try {
      value = JSON.parse(data.toString('utf8'));
    } catch {
      return [this.strike(o, 'invalid_message', ABSENT, 'not JSON')];
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return [this.strike(o, 'invalid_message', ABSENT, 'not a JSON object')];
    const obj = value as Record<string, unknown>;
    const id = echo(obj);
    if (typeof obj.type !== 'string') return [this.strike(o, 'invalid_message', id, '"type" not a string')];
    if (!Object.prototype.hasOwnProperty.call(MESSAGE_NAMES, obj.type)) return [this.strike(o, 'unknown_type', id, `unknown type ${JSON.stringify(obj.type).slice(0, 40)}`)];
    const verdict: Verdict = messageVerdict(obj);
    if (verdict === 'invalid') return [this.strike(o, 'invalid_message', id, `${obj.type}: a field is wrong, missing or unknown`)];
    if (verdict === 'valid') return this.valid(o, obj, id);
    const valid = this.valid(this.copy(o), obj, id);
    return [...valid, this.strike(o, 'invalid_message', id, `${obj.type}: ambiguous by the docs, refused`)];
  }

  private binary(o: Outcome, data: Buffer): Outcome {
    const L = this.limits;
    if (!o.state.started) {
      o.events.push({ type: 'error', codes: ['session_not_started'], id: ABSENT });
      o.label.push('binary before session.start: error session_not_started');
      return o;
    }
    if (data.length === 0) return this.strike(o, 'invalid_message', ABSENT, 'empty binary frame');
    if (o.state.audioBytes + data.length > L.maxUtteranceBytes) {
      o.state.audioBytes = 0;
      o.state.audio = [];
      o.events.push({ type: 'error', codes: ['audio_too_large'], id: ABSENT });
      o.label.push('audio over maxUtteranceBytes: error audio_too_large, buffer cleared');
      return o;
    }
    o.state.audioBytes += data.length;
    o.state.audio.push(data);
    o.label.push(`audio appended (${o.state.audioBytes} bytes buffered): no answer`);
    return o;
  }

  /** A message valid by the docs, by type and session state. */
  private valid(o: Outcome, m: Record<string, unknown>, id: IdRule): Outcome[] {
    const s = o.state;
    const type = m.type as string;
    const err = (code: string, why: string): Outcome[] => {
      o.events.push({ type: 'error', codes: [code], id });
      o.label.push(why);
      return [o];
    };
    if (type === 'ping') {
      o.events.push({ type: 'pong', id });
      o.label.push('ping: pong');
      return [o];
    }
    if (type === 'session.start') {
      if (s.started) return err('session_already_started', 'second session.start: error session_already_started');
      if (m.resume_token !== undefined) return err('session_expired', 'unknown resume_token: error session_expired, no close');
      if (m.language === undefined) return [this.strike(o, 'invalid_message', id, 'session.start without language')];
      const refused = this.copy(o);
      o.events.push({ type: 'session.created', id });
      o.state.started = true;
      o.state.format = (m.audio as { format?: string } | undefined)?.format === 'wav' ? 'wav' : 'pcm16';
      o.label.push('session.start: session.created');
      refused.events.push({ type: 'error', codes: ['rate_limited'], id });
      refused.label.push('session.start over conversation.start: error rate_limited');
      return [o, refused];
    }
    if (!s.started) return err('session_not_started', `${type} before session.start: error session_not_started`);
    switch (type) {
      case 'input_audio.clear':
        s.audioBytes = 0;
        s.audio = [];
        o.label.push('input_audio.clear: no answer');
        return [o];
      case 'cancel':
        // CONTRACT §6: a cancel of a request this session knows answers request.cancelled (by that
        // request's id, so it is an answer of an accepted request); of any other, nothing at all.
        o.label.push('cancel: request.cancelled for a request in flight, else no answer');
        return [o];
      case 'session.end':
        o.events.push({ type: 'session.ended', id });
        o.close = { codes: [1000] };
        o.label.push('session.end: session.ended + close 1000');
        return [o];
      case 'input_audio.commit': {
        const assessment = m.purpose === 'assessment';
        if (assessment && m.reference_text === undefined) {
          // The docs do not say what happens to the buffer here; the server clears it, and the
          // model follows (a later commit's verdict depends on it).
          s.audioBytes = 0;
          s.audio = [];
          return [this.strike(o, 'invalid_message', id, 'assessment without reference_text')];
        }
        if (s.audioBytes === 0) return [this.strike(o, 'invalid_message', id, 'commit with an empty buffer')];
        const wav = s.format === 'wav' ? wavVerdict(Buffer.concat(s.audio)) : 'valid';
        // The commit takes the buffer whatever the verdict (a refused WAV is gone too).
        s.audioBytes = 0;
        s.audio = [];
        const unreadable = (x: Outcome): Outcome => this.strike(x, 'invalid_message', id, 'a committed WAV that cannot be read');
        if (wav === 'invalid') return [unreadable(o)];
        const kind = assessment ? 'assessment' : 'audio-turn';
        if (wav === 'valid') return this.accept(o, m.id as RequestId, id, kind);
        return [...this.accept(this.copy(o), m.id as RequestId, id, kind), unreadable(o)];
      }
      case 'turn.text':
      case 'translate': {
        const text = m.text as string;
        const points = [...text].length;
        const over = (n: number): boolean => n > this.limits.maxTextChars;
        if (over(text.length) && over(points)) return err('text_too_long', `text of ${points} characters: error text_too_long`);
        const kind = type === 'translate' ? 'translate' : 'turn';
        if (!over(text.length) && !over(points)) return this.accept(o, m.id as RequestId, id, kind);
        // "characters": UTF-16 code units or code points; either reading is allowed.
        const tooLong = this.copy(o);
        tooLong.events.push({ type: 'error', codes: ['text_too_long'], id });
        tooLong.label.push('text length ambiguous (code units vs code points): text_too_long');
        return [...this.accept(o, m.id as RequestId, id, kind), tooLong];
      }
      default:
        throw new Error(`model: unhandled type ${type}`);
    }
  }

  /** An accepted request (answers come later, by request_id), or a duplicate of one in flight. */
  private accept(o: Outcome, rawId: RequestId, id: IdRule, kind: RequestKind): Outcome[] {
    const key = idKey(rawId);
    if (o.state.stepIds.has(key)) return [this.strike(o, 'invalid_message', id, 'duplicate id of a request sent just before')];
    const fresh = (x: Outcome): Outcome => {
      x.state.requests.set(key, kind);
      x.state.stepIds.add(key);
      x.label.push(`${kind} accepted: answers by request_id`);
      return x;
    };
    if (!o.state.requests.has(key)) return [fresh(o)];
    // The same id was accepted in an earlier step: a duplicate if that request is still running.
    const dup = this.strike(this.copy(o), 'invalid_message', id, 'duplicate id of a request that may still be in flight');
    return [fresh(o), dup];
  }

  /**
   * An invalid message: `error` with its code, the connection stays; the 11th within 60 s gets
   * `error invalid_message` with close_code 1008, then close 1008 (protocol.md "invalid messages").
   */
  private strike(o: Outcome, code: 'invalid_message' | 'unknown_type', id: IdRule, why: string): Outcome {
    o.state.strikes++;
    if (o.state.strikes > this.limits.maxStrikes) {
      const idRule: IdRule = id.mode === 'absent' ? ABSENT : { mode: 'either', value: id.value };
      o.events.push({ type: 'error', codes: ['invalid_message'], id: idRule, closeCode: 1008 });
      o.close = { codes: [1008] };
      o.label.push(`${why}: strike ${o.state.strikes}, over ${this.limits.maxStrikes}: error invalid_message + close 1008`);
      return o;
    }
    o.events.push({ type: 'error', codes: [code], id });
    o.label.push(`${why}: error ${code} (strike ${o.state.strikes}), connection stays`);
    return o;
  }

  /**
   * A WebSocket protocol violation: `error protocol_error` ("the error event goes out just before
   * the close frame"), then close 1002 (1007 for a close reason that is not UTF-8).
   */
  private protocolError(b: Outcome, why: string, closeCode = 1002): Outcome {
    const o = this.copy(b);
    o.events.push({ type: 'error', codes: ['protocol_error'], id: ABSENT, closeCode });
    o.close = { codes: [closeCode] };
    o.label.push(`${why}: error protocol_error + close ${closeCode}`);
    return o;
  }

  private tooLargeForWs(b: Outcome, why: string): Outcome {
    const o = this.copy(b);
    o.events.push({ type: 'error', codes: ['frame_too_large'], id: ABSENT, closeCode: 1009, optional: true });
    o.close = { codes: [1009] };
    o.label.push(`${why}: close 1009 from the WebSocket layer (error frame_too_large before it, or none)`);
    return o;
  }

  private copy(b: Outcome): Outcome {
    return { state: cloneState(b.state), events: [...b.events], pongs: [...b.pongs], close: b.close, label: [...b.label] };
  }
}

const MESSAGE_NAMES: Record<string, true> = {
  'session.start': true,
  'input_audio.commit': true,
  'input_audio.clear': true,
  'turn.text': true,
  translate: true,
  cancel: true,
  ping: true,
  'session.end': true,
};

/**
 * Whether buffered audio is a WAV the gateway can read (protocol.md "Frames": "a RIFF/WAVE file of
 * 16-bit integer PCM, any chunks before `fmt ` or `data` allowed"). Not RIFF at all: invalid. A
 * chunk list that reaches a 16-bit PCM `fmt ` and then `data`: valid. Anything in between (a RIFF
 * the docs do not settle): ambiguous.
 */
export function wavVerdict(buf: Buffer): Verdict {
  if (buf.length < 12 || buf.toString('latin1', 0, 4) !== 'RIFF') return 'invalid';
  if (buf.toString('latin1', 8, 12) !== 'WAVE') return 'invalid';
  let fmtOk = false;
  for (let off = 12; off + 8 <= buf.length; ) {
    const id = buf.toString('latin1', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    if (id === 'fmt ') {
      if (size < 16 || off + 24 > buf.length) return 'ambiguous';
      const format = buf.readUInt16LE(off + 8);
      const channels = buf.readUInt16LE(off + 10);
      const bits = buf.readUInt16LE(off + 22);
      fmtOk = format === 1 && bits === 16 && channels >= 1 && buf.readUInt16LE(off + 20) === channels * 2 && buf.readUInt32LE(off + 12) >= 1;
      if (!fmtOk) return 'ambiguous';
    } else if (id === 'data') {
      return fmtOk ? 'valid' : 'ambiguous';
    }
    off += 8 + size + (size % 2);
  }
  return 'ambiguous';
}

/** Strict UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing over U+10FFFF). */
export function isValidUtf8(b: Buffer): boolean {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let min: number;
    let cp: number;
    if (c >= 0xc2 && c <= 0xdf) [n, min, cp] = [1, 0x80, c & 0x1f];
    else if (c >= 0xe0 && c <= 0xef) [n, min, cp] = [2, 0x800, c & 0x0f];
    else if (c >= 0xf0 && c <= 0xf4) [n, min, cp] = [3, 0x10000, c & 0x07];
    else return false;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

/** Kinds of the accepted requests, and the events that may answer them (protocol.md "Client → server"). */
export const ANSWERS: Readonly<Record<RequestKind, readonly string[]>> = {
  turn: ['request.queued', 'reply.text.delta', 'reply.text', 'reply.audio.start', 'reply.audio.end', 'turn.metrics', 'request.cancelled'],
  'audio-turn': ['request.queued', 'transcript', 'reply.text.delta', 'reply.text', 'reply.audio.start', 'reply.audio.end', 'turn.metrics', 'request.cancelled'],
  assessment: ['request.queued', 'assessment.result', 'request.cancelled'],
  translate: ['request.queued', 'translation.result', 'request.cancelled'],
};

/** Errors an accepted request may still get (quota refusals, upstream capacity); never internal_error. */
export const REQUEST_ERRORS: readonly string[] = ['rate_limited', 'quota_exhausted', 'upstream_busy'];

export { idKey };
