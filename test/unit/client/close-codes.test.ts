/**
 * The client's close-code table (src/client/close-codes.ts) against the contract's codes
 * (src/protocol/codes.ts): a code added to the contract without a client action fails here.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLOSE_CODES, ERROR_CODE_ACTIONS, closeInfo, reconnects, type CloseAction } from '../../../src/client/close-codes.js';
import { CloseCode, ErrorCodes, closeCodeList, errorCodeList } from '../../../src/protocol/codes.js';

/** What CONTRACT.md §5 "Close codes" says a client should do, as actions. */
const EXPECTED: Record<number, CloseAction> = {
  1000: 'stop',
  1002: 'fix_client',
  1006: 'retry',
  1007: 'fix_client',
  1008: 'fix_client',
  1009: 'fix_client',
  1011: 'retry',
  1012: 'resume',
  1013: 'retry',
  4001: 'new_token',
  4003: 'stop',
  4008: 'new_session',
  4029: 'retry',
  4030: 'stop',
  4031: 'new_session',
};

describe('close-code table', () => {
  it('has exactly the contract\'s close codes', () => {
    const table = Object.keys(CLOSE_CODES).map(Number).sort((a, b) => a - b);
    expect(table).toEqual([...closeCodeList].sort((a, b) => a - b));
    expect(table).toEqual(Object.keys(EXPECTED).map(Number));
  });

  it.each(Object.entries(EXPECTED))('close %s → %s, with a message', (code, action) => {
    const info = closeInfo(Number(code));
    expect(info.action).toBe(action);
    expect(info.message.length).toBeGreaterThan(20);
  });

  it('every close code an error code leads to is in the table', () => {
    for (const code of errorCodeList) {
      const closeCode = (ErrorCodes[code] as { closeCode?: number }).closeCode;
      if (closeCode !== undefined) expect(CLOSE_CODES).toHaveProperty(String(closeCode));
    }
  });

  it('a slow consumer (1008 slow_consumer) resumes; the other 1008 errors do not', () => {
    expect(closeInfo(CloseCode.policyViolation, 'slow_consumer').action).toBe('retry');
    expect(closeInfo(CloseCode.policyViolation, 'forbidden').action).toBe('fix_client');
    expect(closeInfo(CloseCode.policyViolation, 'invalid_message').action).toBe('fix_client');
    expect(Object.keys(ERROR_CODE_ACTIONS).every((c) => (errorCodeList as string[]).includes(c))).toBe(true);
  });

  it('a code outside the contract (a proxy, the browser) is treated as a network drop', () => {
    expect(closeInfo(1001)).toMatchObject({ action: 'retry' });
    expect(closeInfo(1001).message).toContain('1001');
  });

  it('reconnects() is true exactly for retry, resume and new_token', () => {
    const actions: CloseAction[] = ['retry', 'resume', 'new_token', 'new_session', 'stop', 'fix_client'];
    expect(actions.filter(reconnects)).toEqual(['retry', 'resume', 'new_token']);
  });
});

describe('docs/client.md', () => {
  it('lists every close code with the action the table gives it', () => {
    const doc = fs.readFileSync(new URL('../../../docs/client.md', import.meta.url), 'utf8');
    for (const [code, info] of Object.entries(CLOSE_CODES)) {
      expect(doc, `close ${code}`).toMatch(new RegExp(`^\\| ${code} \\| \`${info.action}\` \\|`, 'm'));
    }
  });
});
