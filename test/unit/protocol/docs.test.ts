/** The code registry in src/protocol and docs/protocol.md stay in step (fastify's habit). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CloseCode, ErrorCodes, closeCodeList, errorCodeList } from '../../../src/protocol/codes.js';
import { ClientMessages, ServerEvents } from '../../../src/protocol/messages.js';

const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');

/** Rows of the markdown table under `heading`, as arrays of cells. */
function tableUnder(heading: string): string[][] {
  const start = doc.indexOf(heading);
  expect(start, `heading ${heading}`).toBeGreaterThanOrEqual(0);
  const rows: string[][] = [];
  let seenTable = false;
  for (const line of doc.slice(start).split('\n').slice(1)) {
    if (line.startsWith('|')) {
      seenTable = true;
      rows.push(line.split('|').slice(1, -1).map((c) => c.trim()));
    } else if (seenTable) break;
  }
  return rows.slice(2);
}

describe('docs/protocol.md', () => {
  it('lists every error code of the registry in the error-code table, and no other', () => {
    const documented = tableUnder('### Error codes').map((r) => r[0]!.replace(/`/g, ''));
    expect(documented.sort()).toEqual([...errorCodeList].sort());
  });

  it('lists every close code in the close-code table, with the error codes that close with it', () => {
    const rows = tableUnder('### Close codes');
    const documented = rows.map((r) => Number(r[0]));
    expect(documented.sort()).toEqual([...closeCodeList].sort());
    for (const [code, info] of Object.entries(ErrorCodes)) {
      const close = (info as { closeCode?: number }).closeCode;
      if (close === undefined) continue;
      const row = rows.find((r) => Number(r[0]) === close);
      expect(row?.[1], `close ${close} row names ${code}`).toContain(code);
    }
  });

  it('documents every client message and server event type', () => {
    for (const type of [...Object.keys(ClientMessages), ...Object.keys(ServerEvents)]) {
      expect(doc, type).toContain(`| \`${type}\` |`);
    }
  });

  it('keeps the contract\'s close codes', () => {
    expect(CloseCode).toMatchObject({ rateLimited: 4029, sessionTakenOver: 4030, idleTimeout: 4031, unauthorized: 4001, forbidden: 4003, sessionExpired: 4008 });
  });
});
