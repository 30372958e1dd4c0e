/**
 * A translation (CONTRACT §5 `translate`). A text over the translation upstream's `maxChars` is cut
 * at sentence ends (the same segmenter as speech, so `3.50` or `Dr.` are never cut) and sent as
 * several requests, in order; their translations are joined.
 */
import type { CallOptions, Providers } from '../upstream/provider.js';
import { planText } from './speech-plan.js';
import type { Turn } from './turn.js';

export interface TranslationContext {
  readonly providers: Providers;
  /** The session's language (the learner practises it) and the learner's own. */
  readonly language: string;
  readonly nativeLanguage?: string | undefined;
  readonly call: (turn: Turn) => CallOptions;
  /** The translation upstream's `maxChars`, when it has one. */
  readonly maxChars?: number | undefined;
}

const sameLanguage = (a: string, b: string): boolean => a.split('-')[0]!.toLowerCase() === b.split('-')[0]!.toLowerCase();

/** Runs the translation to its end: `translation.result`, then the turn finishes. */
export async function runTranslation(turn: Turn, text: string, targetLanguage: string, sourceLanguage: string | undefined, ctx: TranslationContext): Promise<void> {
  // Into the session's language the text is most likely the learner's own language (or unknown).
  const source = sourceLanguage ?? (sameLanguage(targetLanguage, ctx.language) ? ctx.nativeLanguage : ctx.language);
  const parts = ctx.maxChars !== undefined && text.length > ctx.maxChars ? planText(text, source ?? ctx.language, ctx.maxChars).map((p) => text.slice(p.start, p.end).trim()) : [text];
  const call = ctx.call(turn);
  const out: string[] = [];
  for (const part of parts) {
    if (part.length === 0) continue;
    out.push(await ctx.providers.translation.translate({ text: part, targetLanguage, sourceLanguage: source }, call));
  }
  turn.emit({ type: 'translation.result', request_id: turn.id, text: out.join(' ') });
  turn.finish();
}
