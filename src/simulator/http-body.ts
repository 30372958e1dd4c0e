/**
 * Reading the simulator server's requests: the body (bounded), a JSON object, chat messages and a
 * multipart/form-data form (RFC 7578). A request the simulator cannot read is a {@link BadRequest},
 * answered 400 (413 for a body over the bound) with OpenAI's `invalid_request_error`.
 */
import type { IncomingMessage } from 'node:http';
import type { ChatMessage } from '../upstream/provider.js';

/** A client-side problem with the request: answered with 400 `invalid_request_error`. */
export class BadRequest extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** Reads the request body, refusing more than `max` bytes with 413. */
export async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > max) throw new BadRequest(`Request body of ${declared} bytes exceeds ${max} bytes`, 413);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > max) throw new BadRequest(`Request body exceeds ${max} bytes`, 413);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

/** The body as a JSON object (the request must say `application/json`). */
export function parseJsonObject(req: IncomingMessage, body: Buffer): Record<string, unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) throw new BadRequest(`Content-Type must be application/json, got "${type}"`);
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new BadRequest('Request body is not valid JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new BadRequest('Request body must be a JSON object');
  return json as Record<string, unknown>;
}

/** `messages` of a chat request: a non-empty array of `{role, content}`. */
export function parseMessages(raw: unknown): ChatMessage[] {
  if (!Array.isArray(raw) || raw.length === 0) throw new BadRequest('"messages" must be a non-empty array');
  return raw.map((m: unknown, i) => {
    const msg = m as { role?: unknown; content?: unknown } | null;
    if (!msg || (msg.role !== 'system' && msg.role !== 'user' && msg.role !== 'assistant') || typeof msg.content !== 'string') {
      throw new BadRequest(`"messages[${i}]" must be {role: system|user|assistant, content: string}`);
    }
    return { role: msg.role, content: msg.content };
  });
}

export interface FormPart {
  readonly data: Buffer;
  readonly filename?: string | undefined;
}

/** The uploaded audio file of a form. */
export function requireFile(form: Map<string, FormPart>): Buffer {
  const file = form.get('file');
  if (!file || file.filename === undefined) throw new BadRequest('"file" (an audio file) is required');
  if (file.data.length === 0) throw new BadRequest('"file" is empty');
  return file.data;
}

/** Parses a multipart/form-data body (RFC 7578) into its named parts. */
export function parseForm(req: IncomingMessage, body: Buffer): Map<string, FormPart> {
  const type = req.headers['content-type'] ?? '';
  const m = /^multipart\/form-data\b.*?;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(type);
  const boundary = m?.[1] ?? m?.[2];
  if (!boundary) throw new BadRequest(`Content-Type must be multipart/form-data with a boundary, got "${type}"`);
  const delimiter = Buffer.from(`--${boundary}`);
  const next = Buffer.from(`\r\n--${boundary}`);
  const parts = new Map<string, FormPart>();
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw new BadRequest('Malformed multipart body: no boundary');
  pos += delimiter.length;
  for (;;) {
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return parts; // "--": the closing delimiter
    if (body[pos] !== 0x0d || body[pos + 1] !== 0x0a) throw new BadRequest('Malformed multipart body: bad delimiter line');
    const headStart = pos + 2;
    const headEnd = body.indexOf('\r\n\r\n', headStart);
    if (headEnd < 0) throw new BadRequest('Malformed multipart body: unterminated part headers');
    const end = body.indexOf(next, headEnd + 4);
    if (end < 0) throw new BadRequest('Malformed multipart body: missing closing boundary');
    const head = body.toString('utf8', headStart, headEnd);
    const disposition = /^content-disposition:\s*form-data\s*;(.*)$/im.exec(head)?.[1] ?? '';
    const name = /(?:^|;)\s*name="([^"]*)"/i.exec(disposition)?.[1];
    const filename = /(?:^|;)\s*filename="([^"]*)"/i.exec(disposition)?.[1];
    if (name !== undefined) parts.set(name, { data: body.subarray(headEnd + 4, end), filename });
    pos = end + next.length;
  }
}

