/**
 * multipart/form-data (RFC 7578) for the audio uploads of STT and pronunciation, and the audio
 * file part they carry.
 */
import { randomBytes } from 'node:crypto';
import { encodeWav } from '../../audio/wav.js';
import { UpstreamError, type AudioInput } from '../provider.js';
import type { OpenAiKind } from './http.js';

export type Part =
  | { readonly name: string; readonly value: string }
  | { readonly name: string; readonly file: Buffer; readonly filename: string; readonly type: string };

/** Encodes form fields and files into one buffer (known length, no chunked upload). */
export function encodeMultipart(parts: readonly Part[]): { body: Buffer; contentType: string } {
  const boundary = `----parley${randomBytes(12).toString('hex')}`;
  const chunks: Buffer[] = [];
  const quote = (s: string): string => s.replace(/[\r\n"]/g, (c) => encodeURIComponent(c));
  for (const part of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${quote(part.name)}"`;
    if ('file' in part) head += `; filename="${quote(part.filename)}"\r\nContent-Type: ${part.type}`;
    chunks.push(Buffer.from(`${head}\r\n\r\n`, 'utf8'), 'file' in part ? part.file : Buffer.from(part.value, 'utf8'), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** The audio as a WAV file: PCM16 is wrapped in a header, WAV goes through as it is. */
export function wavOf(audio: AudioInput, kind: OpenAiKind): Buffer {
  if (audio.format === 'wav') return audio.data;
  if (audio.format === 'pcm16') {
    try {
      return encodeWav(audio.data, audio.sampleRate, audio.channels);
    } catch (err) {
      throw new UpstreamError(kind, `invalid audio: ${(err as Error).message}`, 400);
    }
  }
  throw new UpstreamError(kind, `invalid audio: unsupported format "${String(audio.format)}"`, 400);
}

/** `en-US` → `en`: Whisper takes ISO-639-1 codes (OpenAI API reference, audio/createTranscription `language`). */
export function iso639(tag: string): string {
  return tag.trim().toLowerCase().split(/[-_]/)[0] ?? tag;
}
