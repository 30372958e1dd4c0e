/**
 * The one redaction of the project (CONTRACT.md §10: no secret in any log line, client error or
 * HTTP answer). Everything that logs a URL, an error or a config value, and everything that passes
 * an upstream's words on to a client, goes through these functions:
 * - {@link redactUrl}: a URL without its userinfo (user and password) and without the values of
 *   credential-like query or fragment parameters (`token`, `key`, `secret`, `api_key`, `password`,
 *   `auth`, `sig`, `X-Amz-Security-Token`, … see {@link isCredentialName});
 * - {@link redactText}: free text (an error message) with every URL in it redacted as above, the
 *   credential parameters of relative URLs, `Bearer …` credentials, and the shapes of
 *   Parley's own secrets: browser tokens `pt_…`, resume tokens `rt_…`, and keys shaped `sk_…`/`sk-…`;
 * - {@link secretRedactor}: text with given literal secrets (the configured API keys, upstream keys
 *   and Redis passwords) replaced, for the logger's last line of defence.
 *
 * config/ and telemetry/ both need it and config/ may not import telemetry/ (ARCHITECTURE.md), so
 * it lives below both. Written here rather than taken from a library: pino's own `redact` (which
 * the logger also uses) censors whole fields, while this keeps a URL's host and path, or the rest
 * of a sentence, and takes out only the credential: a few regular expressions, no dependency.
 */

/** What a removed secret is replaced with, everywhere. */
export const REDACTED = '[REDACTED]';

/**
 * Parameter names whose values are credentials, matched on the lower-cased name's ending so that
 * `token`, `access_token`, `resume_token`, `X-Amz-Security-Token`, `apiKey`, `api_key`, `api-key`,
 * `client_secret`, `password`, `auth`, `signature`, `sig`, `X-Amz-Credential` all match. Redacting a
 * harmless value whose name merely ends so (`sort_key`) costs nothing; missing a credential would.
 */
const CREDENTIAL_NAME = /(?:token|key|secret|password|passwd|pwd|pass|auth|authorization|signature|sig|credentials?|jwt)$/;

/** Whether a parameter or field name (as sent: case and percent-encoding are ignored) names a credential. */
export function isCredentialName(name: string): boolean {
  let decoded = name;
  if (name.includes('%')) {
    try {
      decoded = decodeURIComponent(name);
    } catch {
      // A malformed escape: judge the name as written.
    }
  }
  return CREDENTIAL_NAME.test(decoded.toLowerCase());
}

/** `?name=value`, `&name=value`, `;name=value` or `#name=value` (a fragment read as parameters). */
const PARAM = /([?&;#])([^=&;#?\s"'<>]+)=([^&;#\s"'<>]*)/g;

function redactParams(text: string): string {
  return text.replace(PARAM, (all: string, sep: string, name: string, value: string) =>
    value !== '' && value !== REDACTED && isCredentialName(name) ? `${sep}${name}=${REDACTED}` : all,
  );
}

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * A URL (absolute, or a request target such as `/v1/usage?secret=…`) without its credentials: the
 * userinfo becomes `[REDACTED]` (`redis://[REDACTED]@host:6379/0`) and so does the value of every
 * credential-like query or fragment parameter; everything else is kept as written, so the log still
 * says which host, path and options were meant.
 */
export function redactUrl(url: string): string {
  let out = url;
  const scheme = SCHEME.exec(out);
  if (scheme) {
    const start = scheme[0].length;
    // The userinfo ends at the last "@" of the authority, which ends at the first "/", "?", "#" or
    // "\" (WHATWG URL Standard, authority state; RFC 3986 §3.2).
    const rest = out.slice(start);
    const slash = rest.search(/[/?#\\]/);
    const authorityEnd = slash === -1 ? out.length : start + slash;
    let at = out.lastIndexOf('@', authorityEnd - 1);
    if (at < start && out.indexOf('@', authorityEnd) !== -1 && !URL.canParse(out)) {
      // A password with an unescaped "/", "?" or "#" (`redis://:pa/ss@host`) makes no valid URL,
      // and no parser can say where it ends: then everything up to the last "@" is userinfo.
      at = out.lastIndexOf('@');
    }
    if (at >= start) out = `${out.slice(0, start)}${REDACTED}${out.slice(at)}`;
  }
  return redactParams(out);
}

/**
 * One alternation, so free text is scanned once: a URL with a scheme, a query parameter of a
 * relative URL, a `Bearer` credential, or one of Parley's secret shapes (`pt_` tokens and
 * `rt_` resume tokens are 43 and 35 characters; `sk_`/`sk-` keys of 16 characters or more).
 */
const IN_TEXT = new RegExp(
  [
    String.raw`[a-z][a-z0-9+.-]*:\/\/[^\s"'<>\`]+`,
    String.raw`[?&;#][^=&;#?\s"'<>]+=[^&;#\s"'<>]*`,
    String.raw`\bbearer\s+[A-Za-z0-9._~+/=-]+`,
    String.raw`(?<![A-Za-z0-9])(?:pt|rt|sk)[_-][A-Za-z0-9_-]{16,}`,
  ].join('|'),
  'gi',
);
const SHAPE = /(?<![A-Za-z0-9])((?:pt|rt|sk)[_-])[A-Za-z0-9_-]{16,}/gi;
const AUTH_SCHEME = /^(bearer)\s+/i;

function redactMatch(match: string): string {
  if (match.includes('://')) return redactUrl(match).replace(SHAPE, `$1${REDACTED}`);
  const first = match[0]!;
  if (first === '?' || first === '&' || first === ';' || first === '#') return redactParams(match).replace(SHAPE, `$1${REDACTED}`);
  const auth = AUTH_SCHEME.exec(match);
  if (auth) return `${auth[1]} ${REDACTED}`;
  return match.replace(SHAPE, `$1${REDACTED}`);
}

/**
 * Free text (an error message, a stack, an upstream's error body) with credentials removed: URLs
 * as {@link redactUrl} does, credential parameters of relative URLs, `Bearer …`, and
 * Parley's token shapes (`pt_…`, `rt_…`, `sk_…`). Secrets with no recognisable shape (an operator's
 * API key, an upstream key) are removed by {@link secretRedactor} where they are known.
 */
export function redactText(text: string): string {
  return text.replace(IN_TEXT, redactMatch);
}

/** Secrets shorter than this are not searched for: the config requires 8 characters for keys. */
const MIN_SECRET_CHARS = 8;
/**
 * Up to this many needles, one `includes` per needle (native, about 0.03-0.08 µs each on a 250-char
 * log line); beyond, a rolling-hash index whose cost does not grow with their number (about 3-5 µs
 * a line). Measured on this project's 2-core machine: see docs/operations.md "Secrets in logs".
 */
const MAX_LINEAR_NEEDLES = 48;

/**
 * A function that replaces every occurrence of the given literal secrets (API keys, upstream keys,
 * Redis passwords, as configured) in a text with `[REDACTED]`. Each secret is also searched for
 * in its JSON-escaped and percent-encoded forms when those differ, since a log line is JSON and a
 * URL is encoded. Secrets under 8 characters are ignored (they would match ordinary words).
 */
export function secretRedactor(secrets: readonly string[]): (text: string) => string {
  const needles = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_CHARS) continue;
    needles.add(secret);
    needles.add(JSON.stringify(secret).slice(1, -1));
    needles.add(encodeURIComponent(secret));
  }
  // Longest first, so a secret that contains another is replaced whole.
  const list = [...needles].sort((x, y) => y.length - x.length);
  if (list.length === 0) return (text) => text;
  const replace = (text: string, found: readonly string[]): string => {
    let out = text;
    for (const needle of found) out = out.split(needle).join(REDACTED);
    return out;
  };
  if (list.length <= MAX_LINEAR_NEEDLES) {
    return (text) => {
      let found: string[] | undefined;
      for (const needle of list) if (text.includes(needle)) (found ??= []).push(needle);
      return found ? replace(text, found) : text;
    };
  }
  return hashedRedactor(list, replace);
}

/** Rabin-Karp over the first {@link MIN_SECRET_CHARS} characters of each needle (32-bit, wrapping). */
const BASE = 0x01000193;
let BASE_HIGH = 1;
for (let k = 0; k < MIN_SECRET_CHARS - 1; k++) BASE_HIGH = Math.imul(BASE_HIGH, BASE);

function windowHash(text: string, at: number): number {
  let h = 0;
  for (let k = 0; k < MIN_SECRET_CHARS; k++) h = (Math.imul(h, BASE) + text.charCodeAt(at + k)) | 0;
  return h;
}

/**
 * Many needles: one pass over the text with a rolling hash of its 8-character windows, checking
 * the needles whose first 8 characters hash alike. A long `includes` loop and a regex alternation
 * of the literals both cost time in proportion to their number in V8 (measured: ~60 µs and ~260 µs
 * a line for 1,000 secrets); an Aho-Corasick package would also walk the text a character at a
 * time, for a dependency where these few lines do.
 * `list` is longest first, and so is what the scan hands to `replace`.
 */
function hashedRedactor(list: readonly string[], replace: (text: string, found: readonly string[]) => string): (text: string) => string {
  const byHash = new Map<number, string[]>();
  for (const needle of list) {
    const h = windowHash(needle, 0);
    const same = byHash.get(h);
    if (same) same.push(needle);
    else byHash.set(h, [needle]);
  }
  return (text) => {
    const n = text.length;
    if (n < MIN_SECRET_CHARS) return text;
    let found: Set<string> | undefined;
    let h = windowHash(text, 0);
    for (let i = 0; ; i++) {
      const candidates = byHash.get(h);
      if (candidates !== undefined) for (const needle of candidates) if (text.startsWith(needle, i)) (found ??= new Set()).add(needle);
      if (i + MIN_SECRET_CHARS >= n) break;
      h = (Math.imul((h - Math.imul(text.charCodeAt(i), BASE_HIGH)) | 0, BASE) + text.charCodeAt(i + MIN_SECRET_CHARS)) | 0;
    }
    return found ? replace(text, [...found].sort((x, y) => y.length - x.length)) : text;
  };
}
