/** The configuration: schema and types (CONTRACT.md §2), and its loading. */
export * from './schema.js';
export * from './load.js';
