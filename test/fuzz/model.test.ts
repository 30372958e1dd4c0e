/**
 * The oracle checked on its own: its UTF-8 reading against Node's, its field rules (written from
 * docs/protocol.md) against the product's schemas on every mutation the fuzzer sends, its WAV
 * reading on the WAVs it generates, and the strike count that decides the 1008 close.
 */
import { isUtf8 } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { clientValidators, type ClientMessageType } from '../../src/protocol/messages.js';
import { messageVerdict } from './fields.js';
import { isValidUtf8, newState, wavVerdict } from './model.js';
import { IdSource, INVALID_UTF8, MUTATIONS, mutate, wavFile } from './payloads.js';
import { Rng } from './random.js';
import { fuzzModel } from './runner.js';
import { Opcode } from './wire.js';

const text = (s: string) => ({ opcode: Opcode.text, payload: Buffer.from(s) });

describe('the oracle', () => {
  it('reads UTF-8 as Node does (RFC 3629), on the invalid sequences and on random bytes', () => {
    for (const seq of INVALID_UTF8) expect(isValidUtf8(Buffer.from([0x61, ...seq, 0x62]))).toBe(false);
    const rng = new Rng(1);
    for (let i = 0; i < 2000; i++) {
      const b = i % 2 ? rng.bytes(rng.int(0, 16)) : Buffer.from(String.fromCodePoint(...Array.from({ length: 8 }, () => rng.int(0, 0x10ffff))).replace(/[\ud800-\udfff]/g, 'x'));
      expect(isValidUtf8(b)).toBe(isUtf8(b));
    }
  });

  it('agrees with the protocol schemas on every field mutation it sends, where the docs settle the value', () => {
    const rng = new Rng(2);
    let settled = 0;
    for (const m of MUTATIONS) {
      const obj = JSON.parse(mutate(rng, m, new IdSource(rng))) as Record<string, unknown>;
      const verdict = messageVerdict(obj);
      if (verdict === 'ambiguous' || typeof obj.type !== 'string' || !(obj.type in clientValidators)) continue;
      settled++;
      expect({ mutation: `${m.type}.${m.field} = ${m.wrong.label}`, valid: verdict === 'valid' }).toEqual({
        mutation: `${m.type}.${m.field} = ${m.wrong.label}`,
        valid: clientValidators[obj.type as ClientMessageType].Check(obj),
      });
    }
    expect(settled).toBeGreaterThan(200);
  });

  it('reads the WAVs it generates as readable and random bytes as not', () => {
    const rng = new Rng(3);
    for (let i = 0; i < 200; i++) {
      expect(wavVerdict(wavFile(rng))).toBe('valid');
      expect(wavVerdict(rng.bytes(rng.int(0, 200)))).toBe('invalid');
    }
  });

  it('tolerates 10 invalid messages and closes with 1008 on the 11th', () => {
    const model = fuzzModel();
    let state = newState();
    for (let i = 1; i <= 10; i++) {
      const [o] = model.step(state, [text('not json')]);
      expect(o!.close).toBeUndefined();
      expect(o!.events).toEqual([{ type: 'error', codes: ['invalid_message'], id: { mode: 'absent' } }]);
      state = o!.state;
    }
    const [last] = model.step(state, [text('{"type":"dance","id":"x"}')]);
    expect(last!.close).toEqual({ codes: [1008] });
    expect(last!.events[0]).toMatchObject({ type: 'error', codes: ['invalid_message'], closeCode: 1008 });
  });

  it('echoes a valid id, and never an invalid one', () => {
    const model = fuzzModel();
    const [valid] = model.step(newState(), [text('{"type":"turn.text","id":"r-7","text":false}')]);
    const [empty] = model.step(newState(), [text('{"type":"turn.text","id":"","text":false}')]);
    expect(valid!.events[0]!.id).toEqual({ mode: 'equal', value: 'r-7' });
    expect(empty!.events[0]!.id).toEqual({ mode: 'absent' });
  });
});
