/**
 * The hand-made frames are what every frame-level verdict rests on: a wrong length form or mask
 * would turn a valid frame into a violation (or the reverse) and the oracle would judge the wrong
 * input. Checked against `ws`'s own receiver, a conforming reader that is not ours.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { closePayload, encodeFrame, FrameReader, Opcode } from './wire.js';

/** ws's frame reader (exported by ws, not declared by @types/ws). */
interface WsReceiver {
  on(event: 'message', l: (data: Buffer) => void): void;
  on(event: 'error', l: (err: Error & { code: string; [k: symbol]: unknown }) => void): void;
  write(chunk: Buffer): boolean;
}
const { Receiver } = createRequire(import.meta.url)('ws') as {
  Receiver: new (opts: { isServer: boolean; maxPayload: number; skipUTF8Validation: boolean }) => WsReceiver;
};

/** What ws's server-side receiver makes of some bytes: the messages, or the error and its close code. */
async function receive(bytes: Buffer): Promise<{ messages: Buffer[]; error?: { code: string; status: number } }> {
  const messages: Buffer[] = [];
  let error: { code: string; status: number } | undefined;
  const r = new Receiver({ isServer: true, maxPayload: 1 << 20, skipUTF8Validation: true });
  r.on('message', (data) => messages.push(Buffer.from(data)));
  r.on('error', (err) => {
    const status = Object.getOwnPropertySymbols(err).map((s) => err[s]).find((v) => typeof v === 'number') as number;
    error = { code: err.code, status };
  });
  r.write(bytes);
  // The receiver is a Writable: its 'error' comes on a later tick.
  await new Promise((resolve) => setImmediate(resolve));
  return error ? { messages, error } : { messages };
}

describe('encodeFrame', () => {
  it.each([0, 1, 125, 126, 65535, 65536, 200_000])('a masked text frame of %i bytes reads back as sent', async (n) => {
    const payload = Buffer.alloc(n, 0x61);
    expect((await receive(encodeFrame({ opcode: Opcode.text, payload }))).messages).toEqual([payload]);
  });

  it('writes the 16- and 64-bit length forms when told, which a lenient reader still reads', async () => {
    const payload = Buffer.from('{"type":"ping"}');
    const f16 = encodeFrame({ opcode: Opcode.text, payload, lengthForm: '16', mask: Buffer.alloc(4) });
    const f64 = encodeFrame({ opcode: Opcode.text, payload, lengthForm: '64', mask: Buffer.alloc(4) });
    expect(f16.subarray(0, 4)).toEqual(Buffer.from([0x81, 0x80 | 126, 0, payload.length]));
    expect(f64[1]).toBe(0x80 | 127);
    expect(f64.readBigUInt64BE(2)).toBe(BigInt(payload.length));
    expect((await receive(f16)).messages).toEqual([payload]);
    expect((await receive(f64)).messages).toEqual([payload]);
  });

  it.each([
    { name: 'RSV bits', spec: { opcode: Opcode.text, rsv: 4 }, status: 1002 },
    { name: 'a reserved opcode', spec: { opcode: 0x3 }, status: 1002 },
    { name: 'no mask', spec: { opcode: Opcode.text, mask: false as const }, status: 1002 },
    { name: 'a fragmented ping', spec: { opcode: Opcode.ping, fin: false }, status: 1002 },
    { name: 'a ping over 125 bytes', spec: { opcode: Opcode.ping, payload: Buffer.alloc(126) }, status: 1002 },
    { name: 'a continuation with no message', spec: { opcode: Opcode.continuation }, status: 1002 },
    { name: 'a length over 2^53', spec: { opcode: Opcode.binary, declaredLength: 2n ** 63n }, status: 1009 },
  ])('$name is refused by a conforming reader with $status', async ({ spec, status }) => {
    expect((await receive(encodeFrame({ payload: Buffer.from('x'), ...spec }))).error?.status).toBe(status);
  });

  it('fragments reassemble into one message', async () => {
    const bytes = Buffer.concat([
      encodeFrame({ opcode: Opcode.text, payload: Buffer.from('{"ty'), fin: false }),
      encodeFrame({ opcode: Opcode.ping, payload: Buffer.from('p') }),
      encodeFrame({ opcode: Opcode.continuation, payload: Buffer.from('pe":"ping"}') }),
    ]);
    expect((await receive(bytes)).messages.map(String)).toEqual(['{"type":"ping"}']);
  });
});

describe('FrameReader', () => {
  it('reads unmasked server frames split anywhere, and a close code', () => {
    const server = Buffer.concat([
      Buffer.from([0x81, 5]),
      Buffer.from('hello'),
      Buffer.from([0x82, 126, 0x01, 0x00]),
      Buffer.alloc(256, 7),
      Buffer.from([0x88, 2]),
      closePayload(1008),
    ]);
    const reader = new FrameReader();
    const frames = [...server].flatMap((_, i) => reader.push(server.subarray(i, i + 1)));
    expect(frames.map((f) => [f.opcode, f.payload.length])).toEqual([
      [Opcode.text, 5],
      [Opcode.binary, 256],
      [Opcode.close, 2],
    ]);
    expect(frames[2]!.payload.readUInt16BE(0)).toBe(1008);
    expect(reader.problem).toBeUndefined();
  });

  it('reports a masked server frame (RFC 6455 §5.1)', () => {
    const reader = new FrameReader();
    reader.push(encodeFrame({ opcode: Opcode.text, payload: Buffer.from('x') }));
    expect(reader.problem).toContain('masked');
  });
});
