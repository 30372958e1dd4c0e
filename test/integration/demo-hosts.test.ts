/**
 * The demo account's own origin (CONTRACT §4): the gateway allows the page's origin (scheme + the
 * request's Host) for the demo account only where that Host is in `server.allowedHosts`, so a page
 * on a rebound name (DNS rebinding) is refused; the demo's page and token endpoint answer only
 * under those hosts too.
 */
import { request } from 'node:http';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { startApp, type TestApp } from '../helpers/app.js';
import { TestClient } from '../helpers/client.js';

let t: TestApp;
const sockets: TestClient[] = [];
afterEach(async () => {
  for (const c of sockets.splice(0)) c.ws.terminate();
  await t?.close();
});

/** A WebSocket whose handshake says `Host: host` and `Origin: http://host`, as a page there would. */
async function pageSocket(app: TestApp, host: string, token: string): Promise<TestClient> {
  const ws = new WebSocket(`${app.url.replace('http', 'ws')}/v1/realtime`, ['parley.v1', `parley.token.${token}`], {
    headers: { Host: host, Origin: `http://${host}` },
  });
  const c = new TestClient(ws);
  sockets.push(c);
  await c.opened;
  return c;
}

const port = (app: TestApp): string => new URL(app.url).port;

describe('the demo account under server.allowedHosts', () => {
  it('allows the page\'s own origin under localhost (a default allowed host)', async () => {
    t = await startApp({ server: { demo: true } });
    const c = await pageSocket(t, `localhost:${port(t)}`, await t.token());
    c.send({ type: 'session.start', language: 'es' });
    await c.waitFor('session.created');
  });

  it('refuses a page on a rebound name whose Origin and Host agree (1008 forbidden)', async () => {
    t = await startApp({ server: { demo: true } });
    const c = await pageSocket(t, `evil.example:${port(t)}`, await t.token());
    expect((await c.waitClose()).code).toBe(1008);
    expect(c.of('error')[0]).toMatchObject({ code: 'forbidden', close_code: 1008 });
  });

  it('allows a configured domain and its subdomains (a leading ".")', async () => {
    t = await startApp({ server: { demo: true, allowedHosts: ['.school.example'] } });
    const c = await pageSocket(t, `tutor.school.example:${port(t)}`, await t.token());
    c.send({ type: 'session.start', language: 'es' });
    await c.waitFor('session.created');
  });

  it('serves the demo page and its tokens only under an allowed host', async () => {
    t = await startApp({ server: { demo: true } });
    // fetch() will not send a Host of our choosing; node:http will.
    const at = (host: string, path: string, method = 'GET'): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const req = request(`${t.url}${path}`, { method, headers: { Host: host } }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
    expect((await at(`localhost:${port(t)}`, '/demo/token', 'POST')).status).toBe(201);
    expect((await at(`localhost:${port(t)}`, '/demo/')).status).toBe(200);
    const page = await at(`evil.example:${port(t)}`, '/demo/');
    expect(page.status).toBe(403);
    expect((JSON.parse(page.body) as { error: { code: string } }).error.code).toBe('forbidden');
    expect((await at(`evil.example:${port(t)}`, '/demo/token', 'POST')).status).toBe(403);
  });
});
