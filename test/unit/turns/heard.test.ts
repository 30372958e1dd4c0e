import { describe, expect, it } from 'vitest';
import { heardText, type SpokenPart } from '../../../src/turns/heard.js';

// "Hola. " (0-6) alone, then "Me llamo Ana. Vivo en Madrid." (6-35) in one request.
const reply = 'Hola. Me llamo Ana. Vivo en Madrid.';
const parts = (secondMs: number, secondComplete = true): SpokenPart[] => [
  { start: 0, end: 6, sentences: [{ index: 0, start: 0, end: 6 }], audioMs: 600, complete: true },
  {
    start: 6,
    end: 35,
    sentences: [
      { index: 1, start: 6, end: 20 },
      { index: 2, start: 20, end: 35 },
    ],
    audioMs: secondMs,
    complete: secondComplete,
  },
];

describe('heardText', () => {
  it('keeps the sentences whose audio started before played_ms (strictly), at each boundary', () => {
    // Second request: 2,900 ms for 29 characters, so "Vivo…" starts at 600 + 2900 × 14/29 = 2000 ms.
    expect(heardText(reply, parts(2900), 0)).toBe('');
    expect(heardText(reply, parts(2900), 1)).toBe('Hola.');
    expect(heardText(reply, parts(2900), 600)).toBe('Hola.');
    expect(heardText(reply, parts(2900), 601)).toBe('Hola. Me llamo Ana.');
    expect(heardText(reply, parts(2900), 1999)).toBe('Hola. Me llamo Ana.');
    expect(heardText(reply, parts(2900), 2000)).toBe('Hola. Me llamo Ana.');
    expect(heardText(reply, parts(2900), 2001)).toBe('Hola. Me llamo Ana. Vivo en Madrid.');
  });

  it('clamps played_ms to the audio sent, and without it keeps what started being sent', () => {
    expect(heardText(reply, parts(2900), 1e9)).toBe('Hola. Me llamo Ana. Vivo en Madrid.');
    expect(heardText(reply, parts(2900), -5)).toBe('');
    expect(heardText(reply, parts(2900), undefined)).toBe('Hola. Me llamo Ana. Vivo en Madrid.');
  });

  it('does not keep a sentence of a request whose audio has not reached it yet', () => {
    // Only 300 ms of the second request's audio sent: at the first request's rate (100 ms a
    // character) the request will last 2,900 ms, so "Vivo…" (at 1,400 ms into it) was not sent.
    expect(heardText(reply, parts(300, false), undefined)).toBe('Hola. Me llamo Ana.');
    expect(heardText(reply, parts(300, false), 1e9)).toBe('Hola. Me llamo Ana.');
  });

  it('nothing spoken, nothing heard', () => {
    expect(heardText(reply, [], undefined)).toBe('');
  });
});
