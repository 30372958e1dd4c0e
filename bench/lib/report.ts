/** Plain-text table rendering and number formatting for the bench's stdout report. */

export const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
export const fmt = (n: number, digits = 2): string =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a';
export const pct = (share: number): string => `${Math.round(share * 100)}%`;

/** A left-aligned first column, right-aligned others, separated by two spaces, with a rule under the header. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string =>
    r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** "met" / "MISSED" against a target; informational only, the bench never fails on it. */
export function verdict(value: number, target: number, direction: 'atLeast' | 'atMost'): string {
  if (!Number.isFinite(value)) return 'n/a';
  const ok = direction === 'atLeast' ? value >= target : value <= target;
  return ok ? 'met' : 'MISSED';
}
