/**
 * A configuration file's text to a value, by its extension: `.yaml` and `.yml` with the `yaml`
 * package (YAML 1.2, core schema), anything else as strict JSON (RFC 8259) with Microsoft's
 * `jsonc-parser` (comments and trailing commas refused). Both report where a syntax error is, as
 * line, column and offset; neither message quotes the text around it, which could hold a secret
 * (an API key typed without its quotes): at most the one character found is shown.
 *
 * JSON is not read with the YAML parser, although YAML 1.2 is a superset of JSON: YAML would take
 * `{"secret": sk_live_unquoted}` as valid, and a .json file should fail where JSON fails.
 */
import * as jsonc from 'jsonc-parser';
import { LineCounter, parseDocument } from 'yaml';

/** The parsed document, or why the text is not one (a sentence without the file name). */
export type ParsedText = { readonly ok: true; readonly value: unknown; readonly format: 'json' | 'yaml' } | { readonly ok: false; readonly format: 'json' | 'yaml'; readonly message: string };

/** The format a path's extension names: YAML for `.yaml`/`.yml` (any case), else JSON. */
export function formatOf(path: string): 'json' | 'yaml' {
  return /\.ya?ml$/i.test(path) ? 'yaml' : 'json';
}

/** Parses a config file's text (a UTF-8 byte order mark is skipped: editors write one). */
export function parseConfigText(text: string, format: 'json' | 'yaml'): ParsedText {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  return format === 'yaml' ? parseYaml(body) : parseJson(body);
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

/** What the parser wanted at the error, in words (jsonc-parser's codes, impl/parser.ts). */
function expectedWords(code: jsonc.ParseErrorCode, text: string, offset: number): string {
  switch (code) {
    case jsonc.ParseErrorCode.PropertyNameExpected:
      return 'a property name in double quotes';
    case jsonc.ParseErrorCode.CommaExpected:
      return '","';
    case jsonc.ParseErrorCode.ColonExpected:
      return '":"';
    case jsonc.ParseErrorCode.CloseBraceExpected:
      // Right after "{" a property may still come; after a value only "," or "}".
      return /\{\s*$/.test(text.slice(0, offset)) ? 'a property name in double quotes or "}"' : '"," or "}"';
    case jsonc.ParseErrorCode.CloseBracketExpected:
      return '"," or "]"';
    case jsonc.ParseErrorCode.EndOfFileExpected:
      return 'the end of the text';
    case jsonc.ParseErrorCode.InvalidCommentToken:
    case jsonc.ParseErrorCode.UnexpectedEndOfComment:
      return 'no comment (JSON has none; a .yaml config may have them)';
    case jsonc.ParseErrorCode.UnexpectedEndOfString:
      return 'a closing "';
    case jsonc.ParseErrorCode.UnexpectedEndOfNumber:
      return 'a digit';
    case jsonc.ParseErrorCode.InvalidUnicode:
      return 'four hex digits after \\u';
    case jsonc.ParseErrorCode.InvalidEscapeCharacter:
      return 'an escape sequence (\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)';
    case jsonc.ParseErrorCode.InvalidCharacter:
      return 'no control character inside a string (escape it)';
    default:
      return 'a value';
  }
}

function parseJson(text: string): ParsedText {
  const errors: jsonc.ParseError[] = [];
  const value: unknown = jsonc.parse(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
  const first = errors[0];
  if (!first) return { ok: true, value, format: 'json' };
  // An unterminated string is reported at its opening quote; the text ends (or the line breaks) after it.
  const at = first.error === jsonc.ParseErrorCode.UnexpectedEndOfString ? first.offset + first.length : first.offset;
  const { line, column } = linePos(text, at);
  const found = at >= text.length ? 'end of text' : JSON.stringify(text[at]);
  return { ok: false, format: 'json', message: `unexpected ${found} at line ${line}, column ${column} (position ${at}; expected ${expectedWords(first.error, text, at)})` };
}

/** 1-based line and column of an offset (a column counts UTF-16 units, as editors mostly do). */
function linePos(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const lastNewline = before.lastIndexOf('\n');
  return { line: before.split('\n').length, column: offset - lastNewline };
}

// ---------------------------------------------------------------------------------------------
// YAML
// ---------------------------------------------------------------------------------------------

/** Aliases a document may expand (yaml's default is 100): a "billion laughs" file is refused. */
const MAX_ALIAS_COUNT = 100;

function parseYaml(text: string): ParsedText {
  const lines = new LineCounter();
  // uniqueKeys: a key given twice is an error, not a silent "last one wins". logLevel 'error': yaml
  // prints nothing, and still reports a second document (at 'silent' it drops that error).
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter: lines, logLevel: 'error' });
  // Warnings too (an unknown tag such as `!secret`, read as a plain string, is not what was meant).
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) {
    const { line, col } = lines.linePos(problem.pos[0]);
    return { ok: false, format: 'yaml', message: `${firstLine(problem.message)} at line ${line}, column ${col} (${problem.code})` };
  }
  try {
    return { ok: true, format: 'yaml', value: doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) as unknown };
  } catch (err) {
    // An alias to no anchor, or more alias expansions than allowed.
    return { ok: false, format: 'yaml', message: firstLine((err as Error).message) };
  }
}

/** yaml's messages are one line without `prettyErrors`; a second line would quote the source. */
function firstLine(message: string): string {
  return message.split('\n')[0]!.trim();
}
