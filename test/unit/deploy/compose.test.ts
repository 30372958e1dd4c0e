/**
 * deploy/compose.yaml, without Docker (these machines have none: docs/operations.md "Deployment").
 * What can be checked here is: the file is valid against the Compose Specification's JSON Schema
 * (compose-spec.json: the schema docker compose itself validates with, copied from
 * compose-spec/compose-go schema/compose-spec.json at e70e961, Apache-2.0), its `${…}`
 * interpolations are well formed and refuse to start without an API key, and its services name the
 * right images, ports, health checks and mounts, agreeing with the files they mount: the replicas'
 * config (read by the real loader), haproxy.cfg (checked by `haproxy -c`), prometheus.yml (checked
 * by `promtool check config`) and Grafana's provisioning.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { dockerfileRuntime, durationSeconds, readText, readYaml, ROOT } from './files.js';

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  expose?: string[];
  healthcheck?: { test: string[] };
  stop_grace_period?: string;
  depends_on?: Record<string, { condition: string }> | string[];
}
interface Compose {
  services: Record<string, Service>;
}

const COMPOSE = 'deploy/compose.yaml';
const DEPLOY_DIR = path.join(ROOT, 'deploy');
const compose = (): Compose => readYaml<Compose>(COMPOSE, true);
const API_KEY = 'sk_compose_test_0123456789';

/**
 * Compose's variable interpolation (compose-spec "Interpolation"): `$$`, `$VAR`, `${VAR}`,
 * `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`,
 * `${VAR+alt}`. A `$` in any other form is an "invalid interpolation format" error there, so it
 * throws here too, as does a `?` form whose variable is unset. Nested `${…}` is not used here.
 */
function interpolate(value: string, env: Readonly<Record<string, string>>): string {
  let out = '';
  let i = 0;
  const re = /\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/y;
  while (i < value.length) {
    const dollar = value.indexOf('$', i);
    if (dollar < 0) break;
    out += value.slice(i, dollar);
    re.lastIndex = dollar;
    const m = re.exec(value);
    if (!m) throw new Error(`invalid interpolation format at ${JSON.stringify(value.slice(dollar, dollar + 20))}`);
    const [whole, escaped, braced, colon, op, arg, bare] = m;
    i = dollar + whole.length;
    if (escaped) {
      out += '$';
      continue;
    }
    const name = (braced ?? bare)!;
    const set = env[name] !== undefined && (colon !== ':' || env[name] !== '');
    if (op === '-') out += set ? env[name]! : arg!;
    else if (op === '?') {
      if (!set) throw new Error(`required variable ${name} is missing a value: ${arg}`);
      out += env[name]!;
    } else if (op === '+') out += set ? arg! : '';
    else out += env[name] ?? '';
  }
  return out + value.slice(i);
}

function interpolateAll<T>(doc: T, env: Readonly<Record<string, string>>): T {
  if (typeof doc === 'string') return interpolate(doc, env) as T;
  if (Array.isArray(doc)) return doc.map((d: unknown) => interpolateAll(d, env)) as T;
  if (typeof doc === 'object' && doc !== null) return Object.fromEntries(Object.entries(doc).map(([k, v]) => [k, interpolateAll(v, env)])) as T;
  return doc;
}

/** A short-syntax bind mount `SRC:DST[:MODE]`, its source resolved against deploy/. */
function mount(spec: string): { source: string; target: string; mode: string | undefined } {
  const [source, target, mode] = spec.split(':');
  return { source: path.resolve(DEPLOY_DIR, source!), target: target!, mode };
}

function mountOf(service: Service, target: string): string {
  const m = (service.volumes ?? []).map(mount).find((v) => v.target === target);
  if (!m) throw new Error(`nothing is mounted at ${target}`);
  return m.source;
}

const PARLEY = ['parley-1', 'parley-2'];

describe('deploy/compose.yaml', () => {
  it('is valid against the Compose Specification schema, which rejects a misspelt key', () => {
    const schema = JSON.parse(readText('test/unit/deploy/compose-spec.json')) as object;
    // strictTypes off: the specification's schema uses union types and untyped patternProperties,
    // which Ajv's strict mode flags as style, not as errors.
    const ajv = new Ajv2020({ allErrors: true, strictTypes: false });
    const validate = ajv.compile(schema);
    const doc = compose();
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
    const misspelt = structuredClone(doc) as unknown as { services: Record<string, Record<string, unknown>> };
    misspelt.services['parley-1']!.stop_grace_periode = '20s';
    expect(validate(misspelt)).toBe(false);
  });

  it('interpolates cleanly with PARLEY_API_KEY set, and refuses to start without it', () => {
    const doc = interpolateAll(compose(), { PARLEY_API_KEY: API_KEY });
    for (const name of PARLEY) {
      expect(doc.services[name]!.environment).toMatchObject({ PARLEY_API_KEY: API_KEY, REDIS_URL: 'redis://redis:6379' });
    }
    expect(() => interpolateAll(compose(), {})).toThrow(/required variable PARLEY_API_KEY is missing a value/);
    expect(() => interpolate('a $(b)', {})).toThrow(/invalid interpolation format/);
  });

  it('runs Redis, two replicas of the Dockerfile\'s image, HAProxy, the blackbox exporter, Prometheus and Grafana', () => {
    const { services } = compose();
    expect(Object.keys(services).sort()).toEqual(['blackbox', 'grafana', 'haproxy', 'parley-1', 'parley-2', 'prometheus', 'redis']);
    for (const name of PARLEY) {
      const s = services[name]!;
      expect(path.resolve(DEPLOY_DIR, s.build!.context)).toBe(path.resolve(ROOT));
      expect(existsSync(path.join(ROOT, s.build!.dockerfile))).toBe(true);
      expect(s.image).toBe('parley:local');
    }
    expect(services['parley-2']).toEqual(services['parley-1']);
    expect(services.redis!.image).toMatch(/^redis:7/);
    expect(services.haproxy!.image).toMatch(/^haproxy:2\./);
    expect(services.prometheus!.image).toMatch(/^prom\/prometheus:v2\./);
    expect(services.blackbox!.image).toMatch(/^prom\/blackbox-exporter:/);
    expect(services.grafana!.image).toMatch(/^grafana\/grafana:/);
  });

  it('gives the replicas deploy/parley.yaml, which the gateway loads: Redis by its service name, two expected replicas, behind a proxy', () => {
    const doc = interpolateAll(compose(), { PARLEY_API_KEY: API_KEY });
    const s = doc.services['parley-1']!;
    const configPath = s.environment!.PARLEY_CONFIG!;
    const source = mountOf(s, configPath);
    expect(source).toBe(path.join(DEPLOY_DIR, 'parley.yaml'));
    expect((s.volumes ?? []).every((v) => mount(v).mode === 'ro')).toBe(true);
    const { config } = loadConfig({ ...s.environment, PARLEY_CONFIG: source, PORT: String(dockerfileRuntime().port) });
    expect(config.store).toMatchObject({ kind: 'redis', url: 'redis://redis:6379', expectedReplicas: PARLEY.length });
    expect(new URL(config.store.kind === 'redis' ? config.store.url : '').hostname).toBe('redis');
    expect(config.server.trustProxy).toBe(true);
    expect(config.server.demo).toBe(true);
  });

  it('exposes the image\'s port, checks /healthz on it, and waits longer than a drain before SIGKILL', () => {
    const doc = interpolateAll(compose(), { PARLEY_API_KEY: API_KEY });
    const { port, exposed } = dockerfileRuntime();
    expect(exposed).toContain(port);
    const s = doc.services['parley-1']!;
    const { config } = loadConfig({ ...s.environment, PARLEY_CONFIG: mountOf(s, s.environment!.PARLEY_CONFIG!), PORT: String(port) });
    expect(config.server.port).toBe(port);
    expect(s.expose).toEqual([String(port)]);
    expect(s.ports).toBeUndefined();
    expect(s.healthcheck!.test.join(' ')).toContain(`http://127.0.0.1:${port}/healthz`);
    expect(durationSeconds(s.stop_grace_period!)).toBeGreaterThan(config.server.drainSeconds + 5);
    expect(s.depends_on).toEqual({ redis: { condition: 'service_healthy' } });
    expect(doc.services.redis!.healthcheck!.test).toEqual(['CMD', 'redis-cli', 'ping']);
  });

  it('publishes HAProxy on 8080 with deploy/haproxy/haproxy.cfg, which routes to both replicas on /readyz and passes haproxy -c', () => {
    const { services } = compose();
    const haproxy = services.haproxy!;
    expect(haproxy.ports).toEqual(['8080:8080']);
    const cfgPath = mountOf(haproxy, '/usr/local/etc/haproxy/haproxy.cfg');
    expect(cfgPath).toBe(path.join(DEPLOY_DIR, 'haproxy', 'haproxy.cfg'));
    const cfg = readText('deploy/haproxy/haproxy.cfg');
    expect(cfg).toMatch(/^\s*bind :8080$/m);
    const { port } = dockerfileRuntime();
    const servers = [...cfg.matchAll(/^\s*server (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(servers).toEqual([...PARLEY, ...PARLEY].map((n) => `${n} ${n}:${port}`));
    expect(cfg).toMatch(/backend ready\n(?:.*\n)*?\s*option httpchk GET \/readyz\n/);
    // The tunnel timeout must outlast the gateway's heartbeat (30 s), the longest silence of a healthy socket.
    const tunnel = /timeout tunnel (\S+)/.exec(cfg);
    expect(durationSeconds(tunnel![1]!)).toBeGreaterThan(30);

    const checked = spawnSync(process.env.HAPROXY_BIN ?? '/usr/sbin/haproxy', ['-c', '-f', cfgPath], { encoding: 'utf8', timeout: 20_000 });
    if (checked.error) throw new Error(`haproxy could not run (${checked.error.message}); install Debian's haproxy`);
    expect(checked.status, checked.stderr).toBe(0);
    // The replicas' names resolve only inside Compose's network: those warnings are expected, nothing else.
    const warnings = checked.stderr.split('\n').filter((l) => l.includes('[WARNING]'));
    expect(warnings.filter((l) => !/could not resolve address 'parley-[12]'/.test(l))).toEqual([]);
  });

  it('has Prometheus scrape both replicas and probe their /readyz, with a config promtool accepts', () => {
    const { services } = compose();
    const dir = mountOf(services.prometheus!, '/etc/prometheus');
    expect(dir).toBe(path.join(DEPLOY_DIR, 'prometheus'));
    const checked = spawnSync('promtool', ['check', 'config', path.join(dir, 'prometheus.yml')], { encoding: 'utf8', timeout: 20_000 });
    if (checked.error) throw new Error(`promtool could not run (${checked.error.message}); install Debian's prometheus package`);
    expect(checked.status, `${checked.stdout}${checked.stderr}`).toBe(0);
    expect(checked.stdout).toContain('SUCCESS: 1 rule files found');

    type Job = { job_name: string; metrics_path: string; static_configs: { targets: string[] }[]; relabel_configs?: { replacement?: string }[] };
    const jobs = readYaml<{ scrape_configs: Job[] }>('deploy/prometheus/prometheus.yml').scrape_configs;
    const { port } = dockerfileRuntime();
    const parley = jobs.find((j) => j.job_name === 'parley')!;
    expect(parley.metrics_path).toBe('/metrics');
    expect(parley.static_configs.flatMap((c) => c.targets)).toEqual(PARLEY.map((n) => `${n}:${port}`));
    const readyz = jobs.find((j) => j.job_name === 'parley-readyz')!;
    expect(readyz.static_configs.flatMap((c) => c.targets)).toEqual(PARLEY.map((n) => `http://${n}:${port}/readyz`));
    expect(readyz.relabel_configs!.map((r) => r.replacement).filter(Boolean)).toEqual([`blackbox:${services.blackbox!.expose![0]}`]);
  });

  it('provisions Grafana with the Prometheus datasource and the dashboard directory it mounts', () => {
    const { services } = compose();
    const grafana = services.grafana!;
    const provisioning = mountOf(grafana, '/etc/grafana/provisioning');
    const dashboards = mountOf(grafana, '/var/lib/grafana/dashboards');
    const ds = readYaml<{ datasources: { url: string; uid: string }[] }>(path.relative(ROOT, path.join(provisioning, 'datasources', 'prometheus.yml')));
    expect(ds.datasources).toEqual([expect.objectContaining({ url: 'http://prometheus:9090', uid: 'prometheus' })]);
    expect(services.prometheus!.ports).toEqual(['127.0.0.1:9090:9090']);
    const providers = readYaml<{ providers: { options: { path: string } }[] }>(path.relative(ROOT, path.join(provisioning, 'dashboards', 'parley.yml')));
    expect(providers.providers.map((p) => p.options.path)).toEqual(['/var/lib/grafana/dashboards']);
    const home = grafana.environment!.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH!;
    expect(existsSync(path.join(dashboards, path.relative('/var/lib/grafana/dashboards', home)))).toBe(true);
  });

  it('mounts only files that exist in deploy/', () => {
    const { services } = compose();
    const sources = Object.values(services).flatMap((s) => (s.volumes ?? []).map((v) => mount(v).source));
    expect(sources.length).toBeGreaterThanOrEqual(5);
    expect(sources.filter((s) => !existsSync(s) || !s.startsWith(DEPLOY_DIR))).toEqual([]);
  });
});
