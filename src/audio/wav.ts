/**
 * The WAV codec (RIFF/WAVE, 16-bit integer PCM): encoding what the gateway sends upstream, and the
 * one reading of a learner's WAV that decides both what is billed and what is transcribed.
 */

const WAVE_FORMAT_PCM = 0x0001;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;

/** Wraps PCM16 little-endian samples in a canonical 44-byte RIFF/WAVE header (a trailing partial frame is dropped). */
export function encodeWav(pcm16: Buffer, sampleRate: number, channels = 1): Buffer {
  if (!Number.isInteger(sampleRate) || sampleRate <= 0) throw new Error(`encodeWav: invalid sample rate ${sampleRate}`);
  if (!Number.isInteger(channels) || channels <= 0 || channels > 0xffff) throw new Error(`encodeWav: invalid channel count ${channels}`);
  const blockAlign = channels * 2;
  const dataBytes = pcm16.length - (pcm16.length % blockAlign);
  const out = Buffer.alloc(44 + dataBytes);
  out.write('RIFF', 0, 'latin1');
  out.writeUInt32LE(36 + dataBytes, 4);
  out.write('WAVE', 8, 'latin1');
  out.write('fmt ', 12, 'latin1');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(WAVE_FORMAT_PCM, 20);
  out.writeUInt16LE(channels, 22);
  out.writeUInt32LE(sampleRate, 24);
  out.writeUInt32LE(sampleRate * blockAlign, 28);
  out.writeUInt16LE(blockAlign, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36, 'latin1');
  out.writeUInt32LE(dataBytes, 40);
  pcm16.copy(out, 44, 0, dataBytes);
  return out;
}

/** Where a WAV file's samples are, read from its chunk list (see {@link readWavHeader}). */
export interface WavLayout {
  readonly sampleRate: number;
  readonly channels: number;
  /** Offset of the first sample byte. */
  readonly dataOffset: number;
  /** Usable sample bytes (whole frames, clipped to the end of the buffer). */
  readonly dataBytes: number;
}

/**
 * Reads the layout of a RIFF/WAVE file holding 16-bit integer PCM (plain or
 * WAVE_FORMAT_EXTENSIBLE). Walks the chunk list, so `LIST`/`fact`/`JUNK`/other chunks before
 * `fmt ` or `data` are skipped. A `data` chunk whose declared size runs past the end (streamed
 * WAVs write 0 or 0xFFFFFFFF) is read up to the end. Throws an Error naming the problem for
 * anything else. The one parser of the project: what a learner is billed for (the session) and what
 * is transcribed (the upstream) are decided by the same reading.
 */
export function readWavHeader(buf: Buffer): WavLayout {
  if (buf.length < 12) throw new Error(`Invalid WAV: ${buf.length} bytes is too short for a RIFF header`);
  const riff = buf.toString('latin1', 0, 4);
  if (riff !== 'RIFF') {
    if (riff === 'RIFX' || riff === 'RF64') throw new Error(`Unsupported WAV: ${riff} files are not supported (need little-endian RIFF)`);
    throw new Error('Invalid WAV: missing "RIFF" signature');
  }
  if (buf.toString('latin1', 8, 12) !== 'WAVE') throw new Error('Invalid WAV: RIFF file is not of type "WAVE"');

  let fmt: { channels: number; sampleRate: number; blockAlign: number } | undefined;
  let offset = 12;
  while (offset + 8 <= buf.length) {
    const id = buf.toString('latin1', offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > buf.length) throw new Error(`Invalid WAV: "fmt " chunk is truncated (${size} bytes)`);
      let format = buf.readUInt16LE(body);
      const channels = buf.readUInt16LE(body + 2);
      const sampleRate = buf.readUInt32LE(body + 4);
      const blockAlign = buf.readUInt16LE(body + 12);
      const bits = buf.readUInt16LE(body + 14);
      if (format === WAVE_FORMAT_EXTENSIBLE && size >= 40 && body + 26 <= buf.length) format = buf.readUInt16LE(body + 24);
      if (format !== WAVE_FORMAT_PCM) throw new Error(`Unsupported WAV: audio format 0x${format.toString(16).padStart(4, '0')} (only integer PCM is supported)`);
      if (bits !== 16) throw new Error(`Unsupported WAV: ${bits}-bit samples (only 16-bit PCM is supported)`);
      if (channels < 1) throw new Error('Invalid WAV: 0 channels');
      if (sampleRate < 1) throw new Error('Invalid WAV: sample rate 0');
      if (blockAlign !== channels * 2) throw new Error(`Invalid WAV: block align ${blockAlign} does not match ${channels} channel(s) of 16-bit samples`);
      fmt = { channels, sampleRate, blockAlign };
    } else if (id === 'data') {
      if (!fmt) throw new Error('Invalid WAV: "data" chunk before "fmt " chunk');
      const end = Math.min(buf.length, body + size);
      const usable = end - body - ((end - body) % fmt.blockAlign);
      return { sampleRate: fmt.sampleRate, channels: fmt.channels, dataOffset: body, dataBytes: usable };
    }
    offset = body + size + (size % 2); // chunks are word-aligned
  }
  throw new Error(fmt ? 'Invalid WAV: no "data" chunk' : 'Invalid WAV: no "fmt " chunk');
}

/** Decodes a WAV file (see {@link readWavHeader}); returns a copy of the samples. */
export function decodeWav(buf: Buffer): { pcm16: Buffer; sampleRate: number; channels: number } {
  const w = readWavHeader(buf);
  return { pcm16: Buffer.from(buf.subarray(w.dataOffset, w.dataOffset + w.dataBytes)), sampleRate: w.sampleRate, channels: w.channels };
}

/** Seconds of audio in a WAV file's layout. */
export function wavSeconds(w: WavLayout): number {
  return w.dataBytes / (w.sampleRate * 2 * w.channels);
}
