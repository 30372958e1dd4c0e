/**
 * Builds `@parley/client`, the installable package of the SDK (src/client/, CONTRACT §9):
 *
 *   npm run build:package        writes packages/client/dist/ (then `npm pack packages/client`)
 *
 * The package (packages/client/: its package.json and README are committed, dist/ is built):
 * - `dist/index.js`: one ESM file bundled by esbuild for the browser platform, ES2020, so it holds
 *   no Node built-in (esbuild refuses to bundle one for that platform), no TypeBox and no ajv; the
 *   same file runs in Node 20+ with `ws`'s WebSocket passed in;
 * - `dist/types/`: the declarations, made by the TypeScript compiler (declaration-only emit of
 *   src/client), with `protocol/messages.d.ts` replaced by a standalone file the compiler's own
 *   checker prints: the protocol's event types are TypeBox `Static<…>` computations, which a
 *   declaration bundler (api-extractor, rollup-plugin-dts) would leave as references to TypeBox or
 *   copy TypeBox's type machinery in; printed resolved, they are plain object types that need no
 *   other package and are exactly what src/client type-checks against. No new dependency: the
 *   compiler is the project's own.
 *
 * `buildClientPackage({outDir})` builds into another directory (the package test builds into a
 * temporary one).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import ts from 'typescript';
import { ServerEvents } from '../src/protocol/messages.js';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The package's committed files (package.json, README.md). */
export const PACKAGE_DIR = path.join(ROOT, 'packages', 'client');
const CLIENT_ENTRY = path.join(ROOT, 'src', 'client', 'index.ts');
/** A file the build adds to the program to ask the checker for the protocol's types. */
const PROBE = path.join(ROOT, 'src', 'protocol', '__client_types__.ts');

export interface BuiltPackage {
  /** The package directory: package.json, README.md, dist/. */
  readonly dir: string;
  /** Bytes of dist/index.js. */
  readonly bundleBytes: number;
  /** Every file written under dist/, relative to `dir`. */
  readonly files: string[];
}

/** Builds the package into `outDir` (default packages/client), copying its package.json and README there if it is elsewhere. */
export async function buildClientPackage(opts: { outDir?: string } = {}): Promise<BuiltPackage> {
  const dir = opts.outDir ?? PACKAGE_DIR;
  const dist = path.join(dir, 'dist');
  fs.rmSync(dist, { recursive: true, force: true });
  fs.mkdirSync(dist, { recursive: true });
  if (path.resolve(dir) !== path.resolve(PACKAGE_DIR)) {
    for (const f of ['package.json', 'README.md']) fs.copyFileSync(path.join(PACKAGE_DIR, f), path.join(dir, f));
  }

  const js = await build({
    entryPoints: [CLIENT_ENTRY],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2020',
    minify: false,
    sourcemap: 'linked',
    sourcesContent: true,
    legalComments: 'none',
    outfile: path.join(dist, 'index.js'),
    logLevel: 'silent',
    metafile: true,
    banner: { js: '// @parley/client: the Parley gateway SDK (bundled from src/client by scripts/build-client-package.ts).' },
  });
  const inputs = Object.keys(js.metafile.inputs);
  const foreign = inputs.filter((f) => !/^src\/(client|protocol\/messages)/.test(path.relative(ROOT, path.resolve(ROOT, f)).replace(/\\/g, '/')));
  if (foreign.length > 0) throw new Error(`build-client-package: the bundle would include ${foreign.join(', ')}`);

  for (const [file, text] of declarations()) {
    const out = path.join(dist, 'types', file);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, text);
  }
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const name of fs.readdirSync(d)) {
      const full = path.join(d, name);
      if (fs.statSync(full).isDirectory()) walk(full);
      else files.push(path.relative(dir, full).replace(/\\/g, '/'));
    }
  };
  walk(dist);
  return { dir, bundleBytes: fs.statSync(path.join(dist, 'index.js')).size, files: files.sort() };
}

/** Compiler options of the declaration emit: the project's, declaration-only. */
function compilerOptions(): ts.CompilerOptions {
  const configFile = ts.readConfigFile(path.join(ROOT, 'tsconfig.json'), (f) => ts.sys.readFile(f));
  const parsed = ts.parseJsonConfigFileContent(configFile.config, ts.sys, ROOT);
  return { ...parsed.options, noEmit: false, declaration: true, emitDeclarationOnly: true, declarationMap: false, sourceMap: false, rootDir: path.join(ROOT, 'src'), outDir: '/', types: [] };
}

/** The names src/client imports from the protocol module (types only, as the d.ts files show). */
function importedNames(text: string): string[] {
  const names = new Set<string>();
  for (const m of text.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+['"]\.\.\/protocol\/messages\.js['"]/g)) {
    for (const part of m[1]!.split(',')) {
      const name = part.replace(/^\s*type\s+/, '').split(/\s+as\s+/)[0]!.trim();
      if (name) names.add(name);
    }
  }
  for (const m of text.matchAll(/import\(['"]\.\.\/protocol\/messages\.js['"]\)\.(\w+)/g)) names.add(m[1]!);
  return [...names].sort();
}

/**
 * The declaration files of the package, by path under dist/types: src/client's, as the compiler
 * emits them, and `protocol/messages.d.ts` printed from the checker (see the file comment).
 */
function declarations(): Map<string, string> {
  const options = compilerOptions();
  const emitted = new Map<string, string>();
  // The protocol names src/client imports, read from its sources; checked again on the emitted
  // declarations below, so a name they need and this list lacks fails the build.
  const clientDir = path.dirname(CLIENT_ENTRY);
  const names = importedNames(fs.readdirSync(clientDir).filter((f) => f.endsWith('.ts')).map((f) => fs.readFileSync(path.join(clientDir, f), 'utf8')).join('\n'));
  // The generic and the unions are written in terms of ProtocolEvents; the rest are printed.
  const derived = new Set(['ServerEventOf', 'ServerEventType', 'ServerEvent']);
  const plainNames = names.filter((n) => !derived.has(n));
  // A probe module names each type to print: the plain ones, and every server event type by key
  // of ServerEvents (so an event added later comes too). One program serves the emit and the probe.
  const eventTypes = Object.keys(ServerEvents);
  const alias = (type: string): string => `__E_${type.replace(/\W/g, '_')}`;
  const probe =
    `import type * as M from './messages.js';\n` +
    plainNames.map((n) => `export type __N_${n} = M.${n};\n`).join('') +
    eventTypes.map((t) => `export type ${alias(t)} = M.ServerEventOf<'${t}'>;\n`).join('');
  const host = ts.createCompilerHost(options);
  const read = host.getSourceFile.bind(host);
  host.getSourceFile = (file, languageVersion, ...rest) =>
    path.resolve(file) === PROBE ? ts.createSourceFile(file, probe, languageVersion, true) : read(file, languageVersion, ...rest);
  const exists = host.fileExists.bind(host);
  host.fileExists = (file) => path.resolve(file) === PROBE || exists(file);

  // 1. src/client's declarations, as the compiler emits them. No full type check here (npm run
  // typecheck does it, and it costs seconds): only what the declaration emit itself reports.
  const program = ts.createProgram([CLIENT_ENTRY, PROBE], options, host);
  const result = program.emit(undefined, (file, text) => {
    const rel = path.relative('/', file).replace(/\\/g, '/');
    if (rel.startsWith('client/')) emitted.set(rel, text);
  });
  if (result.emitSkipped || result.diagnostics.length > 0) throw new Error(`build-client-package: ${ts.formatDiagnostics(result.diagnostics, host)}`);
  const missing = importedNames([...emitted.values()].join('\n')).filter((n) => !names.includes(n));
  if (missing.length > 0) throw new Error(`build-client-package: the declarations import ${missing.join(', ')} from the protocol, which src/client's sources do not`);

  // 2. The protocol types src/client uses, resolved by the checker.
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(PROBE)!;
  const printer = ts.createPrinter({ newLine: ts.NewLineKind.LineFeed });
  const flags = ts.NodeBuilderFlags.NoTruncation | ts.NodeBuilderFlags.InTypeAlias | ts.NodeBuilderFlags.MultilineObjectLiterals;
  const printed = (name: string, indent = ''): string => {
    const decl = source.statements.find((st): st is ts.TypeAliasDeclaration => ts.isTypeAliasDeclaration(st) && st.name.text === name);
    const node = decl && checker.typeToTypeNode(checker.getTypeAtLocation(decl), undefined, flags);
    if (!node) throw new Error(`build-client-package: cannot print ${name}`);
    const text = printer.printNode(ts.EmitHint.Unspecified, node, source);
    if (/\bimport\(|\bT[A-Z]\w+</.test(text)) throw new Error(`build-client-package: ${name} did not resolve to a plain type: ${text.slice(0, 200)}`);
    return text.replace(/\n/g, `\n${indent}`);
  };
  const body = [
    '// The protocol types @parley/client uses, printed resolved by the TypeScript checker from the',
    "// gateway's message schemas (src/protocol/messages.ts) by scripts/build-client-package.ts.",
    '// Standalone: it imports nothing.',
    '',
    '/** Every server event, by its `type`. */',
    'export interface ProtocolEvents {',
    ...eventTypes.map((t) => `  ${JSON.stringify(t)}: ${printed(alias(t), '  ')};`),
    '}',
    '',
    'export type ServerEventType = keyof ProtocolEvents;',
    '',
    'export type ServerEventOf<K extends ServerEventType> = ProtocolEvents[K];',
    '',
    'export type ServerEvent = ProtocolEvents[ServerEventType];',
    ...plainNames.flatMap((n) => ['', `export type ${n} = ${printed(`__N_${n}`)};`]),
  ];
  emitted.set('protocol/messages.d.ts', `${body.join('\n')}\n`);

  // Every import of a declaration file stays inside the package.
  for (const [file, text] of emitted) {
    for (const m of text.matchAll(/(?:from\s+|import\()\s*['"]([^'"]+)['"]/g)) {
      const spec = m[1]!;
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec)).replace(/\.js$/, '.d.ts');
      if (!spec.startsWith('.') || !emitted.has(target)) throw new Error(`build-client-package: ${file} imports ${spec}, which is not in the package`);
    }
  }
  return emitted;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  buildClientPackage().then(
    ({ dir, bundleBytes, files }) => {
      console.log(`${path.relative(process.cwd(), dir)}: @parley/client, dist/index.js ${bundleBytes} bytes, ${files.length} files`);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
