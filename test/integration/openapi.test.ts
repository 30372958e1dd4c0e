/**
 * GET /openapi.json (CONTRACT §9): an OpenAPI 3.1 document that a standard validator
 * (@seriousme/openapi-schema-validator) accepts, that lists every HTTP route the app serves, each
 * with its responses (errors included) and the API-key security scheme; and whose response schemas
 * and headers describe what the routes really answer (real answers of every route are checked
 * against them). Also GET /asyncapi.json and the /docs reference (served without any CDN).
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startApp, TEST_KEY, type TestApp } from '../helpers/app.js';

type Json = Record<string, unknown>;
interface Operation {
  security?: Json[];
  requestBody?: { required: boolean };
  responses: Record<string, { description: string; headers?: Record<string, unknown>; content?: Record<string, { schema: Json }> }>;
}
type OpenApi = Json & { openapi: string; paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, Json>; securitySchemes: Record<string, Json> } };

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const start = (plan: Record<string, unknown> = {}): Promise<TestApp> => startApp({ server: { demo: true, dashboard: true, allowedHosts: ['127.0.0.1'] }, plan });
const getDoc = async (app: TestApp): Promise<OpenApi> => (await (await fetch(`${app.url}/openapi.json`)).json()) as OpenApi;

/**
 * Every route of the app as `METHOD /path/{param}`, read from fastify's route tree (printRoutes),
 * HEAD aside (fastify adds one per GET) and the /docs reference's own files.
 */
function appRoutes(app: TestApp): string[] {
  const out: string[] = [];
  const stack: string[] = [];
  for (const line of app.app.fastify.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^((?:│ {3}| {4})*)[├└]── (\S+) \(([A-Z, ]+)\)$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    stack.push(m[2]!);
    // The tree prints a wildcard under its prefix without the slash (`/demo` then `*` is /demo/*).
    const path = stack.join('').replace(/:(\w+)/g, '{$1}').replace(/\/?\*$/, '/{*}');
    for (const method of m[3]!.split(', ')) if (method !== 'HEAD' && !path.startsWith('/docs')) out.push(`${method} ${path}`);
  }
  return out.sort();
}

/** A copy of a schema with `#/components/schemas/X` references replaced by X (for ajv). */
function deref(schema: unknown, doc: OpenApi): unknown {
  if (Array.isArray(schema)) return schema.map((s) => deref(s, doc));
  if (typeof schema !== 'object' || schema === null) return schema;
  const ref = (schema as Json).$ref;
  if (typeof ref === 'string') return deref(doc.components.schemas[ref.replace('#/components/schemas/', '')], doc);
  return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, deref(v, doc)]));
}

const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });

/**
 * Checks one real answer against the document: its status (or its `NXX` range) is documented, its
 * content type is one the response lists, a JSON body validates against the schema, and every
 * documented header is present.
 */
async function conforms(doc: OpenApi, method: string, path: string, res: Response): Promise<void> {
  const op = doc.paths[path]?.[method.toLowerCase()];
  expect(op, `${method} ${path} in the document`).toBeDefined();
  const status = String(res.status);
  const documented = op!.responses[status] ?? op!.responses[`${status[0]}XX`];
  expect(documented, `${method} ${path} documents ${status}`).toBeDefined();
  for (const name of Object.keys(documented!.headers ?? {})) expect(res.headers.get(name), `${method} ${path} ${status} header ${name}`).not.toBeNull();
  const text = await res.text();
  if (!documented!.content) {
    expect(text, `${method} ${path} ${status} has no body`).toBe('');
    return;
  }
  const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
  const media = Object.keys(documented!.content).find((m) => m.split(';')[0]!.trim() === type);
  expect(media, `${method} ${path} ${status}: content type ${type} documented (${Object.keys(documented!.content).join(', ')})`).toBeDefined();
  if (type !== 'application/json') return;
  const validate = ajv.compile(deref(documented!.content[media!]!.schema, doc) as Json);
  const ok = validate(JSON.parse(text));
  expect(ok, `${method} ${path} ${status}: ${JSON.stringify(validate.errors)} for ${text.slice(0, 300)}`).toBe(true);
}

describe('GET /openapi.json', () => {
  let doc: OpenApi;
  let routes: string[];
  beforeAll(async () => {
    const app = await start();
    try {
      doc = await getDoc(app);
      routes = appRoutes(app);
    } finally {
      await app.close();
    }
  });

  it('is OpenAPI 3.1 that @seriousme/openapi-schema-validator accepts', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const result = await new Validator().validate(doc as never);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('lists every route of the app (demo and dashboard on), and nothing else', () => {
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)).sort();
    expect(routes).toContain('POST /v1/tokens');
    expect(routes).toContain('DELETE /v1/sessions/{id}');
    expect(documented).toEqual(routes);
  });

  it('gives every operation responses with schemas, errors in the shared error body, and the API-key scheme where a key is needed', () => {
    expect(doc.components.securitySchemes.apiKey).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.components.schemas.ErrorBody).toBeDefined();
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const statuses = Object.keys(op.responses);
        expect(statuses.some((s) => /^[123]/.test(s)), `${method} ${path} has a success response`).toBe(true);
        for (const [status, r] of Object.entries(op.responses)) {
          expect(r.description, `${method} ${path} ${status} description`).toBeTruthy();
          // /readyz's 503 is the probe's own body ({"status": "draining" | "store_unreachable"}).
          if (/^[45]/.test(status) && path !== '/readyz') expect(r.content?.['application/json']?.schema, `${method} ${path} ${status}`).toEqual({ $ref: '#/components/schemas/ErrorBody' });
        }
        const needsKey = path.startsWith('/v1/') && path !== '/v1/realtime' ? true : path === '/dashboard/stats' || path === '/dashboard/events';
        if (needsKey) {
          expect(op.security, `${method} ${path} security`).toEqual([{ apiKey: [] }]);
          expect(statuses, `${method} ${path}`).toEqual(expect.arrayContaining(['401', '429', '5XX']));
          const ok = op.responses[statuses.find((s) => s.startsWith('2'))!]!;
          expect(Object.keys(ok.headers ?? {}), `${method} ${path} rate-limit headers`).toEqual(expect.arrayContaining(['RateLimit-Policy', 'RateLimit', 'X-RateLimit-Limit']));
        }
      }
    }
    expect(doc.paths['/v1/tokens']!.post!.requestBody!.required).toBe(false);
  });
});

describe('real answers match the document', () => {
  it('REST routes, their errors and the probes', async () => {
    t = await start({ requestsPerMinute: { rest: 6 } });
    const doc = await getDoc(t);
    const call = (method: string, path: string, init: RequestInit & { key?: string | null } = {}): Promise<Response> => {
      const key = init.key === undefined ? TEST_KEY : init.key;
      return fetch(`${t!.url}${path}`, { ...init, method, headers: { ...(key ? { Authorization: `Bearer ${key}` } : {}), ...(init.headers as Record<string, string>) } });
    };
    const json = { 'Content-Type': 'application/json' };
    await conforms(doc, 'GET', '/healthz', await call('GET', '/healthz', { key: null }));
    await conforms(doc, 'GET', '/readyz', await call('GET', '/readyz', { key: null }));
    await conforms(doc, 'GET', '/metrics', await call('GET', '/metrics', { key: null }));
    await conforms(doc, 'GET', '/asyncapi.json', await call('GET', '/asyncapi.json', { key: null }));
    await conforms(doc, 'POST', '/v1/tokens', await call('POST', '/v1/tokens', { headers: json, body: '{"learner_id": "l1", "ttl_seconds": 120}' }));
    await conforms(doc, 'POST', '/v1/tokens', await call('POST', '/v1/tokens', { headers: json, body: '{"ttl_seconds": 5}' }));
    await conforms(doc, 'POST', '/v1/tokens', await call('POST', '/v1/tokens', { key: 'sk_not_a_key_123456' }));
    const c = await t.session();
    await conforms(doc, 'GET', '/v1/usage', await call('GET', '/v1/usage'));
    const sessions = await call('GET', '/v1/sessions');
    const listed = (await sessions.clone().json()) as { sessions: { session_id: string }[] };
    expect(listed.sessions).toHaveLength(1);
    await conforms(doc, 'GET', '/v1/sessions', sessions);
    await conforms(doc, 'DELETE', '/v1/sessions/{id}', await call('DELETE', `/v1/sessions/${listed.sessions[0]!.session_id}`));
    await c.waitClose();
    await conforms(doc, 'DELETE', '/v1/sessions/{id}', await call('DELETE', '/v1/sessions/sess_nope'));
    const over = await call('GET', '/v1/usage');
    expect(over.status).toBe(429);
    await conforms(doc, 'GET', '/v1/usage', over);
  });

  it('the dashboard and the demo', async () => {
    t = await start();
    const doc = await getDoc(t);
    const auth = { Authorization: `Bearer ${TEST_KEY}` };
    await conforms(doc, 'GET', '/dashboard', await fetch(`${t.url}/dashboard`));
    await conforms(doc, 'GET', '/dashboard/stats', await fetch(`${t.url}/dashboard/stats`, { headers: auth }));
    await conforms(doc, 'GET', '/dashboard/stats', await fetch(`${t.url}/dashboard/stats`));
    await conforms(doc, 'GET', '/demo', await fetch(`${t.url}/demo`, { redirect: 'manual' }));
    await conforms(doc, 'GET', '/demo/{*}', await fetch(`${t.url}/demo/`));
    await conforms(doc, 'GET', '/demo/{*}', await fetch(`${t.url}/demo/no-such-file.txt`));
    await conforms(doc, 'POST', '/demo/token', await fetch(`${t.url}/demo/token`, { method: 'POST' }));
    const events = await fetch(`${t.url}/dashboard/events`, { headers: auth });
    expect(events.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(doc.paths['/dashboard/events']!.get!.responses['200']!.content).toHaveProperty(['text/event-stream']);
    await events.body?.cancel();
  });
});

describe('GET /asyncapi.json and /docs', () => {
  it('serves the AsyncAPI document with the request\'s host as its server', async () => {
    t = await start();
    const doc = (await (await fetch(`${t.url}/asyncapi.json`)).json()) as { asyncapi: string; servers: { gateway: { host: string; protocol: string } } };
    expect(doc.asyncapi).toBe('3.1.0');
    expect(doc.servers.gateway).toMatchObject({ host: new URL(t.url).host, protocol: 'ws' });
  });

  it('serves an interactive reference of the document from its own files, with nothing fetched from elsewhere', async () => {
    t = await start();
    const page = await fetch(`${t.url}/docs/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThan(2);
    for (const asset of assets) {
      expect(asset, 'a local asset').not.toMatch(/^(https?:)?\/\//);
      const res = await fetch(new URL(asset, `${t.url}/docs/`));
      expect(res.status, asset).toBe(200);
      // Read to the end: an unread body keeps its connection busy, and the app's close waits for it.
      await res.arrayBuffer();
    }
    const init = await (await fetch(`${t.url}/docs/static/swagger-initializer.js`)).text();
    expect(init).not.toMatch(/https?:\/\/(?!stackoverflow)/);
    expect(init).toContain('validatorUrl: null');
    const served = (await (await fetch(`${t.url}/docs/json`)).json()) as OpenApi;
    expect(served.paths['/v1/tokens']).toBeDefined();
  });
});
