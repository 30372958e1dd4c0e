/**
 * The languages the simulated providers speak, and the small deterministic helpers they share: the
 * same request always gives the same answer, so picks are made by hashing the request.
 */

/** Languages the simulated providers speak; any other falls back to English. */
export const SIMULATED_LANGUAGES = ['en', 'es', 'fr', 'de', 'it', 'pt', 'ja'] as const;
export type SimulatedLanguage = (typeof SIMULATED_LANGUAGES)[number];

/** Japanese kana and CJK ideographs: text without spaces between words. */
export const CJK = /[\u3040-\u30ff\u3400-\u9fff]/u;

/** The primary subtag of a BCP 47 tag, lower case ("es-MX" → "es"). */
export function primaryTag(tag: string | undefined): string {
  return (tag ?? '').trim().toLowerCase().split(/[-_]/)[0] ?? '';
}

/** The simulated language of a tag, or undefined when the simulator does not speak it. */
export function supportedLanguage(tag: string | undefined): SimulatedLanguage | undefined {
  const p = primaryTag(tag);
  return (SIMULATED_LANGUAGES as readonly string[]).includes(p) ? (p as SimulatedLanguage) : undefined;
}

/** One of `items`, chosen by `hash` (and `salt`, for several independent picks from one hash). */
export function pick<T>(items: readonly T[], hash: number, salt = 0): T {
  const h = Math.imul((hash ^ Math.imul(salt + 1, 0x9e3779b1)) >>> 0, 0x85ebca6b) >>> 0;
  return items[((h ^ (h >>> 15)) >>> 0) % items.length]!;
}

/** Replaces `{name}` placeholders in `template` with `vars[name]`. */
export function fill(template: string, vars: Readonly<Record<string, string>>): string {
  return template.replace(/\{(\w+)\}/g, (m, k: string) => vars[k] ?? m);
}

/** Mixes a 32-bit hash with a counter (for a sequence of picks from one fingerprint). */
export function mix(h: number, i: number): number {
  let x = (h ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}
