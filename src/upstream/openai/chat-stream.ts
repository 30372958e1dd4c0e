/**
 * Reads a streamed chat completion (OpenAI `stream: true`, CONTRACT §6): Server-Sent Events whose
 * `data:` lines carry `{choices: [{delta: {content}}]}` chunks, a last chunk with `usage` when
 * `stream_options.include_usage` was asked for, and `data: [DONE]`. The SSE framing is parsed by
 * `eventsource-parser` (a well-kept parser: partial lines across chunks, comments, CRLF, multi-line
 * data); this file only reads the chunks' JSON.
 *
 * What the upstream sends that is not the wire format (a `data:` that is not JSON, an `error`
 * object mid-stream, a body over `maxBytes`) ends the stream with a non-retryable UpstreamError
 * (`upstream_error` to the learner); a clean end of the body without `[DONE]` is accepted as the
 * end (not every compatible server sends it).
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { shortReason } from '../http-error.js';
import { UpstreamError } from '../provider.js';

/** Token counts an upstream reports for a call. */
export interface ChatUsage {
  readonly promptTokens: number;
  readonly completionTokens: number;
}

export type ChatStreamEvent = { readonly type: 'delta'; readonly text: string } | { readonly type: 'usage'; readonly usage: ChatUsage };

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The `usage` object of a chunk or a whole completion, when it has both token counts. */
export function usageOf(json: Record<string, unknown>): ChatUsage | undefined {
  const u = json.usage;
  if (!isRecord(u)) return undefined;
  const prompt = u.prompt_tokens;
  const completion = u.completion_tokens;
  if (typeof prompt !== 'number' || typeof completion !== 'number' || !(prompt >= 0) || !(completion >= 0)) return undefined;
  return { promptTokens: prompt, completionTokens: completion };
}

/**
 * The events of one streamed completion, in order, as the body arrives. `upstream` names the
 * upstream in errors; `redact` takes the adapter's own API key out of the upstream's error text
 * before it is cut (D6). Stops reading at `[DONE]`; the caller destroys the body when it stops early.
 */
export async function* readChatStream(
  body: AsyncIterable<Uint8Array>,
  upstream: string,
  maxBytes: number,
  redact: (text: string) => string = (text) => text,
): AsyncGenerator<ChatStreamEvent> {
  const invalid = (what: string): UpstreamError => new UpstreamError(upstream, `${upstream} upstream sent an invalid stream: ${what}`, 200);
  const queue: ChatStreamEvent[] = [];
  let done = false;
  let failure: UpstreamError | undefined;
  const onEvent = (msg: EventSourceMessage): void => {
    if (done || failure) return;
    const data = msg.data;
    if (data === '[DONE]') {
      done = true;
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      failure = invalid(`a data line is not JSON (${data.length} characters)`);
      return;
    }
    if (!isRecord(json)) {
      failure = invalid('a data line is not a JSON object');
      return;
    }
    if (json.error !== undefined) {
      const e = json.error;
      const message = isRecord(e) && typeof e.message === 'string' ? e.message : typeof e === 'string' ? e : 'error';
      // Redacted, then cut: a key across the cut would otherwise leave its first part (D6).
      failure = new UpstreamError(upstream, `${upstream} upstream failed mid-stream: ${shortReason(redact(message))}`);
      return;
    }
    const choices = json.choices;
    if (Array.isArray(choices)) {
      const first: unknown = choices[0];
      const delta = isRecord(first) ? first.delta : undefined;
      const content = isRecord(delta) ? delta.content : undefined;
      if (typeof content === 'string' && content.length > 0) queue.push({ type: 'delta', text: content });
    } else if (json.usage === undefined) {
      failure = invalid('a chunk has neither "choices" nor "usage"');
      return;
    }
    const usage = usageOf(json);
    if (usage) queue.push({ type: 'usage', usage });
  };
  const parser = createParser({ onEvent });
  const decoder = new TextDecoder('utf-8');
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > maxBytes) throw invalid(`more than ${maxBytes} bytes`);
    parser.feed(decoder.decode(chunk, { stream: true }));
    while (queue.length > 0) yield queue.shift()!;
    if (failure) throw failure;
    if (done) return;
  }
  parser.feed(decoder.decode());
  parser.reset({ consume: true });
  while (queue.length > 0) yield queue.shift()!;
  if (failure) throw failure;
}
