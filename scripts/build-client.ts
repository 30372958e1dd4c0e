/**
 * Bundles the client SDK (src/client/index.ts) for browsers: one ESM file, no Node built-ins.
 *
 *   npm run build:client       writes client-demo/dist/parley-client.js and prints its size
 *
 * `buildClient()` is also called by the demo route to build the bundle on first request when the
 * file is missing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** The repository root: the nearest directory above this file holding package.json (works from scripts/ and dist/scripts/). */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('build-client: no package.json above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

export const CLIENT_ENTRY = path.join(repoRoot(), 'src', 'client', 'index.ts');
export const CLIENT_OUTFILE = path.join(repoRoot(), 'client-demo', 'dist', 'parley-client.js');

export interface BuildClientOptions {
  /** Where to write the bundle (default client-demo/dist/parley-client.js). */
  outfile?: string;
  /** Write the file (default true); false only returns the code. */
  write?: boolean;
}

/** Bundles the SDK (platform browser, ESM, ES2020, not minified so the demo stays readable). */
export async function buildClient(opts: BuildClientOptions = {}): Promise<{ code: string; bytes: number }> {
  const outfile = opts.outfile ?? CLIENT_OUTFILE;
  const result = await build({
    entryPoints: [CLIENT_ENTRY],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2020',
    minify: false,
    sourcemap: false,
    legalComments: 'none',
    write: false,
    outfile,
    logLevel: 'silent',
    banner: { js: '// Parley client SDK (bundled from src/client by scripts/build-client.ts). See docs/client.md.' },
  });
  const file = result.outputFiles[0];
  if (file === undefined) throw new Error('build-client: esbuild produced no output');
  const code = file.text;
  if (opts.write !== false) {
    fs.mkdirSync(path.dirname(outfile), { recursive: true });
    // Write then rename, so a concurrent reader (the demo route) never sees half a file.
    const tmp = `${outfile}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, code);
    fs.renameSync(tmp, outfile);
  }
  return { code, bytes: Buffer.byteLength(code) };
}

const invokedDirectly = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  buildClient().then(
    ({ bytes }) => {
      console.log(`${path.relative(process.cwd(), CLIENT_OUTFILE)}: ${bytes} bytes`);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
