/** Speech to text over `POST {baseUrl}/audio/transcriptions` (multipart, a WAV file; CONTRACT §3). */
import type { CallOptions, SttProvider, SttRequest } from '../provider.js';
import { DEFAULT_MODELS, OpenAiHttp, type OpenAiOptions } from './http.js';
import { iso639, wavOf, type Part } from './multipart.js';

/** Speech to text over `POST /audio/transcriptions` (multipart, WAV file). */
export class OpenAiSttProvider implements SttProvider {
  private readonly http: OpenAiHttp;
  constructor(opts: OpenAiOptions) {
    this.http = new OpenAiHttp('stt', opts);
  }

  async transcribe(req: SttRequest, opts?: CallOptions): Promise<string> {
    const parts: Part[] = [
      { name: 'file', file: wavOf(req.audio, 'stt'), filename: 'audio.wav', type: 'audio/wav' },
      { name: 'model', value: this.http.model(DEFAULT_MODELS.stt) },
      { name: 'response_format', value: 'json' },
    ];
    if (req.language) parts.push({ name: 'language', value: iso639(req.language) });
    const json = await this.http.postMultipart('/audio/transcriptions', parts, opts?.signal);
    if (typeof json.text !== 'string') throw this.http.invalid('no "text" string');
    return json.text;
  }
}
