/**
 * The simulated translation: the phrase book first, then word by word for short texts of known
 * words, else the text itself marked `[target] text`. Deterministic; no network. A translation
 * model is a chat model: the answer comes when its last token would (first token, tokens/s).
 */
import type { CallOptions, TranslationProvider, TranslationRequest } from '../upstream/provider.js';
import { CJK, primaryTag, supportedLanguage, type SimulatedLanguage } from './language.js';
import { lookup, normalizePhrase, PHRASES, WORDS } from './phrase-book.js';
import type { SimulatedTiming } from './timing.js';
import { tokenPieces } from './tokens.js';
import { streamTokens } from './token-stream.js';

/** Re-applies the original's capitalisation and end punctuation, in the target's conventions. */
function decorate(result: string, original: string, target: SimulatedLanguage): string {
  const trimmed = original.trim();
  let out = result;
  const first = trimmed.match(/\p{L}/u)?.[0];
  if (first && first !== first.toLowerCase() && target !== 'ja') out = out.charAt(0).toUpperCase() + out.slice(1);
  const end = trimmed.match(/[.!?。！？]$/u)?.[0];
  if (!end) return out;
  const kind = end === '?' || end === '？' ? '?' : end === '!' || end === '！' ? '!' : '.';
  switch (target) {
    case 'ja': return out + (kind === '?' ? '？' : kind === '!' ? '！' : '。');
    case 'es': return kind === '?' ? `¿${out}?` : kind === '!' ? `¡${out}!` : `${out}.`;
    case 'fr': return kind === '.' ? `${out}.` : `${out} ${kind}`;
    default: return out + kind;
  }
}

/** The simulated translation of `req.text`: phrase book, then word by word, else `[target] text`. */
export function translateText(req: TranslationRequest): string {
  const text = req.text;
  if (!text.trim()) return text;
  const target = supportedLanguage(req.targetLanguage);
  const source = supportedLanguage(req.sourceLanguage);
  if (req.sourceLanguage && primaryTag(req.sourceLanguage) === primaryTag(req.targetLanguage)) return text;
  if (target) {
    const key = normalizePhrase(text);
    const phrase = lookup(PHRASES, key, source);
    const form = phrase?.entry.forms[target];
    if (phrase && form) return decorate(form, text, target);

    const tokens = key.split(' ').filter(Boolean);
    if (tokens.length > 0 && tokens.length <= 12 && !CJK.test(text)) {
      const words: string[] = [];
      for (const token of tokens) {
        const hit = lookup(WORDS, token, source) ?? lookup(PHRASES, token, source);
        if (!hit) {
          words.length = 0;
          break;
        }
        const w = hit.entry.forms[target];
        if (w) words.push(w);
      }
      if (words.length) return decorate(words.join(target === 'ja' ? '' : ' '), text, target);
    }
  }
  return `[${req.targetLanguage}] ${text}`;
}

export class SimulatedTranslationProvider implements TranslationProvider {
  constructor(private readonly timing: SimulatedTiming = {}) {}

  async translate(req: TranslationRequest, opts?: CallOptions): Promise<string> {
    const text = translateText(req);
    await streamTokens(tokenPieces(text), this.timing, opts?.signal, () => undefined);
    return text;
  }
}
