/**
 * The operator live view in real chromium: the page takes the key from the URL fragment, streams
 * the figures and draws them while a scripted load (WebSocket sessions sending pings and turns)
 * runs; a screenshot goes to test-artifacts/dashboard.png.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, TEST_KEY, type TestApp } from '../helpers/app.js';
import type { TestClient } from '../helpers/client.js';

const SCREENSHOT = 'test-artifacts/dashboard.png';

let t: TestApp;
let browser: Browser;
let load: NodeJS.Timeout | undefined;

beforeAll(async () => {
  const executablePath = execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
  browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  t = await startApp({
    realTime: true,
    server: { dashboard: true },
    plan: { requestsPerMinute: { 'conversation.turn': 1000 } },
    // Allowances, so the utilisation bars have something to measure against.
    upstreams: { conversation: { limits: { requestsPerSecond: 5, concurrency: 4 } }, tts: { limits: { requestsPerMinute: 600, concurrency: 8 } } },
  });
});

afterAll(async () => {
  if (load) clearInterval(load);
  await browser?.close();
  await t?.close();
});

/** Numbers in a tile ("1.2k", "3", "512 B" → the leading number). */
const leading = (text: string | null): number => Number.parseFloat((text ?? '').replace(/[^0-9.].*$/, '')) || 0;

describe('dashboard in chromium', () => {
  it('shows non-zero live values while sessions send messages and turns', async () => {
    const clients: TestClient[] = [];
    for (let i = 0; i < 3; i++) clients.push(await t.session({ language: 'es' }));
    let tick = 0;
    load = setInterval(() => {
      tick++;
      clients.forEach((c, i) => {
        c.send({ type: 'ping', id: `p${tick}` });
        if (tick % 10 === i) c.send({ type: 'turn.text', id: `t${tick}`, text: 'Hola, quiero un café con leche, por favor.' });
      });
    }, 100);

    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${t.url}/dashboard#key=${encodeURIComponent(TEST_KEY)}`);
    // The key leaves the address bar at once.
    expect(page.url()).toBe(`${t.url}/dashboard`);
    await page.waitForFunction(() => Number(document.body.dataset.updates) >= 4, undefined, { timeout: 30_000 });
    await page.waitForFunction(
      () => Number(document.getElementById('v-connections')?.textContent) === 3 && Number.parseFloat(document.getElementById('v-msgs')?.textContent ?? '0') > 0,
      undefined,
      { timeout: 30_000 },
    );
    expect(leading(await page.textContent('#v-connections'))).toBe(3);
    expect(leading(await page.textContent('#v-sessions'))).toBe(3);
    expect(leading(await page.textContent('#v-msgs'))).toBeGreaterThan(5);
    expect(leading(await page.textContent('#v-bytes'))).toBeGreaterThan(0);
    expect(await page.textContent('#v-replicas')).toBe('1');
    expect(await page.getAttribute('#status', 'class')).toBe('ok');
    // The charts are drawn: one polyline per series, with as many points as events so far.
    const points = await page.$$eval('#c-load polyline', (els) => els.map((e) => (e.getAttribute('points') ?? '').split(' ').length));
    expect(points.length).toBe(2);
    expect(points[0]).toBeGreaterThanOrEqual(4);
    await page.waitForFunction(() => document.querySelectorAll('#t-upstreams tr').length === 5, undefined, { timeout: 10_000 });
    expect(await page.$$eval('#t-upstreams tr', (rows) => rows.map((r) => r.getAttribute('data-upstream')))).toEqual(['conversation', 'pronunciation', 'stt', 'translation', 'tts']);
    // Let a few more seconds of the load draw, then keep the picture.
    await page.waitForFunction(() => Number(document.body.dataset.updates) >= 8, undefined, { timeout: 30_000 });
    mkdirSync('test-artifacts', { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(10_000);
    // Polylines are coloured through CSSOM (the CSP blocks style attributes): a drawn line has a stroke.
    expect(await page.$eval('#c-msgs polyline', (e) => getComputedStyle(e).stroke)).not.toBe('none');
    expect(await page.$$eval('#t-upstreams .bar span', (els) => els.length)).toBe(4);
    expect(errors).toEqual([]);
    expect(t.logs.raw.some((l) => l.includes(TEST_KEY))).toBe(false);
    expect(clients.every((c) => c.closeInfo === undefined)).toBe(true);
    expect(clients.flatMap((c) => c.of('reply.text')).length).toBeGreaterThan(0);
  });

  it('asks for a key when the URL has none, and says so when the key is refused', async () => {
    const page = await browser.newPage();
    await page.goto(`${t.url}/dashboard`);
    expect(await page.isVisible('#login')).toBe(true);
    await page.fill('#key', 'sk_wrong_key_0000000000');
    await page.click('#login button');
    await page.waitForFunction(() => document.getElementById('status')?.textContent === 'the API key was refused', undefined, { timeout: 10_000 });
    expect(await page.isVisible('#login')).toBe(true);
  });
});
