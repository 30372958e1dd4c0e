/**
 * A conversation turn, streamed (CONTRACT §6; TURNS.md): the learner's words (speech to text, or
 * the text of `turn.text`), then the conversation model's reply as it streams, cut into sentences,
 * the first sentence sent to text-to-speech the moment it is complete and the rest packed up to the
 * TTS upstream's `maxChars`, their audio forwarded in order as it arrives. Every upstream call gets
 * the turn's signal, so a cancel reaches the upstream sockets at once.
 *
 * Reading this file top to bottom follows a `turn.text` from the session down to the upstreams and
 * back: the session accepted it and gives it a Turn; this runs it; the Turn is the only way out.
 */
import type { AudioInput, CallOptions, ChatMessage, ChatReply, ConversationProvider, ConversationRequest, Providers, TtsRequest } from '../upstream/provider.js';
import { SentenceSegmenter } from './segmenter.js';
import { SpeechPlanner } from './speech-plan.js';
import { SpeechQueue } from './speech-queue.js';
import type { Turn } from './turn.js';

/** What a conversation turn needs of its session. */
export interface ConversationContext {
  readonly providers: Providers;
  readonly language: string;
  readonly nativeLanguage?: string | undefined;
  readonly scenario?: string | undefined;
  readonly voice?: string | undefined;
  /** The history as it is now (learner and tutor messages, oldest first). */
  readonly history: () => readonly ChatMessage[];
  /** The options of an upstream call made for `turn` (its signal, fairness, queue reports). */
  readonly call: (turn: Turn) => CallOptions;
  /** The TTS upstream's `maxChars` (a TTS request never carries more). */
  readonly ttsMaxChars: number;
  /** TTS requests open at once for one turn. */
  readonly segmentsInFlight: number;
  /** Sent as `max_tokens` when set. */
  readonly maxOutputTokens?: number | undefined;
}

/** The learner's input: committed audio, or the text of `turn.text`. */
export type TurnInput = { readonly audio: AudioInput } | { readonly text: string };

/** The tutor's instructions for this session. */
export function systemPrompt(ctx: Pick<ConversationContext, 'language' | 'nativeLanguage' | 'scenario'>): string {
  const parts = [`You are a friendly speaking tutor. Answer in ${ctx.language}, in one to three short sentences.`];
  if (ctx.nativeLanguage) parts.push(`The learner's native language is ${ctx.nativeLanguage}.`);
  if (ctx.scenario) parts.push(`Scenario: ${ctx.scenario}.`);
  return parts.join(' ');
}

/** Runs a conversation turn to its end (the turn then `finish`es); throws what the upstreams threw. */
export async function runConversation(turn: Turn, input: TurnInput, ctx: ConversationContext): Promise<void> {
  const call = ctx.call(turn);
  // 1. The learner's words.
  let userText: string;
  if ('audio' in input) {
    userText = await ctx.providers.stt.transcribe({ audio: input.audio, language: ctx.language }, call);
    turn.setUserText(userText, true);
    turn.emit({ type: 'transcript', request_id: turn.id, text: userText });
  } else {
    userText = input.text;
    turn.setUserText(userText, false);
  }

  // 2. The reply, streamed into sentences, each group spoken as soon as it is ready.
  const segmenter = new SentenceSegmenter(ctx.language);
  const planner = new SpeechPlanner(ctx.ttsMaxChars);
  const speech = new SpeechQueue(turn, () => turn.replyText, speaker(ctx, call), { segmentsInFlight: ctx.segmentsInFlight });
  const request: ConversationRequest = {
    language: ctx.language,
    nativeLanguage: ctx.nativeLanguage,
    scenario: ctx.scenario,
    messages: [{ role: 'system', content: systemPrompt(ctx) }, ...ctx.history(), { role: 'user', content: userText }],
    ...(ctx.maxOutputTokens !== undefined ? { maxOutputTokens: ctx.maxOutputTokens } : {}),
  };
  await streamReply(ctx.providers.conversation, request, call, (delta) => {
    turn.replyDelta(delta);
    speech.add(planner.add(turn.replyText, segmenter.push(delta)));
  });
  turn.replyDone();
  speech.add(planner.add(turn.replyText, segmenter.end()));
  speech.add(planner.end());
  speech.end();

  // 3. The last audio, then the turn's end (reply.audio.end, turn.metrics, the history).
  await speech.done;
  turn.finish();
}

/** One TTS request of the turn, through the governed TTS upstream, streamed into the speech queue. */
function speaker(ctx: ConversationContext, call: CallOptions) {
  return (text: string, signal: AbortSignal, sink: (chunk: Buffer, sampleRate: number) => void | Promise<void>): Promise<void> => {
    // The reply's own text, without the whitespace between sentences (nothing to say there).
    const req: TtsRequest = { text: text.trim(), voice: ctx.voice, language: ctx.language };
    const opts: CallOptions = { ...call, signal };
    const tts = ctx.providers.tts;
    if (tts.stream) return tts.stream(req, opts, sink);
    // A provider that cannot stream (a test double): its whole audio at once.
    return tts.speak(req, opts).then((whole) => sink(whole.audio, whole.sampleRate));
  };
}

/** The reply as deltas; a provider that cannot stream gives its whole reply as one. */
function streamReply(provider: ConversationProvider, req: ConversationRequest, call: CallOptions, onDelta: (text: string) => void): Promise<ChatReply> {
  if (provider.stream) return provider.stream(req, call, onDelta);
  return provider.reply(req, call).then((text) => {
    if (text.length > 0) onDelta(text);
    return { text };
  });
}
