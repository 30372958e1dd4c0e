/**
 * What the simulator counts as a token. A real model's BPE tokens are not reproducible without its
 * vocabulary, so the simulator uses token-like pieces instead: a word with the spaces before it and
 * the punctuation stuck to it (" world!"), and each CJK character on its own (Japanese has no
 * spaces, and its BPE tokens are about a character each). The pieces concatenate back to the text
 * exactly; a streamed reply is delivered one piece per delta, and `usage` counts the same pieces, so
 * `tokensPerSecond` and `tokensPerMinute` speak of one unit.
 */
import type { ChatMessage } from '../upstream/provider.js';

const PIECE = /\s*(?:[\u3040-\u30ff\u3400-\u9fff]|[^\s\u3040-\u30ff\u3400-\u9fff]+)|\s+$/gu;

/** `text` cut into token-like pieces whose concatenation is `text`. */
export function tokenPieces(text: string): string[] {
  return text.match(PIECE) ?? [];
}

/**
 * OpenAI's chat framing, from the cookbook's "How to count tokens with tiktoken" (gpt-3.5/4 family):
 * 3 tokens per message plus 1 for its role, and 3 that prime the reply.
 */
const TOKENS_PER_MESSAGE = 4;
const REPLY_PRIMING_TOKENS = 3;

/** The prompt tokens the simulator reports for `messages`: their pieces plus the chat framing. */
export function promptTokens(messages: readonly ChatMessage[]): number {
  let n = REPLY_PRIMING_TOKENS;
  for (const m of messages) n += TOKENS_PER_MESSAGE + tokenPieces(m.content).length;
  return n;
}
