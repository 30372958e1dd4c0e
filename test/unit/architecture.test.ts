/**
 * The import rules of ARCHITECTURE.md, held by dependency-cruiser (.dependency-cruiser.cjs) with the
 * suite: the product's src/ has no violation, and the same rules do report one in a fixture that
 * breaks them (so the check is not vacuous).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult, type IConfiguration } from 'dependency-cruiser';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const rules = createRequire(import.meta.url)('../../.dependency-cruiser.cjs') as IConfiguration;

async function violations(baseDir: string): Promise<string[]> {
  const result = await cruise(['src'], { ...rules.options, ruleSet: { forbidden: rules.forbidden }, baseDir, validate: true });
  const output = result.output as ICruiseResult;
  return output.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`);
}

describe('import rules (ARCHITECTURE.md)', () => {
  it('src/ follows the one-way flow', async () => {
    expect(await violations(root)).toEqual([]);
  }, 60_000);

  it('the rules report an import against the flow (store/ importing upstream/)', async () => {
    const found = await violations(fileURLToPath(new URL('../fixtures/architecture/', import.meta.url)));
    expect(found).toEqual(['store-not-edge-sessions-turns-upstream: src/store/wrong.ts → src/upstream/provider.ts']);
  }, 60_000);
});
