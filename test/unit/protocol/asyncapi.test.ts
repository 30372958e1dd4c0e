/**
 * The AsyncAPI document of /v1/realtime (CONTRACT §9): valid for the AsyncAPI parser, made from the
 * protocol's schema objects (every client message and server event, payloads equal to the
 * schemas), and committed as docs/asyncapi.json, up to date.
 */
import fs from 'node:fs';
import { Parser } from '@asyncapi/parser';
import { describe, expect, it } from 'vitest';
import { asyncApiDocument } from '../../../src/protocol/asyncapi.js';
import { ClientMessages, ServerEvents } from '../../../src/protocol/messages.js';
import { ASYNCAPI_FILE, staleFiles } from '../../../scripts/gen-schemas.js';

const doc = asyncApiDocument();
const ops = doc.operations as Record<string, { action: string; messages: { $ref: string }[] }>;
const components = (doc.components as { messages: Record<string, { name: string; contentType: string; payload: unknown }> }).messages;
const namesOf = (op: string): string[] => ops[op]!.messages.map((m) => components[m.$ref.split('/').pop()!]!.name);

describe('AsyncAPI document', () => {
  it('passes @asyncapi/parser with no error and no warning', async () => {
    const { document, diagnostics } = await new Parser().parse(JSON.stringify(doc));
    // Severity 0 is an error, 1 a warning (2 and 3 are information and hints).
    expect(diagnostics.filter((d) => d.severity <= 1).map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`)).toEqual([]);
    expect(document?.version()).toBe('3.1.0');
    const channel = document!.channels().get('realtime')!;
    expect(channel.address()).toBe('/v1/realtime');
    expect(document!.allMessages().length).toBe(Object.keys(ClientMessages).length + Object.keys(ServerEvents).length + 2);
  }, 60_000);

  it('has every client message in the receive operation and every server event in the send operation, from the schema objects', () => {
    expect(ops.receiveClientMessage!.action).toBe('receive');
    expect(ops.sendServerEvent!.action).toBe('send');
    expect(namesOf('receiveClientMessage')).toEqual([...Object.keys(ClientMessages), 'input_audio']);
    expect(namesOf('sendServerEvent')).toEqual([...Object.keys(ServerEvents), 'reply.audio']);
  });

  it('gives each JSON message its schema as the payload, unchanged', () => {
    for (const [type, schema] of [...Object.entries(ClientMessages), ...Object.entries(ServerEvents)]) {
      const message = components[type]!;
      expect(message.contentType).toBe('application/json');
      expect(message.payload, type).toEqual(JSON.parse(JSON.stringify(schema)));
    }
    expect(components.input_audio!.contentType).toBe('application/octet-stream');
    expect(components['reply.audio']!.contentType).toBe('application/octet-stream');
  });

  it('is committed as docs/asyncapi.json, up to date (npx tsx scripts/gen-schemas.ts)', () => {
    expect(staleFiles().filter((f) => f === ASYNCAPI_FILE)).toEqual([]);
    expect(JSON.parse(fs.readFileSync(new URL(`../../../${ASYNCAPI_FILE}`, import.meta.url), 'utf8'))).toEqual(doc);
  });
});
