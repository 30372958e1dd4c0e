/**
 * Generates the reference tables of docs/configuration.md from the TypeBox schema (the single
 * source of truth, STYLE.md 6): every key, its type, default and meaning.
 *
 *   npx tsx scripts/gen-config-docs.ts          rewrite the tables between the markers
 *   npx tsx scripts/gen-config-docs.ts --check  exit 1 if the doc is out of date
 *
 * test/unit/config/load.test.ts runs the same comparison, so a schema change without a doc
 * change fails the tests.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Kind, OptionalKind, type TSchema } from '@sinclair/typebox';
import { describeSchema } from '../src/config/load.js';
import {
  AccountSchema,
  ConfigSchema,
  KeySchema,
  MemoryStoreSchema,
  PlanSchema,
  RedisStoreSchema,
  RequestsPerMinuteSchema,
  ServerSchema,
  SimulatedTimingSchema,
  UpstreamLimitsSchema,
  UpstreamSchema,
} from '../src/config/schema.js';

export const BEGIN = '<!-- BEGIN GENERATED: npx tsx scripts/gen-config-docs.ts -->';
export const END = '<!-- END GENERATED -->';
export const DOC_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'configuration.md');

function typeText(schema: TSchema): string {
  if (schema[Kind] === 'Array') {
    const items = schema.items as TSchema;
    const inner = items[Kind] === 'Object' ? 'objects' : `${describeSchema(items).replace(/^an? /, '')}s`;
    const min = schema.minItems as number | undefined;
    return `${min === 1 ? 'non-empty array' : 'array'} of ${inner}`;
  }
  return describeSchema(schema).replace(/^an? /, '');
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function defaultText(schema: TSchema, required: boolean): string {
  if ('default' in schema) {
    const d: unknown = schema.default;
    // An object default of {} means "filled from its own keys' defaults".
    if (schema[Kind] === 'Object' && typeof d === 'object' && d !== null && Object.keys(d).length === 0) return 'see below';
    return `\`${JSON.stringify(d)}\``;
  }
  return required ? '**required**' : '—';
}

/** One markdown table of an object schema's keys. */
export function table(schema: TSchema, prefix = ''): string {
  const properties = schema.properties as Record<string, TSchema>;
  const required = new Set((schema.required as string[] | undefined) ?? []);
  const rows = Object.entries(properties).map(([key, prop]) => {
    const isRequired = required.has(key) && prop[OptionalKind] !== 'Optional';
    const name = `\`${prefix}${key}\``;
    const description = (prop.description as string | undefined) ?? '';
    return `| ${name} | ${cell(typeText(prop))} | ${cell(defaultText(prop, isRequired))} | ${cell(description)} |`;
  });
  return ['| key | type | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

/** The generated part of docs/configuration.md. */
export function renderConfigTables(): string {
  const top = ConfigSchema.properties;
  const sections: [string, string][] = [
    ['Top level', table(ConfigSchema)],
    ['`server`', `${ServerSchema.description}.\n\n${table(ServerSchema)}`],
    [
      '`store`',
      `One of two shapes, chosen by \`kind\` (default ${defaultText(top.store, false)}).\n\n` +
        `\`{"kind": "memory"}\`:\n\n${table(MemoryStoreSchema)}\n\n\`{"kind": "redis", …}\`:\n\n${table(RedisStoreSchema)}`,
    ],
    ['`plans.<name>`', `${PlanSchema.description}. Every key is optional.\n\n${table(PlanSchema)}`],
    ['`plans.<name>.requestsPerMinute`', `${RequestsPerMinuteSchema.description}.\n\n${table(RequestsPerMinuteSchema)}`],
    ['`accounts[]`', table(AccountSchema)],
    ['`accounts[].keys[]`', table(KeySchema)],
    [
      '`upstreams.<kind>`',
      `${UpstreamSchema.description}; \`<kind>\` is one of ${Object.keys(top.upstreams.properties).map((k) => `\`${k}\``).join(', ')}. ` +
        'A kind left out is `{"provider": "simulated"}`.\n\n' +
        table(UpstreamSchema),
    ],
    [
      '`upstreams.<kind>.limits`',
      `${UpstreamLimitsSchema.description}. The rate and size limits are optional and combinable; one left out does not apply.\n\n${table(UpstreamLimitsSchema)}`,
    ],
    ['`upstreams.<kind>.simulatedTiming`', `${SimulatedTimingSchema.description}.\n\n${table(SimulatedTimingSchema)}`],
  ];
  return sections.map(([title, body]) => `### ${title}\n\n${body}`).join('\n\n');
}

/** The doc with its generated part replaced. */
export function withTables(doc: string): string {
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${DOC_PATH}: markers ${BEGIN} … ${END} not found`);
  return `${doc.slice(0, start + BEGIN.length)}\n\n${renderConfigTables()}\n\n${doc.slice(end)}`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const doc = fs.readFileSync(DOC_PATH, 'utf8');
  const next = withTables(doc);
  if (process.argv.includes('--check')) {
    if (next !== doc) {
      console.error(`${DOC_PATH} is out of date: run npx tsx scripts/gen-config-docs.ts`);
      process.exit(1);
    }
  } else if (next !== doc) {
    fs.writeFileSync(DOC_PATH, next);
    console.log(`updated ${DOC_PATH}`);
  }
}
