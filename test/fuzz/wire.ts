/**
 * WebSocket frames written and read by hand (RFC 6455 §5.2). `ws` refuses to send a malformed
 * frame, and no well-kept library sends broken frames on purpose, so the frame-level attacks need
 * their own encoder: every bit of the header is the caller's to set, including the ones a
 * conforming client never sets (RSV bits, reserved opcodes, no mask, non-minimal lengths).
 */
import { randomBytes } from 'node:crypto';

export const Opcode = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

export interface FrameSpec {
  readonly opcode: number;
  readonly payload?: Buffer;
  /** FIN bit (default true). */
  readonly fin?: boolean;
  /** RSV1-3 as a 3-bit number (default 0). */
  readonly rsv?: number;
  /** Mask key; `false` sends the frame unmasked (a protocol error from a client, §5.1). Default: random. */
  readonly mask?: Buffer | false;
  /** Length encoding: 'minimal' (default, §5.2 "the minimal number of bytes MUST be used"), or forced 16/64-bit. */
  readonly lengthForm?: 'minimal' | '16' | '64';
  /** A length to declare instead of the payload's (a lie: the header promises more or less than follows). */
  readonly declaredLength?: bigint;
}

/** Encodes one client frame exactly as specified, valid or not. */
export function encodeFrame(spec: FrameSpec): Buffer {
  const payload = spec.payload ?? Buffer.alloc(0);
  const fin = spec.fin ?? true;
  const rsv = (spec.rsv ?? 0) & 0x7;
  const mask = spec.mask === undefined ? randomBytes(4) : spec.mask;
  const len = spec.declaredLength ?? BigInt(payload.length);
  const form = spec.lengthForm ?? 'minimal';
  const head: number[] = [(fin ? 0x80 : 0) | (rsv << 4) | (spec.opcode & 0x0f)];
  const maskBit = mask ? 0x80 : 0;
  let ext = Buffer.alloc(0);
  if (form === '64' || (form === 'minimal' && len > 0xffffn)) {
    head.push(maskBit | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(len);
  } else if (form === '16' || (form === 'minimal' && len > 125n)) {
    head.push(maskBit | 126);
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(Number(len & 0xffffn));
  } else {
    head.push(maskBit | Number(len));
  }
  const body = Buffer.from(payload);
  if (mask) for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ mask[i & 3]!;
  return Buffer.concat([Buffer.from(head), ext, mask ? mask : Buffer.alloc(0), body]);
}

/** The payload of a close frame: a status code and a reason (RFC 6455 §5.5.1). */
export function closePayload(code: number, reason: Buffer | string = ''): Buffer {
  const r = typeof reason === 'string' ? Buffer.from(reason) : reason;
  const out = Buffer.alloc(2 + r.length);
  out.writeUInt16BE(code & 0xffff);
  r.copy(out, 2);
  return out;
}

export interface ServerFrame {
  readonly fin: boolean;
  readonly opcode: number;
  readonly payload: Buffer;
}

/**
 * Incremental reader of the frames a server sends (unmasked, §5.1). Feed it bytes as they arrive;
 * it returns every complete frame. A server frame that is masked or malformed is a finding of its
 * own, reported through `problem`.
 */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  problem: string | undefined;

  push(chunk: Buffer): ServerFrame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: ServerFrame[] = [];
    for (;;) {
      if (this.buf.length < 2) return out;
      const b0 = this.buf[0]!;
      const b1 = this.buf[1]!;
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return out;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return out;
        const big = this.buf.readBigUInt64BE(2);
        if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
          this.problem = `server frame declares ${big} bytes`;
          return out;
        }
        len = Number(big);
        off = 10;
      }
      if ((b0 & 0x70) !== 0) this.problem = 'server frame has RSV bits set';
      const masked = (b1 & 0x80) !== 0;
      if (masked) {
        this.problem = 'server frame is masked (RFC 6455 §5.1: a server MUST NOT mask)';
        off += 4;
      }
      if (this.buf.length < off + len) return out;
      let payload = this.buf.subarray(off, off + len);
      if (masked) {
        payload = Buffer.from(payload);
        for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ this.buf[off - 4 + (i & 3)]!;
      }
      out.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload });
      this.buf = this.buf.subarray(off + len);
    }
  }
}
