/**
 * Reads PromQL with the Prometheus project's own grammar (@prometheus-io/lezer-promql, the parser
 * of Prometheus's web UI) and lists what an expression names: metrics, the label matchers on
 * each, and the labels it groups or matches by. Tests use it to hold the Grafana dashboard and the
 * alert rules to the metrics a real `/metrics` has.
 */
import { parser } from '@prometheus-io/lezer-promql';
import type { SyntaxNode } from '@lezer/common';

export interface Selector {
  /** The metric name (from the identifier, or from a `__name__` equality matcher). */
  readonly metric: string | undefined;
  /** Label names matched on (`__name__` excluded). */
  readonly labels: readonly string[];
  /** `job="…"` values matched, if any. */
  readonly jobs: readonly string[];
}

export interface Grouping {
  /** Labels of a `by (…)`, `without (…)`, `on (…)`, `ignoring (…)` or `group_left/right (…)` clause. */
  readonly labels: readonly string[];
  /** Metrics named in the expression that clause applies to. */
  readonly metrics: readonly string[];
}

export interface ReadExpression {
  /** Syntax errors: the text around each error node (empty when the expression parses). */
  readonly errors: readonly string[];
  readonly selectors: readonly Selector[];
  readonly groupings: readonly Grouping[];
}

function unquote(s: string): string {
  // PromQL strings: "…" or '…' with Go escapes, or `…` raw. The label values read here are plain.
  return s.slice(1, -1).replace(/\\(.)/g, '$1');
}

function childrenOf(node: SyntaxNode, name: string): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  for (let c = node.firstChild; c; c = c.nextSibling) if (c.name === name) out.push(c);
  return out;
}

function descendants(node: SyntaxNode, name: string): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  const cursor = node.cursor();
  const walk = (): void => {
    do {
      if (cursor.name === name) out.push(cursor.node);
      if (cursor.firstChild()) {
        walk();
        cursor.parent();
      }
    } while (cursor.nextSibling());
  };
  if (cursor.firstChild()) walk();
  return out;
}

/** Parses `expr` and lists its selectors and grouping clauses. */
export function readExpression(expr: string): ReadExpression {
  const tree = parser.parse(expr);
  const errors: string[] = [];
  const selectors: Selector[] = [];
  const groupings: Grouping[] = [];
  const text = (n: SyntaxNode): string => expr.slice(n.from, n.to);
  const metricsIn = (n: SyntaxNode): string[] => descendants(n, 'VectorSelector').map((v) => selectorOf(v).metric).filter((m): m is string => m !== undefined);

  function selectorOf(v: SyntaxNode): Selector {
    let metric = childrenOf(v, 'Identifier').map(text)[0];
    const labels: string[] = [];
    const jobs: string[] = [];
    for (const matchers of childrenOf(v, 'LabelMatchers')) {
      for (const m of [...childrenOf(matchers, 'UnquotedLabelMatcher'), ...childrenOf(matchers, 'QuotedLabelMatcher')]) {
        const name = m.getChild('LabelName') ?? m.getChild('QuotedLabelName');
        const value = m.getChild('StringLiteral');
        const op = m.getChild('MatchOp');
        if (!name) continue;
        const label = name.name === 'QuotedLabelName' ? unquote(text(name)) : text(name);
        if (label === '__name__') {
          if (value && op && text(op) === '=') metric = unquote(text(value));
          continue;
        }
        labels.push(label);
        if (label === 'job' && value) jobs.push(unquote(text(value)));
      }
    }
    return { metric, labels, jobs };
  }

  tree.iterate({
    enter(ref) {
      if (ref.type.isError) errors.push(JSON.stringify(expr.slice(Math.max(0, ref.from - 10), ref.to + 10)));
      const node = ref.node;
      if (ref.name === 'VectorSelector') selectors.push(selectorOf(node));
      if (ref.name === 'AggregateModifier') {
        // `sum by (x) (expr)` and `sum (expr) by (x)`: the clause applies to the aggregation's body.
        const aggregation = node.parent!;
        groupings.push({ labels: descendants(node, 'LabelName').map(text), metrics: metricsIn(aggregation) });
      }
      if (ref.name === 'MatchingModifierClause') {
        // `a / on (x) group_left (y) b`: the clause applies to both operands.
        groupings.push({ labels: descendants(node, 'LabelName').map(text), metrics: metricsIn(node.parent!) });
      }
    },
  });
  return { errors, selectors, groupings };
}

/** Grafana's built-in and dashboard variables replaced by values PromQL accepts, so the expression parses. */
export function withoutGrafanaVariables(expr: string, variables: Readonly<Record<string, string>>): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '1m')
    .replaceAll('$__range', '1h')
    .replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (whole, braced: string | undefined, bare: string | undefined) => variables[braced ?? bare ?? ''] ?? whole);
}
