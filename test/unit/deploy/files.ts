/** Reading the deployment files for the tests of test/unit/deploy/. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, parseAllDocuments } from 'yaml';

/** The repository root, as a path ending in `/`. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export const readText = (path: string): string => readFileSync(ROOT + path, 'utf8');

/** One YAML document; `merge` turns on `<<` merge keys (Compose files use them). */
export function readYaml<T>(path: string, merge = false): T {
  return parseYaml(readText(path), { merge }) as T;
}

/** Every document of a multi-document YAML file; throws on a syntax error. */
export function readYamlDocuments(path: string): unknown[] {
  return parseAllDocuments(readText(path)).map((d) => {
    if (d.errors.length) throw new Error(`${path}: ${d.errors[0]!.message}`);
    return d.toJS() as unknown;
  });
}

/** The image's environment and port, as the Dockerfile's runtime stage sets them. */
export function dockerfileRuntime(): { port: number; exposed: number[]; user: string } {
  const text = readText('Dockerfile');
  const runtime = text.slice(text.lastIndexOf('\nFROM '));
  const port = /\bPORT=(\d+)/.exec(runtime);
  const user = /^USER\s+(\S+)/m.exec(runtime);
  if (!port || !user) throw new Error('the Dockerfile runtime stage sets no PORT or USER');
  return { port: Number(port[1]), exposed: [...runtime.matchAll(/^EXPOSE\s+(\d+)/gm)].map((m) => Number(m[1])), user: user[1]! };
}

/** Seconds of a Compose / Go duration such as `20s`, `1m30s`, `1h`. */
export function durationSeconds(d: string): number {
  const parts = [...d.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)];
  if (parts.map((p) => p[0]).join('') !== d) throw new Error(`not a duration: ${d}`);
  const unit = { h: 3600, m: 60, s: 1, ms: 0.001 } as const;
  return parts.reduce((sum, p) => sum + Number(p[1]) * unit[p[2] as keyof typeof unit], 0);
}

/** Every string value in a parsed document that starts with `env:` (the config's secrets from the environment). */
export function envReferences(doc: unknown): string[] {
  if (typeof doc === 'string') return doc.startsWith('env:') ? [doc.slice(4)] : [];
  if (Array.isArray(doc)) return doc.flatMap(envReferences);
  if (typeof doc === 'object' && doc !== null) return Object.values(doc).flatMap(envReferences);
  return [];
}
