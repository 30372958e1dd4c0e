/**
 * Writes the machine-readable contracts that are committed under docs/, each generated from its
 * single source of truth (STYLE.md 6):
 *
 * - docs/config.schema.json: the configuration's JSON Schema (src/config/schema.ts);
 * - docs/asyncapi.json: the AsyncAPI document of /v1/realtime (src/protocol/messages.ts).
 *
 *   npx tsx scripts/gen-schemas.ts          rewrite the files that changed
 *   npx tsx scripts/gen-schemas.ts --check  exit 1 if one is out of date
 *
 * (The OpenAPI document is not committed: it is built from the routes at start, GET /openapi.json.)
 * test/unit/config/schema-file.test.ts and test/unit/protocol/asyncapi.test.ts run the same
 * comparison, so a schema change without its file fails the tests.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CONFIG_SCHEMA_FILE, configJsonSchema } from '../src/config/schema.js';
import { asyncApiDocument } from '../src/protocol/asyncapi.js';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The committed AsyncAPI document's path, relative to the repository. */
export const ASYNCAPI_FILE = 'docs/asyncapi.json';

/** Each generated file: its path (relative to the repository) and its expected text. */
export function generatedFiles(): { file: string; text: string }[] {
  const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;
  return [
    { file: CONFIG_SCHEMA_FILE, text: json(configJsonSchema()) },
    { file: ASYNCAPI_FILE, text: json(asyncApiDocument()) },
  ];
}

/** The generated files whose committed text differs from what the sources give now. */
export function staleFiles(): string[] {
  return generatedFiles()
    .filter(({ file, text }) => {
      const full = path.join(ROOT, file);
      return !fs.existsSync(full) || fs.readFileSync(full, 'utf8') !== text;
    })
    .map(({ file }) => file);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const stale = staleFiles();
  if (process.argv.includes('--check')) {
    if (stale.length > 0) {
      console.error(`out of date: ${stale.join(', ')}; run npx tsx scripts/gen-schemas.ts`);
      process.exit(1);
    }
  } else {
    for (const { file, text } of generatedFiles()) {
      if (!stale.includes(file)) continue;
      fs.writeFileSync(path.join(ROOT, file), text);
      console.log(`updated ${file}`);
    }
  }
}
