/**
 * `/metrics` of the real app, default metrics on and Parley's families fed by real traffic (a
 * session, a turn, a REST 429, a client close; families with no sample yet are checked by their
 * HELP and TYPE lines), passes `promtool check
 * metrics` (CONTRACT §9): no problem line about Parley's own metrics; prom-client's
 * `nodejs_active_{handles,requests,resources}_total` gauges are the one exception the contract
 * names. promtool comes with Debian's `prometheus` package (.ci/run installs it); a machine without
 * it fails this test rather than skip it.
 */
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp, type ParleyApp } from '../../src/app.js';
import { testConfig, until } from '../helpers/app.js';
import { connect, type TestClient } from '../helpers/client.js';
import { logSink } from '../helpers/log-sink.js';
import { parsePrometheusText } from '../unit/telemetry/prometheus-text.js';

/** prom-client's active-resource gauges end in `_total`, which promtool reserves for counters (the contract's exception). */
const KNOWN_DEFAULT_PROBLEM = /^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/;

let app: ParleyApp | undefined;
let client: TestClient | undefined;
afterEach(async () => {
  client?.ws.terminate();
  await app?.close();
  app = client = undefined;
});

function promtool(text: string): { status: number | null; problems: string[] } {
  const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 });
  if (run.error) throw new Error(`promtool could not run (${run.error.message}); install Debian's prometheus package`);
  const problems = `${run.stdout}\n${run.stderr}`.split('\n').map((l) => l.trim()).filter(Boolean);
  return { status: run.status, problems };
}

describe('promtool check metrics', () => {
  it('finds no problem with Parley\'s metrics, and the default metrics keep their standard names', async () => {
    const config = testConfig({ plan: { requestsPerMinute: { rest: 2 } } });
    app = await buildApp({ config, logger: logSink('warn').logger, defaultMetrics: true });
    const { url } = await app.listen(0, '127.0.0.1');
    const key = config.accounts[0]!.keys[0]!.secret;
    const rest = (path: string, method = 'GET'): Promise<Response> => fetch(`${url}${path}`, { method, headers: { Authorization: `Bearer ${key}` } });

    const minted = (await (await rest('/v1/tokens', 'POST')).json()) as { token: string };
    const c = (client = await connect(url, { token: minted.token }));
    c.send({ type: 'session.start', language: 'es' });
    await c.waitFor('session.created');
    c.send({ type: 'turn.text', id: 'a', text: 'Hola, quiero un café.' });
    await c.waitFor('reply.audio.end');
    await rest('/v1/usage');
    expect((await rest('/v1/usage')).status).toBe(429);
    c.close(1000);
    await until(() => app!.gateway.connections.size === 0, 5000, 'the close');

    const text = await (await fetch(`${url}/metrics`)).text();
    const families = parsePrometheusText(text);
    // The traffic reached the families whose lines promtool reads (labels, histograms, counters).
    for (const name of ['parley_upstream_latency_seconds', 'parley_upstream_requests_total', 'parley_limit_decisions_total', 'parley_rest_requests_total', 'parley_client_closes_total']) {
      expect(families.get(name)?.samples.length, name).toBeGreaterThan(0);
    }
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_gc_duration_seconds']) {
      expect(families.has(name), name).toBe(true);
    }
    expect([...families.keys()].filter((n) => /^parley_(process|nodejs)_/.test(n))).toEqual([]);
    // `quantile` belongs to summaries only.
    for (const family of families.values()) {
      if (family.type !== 'summary') expect(family.samples.filter((s) => 'quantile' in s.labels).map((s) => s.name)).toEqual([]);
    }

    const { status, problems } = promtool(text);
    expect(problems.filter((p) => !KNOWN_DEFAULT_PROBLEM.test(p))).toEqual([]);
    expect(problems.filter((p) => p.includes('parley_'))).toEqual([]);
    // promtool exits 3 for lint problems; only the contract's exception may cause it.
    expect(status === 0 || (status === 3 && problems.length > 0)).toBe(true);
  });
});
