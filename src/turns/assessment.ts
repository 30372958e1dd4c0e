/** A pronunciation assessment: the committed audio against the learner's reference text (CONTRACT §5). */
import type { AudioInput, CallOptions, Providers } from '../upstream/provider.js';
import type { Turn } from './turn.js';

export interface AssessmentContext {
  readonly providers: Providers;
  readonly language: string;
  readonly call: (turn: Turn) => CallOptions;
}

/** Runs the assessment to its end: `assessment.result`, then the turn finishes. */
export async function runAssessment(turn: Turn, audio: AudioInput, referenceText: string, ctx: AssessmentContext): Promise<void> {
  const result = await ctx.providers.pronunciation.assess({ audio, referenceText, language: ctx.language }, ctx.call(turn));
  turn.emit({ type: 'assessment.result', request_id: turn.id, score: result.score, words: result.words.map((w) => ({ word: w.word, score: w.score })) });
  turn.finish();
}
