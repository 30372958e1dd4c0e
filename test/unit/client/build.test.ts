/**
 * The browser bundle (scripts/build-client.ts) and the browser-safety of src/client: no Node
 * built-ins, no `ws`, no Buffer, no runtime import of src/protocol (TypeBox would come along).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildClient, CLIENT_ENTRY } from '../../../scripts/build-client.js';

const clientDir = path.dirname(CLIENT_ENTRY);
const sources = fs.readdirSync(clientDir).filter((f) => f.endsWith('.ts'));

describe('client bundle', () => {
  it('builds one self-contained ESM file with no require(, node: imports, ws or TypeBox', async () => {
    const { code, bytes } = await buildClient({ write: false });
    expect(bytes).toBe(Buffer.byteLength(code));
    expect(bytes).toBeGreaterThan(10_000);
    expect(code).not.toContain('require(');
    expect(code).not.toMatch(/["']node:/);
    expect(code).not.toMatch(/^\s*import\s/m); // nothing left to resolve: the bundle stands alone
    expect(code).not.toMatch(/sinclair|TypeCompiler|ajv/i);
    expect(code).not.toMatch(/\bBuffer\./);
    expect(code).toMatch(/^export\s*\{[^}]*\bParleyClient\b[^}]*\}/m);
    expect(code).toContain('CLOSE_CODES');
  });

  it('writes the bundle where it is told', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-client-'));
    try {
      const outfile = path.join(dir, 'nested', 'parley-client.js');
      const { bytes } = await buildClient({ outfile });
      expect(fs.statSync(outfile).size).toBe(bytes);
      expect(fs.readdirSync(path.dirname(outfile))).toEqual(['parley-client.js']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the bundle runs: it exports a working close-code table and a constructor that checks its options', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-client-'));
    try {
      const outfile = path.join(dir, 'parley-client.mjs');
      await buildClient({ outfile });
      const mod = (await import(outfile)) as typeof import('../../../src/client/index.js');
      expect(mod.closeInfo(1012).action).toBe('resume');
      expect(() => new mod.ParleyClient({ url: 'http://x', token: 't', session: { language: 'es' } })).toThrow(/ws:\/\/ or wss:\/\//);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('src/client sources', () => {
  it.each(sources)('%s imports nothing Node-only and runtime-imports nothing from src/protocol', (file) => {
    const text = fs.readFileSync(path.join(clientDir, file), 'utf8');
    const imports = [...text.matchAll(/^\s*(import|export)\s+(type\s+)?[^;]*?from\s+['"]([^'"]+)['"]/gm)];
    for (const m of imports) {
      const typeOnly = m[2] !== undefined;
      const spec = m[3]!;
      expect(spec.startsWith('node:'), `${file}: ${spec}`).toBe(false);
      expect(spec, `${file}`).not.toBe('ws');
      if (spec.includes('/protocol/')) expect(typeOnly, `${file}: runtime import of ${spec}`).toBe(true);
      if (!spec.startsWith('.')) throw new Error(`${file}: imports the package ${spec}`);
    }
    expect(text).not.toMatch(/\bBuffer\b/);
    expect(text).not.toMatch(/\bprocess\./);
  });
});
