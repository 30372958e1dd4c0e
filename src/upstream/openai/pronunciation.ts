/** Pronunciation assessment over `POST {baseUrl}/pronunciation/assessments` (multipart; CONTRACT §3). */
import type { CallOptions, PronunciationProvider, PronunciationRequest, PronunciationResult } from '../provider.js';
import { isRecord, OpenAiHttp, type OpenAiOptions } from './http.js';
import { wavOf, type Part } from './multipart.js';

/** Pronunciation assessment over `POST /pronunciation/assessments` (multipart). */
export class OpenAiPronunciationProvider implements PronunciationProvider {
  private readonly http: OpenAiHttp;
  constructor(opts: OpenAiOptions) {
    this.http = new OpenAiHttp('pronunciation', opts);
  }

  async assess(req: PronunciationRequest, opts?: CallOptions): Promise<PronunciationResult> {
    const parts: Part[] = [
      { name: 'file', file: wavOf(req.audio, 'pronunciation'), filename: 'audio.wav', type: 'audio/wav' },
      { name: 'reference_text', value: req.referenceText },
      { name: 'language', value: req.language },
    ];
    const model = this.http.configuredModel;
    if (model) parts.push({ name: 'model', value: model });
    const json = await this.http.postMultipart('/pronunciation/assessments', parts, opts?.signal);
    const score = json.score;
    if (typeof score !== 'number' || !Number.isFinite(score)) throw this.http.invalid('no numeric "score"');
    if (!Array.isArray(json.words)) throw this.http.invalid('no "words" array');
    const words = json.words.map((w: unknown, i) => {
      if (!isRecord(w) || typeof w.word !== 'string' || typeof w.score !== 'number' || !Number.isFinite(w.score)) {
        throw this.http.invalid(`"words[${i}]" is not {word, score}`);
      }
      return { word: w.word, score: clampScore(w.score) };
    });
    return { score: clampScore(score), words };
  }
}

function clampScore(v: number): number {
  return v < 0 ? 0 : v > 100 ? 100 : v;
}
