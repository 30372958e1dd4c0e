/**
 * Where /demo/parley-client.js comes from (src/edge/demo.ts): the build output when present,
 * else one in-process esbuild run, else a clear error logged once. Real files in a temporary
 * tree laid out like the repository.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { clientBundle } from '../../src/edge/demo.js';
import { logSink } from '../helpers/log-sink.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function tree(): { root: string; demo: string } {
  dir = mkdtempSync(join(tmpdir(), 'parley-bundle-'));
  const demo = join(dir, 'client-demo');
  mkdirSync(demo);
  return { root: dir, demo };
}

describe('the demo client bundle', () => {
  it('is read from client-demo/dist/parley-client.js when the build made it, at every request', async () => {
    const { demo } = tree();
    mkdirSync(join(demo, 'dist'));
    writeFileSync(join(demo, 'dist', 'parley-client.js'), 'export const v = 1;\n');
    const logs = logSink('info');
    const bundle = clientBundle(demo, logs.logger);
    const first = await bundle();
    expect(first).toEqual({ code: Buffer.from('export const v = 1;\n'), from: 'file' });
    writeFileSync(join(demo, 'dist', 'parley-client.js'), 'export const v = 2;\n');
    expect(await bundle()).toEqual({ code: Buffer.from('export const v = 2;\n'), from: 'file' });
  });

  it('is built once in-process with scripts/build-client.ts when the file is missing', async () => {
    const { root, demo } = tree();
    // The build script finds the SDK source from its own location: mirror the repository.
    for (const name of ['scripts', 'src', 'node_modules', 'package.json']) symlinkSync(join(process.cwd(), name), join(root, name));
    const logs = logSink('info');
    const bundle = clientBundle(demo, logs.logger);
    const [a, b] = await Promise.all([bundle(), bundle()]);
    expect(a).toBe(b);
    if (!a || 'error' in a) throw new Error(`expected a bundle, got ${JSON.stringify(a)}`);
    expect(a.from).toBe('build');
    expect(a.code.toString()).toMatch(/export\s*\{[^}]*\bParleyClient\b/);
    expect(logs.lines.filter((l) => l.msg === 'demo: built the client bundle in-process')).toHaveLength(1);
  });

  it('without the file and without the build script answers a clear error, logged once', async () => {
    const { demo } = tree();
    const logs = logSink('info');
    const bundle = clientBundle(demo, logs.logger);
    const first = await bundle();
    const second = await bundle();
    expect(first).toBe(second);
    expect(first).toEqual({ error: expect.stringMatching(/^the demo client bundle is missing: client-demo\/dist\/parley-client\.js does not exist .*; run npm run build:client$/) });
    const errors = logs.lines.filter((l) => l.level === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.msg).toBe((first as { error: string }).error);
  });
});
