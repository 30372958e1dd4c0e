/**
 * The simulated conversation model: the tutor's reply ({@link tutorReply}), streamed as a chat
 * model streams (CONTRACT §6): token-like pieces ({@link tokenPieces}) on the timing profile's first
 * token and tokens per second, and `usage` counted in the same pieces ({@link promptTokens} for the
 * messages sent, one completion token per piece of the reply).
 */
import type { CallOptions, ChatReply, ConversationProvider, ConversationRequest } from '../upstream/provider.js';
import type { SimulatedTiming } from './timing.js';
import { promptTokens, tokenPieces } from './tokens.js';
import { streamTokens } from './token-stream.js';
import { tutorReply } from './tutor.js';

const ignore = (): void => undefined;

export class SimulatedConversationProvider implements ConversationProvider {
  constructor(private readonly timing: SimulatedTiming = {}) {}

  /** The whole reply, once its last token is due (the stream, gathered). */
  async reply(req: ConversationRequest, opts?: CallOptions): Promise<string> {
    return (await this.stream(req, opts, ignore)).text;
  }

  /** The reply as deltas of one token each; resolves with the whole reply and its usage. */
  async stream(req: ConversationRequest, opts: CallOptions | undefined, onDelta: (text: string) => void): Promise<ChatReply> {
    const text = tutorReply(req);
    const pieces = tokenPieces(text);
    await streamTokens(pieces, this.timing, opts?.signal, onDelta);
    return { text, usage: { promptTokens: promptTokens(req.messages), completionTokens: pieces.length } };
  }
}
