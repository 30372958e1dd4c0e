/**
 * Text to speech over `POST {baseUrl}/audio/speech` with `response_format: "pcm"`: raw PCM16 24 kHz
 * mono (CONTRACT §3). Streamed: the body is handed on as it arrives (CONTRACT §6), and reading it
 * waits for the sink, so a reply nobody listens to fast enough holds the upstream by TCP
 * backpressure instead of filling memory.
 */
import type { AudioSink, CallOptions, TtsProvider, TtsRequest, TtsResult } from '../provider.js';
import { DEFAULT_MODELS, OpenAiHttp, OPENAI_PCM_SAMPLE_RATE, type OpenAiOptions } from './http.js';

/** Text to speech over `POST /audio/speech`, raw PCM16 24 kHz mono. */
export class OpenAiTtsProvider implements TtsProvider {
  private readonly http: OpenAiHttp;
  constructor(opts: OpenAiOptions) {
    this.http = new OpenAiHttp('tts', opts);
  }

  /** The whole reply audio (the stream gathered). */
  async speak(req: TtsRequest, opts?: CallOptions): Promise<TtsResult> {
    const chunks: Buffer[] = [];
    await this.stream(req, opts, (chunk) => void chunks.push(chunk));
    const data = Buffer.concat(chunks);
    // PCM16 is whole 2-byte samples; an odd trailing byte cannot be played.
    return { audio: data.length % 2 ? data.subarray(0, data.length - 1) : data, sampleRate: OPENAI_PCM_SAMPLE_RATE };
  }

  /** Speaks `req.text`, handing the PCM body to `sink` as it arrives and waiting for it (backpressure). */
  async stream(req: TtsRequest, opts: CallOptions | undefined, sink: AudioSink): Promise<void> {
    const body = { model: this.http.model(DEFAULT_MODELS.tts), input: req.text, voice: req.voice ?? this.http.defaultVoice, response_format: 'pcm' };
    const http = this.http;
    await http.send('/audio/speech', Buffer.from(JSON.stringify(body)), 'application/json', 'audio/pcm, application/octet-stream', opts?.signal, async (stream, contentType, touch) => {
      // A JSON or text answer with a 2xx status is a gateway or proxy page, not audio.
      if (/^(application\/json|text\/)/i.test(contentType)) throw http.invalid(`expected raw PCM audio, got "${http.excerpt(contentType, 60)}"`);
      let total = 0;
      for await (const chunk of stream) {
        touch();
        total += chunk.length;
        if (total > http.maxResponseBytes) throw http.tooLarge(200);
        await sink(chunk, OPENAI_PCM_SAMPLE_RATE);
      }
      if (total < 2) throw http.invalid('empty audio');
    });
  }
}
