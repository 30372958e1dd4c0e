/**
 * `@parley/client` as a user gets it (CONTRACT §9): built by scripts/build-client-package.ts into a
 * temporary directory, packed with `npm pack`, installed from the tarball into a fresh project
 * (offline: `ws` comes packed from this repository's own install, so no registry is asked), then
 * - a sample that uses the public types type-checks under `strict` without skipLibCheck, with no
 *   Node types, under both `bundler` and `nodenext` resolution (and wrong uses fail to);
 * - a browser entry bundles with esbuild for the browser platform from the installed package only;
 * - a Node 20 script imports the installed package and `ws`, mints a token from the real gateway
 *   (on port 0, real time) with an API key, and runs a real text turn.
 *
 * About 10-30 s on the 2-core CI machine: the declaration emit and the two type checks are most of it.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildClientPackage } from '../../scripts/build-client-package.js';
import { startApp, TEST_KEY, type TestApp } from '../helpers/app.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const quiet = { env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' } };

let tmp: string;
let app: string;
let packed: { filename: string; files: { path: string }[]; name: string; version: string };

/** The sample a TypeScript app would write: the public API with its types, and three misuses. */
const SAMPLE = `
import { CLOSE_CODES, ParleyClient, ParleyClientError, closeInfo, type LimitState, type ParleyClientOptions, type ServerEventMap, type TurnResult } from '@parley/client';

const options: ParleyClientOptions = {
  url: 'wss://parley.example/v1/realtime',
  token: async () => (await (await fetch('/api/parley-token', { method: 'POST' })).json()).token as string,
  session: { language: 'es', scenario: 'ordering coffee' },
  WebSocket: globalThis.WebSocket,
  bargeIn: true,
};
const client = new ParleyClient(options);
client.on('transcript', (e) => {
  const text: string = e.text;
  const id: string | number = e.request_id;
  console.log(text, id);
});
client.on('quota.updated', (e) => {
  const limits: LimitState[] = e.limits;
  console.log(limits.map((l) => l.remaining));
});
client.on('closed', (e) => console.log(e.code, e.willReconnect, closeInfo(e.code).action));

export async function talk(): Promise<string> {
  const info = await client.connect();
  const maxFrame: number = info.limits.max_frame_bytes;
  const reply: TurnResult = await client.turnText('Hola');
  try {
    await client.translate('thank you', 'es');
  } catch (err) {
    if (err instanceof ParleyClientError) console.log(err.code, err.retryAfterMs);
  }
  return reply.text + maxFrame + CLOSE_CODES[4029].action;
}

export const ended: ServerEventMap['session.ended']['usage']['turns'] = 0;

// @ts-expect-error: not an event of the protocol
client.on('no.such.event', () => undefined);
// @ts-expect-error: a text turn takes a string
void client.turnText(42);
// @ts-expect-error: session.start needs a language
new ParleyClient({ url: 'x', token: 't', session: {} });
`;

const BROWSER = `
import { ParleyClient } from '@parley/client';
const client = new ParleyClient({ url: 'wss://parley.example/v1/realtime', token: 'pt_x', session: { language: 'es' } });
client.on('state', ({ state }) => { document.title = state; });
document.querySelector('button')?.addEventListener('click', () => void client.connect());
`;

/** What an app back end and its Node client do: mint a token with the API key, talk, end. */
const NODE_RUN = `
import { ParleyClient } from '@parley/client';
import { WebSocket } from 'ws';

const { GATEWAY, API_KEY } = process.env;
async function mint() {
  const res = await fetch(GATEWAY + '/v1/tokens', { method: 'POST', headers: { Authorization: 'Bearer ' + API_KEY } });
  if (res.status !== 201) throw new Error('mint: ' + res.status);
  return (await res.json()).token;
}
const client = new ParleyClient({ url: GATEWAY.replace(/^http/, 'ws') + '/v1/realtime', token: mint, session: { language: 'es', scenario: 'ordering coffee' }, WebSocket });
const info = await client.connect();
const turn = await client.turnText('Hola, quiero un café');
const usage = await client.end();
// end() resolves on session.ended; the client is closed once the socket's close completes.
await new Promise((resolve) => (client.state === 'closed' ? resolve() : client.on('state', (e) => e.state === 'closed' && resolve())));
const received = turn.audio.chunks.reduce((n, c) => n + c.byteLength, 0);
console.log(JSON.stringify({ sessionId: info.sessionId, text: turn.text, audioBytes: turn.audio.bytes, received, turns: usage.turns, state: client.state }));
`;

/** Parsed files shared by the two checks (lib.dom.d.ts alone takes a second or more to parse). */
const parsed = new Map<string, ts.SourceFile>();

function typeCheck(moduleResolution: 'bundler' | 'nodenext'): string[] {
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: false,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
    types: [],
    ...(moduleResolution === 'bundler'
      ? { module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler }
      : { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext }),
  };
  const compilerHost = ts.createCompilerHost(options);
  const read = compilerHost.getSourceFile.bind(compilerHost);
  compilerHost.getSourceFile = (file, languageVersion, ...rest) => {
    const key = `${file}:${JSON.stringify(languageVersion)}`;
    let sf = parsed.get(key);
    if (!sf) {
      sf = read(file, languageVersion, ...rest);
      if (sf) parsed.set(key, sf);
    }
    return sf;
  };
  const program = ts.createProgram([path.join(app, 'sample.ts')], options, compilerHost);
  const host = { getCanonicalFileName: (f: string) => f, getCurrentDirectory: () => app, getNewLine: () => '\n' };
  const files = program.getSourceFiles().map((f) => path.relative(app, f.fileName)).filter((f) => !f.includes('typescript/lib'));
  // Nothing outside the installed package and the sample was needed.
  expect(files.every((f) => f === 'sample.ts' || f.startsWith('node_modules/@parley/client/dist/types/')), files.join(', ')).toBe(true);
  return ts.getPreEmitDiagnostics(program).map((d) => ts.formatDiagnostic(d, host).trim());
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-sdk-'));
  const stage = path.join(tmp, 'stage');
  app = path.join(tmp, 'app');
  fs.mkdirSync(stage);
  fs.mkdirSync(app);
  await buildClientPackage({ outDir: stage });
  const { stdout } = await run(NPM, ['pack', '--json', '--pack-destination', tmp], { ...quiet, cwd: stage });
  packed = (JSON.parse(stdout) as (typeof packed)[])[0]!;
  // `ws` from this repository's own install, packed too: the install below asks no registry.
  const ws = await run(NPM, ['pack', '--json', '--pack-destination', tmp, path.join(ROOT, 'node_modules', 'ws')], quiet);
  const wsTarball = (JSON.parse(ws.stdout) as { filename: string }[])[0]!.filename;
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'sdk-sample', private: true, type: 'module' }));
  await run(NPM, ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', path.join(tmp, packed.filename), path.join(tmp, wsTarball)], { ...quiet, cwd: app });
  fs.writeFileSync(path.join(app, 'sample.ts'), SAMPLE);
  fs.writeFileSync(path.join(app, 'browser.ts'), BROWSER);
  fs.writeFileSync(path.join(app, 'run.mjs'), NODE_RUN);
}, 120_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('@parley/client, packed and installed in a fresh project', () => {
  it('packs as @parley/client at the gateway\'s version: the bundle, its source map, declarations and the README, nothing else', () => {
    const rootVersion = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    expect(packed).toMatchObject({ name: '@parley/client', version: rootVersion });
    const files = packed.files.map((f) => f.path).sort();
    expect(files).toEqual(expect.arrayContaining(['README.md', 'package.json', 'dist/index.js', 'dist/index.js.map', 'dist/types/client/index.d.ts', 'dist/types/protocol/messages.d.ts']));
    expect(files.filter((f) => !/^(README\.md|package\.json|dist\/index\.js(\.map)?|dist\/types\/(client|protocol)\/[\w-]+\.d\.ts)$/.test(f))).toEqual([]);
    const installed = path.join(app, 'node_modules', '@parley', 'client');
    const manifest = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ type: 'module', exports: { '.': { types: './dist/types/client/index.d.ts', default: './dist/index.js' } } });
    expect(manifest.dependencies).toBeUndefined();
    // The declarations stand alone: no import of TypeBox, of the gateway, or of any package.
    for (const f of files.filter((x) => x.endsWith('.d.ts'))) {
      const text = fs.readFileSync(path.join(installed, f), 'utf8');
      expect(text, f).not.toMatch(/@sinclair\/typebox|Static</);
      for (const m of text.matchAll(/(?:from\s+|import\()\s*['"]([^'"]+)['"]/g)) expect(m[1], `${f} imports ${m[1]}`).toMatch(/^\.\.?\//);
    }
  });

  it('type-checks a sample under strict (bundler and nodenext resolution), and its misuses are errors', () => {
    expect(typeCheck('bundler')).toEqual([]);
    expect(typeCheck('nodenext')).toEqual([]);
  });

  it('bundles for the browser with esbuild from the installed package, without Node built-ins or ws', async () => {
    const result = await build({
      absWorkingDir: app,
      entryPoints: ['browser.ts'],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    expect(Object.keys(result.metafile.inputs).sort()).toEqual(['browser.ts', 'node_modules/@parley/client/dist/index.js']);
    const code = result.outputFiles[0]!.text;
    expect(code).toMatch(/var ParleyClient = class|class ParleyClient/);
    // Nothing left to import at run time (a Node built-in or ws would stay an external import).
    expect(Object.values(result.metafile.outputs).flatMap((o) => o.imports)).toEqual([]);
    expect(code).not.toMatch(/^\s*import\s|\brequire\(/m);
  });

  describe('in Node 20 with ws passed in', () => {
    let gateway: TestApp | undefined;
    afterAll(async () => {
      await gateway?.close();
    });

    it('mints a token with the API key and runs a real text turn against the gateway', async () => {
      gateway = await startApp({ realTime: true });
      const { stdout } = await run(process.execPath, ['run.mjs'], { cwd: app, env: { ...process.env, GATEWAY: gateway.url, API_KEY: TEST_KEY }, timeout: 30_000 });
      const result = JSON.parse(stdout.trim().split('\n').pop()!) as { sessionId: string; text: string; audioBytes: number; received: number; turns: number; state: string };
      expect(result.sessionId).toMatch(/\S/);
      expect(result.text.length).toBeGreaterThan(0);
      expect(result.audioBytes).toBeGreaterThan(0);
      expect(result.received).toBe(result.audioBytes);
      expect(result.turns).toBe(1);
      expect(result.state).toBe('closed');
    }, 60_000);
  });
});
