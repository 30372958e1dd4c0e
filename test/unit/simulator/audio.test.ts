import { describe, expect, it } from 'vitest';
import { decodeWav, encodeWav } from '../../../src/audio/wav.js';
import { durationMs, frameRms, pcm16Stats, toMono } from '../../../src/simulator/signal.js';
import { synthesizeSpeech } from '../../../src/simulator/speech-synth.js';

function pcmOf(samples: readonly number[]): Buffer {
  const b = Buffer.alloc(samples.length * 2);
  samples.forEach((s, i) => b.writeInt16LE(s, i * 2));
  return b;
}

function sine(freq: number, amplitude: number, sampleRate: number, seconds: number): Buffer {
  const n = Math.round(sampleRate * seconds);
  return pcmOf(Array.from({ length: n }, (_, i) => Math.round(amplitude * 32767 * Math.sin((2 * Math.PI * freq * i) / sampleRate))));
}

function chunk(id: string, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.write(id, 0, 'latin1');
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body, body.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]);
}

function fmtBody(format: number, channels: number, sampleRate: number, bits: number, extra?: Buffer): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(format, 0);
  b.writeUInt16LE(channels, 2);
  b.writeUInt32LE(sampleRate, 4);
  b.writeUInt32LE((sampleRate * channels * bits) / 8, 8);
  b.writeUInt16LE((channels * bits) / 8, 12);
  b.writeUInt16LE(bits, 14);
  return extra ? Buffer.concat([b, extra]) : b;
}

function riff(...chunks: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.from('WAVE', 'latin1'), ...chunks]);
  const head = Buffer.alloc(8);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body]);
}

/** Fundamental frequency of a window by autocorrelation (60-450 Hz). */
function pitchOf(pcm: Buffer, sampleRate: number, startSample: number, length: number): number {
  const x = Array.from({ length }, (_, i) => pcm.readInt16LE((startSample + i) * 2));
  let bestLag = 0;
  let best = -Infinity;
  for (let lag = Math.floor(sampleRate / 450); lag <= Math.ceil(sampleRate / 60); lag++) {
    let sum = 0;
    for (let i = 0; i + lag < length; i++) sum += x[i]! * x[i + lag]!;
    sum /= length - lag;
    if (sum > best) {
      best = sum;
      bestLag = lag;
    }
  }
  return sampleRate / bestLag;
}

/** Pitch over the last `ms` of voiced sound (frames above 0.05 RMS) of synthesized speech. */
function finalPitch(pcm: Buffer, sampleRate: number, ms = 120): number {
  const frames = frameRms(pcm, sampleRate, 10);
  let last = frames.length - 1;
  while (last > 0 && frames[last]! < 0.05) last--;
  const len = Math.round((sampleRate * ms) / 1000);
  const end = Math.round(((last + 1) * sampleRate) / 100);
  return pitchOf(pcm, sampleRate, Math.max(0, end - len), len);
}

describe('encodeWav / decodeWav', () => {
  it('writes a canonical 44-byte PCM header', () => {
    const pcm = pcmOf([0, 1000, -1000, 32767, -32768]);
    const wav = encodeWav(pcm, 16000);
    expect(wav.length).toBe(44 + 10);
    expect(wav.toString('latin1', 0, 4)).toBe('RIFF');
    expect(wav.readUInt32LE(4)).toBe(36 + 10);
    expect(wav.toString('latin1', 8, 16)).toBe('WAVEfmt ');
    expect(wav.readUInt16LE(20)).toBe(1); // PCM
    expect(wav.readUInt16LE(22)).toBe(1); // mono
    expect(wav.readUInt32LE(24)).toBe(16000);
    expect(wav.readUInt32LE(28)).toBe(32000); // byte rate
    expect(wav.readUInt16LE(32)).toBe(2); // block align
    expect(wav.readUInt16LE(34)).toBe(16);
    expect(wav.toString('latin1', 36, 40)).toBe('data');
    expect(wav.readUInt32LE(40)).toBe(10);
  });

  it('round-trips samples byte for byte, mono and stereo', () => {
    const pcm = sine(440, 0.8, 22050, 0.2); // 4410 samples: whole stereo frames too
    const mono = decodeWav(encodeWav(pcm, 22050));
    expect(mono.sampleRate).toBe(22050);
    expect(mono.channels).toBe(1);
    expect(mono.pcm16.equals(pcm)).toBe(true);

    const stereo = decodeWav(encodeWav(pcm, 48000, 2));
    expect(stereo.sampleRate).toBe(48000);
    expect(stereo.channels).toBe(2);
    expect(stereo.pcm16.equals(pcm)).toBe(true);

    const wav = encodeWav(pcm, 8000);
    const again = decodeWav(wav);
    expect(encodeWav(again.pcm16, again.sampleRate, again.channels).equals(wav)).toBe(true);
  });

  it('finds fmt and data past other chunks, honouring odd-size padding', () => {
    const pcm = pcmOf([1, 2, 3, -4]);
    const wav = riff(chunk('JUNK', Buffer.from('xyz')), chunk('fmt ', fmtBody(1, 1, 11025, 16)), chunk('LIST', Buffer.from('INFOabcde')), chunk('data', pcm));
    const out = decodeWav(wav);
    expect(out).toMatchObject({ sampleRate: 11025, channels: 1 });
    expect(out.pcm16.equals(pcm)).toBe(true);
  });

  it('accepts WAVE_FORMAT_EXTENSIBLE with a PCM sub-format', () => {
    const ext = Buffer.alloc(24);
    ext.writeUInt16LE(22, 0); // cbSize
    ext.writeUInt16LE(16, 2); // valid bits
    ext.writeUInt32LE(3, 4); // channel mask
    ext.writeUInt16LE(1, 8); // sub-format GUID starts with 0x0001 (PCM)
    const pcm = pcmOf([5, -5, 6, -6]);
    const out = decodeWav(riff(chunk('fmt ', fmtBody(0xfffe, 2, 44100, 16, ext)), chunk('data', pcm)));
    expect(out).toMatchObject({ sampleRate: 44100, channels: 2 });
    expect(out.pcm16.equals(pcm)).toBe(true);
  });

  it('reads a streamed data chunk whose size runs past the end', () => {
    const pcm = pcmOf([7, 8, 9]);
    const wav = encodeWav(pcm, 16000);
    wav.writeUInt32LE(0xffffffff, 40);
    expect(decodeWav(wav).pcm16.equals(pcm)).toBe(true);
  });

  it('rejects anything else with a message naming the problem', () => {
    expect(() => decodeWav(Buffer.from('definitely not a wav file at all'))).toThrow(/Invalid WAV: missing "RIFF" signature/);
    expect(() => decodeWav(Buffer.alloc(5))).toThrow(/too short/);
    const notWave = encodeWav(pcmOf([1]), 8000);
    notWave.write('AVI ', 8, 'latin1');
    expect(() => decodeWav(notWave)).toThrow(/not of type "WAVE"/);
    expect(() => decodeWav(riff(chunk('fmt ', fmtBody(1, 1, 8000, 8)), chunk('data', Buffer.alloc(4))))).toThrow(/8-bit samples \(only 16-bit PCM/);
    expect(() => decodeWav(riff(chunk('fmt ', fmtBody(3, 1, 8000, 32)), chunk('data', Buffer.alloc(8))))).toThrow(/audio format 0x0003/);
    expect(() => decodeWav(riff(chunk('fmt ', fmtBody(1, 1, 8000, 16))))).toThrow(/no "data" chunk/);
    expect(() => decodeWav(riff(chunk('data', Buffer.alloc(4))))).toThrow(/"data" chunk before "fmt " chunk/);
    expect(() => decodeWav(riff(chunk('LIST', Buffer.alloc(4))))).toThrow(/no "fmt " chunk/);
  });
});

describe('durationMs / toMono', () => {
  it('computes playing time from bytes, rate and channels', () => {
    expect(durationMs(48000, 24000)).toBe(1000);
    expect(durationMs(48000, 24000, 2)).toBe(500);
    expect(durationMs(3200, 16000)).toBe(100);
    expect(durationMs(0, 16000)).toBe(0);
  });

  it('averages interleaved channels', () => {
    expect([...toMono(pcmOf([100, 300, -200, -400]), 2).values()]).toEqual([...pcmOf([200, -300]).values()]);
  });
});

describe('pcm16Stats', () => {
  it('reports zeros for silence', () => {
    const s = pcm16Stats(Buffer.alloc(16000), 8000);
    expect(s).toMatchObject({ samples: 8000, rms: 0, peak: 0, zcr: 0, durationMs: 1000, voicedMs: 0 });
  });

  it('measures a sine: rms, peak, zero crossings, voiced time', () => {
    const s = pcm16Stats(sine(400, 0.5, 16000, 1), 16000);
    expect(s.samples).toBe(16000);
    expect(s.rms).toBeCloseTo(0.5 / Math.SQRT2, 2);
    expect(s.peak).toBeCloseTo(0.5, 2);
    expect(s.zcr).toBeCloseTo(800 / 16000, 2);
    expect(s.durationMs).toBe(1000);
    expect(s.voicedMs).toBe(1000);
    expect(s.speechStartMs).toBe(0);
    expect(s.speechEndMs).toBe(1000);
  });

  it('locates speech between silences', () => {
    const pcm = Buffer.concat([Buffer.alloc(8000), sine(200, 0.3, 8000, 0.5), Buffer.alloc(8000)]);
    const s = pcm16Stats(pcm, 8000);
    expect(s.speechStartMs).toBe(500);
    expect(s.speechEndMs).toBe(1000);
    expect(s.voicedMs).toBe(500);
  });

  it('fingerprints content stably', () => {
    const a = sine(300, 0.4, 8000, 0.2);
    const b = sine(301, 0.4, 8000, 0.2);
    expect(pcm16Stats(a).fingerprint).toBe(pcm16Stats(Buffer.from(a)).fingerprint);
    expect(pcm16Stats(a).fingerprint).not.toBe(pcm16Stats(b).fingerprint);
  });
});

describe('synthesizeSpeech', () => {
  const sentence = 'Hello! I would like a coffee, please. Where is the train station?';

  it('is clearly audible, never clipped', () => {
    const s = pcm16Stats(synthesizeSpeech(sentence, {}), 24000);
    expect(s.rms).toBeGreaterThan(0.05);
    expect(s.peak).toBeLessThan(0.95);
    expect(s.peak).toBeGreaterThan(0.5);
  });

  it('lasts about as long as reading the text at ~13.5 characters per second', () => {
    for (const text of [sentence, 'Yesterday I went to the market with my friends and we bought fresh bread.', 'Quisiera un café con leche, por favor.']) {
      const ms = durationMs(synthesizeSpeech(text, { language: text.startsWith('Q') ? 'es' : 'en' }).length, 24000);
      const expected = (text.length / 13.5) * 1000;
      expect(ms).toBeGreaterThan(expected * 0.6);
      expect(ms).toBeLessThan(expected * 1.4);
    }
  });

  it('has pauses and loud syllables: 20 ms frame energy varies', () => {
    const frames = frameRms(synthesizeSpeech(sentence, {}), 24000, 20);
    const quiet = frames.filter((r) => r < 0.005).length;
    const loud = frames.filter((r) => r > 0.15).length;
    expect(quiet / frames.length).toBeGreaterThan(0.1);
    expect(loud / frames.length).toBeGreaterThan(0.15);
    expect(Math.max(...frames)).toBeGreaterThan(0.25);
  });

  it('starts and ends in silence (no clicks at the edges)', () => {
    const pcm = synthesizeSpeech('Good morning.', {});
    const n = pcm.length / 2;
    for (let i = 0; i < 240; i++) {
      expect(Math.abs(pcm.readInt16LE(i * 2))).toBeLessThan(50);
      expect(Math.abs(pcm.readInt16LE((n - 1 - i) * 2))).toBeLessThan(50);
    }
  });

  it('is deterministic and depends on text, voice and language', () => {
    const a = synthesizeSpeech(sentence, { voice: 'alloy' });
    expect(synthesizeSpeech(sentence, { voice: 'alloy' }).equals(a)).toBe(true);
    expect(synthesizeSpeech(`${sentence} Thanks.`, { voice: 'alloy' }).equals(a)).toBe(false);
    expect(synthesizeSpeech(sentence, { voice: 'echo' }).equals(a)).toBe(false);
    expect(synthesizeSpeech(sentence, { voice: 'alloy', language: 'fr' }).equals(a)).toBe(false);
  });

  it('honours the sample rate (default 24000)', () => {
    const d24 = synthesizeSpeech(sentence, {});
    const d16 = synthesizeSpeech(sentence, { sampleRate: 16000 });
    const d8 = synthesizeSpeech(sentence, { sampleRate: 8000 });
    expect(d24.equals(synthesizeSpeech(sentence, { sampleRate: 24000 }))).toBe(true);
    expect(d16.length / d24.length).toBeCloseTo(16000 / 24000, 2);
    expect(d8.length / d24.length).toBeCloseTo(8000 / 24000, 2);
    expect(pcm16Stats(d8).rms).toBeGreaterThan(0.05);
  });

  it('voice names set the pitch: nova is higher than echo', () => {
    const text = 'Aaaa.';
    const nova = synthesizeSpeech(text, { voice: 'nova' });
    const echo = synthesizeSpeech(text, { voice: 'echo' });
    const mid = (b: Buffer): number => Math.floor(b.length / 4) - 1200;
    const fNova = pitchOf(nova, 24000, mid(nova), 2400);
    const fEcho = pitchOf(echo, 24000, mid(echo), 2400);
    expect(fNova).toBeGreaterThan(160);
    expect(fEcho).toBeLessThan(140);
    expect(fNova / fEcho).toBeGreaterThan(1.5);
  });

  it('rises at a question and falls at a statement', () => {
    const question = finalPitch(synthesizeSpeech('Are you ready now?', { voice: 'alloy' }), 24000);
    const statement = finalPitch(synthesizeSpeech('You are ready now.', { voice: 'alloy' }), 24000);
    expect(question).toBeGreaterThan(statement * 1.25);
  });

  it('speaks every supported script and returns nothing for empty text', () => {
    for (const [language, text] of [['ja', 'コーヒーをください。'], ['de', 'Grüß Gott, wie geht’s?'], ['ru', 'Привет, как дела?'], ['pt', 'Não, obrigado.']] as const) {
      expect(pcm16Stats(synthesizeSpeech(text, { language })).rms, language).toBeGreaterThan(0.05);
    }
    expect(synthesizeSpeech('', {}).length).toBe(0);
    expect(synthesizeSpeech('  ... ?! ', {}).length).toBe(0);
  });

  it('rejects an unusable sample rate', () => {
    expect(() => synthesizeSpeech('hi', { sampleRate: 0 })).toThrow(/sample rate/);
  });
});
