/**
 * Conversation and translation over `POST {baseUrl}/chat/completions` (CONTRACT §3, §6).
 * Conversation streams: `stream: true` with `stream_options.include_usage`, Server-Sent Events read
 * by chat-stream.ts as they arrive; an upstream that answers plain JSON (`application/json`) instead
 * is accepted as one delta. Translation asks for the whole answer (it is shown, not spoken).
 */
import type { CallOptions, ChatReply, ConversationProvider, ConversationRequest, TranslationProvider, TranslationRequest } from '../provider.js';
import { readChatStream, usageOf } from './chat-stream.js';
import { DEFAULT_MODELS, isRecord, OpenAiHttp, type OpenAiOptions } from './http.js';

/** `choices[0].message.content` of a chat completion, or an invalid-answer error. */
function chatContent(http: OpenAiHttp, json: Record<string, unknown>): string {
  const choices = json.choices;
  if (!Array.isArray(choices)) throw http.invalid('no "choices" array');
  const first: unknown = choices[0];
  if (!isRecord(first)) throw http.invalid('"choices" is empty');
  const message = first.message;
  if (!isRecord(message) || typeof message.content !== 'string') throw http.invalid('no "choices[0].message.content" string');
  return message.content;
}

/** Conversation over `POST /chat/completions`. */
export class OpenAiConversationProvider implements ConversationProvider {
  private readonly http: OpenAiHttp;
  constructor(opts: OpenAiOptions) {
    this.http = new OpenAiHttp('conversation', opts);
  }

  async reply(req: ConversationRequest, opts?: CallOptions): Promise<string> {
    return (await this.stream(req, opts, () => undefined)).text;
  }

  /**
   * Streams the reply: `onDelta` gets each non-empty piece of content as its event arrives; the
   * `usage` chunk (asked for with `stream_options.include_usage`) comes last. A plain JSON answer is
   * one delta.
   */
  async stream(req: ConversationRequest, opts: CallOptions | undefined, onDelta: (text: string) => void): Promise<ChatReply> {
    const messages = req.messages.map((m) => ({ role: m.role, content: m.content }));
    const body = {
      model: this.http.model(DEFAULT_MODELS.conversation),
      messages,
      stream: true,
      stream_options: { include_usage: true },
      ...(req.maxOutputTokens !== undefined ? { max_tokens: req.maxOutputTokens } : {}),
    };
    const http = this.http;
    return http.send('/chat/completions', Buffer.from(JSON.stringify(body)), 'application/json', 'text/event-stream, application/json', opts?.signal, async (stream, contentType, touch) => {
      if (/^application\/json/i.test(contentType)) {
        // Not every compatible server streams: a whole JSON completion is one delta.
        const chunks: Buffer[] = [];
        let total = 0;
        for await (const chunk of stream) {
          touch();
          total += chunk.length;
          if (total > http.maxResponseBytes) throw http.tooLarge(200);
          chunks.push(chunk);
        }
        const json = http.parseJson(Buffer.concat(chunks, total));
        const text = chatContent(http, json);
        if (text.length > 0) onDelta(text);
        return { text, usage: usageOf(json) };
      }
      let text = '';
      let usage: ChatReply['usage'];
      const touching = async function* (): AsyncGenerator<Buffer> {
        for await (const chunk of stream) {
          touch();
          yield chunk;
        }
      };
      for await (const event of readChatStream(touching(), http.kind, http.maxResponseBytes, (t) => http.redact(t))) {
        if (event.type === 'delta') {
          text += event.text;
          onDelta(event.text);
        } else usage = event.usage;
      }
      return { text, usage };
    });
  }
}

/** The system prompt of a translation request (the simulated upstream server recognises it). */
export function translationPrompt(targetLanguage: string, sourceLanguage?: string): string {
  const from = sourceLanguage ? ` from ${sourceLanguage}` : '';
  return `Translate the user's message${from} into ${targetLanguage}. Reply with only the translation: no quotes, notes or explanations.`;
}

/** Translation over `POST /chat/completions` with a translate-only system prompt. */
export class OpenAiTranslationProvider implements TranslationProvider {
  private readonly http: OpenAiHttp;
  constructor(opts: OpenAiOptions) {
    this.http = new OpenAiHttp('translation', opts);
  }

  async translate(req: TranslationRequest, opts?: CallOptions): Promise<string> {
    const messages = [
      { role: 'system', content: translationPrompt(req.targetLanguage, req.sourceLanguage) },
      { role: 'user', content: req.text },
    ];
    const json = await this.http.postJson('/chat/completions', { model: this.http.model(DEFAULT_MODELS.translation), messages }, opts?.signal);
    return chatContent(this.http, json).trim();
  }
}
