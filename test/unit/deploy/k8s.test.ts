/**
 * deploy/k8s/, without a cluster: every manifest parses, kustomization.yaml lists them all, the
 * selectors match the pods, and the Deployment agrees with the config it carries: the ConfigMap's
 * parley.yaml, read by the real loader with the Secret's values as the environment, listens on
 * the container port the probes use, expects as many replicas as run, and drains within a grace
 * period the kubelet waits out; every `env:NAME` secret of the config reaches the container from
 * the Secret.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../../src/config/load.js';
import { dockerfileRuntime, envReferences, readYaml, readYamlDocuments, ROOT } from './files.js';

interface Meta {
  name: string;
  labels?: Record<string, string>;
}
interface Probe {
  httpGet: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  ports: { name: string; containerPort: number }[];
  env: { name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }[];
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
  readinessProbe: Probe;
  livenessProbe: Probe;
}
interface Deployment {
  kind: 'Deployment';
  metadata: Meta;
  spec: {
    replicas: number;
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string> };
      spec: { terminationGracePeriodSeconds: number; containers: Container[]; volumes: { name: string; configMap?: { name: string } }[]; securityContext: { runAsUser: number } };
    };
  };
}
interface Service {
  kind: 'Service';
  metadata: Meta;
  spec: { selector: Record<string, string>; ports: { port: number; targetPort: string | number }[] };
}
interface Pdb {
  kind: 'PodDisruptionBudget';
  metadata: Meta;
  spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } };
}
interface ConfigMap {
  kind: 'ConfigMap';
  metadata: Meta;
  data: Record<string, string>;
}
interface Secret {
  kind: 'Secret';
  metadata: Meta;
  stringData: Record<string, string>;
}
type Manifest = Deployment | Service | Pdb | ConfigMap | Secret;

const DIR = 'deploy/k8s';
const manifestFiles = (): string[] => readdirSync(path.join(ROOT, DIR)).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml').sort();

function manifests(): Manifest[] {
  return manifestFiles().flatMap((f) => readYamlDocuments(`${DIR}/${f}`) as Manifest[]);
}

function one<K extends Manifest['kind']>(kind: K): Extract<Manifest, { kind: K }> {
  const found = manifests().filter((m) => m.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0] as Extract<Manifest, { kind: K }>;
}

const subsetOf = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

/** The container, the config it runs (the ConfigMap's file read by the real loader, the Secret as environment) and the raw config document. */
function running() {
  const deployment = one('Deployment');
  const container = deployment.spec.template.spec.containers[0]!;
  const secret = one('Secret');
  const configMap = one('ConfigMap');
  const env: Record<string, string> = {};
  for (const e of container.env) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom) {
      expect(e.valueFrom.secretKeyRef.name, e.name).toBe(secret.metadata.name);
      expect(Object.keys(secret.stringData), e.name).toContain(e.valueFrom.secretKeyRef.key);
      env[e.name] = secret.stringData[e.valueFrom.secretKeyRef.key]!;
    }
  }
  const configPath = env.PARLEY_CONFIG!;
  const mount = container.volumeMounts.find((m) => configPath.startsWith(`${m.mountPath}/`))!;
  expect(mount, `a volume mounted above ${configPath}`).toBeDefined();
  const volume = deployment.spec.template.spec.volumes.find((v) => v.name === mount.name)!;
  expect(volume.configMap?.name).toBe(configMap.metadata.name);
  const file = path.posix.relative(mount.mountPath, configPath);
  const text = configMap.data[file];
  expect(text, `${file} in the ConfigMap`).toBeDefined();
  // The image sets PORT (Dockerfile), which overrides server.port: the container sees both.
  const { config } = loadConfig({ ...env, PORT: String(dockerfileRuntime().port) }, (p) => {
    if (p !== configPath) throw new Error(`read of ${p}`);
    return text!;
  });
  const { config: fileOnly } = loadConfig({ ...env }, () => text!);
  return { deployment, container, secret, configMap, env, config, fileOnly, rawConfig: parseYaml(text!) as unknown };
}

describe('deploy/k8s', () => {
  it('holds a Deployment, a Service, a PodDisruptionBudget, a ConfigMap and a Secret, all listed in kustomization.yaml', () => {
    expect(manifests().map((m) => m.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Secret', 'Service']);
    const k = readYaml<{ resources: string[]; images: { name: string }[] }>(`${DIR}/kustomization.yaml`);
    expect([...k.resources].sort()).toEqual(manifestFiles());
    expect(k.images.map((i) => i.name)).toEqual([one('Deployment').spec.template.spec.containers[0]!.image.split(':')[0]]);
  });

  it('selects its own pods from the Deployment, the Service and the PodDisruptionBudget', () => {
    const d = one('Deployment');
    const pod = d.spec.template.metadata.labels;
    expect(subsetOf(d.spec.selector.matchLabels, pod)).toBe(true);
    expect(subsetOf(one('Service').spec.selector, pod)).toBe(true);
    const pdb = one('PodDisruptionBudget');
    expect(subsetOf(pdb.spec.selector.matchLabels, pod)).toBe(true);
    expect(pdb.spec.minAvailable).toBeGreaterThanOrEqual(1);
    expect(pdb.spec.minAvailable).toBeLessThan(d.spec.replicas);
  });

  it('runs the Dockerfile\'s image as its user, on the port the config listens on, probed there', () => {
    const { container, config, fileOnly, deployment } = running();
    expect(container.image).toMatch(/^parley:/);
    // The image's `node` user (uid 1000 in the node images).
    expect(dockerfileRuntime().user).toBe('node');
    expect(deployment.spec.template.spec.securityContext.runAsUser).toBe(1000);
    const http = container.ports.find((p) => p.name === 'http')!;
    expect(http.containerPort).toBe(config.server.port);
    expect(fileOnly.server.port).toBe(config.server.port);
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container.ports.map((p) => p.name)).toContain(one('Service').spec.ports[0]!.targetPort);
  });

  it('gives the kubelet longer than a drain before SIGKILL, and expects as many replicas as it runs', () => {
    const { deployment, config } = running();
    expect(deployment.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(config.server.drainSeconds + 5);
    expect(config.store).toMatchObject({ kind: 'redis', expectedReplicas: deployment.spec.replicas });
    expect(config.server.trustProxy).toBe(true);
  });

  it('takes Redis and every env: secret of the config from the Secret, and keeps them out of the ConfigMap', () => {
    const { container, secret, config, configMap, env, rawConfig } = running();
    // Redis is external: its URL (which may carry a password) comes from the Secret.
    const redisUrl = container.env.find((e) => e.name === 'REDIS_URL');
    expect(redisUrl?.valueFrom?.secretKeyRef).toEqual({ name: secret.metadata.name, key: 'REDIS_URL' });
    expect(config.store.kind === 'redis' && config.store.url).toBe(secret.stringData.REDIS_URL);
    const text = Object.values(configMap.data).join('\n');
    const references = envReferences(rawConfig);
    expect(references).toEqual(['PARLEY_API_KEY']);
    for (const name of references) {
      expect(container.env.find((e) => e.name === name)?.valueFrom?.secretKeyRef.name, name).toBe(secret.metadata.name);
      expect(text).not.toContain(env[name]!);
    }
    expect(text).not.toContain(secret.stringData.REDIS_URL!);
  });
});
