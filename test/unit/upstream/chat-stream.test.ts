import { describe, expect, it } from 'vitest';
import { readChatStream, type ChatStreamEvent } from '../../../src/upstream/openai/chat-stream.js';
import { UpstreamError } from '../../../src/upstream/provider.js';

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield Buffer.from(p, 'utf8');
}

async function all(parts: string[], maxBytes = 1 << 20): Promise<ChatStreamEvent[]> {
  const out: ChatStreamEvent[] = [];
  for await (const e of readChatStream(chunks(...parts), 'conversation', maxBytes)) out.push(e);
  return out;
}

const delta = (content: string): string => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content } }] })}\n\n`;

describe('readChatStream (SSE chat completions)', () => {
  it('yields deltas in order, then the usage chunk, and stops at [DONE]', async () => {
    const usage = `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 } })}\n\n`;
    expect(await all([delta('Hola'), delta(', ¿qué'), delta(' tal?'), usage, 'data: [DONE]\n\n', delta('after done')])).toEqual([
      { type: 'delta', text: 'Hola' },
      { type: 'delta', text: ', ¿qué' },
      { type: 'delta', text: ' tal?' },
      { type: 'usage', usage: { promptTokens: 12, completionTokens: 5 } },
    ]);
  });

  it('reads events split anywhere across chunks, multi-byte characters included', async () => {
    const text = delta('¿Qué tal? こんにちは') + delta(' bien') + 'data: [DONE]\n\n';
    const bytes = Buffer.from(text, 'utf8');
    async function* byteChunks(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < bytes.length; i += 3) yield bytes.subarray(i, i + 3);
    }
    const out: ChatStreamEvent[] = [];
    for await (const e of readChatStream(byteChunks(), 'conversation', 1 << 20)) out.push(e);
    expect(out).toEqual([
      { type: 'delta', text: '¿Qué tal? こんにちは' },
      { type: 'delta', text: ' bien' },
    ]);
  });

  it('ignores comments, role-only and empty deltas, and CRLF line ends', async () => {
    const role = `data: ${JSON.stringify({ choices: [{ delta: { role: 'assistant' } }] })}\r\n\r\n`;
    expect(await all([': keep-alive\n\n', role, delta(''), delta('x').replace(/\n/g, '\r\n'), 'data: [DONE]\r\n\r\n'])).toEqual([{ type: 'delta', text: 'x' }]);
  });

  it('accepts a body that ends without [DONE]', async () => {
    expect(await all([delta('a'), delta('b')])).toEqual([
      { type: 'delta', text: 'a' },
      { type: 'delta', text: 'b' },
    ]);
  });

  it.each([
    ['a data line that is not JSON', ['data: {not json\n\n'], 'not JSON'],
    ['a chunk with neither choices nor usage', ['data: {"id":"x"}\n\n'], 'neither "choices" nor "usage"'],
    ['an error object mid-stream', [delta('a'), 'data: {"error":{"message":"overloaded"}}\n\n'], 'failed mid-stream: overloaded'],
  ])('%s ends the stream with an UpstreamError', async (_name, parts, message) => {
    const err = await all(parts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).message).toContain(message);
  });

  it('an error mid-stream that echoes the key across the 200-character cut leaves no part of it (redacted before the cut, D6)', async () => {
    const key = 'qzqzqz0123456789abcdef';
    const error = `data: ${JSON.stringify({ error: { message: `${'x'.repeat(190)} ${key}` } })}\n\n`;
    const stream = readChatStream(chunks(delta('a'), error), 'conversation', 1 << 20, (text) => text.split(key).join('[REDACTED]'));
    const err = await (async () => {
      for await (const _ of stream) void _;
    })().catch((e: unknown) => e);
    expect((err as UpstreamError).message).not.toContain(key.slice(0, 4));
    expect((err as UpstreamError).message).toContain('[REDACT');
  });

  it('stops at maxBytes', async () => {
    const err = await all([delta('a'.repeat(100)), delta('b'.repeat(100))], 150).catch((e: unknown) => e);
    expect((err as UpstreamError).message).toContain('more than 150 bytes');
  });
});
