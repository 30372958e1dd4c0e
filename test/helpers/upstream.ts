/**
 * A scripted upstream: a real HTTP server speaking the OpenAI-compatible wire format, whose answer
 * to each request a test decides. It records every request (path, body, time) and every request
 * whose connection the client closed before the answer (an abort the upstream sees).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { synthesizeSpeech } from '../../src/simulator/speech-synth.js';

export interface SeenRequest {
  readonly path: string;
  readonly body: Buffer;
  readonly json: Record<string, unknown> | undefined;
  readonly at: number;
  readonly headers: IncomingMessage['headers'];
  aborted: boolean;
  answered: boolean;
}

export type Script = (req: SeenRequest, res: ServerResponse) => void | Promise<void>;

export interface ScriptedUpstream {
  readonly url: string;
  readonly seen: SeenRequest[];
  /** Requests in flight now, and the most seen at once. */
  readonly inFlight: () => number;
  readonly maxInFlight: () => number;
  close(): Promise<void>;
}

/** The normal answers, by path, so a script only overrides what it tests. */
export function normalAnswer(req: SeenRequest, res: ServerResponse, reply = 'Muy bien. ¿Y qué más quieres?'): void {
  if (req.path.endsWith('/chat/completions')) {
    const messages = (req.json?.messages as { role: string; content: string }[] | undefined) ?? [];
    const last = messages.at(-1)?.content ?? '';
    const isTranslation = messages[0]?.content.toLowerCase().includes('translat') ?? false;
    json(res, 200, { choices: [{ message: { role: 'assistant', content: isTranslation ? `[t] ${last}` : reply } }] });
  } else if (req.path.endsWith('/audio/transcriptions')) {
    json(res, 200, { text: 'Hola, quiero un café.' });
  } else if (req.path.endsWith('/audio/speech')) {
    const input = String(req.json?.input ?? '');
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
    res.end(synthesizeSpeech(input, { sampleRate: 24000 }));
  } else if (req.path.endsWith('/pronunciation/assessments')) {
    json(res, 200, { score: 80, words: [{ word: 'hola', score: 80 }] });
  } else json(res, 404, { error: { message: 'no such route' } });
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

export async function startScriptedUpstream(script: Script = normalAnswer): Promise<ScriptedUpstream> {
  const seen: SeenRequest[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      let parsed: Record<string, unknown> | undefined;
      if ((req.headers['content-type'] ?? '').includes('json')) {
        try {
          parsed = JSON.parse(body.toString()) as Record<string, unknown>;
        } catch {
          parsed = undefined;
        }
      }
      const entry: SeenRequest = { path: req.url ?? '', body, json: parsed, at: Date.now(), headers: req.headers, aborted: false, answered: false };
      seen.push(entry);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        inFlight--;
      };
      res.on('finish', () => {
        entry.answered = true;
        finish();
      });
      res.on('close', () => {
        if (!entry.answered) entry.aborted = true;
        finish();
      });
      Promise.resolve(script(entry, res)).catch(() => res.destroy());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    seen,
    inFlight: () => inFlight,
    maxInFlight: () => maxInFlight,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** An upstream block pointing every kind at one base URL. */
export function openAiUpstreams(baseUrl: string, limits: Record<string, unknown> = {}, kinds = ['conversation', 'stt', 'tts', 'translation', 'pronunciation']): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of kinds) out[k] = { provider: 'openai', baseUrl, apiKey: 'sk_upstream_test_key', account: 'shared', limits };
  return out;
}
