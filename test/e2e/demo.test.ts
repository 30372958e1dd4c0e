/**
 * The demo page end to end: the real app (real time, simulated upstream) and the real chromium
 * with a fake microphone playing a test-made WAV. One page goes through a session step by step;
 * each `it` checks one part and relies on the ones before it (they run in order).
 */
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type ParleyApp } from '../../src/app.js';
import { CLOSE_CODES } from '../../src/client/index.js';
import { parseConfig } from '../../src/config/load.js';
import { logSink } from '../helpers/log-sink.js';
import { launchWithFakeMic, speechWav, type FakeMicBrowser } from './helpers/browser.js';

const DEMO_KEY = 'sk_demo_e2e_0123456789abcdef';
const ARTIFACTS = join(process.cwd(), 'test-artifacts');
/** Real-time waits in a browser on a busy 2-core machine: generous on purpose. */
const WAIT = { timeout: 30_000 };

/** The page's `window.__parleyDemo` (client-demo/demo.js), as far as the test reads it. */
interface DemoState {
  state: string;
  sessionId: string | null;
  sessionIds: string[];
  lastTranscript: string | null;
  lastReply: string | null;
  lastTranslation: string | null;
  lastAssessment: { score: number; words: { word: string; score: number }[] } | null;
  lastClose: { code: number; action: string; message: string; willReconnect: boolean } | null;
  counts: Record<'created' | 'resumed' | 'transcripts' | 'replies' | 'turnsDone' | 'quotaUpdates' | 'errors' | 'drops' | 'translations' | 'assessments', number>;
  meters: Record<string, number>;
  shown: Record<string, number>;
  initialMeters: Record<string, number> | null;
  capture: { utterances: number; frames: number; bytes: number; ms: number; rms: number; maxFrameRms: number };
  playback: { replies: number; chunks: number; samples: number; maxRms: number; ended: number; playing: boolean; dataRms: number };
  errors: { what: string; code: string; message: string }[];
}

declare global {
  interface Window {
    __parleyDemo: DemoState;
  }
}

let app: ParleyApp;
let url: string;
let browser: FakeMicBrowser;
let page: Page;
const pageErrors: string[] = [];

const demo = (): Promise<DemoState> => page.evaluate(() => JSON.parse(JSON.stringify(window.__parleyDemo)) as DemoState);

beforeAll(async () => {
  const config = parseConfig(
    {
      server: { host: '127.0.0.1', port: 0, demo: true, drainSeconds: 1 },
      logLevel: 'info',
      plans: { standard: {} },
      accounts: [{ id: 'acct_demo', plan: 'standard', keys: [{ id: 'key_demo', secret: DEMO_KEY }] }],
      upstreams: {},
    },
    {},
  );
  app = await buildApp({ config, logger: logSink('info').logger });
  ({ url } = await app.listen(0, '127.0.0.1'));
  browser = await launchWithFakeMic(speechWav({ leadingSilenceMs: 200, speechMs: 1500, trailingSilenceMs: 300 }));
  page = await browser.context.newPage();
  page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') pageErrors.push(`console: ${msg.text()}`);
  });
  page.on('response', (res) => {
    if (res.status() >= 400) pageErrors.push(`HTTP ${res.status()} ${res.url()}`);
  });
});

afterAll(async () => {
  await browser?.close();
  await app?.close();
});

describe('demo page in chromium', () => {
  it('serves the SDK bundle the page imports', async () => {
    const res = await fetch(`${url}/demo/parley-client.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const code = await res.text();
    expect(code).toMatch(/export\s*\{[^}]*\bParleyClient\b[^}]*\}/);
    expect(code).toMatch(/\bCLOSE_CODES\b/);
  });

  it('starts a session from the page', async () => {
    await page.goto(`${url}/demo/`);
    await page.getByRole('button', { name: 'Start session' }).click();
    await page.waitForFunction(() => window.__parleyDemo.state === 'open' && window.__parleyDemo.initialMeters !== null, null, WAIT);
    const s = await demo();
    expect(s.sessionId).toMatch(/^sess_[0-9a-f]{32}$/);
    expect(await page.getByTestId('session-id').textContent()).toBe(s.sessionId);
    expect(s.counts.created).toBe(1);
    expect(s.initialMeters!['account.conversation.turn']).toBe(60);
    expect(s.initialMeters!['session.seconds']).toBeGreaterThan(1790);
    expect(await page.getByTestId('meter-account.conversation.turn').getAttribute('data-remaining')).toBe('60');
  });

  it('speaks a turn through the fake microphone with push-to-talk: transcript and tutor reply appear', async () => {
    const box = (await page.getByTestId('talk').boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    // The fake device starts its file at getUserMedia (on this press): 200 ms of silence, 1.5 s of
    // speech. Hold until all of it has been captured.
    await page.waitForFunction(() => window.__parleyDemo.capture.ms >= 1800, null, WAIT);
    await page.mouse.up();
    await page.waitForFunction(() => window.__parleyDemo.counts.replies >= 1 && window.__parleyDemo.counts.turnsDone >= 1, null, WAIT);
    const s = await demo();
    // What the worklet captured is the WAV's signal, not silence (VERIFIED.md: a bad WAV plays as silence).
    expect(s.capture.rms).toBeGreaterThan(0.02);
    expect(s.capture.maxFrameRms).toBeGreaterThan(0.05);
    expect(s.capture.frames).toBeGreaterThanOrEqual(18);
    expect(s.counts.transcripts).toBe(1);
    expect(s.lastTranscript).toMatch(/\p{L}{2,}/u);
    expect(s.lastReply).toMatch(/\p{L}{2,}/u);
    await expect.poll(() => page.getByTestId('line-learner').last().textContent()).toContain(s.lastTranscript!);
    expect(await page.getByTestId('line-tutor').last().textContent()).toContain(s.lastReply!);
  });

  it('plays the reply audio through Web Audio to the end', async () => {
    await page.waitForFunction(() => window.__parleyDemo.playback.ended >= 1, null, WAIT);
    const s = await demo();
    expect(s.playback.replies).toBe(1);
    expect(s.playback.samples).toBeGreaterThan(24000 / 2); // more than half a second at 24 kHz
    expect(s.playback.dataRms).toBeGreaterThan(0.01);
    // Measured on the graph (an AnalyserNode before the destination): headless output is muted.
    expect(s.playback.maxRms).toBeGreaterThan(0.001);
  });

  it('moves the quota meters', async () => {
    await page.waitForFunction(() => window.__parleyDemo.meters['account.conversation.turn'] === 59, null, WAIT);
    // Real time passes: the session clock has ticked down at least one second since the start.
    await page.waitForFunction(() => window.__parleyDemo.shown['session.seconds']! < window.__parleyDemo.initialMeters!['session.seconds']!, null, WAIT);
    const s = await demo();
    expect(s.counts.quotaUpdates).toBeGreaterThanOrEqual(2);
    expect(await page.getByTestId('meter-account.conversation.turn').getAttribute('data-remaining')).toBe('59');
    expect(await page.getByTestId('meter-account.conversation.turn').textContent()).toContain('59 / 60');
  });

  it('"Drop the network" resumes the same session, and a text turn still works', async () => {
    const before = await demo();
    await page.getByRole('button', { name: 'Drop the network' }).click();
    await page.waitForFunction(() => window.__parleyDemo.counts.resumed >= 1 && window.__parleyDemo.state === 'open', null, WAIT);
    const after = await demo();
    expect(after.counts.drops).toBe(1);
    expect(after.lastClose).toMatchObject({ code: 1006, willReconnect: true });
    expect(after.sessionId).toBe(before.sessionId);
    expect(after.sessionIds).toEqual([before.sessionId, before.sessionId]);
    expect(await page.getByTestId('session-id').textContent()).toBe(before.sessionId);
    expect(await page.getByTestId('close-message').textContent()).toContain(`Resumed the same session ${before.sessionId}`);

    await page.getByLabel('Type a turn instead').fill('Hola, quiero un café con leche');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.waitForFunction(() => window.__parleyDemo.counts.replies >= 2 && window.__parleyDemo.playback.ended >= 2, null, WAIT);
    const done = await demo();
    expect(done.counts.turnsDone).toBe(2);
    expect(done.lastReply).not.toBe(before.lastReply);
    await page.waitForFunction(() => window.__parleyDemo.meters['account.conversation.turn'] === 58, null, WAIT);

    // The gateway agrees: one live session, the same one, on this account.
    const res = await fetch(`${url}/v1/sessions`, { headers: { Authorization: `Bearer ${DEMO_KEY}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { sessions: { session_id: string }[] };
    expect(body.sessions.map((x) => x.session_id)).toEqual([before.sessionId]);
  });

  it('translates and scores pronunciation per word', async () => {
    await page.getByRole('button', { name: 'Translate' }).click();
    await page.waitForFunction(() => window.__parleyDemo.counts.translations >= 1, null, WAIT);
    expect((await demo()).lastTranslation).toMatch(/estación/i);
    expect(await page.getByTestId('translation').textContent()).toMatch(/estación/i);

    const box = (await page.getByTestId('assess').boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.waitForFunction((n) => window.__parleyDemo.capture.utterances === n && window.__parleyDemo.capture.ms >= 600, (await demo()).capture.utterances, WAIT);
    await page.mouse.up();
    await page.waitForFunction(() => window.__parleyDemo.counts.assessments >= 1, null, WAIT);
    const s = await demo();
    // "Quisiera un café con leche, por favor." has seven words, each scored 0-100.
    expect(s.lastAssessment!.words.map((w) => w.word)).toEqual(['Quisiera', 'un', 'café', 'con', 'leche', 'por', 'favor']);
    // The fake device has finished its file by now, so this reads silence: the page only has to
    // show a 0-100 score per word.
    for (const w of s.lastAssessment!.words) {
      expect(w.score).toBeGreaterThanOrEqual(0);
      expect(w.score).toBeLessThanOrEqual(100);
    }
    expect(await page.getByTestId('assessment').locator('span').count()).toBe(7);
  });

  it('saves a screenshot and the page logged no errors', async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const file = join(ARTIFACTS, 'demo.png');
    await page.screenshot({ path: file, fullPage: true });
    expect(statSync(file).size).toBeGreaterThan(20_000);
    expect((await demo()).errors).toEqual([]);
    expect(pageErrors).toEqual([]);
  });

  it("shows the SDK's message for a close code: the operator ends the session (4003)", async () => {
    const { sessionId } = await demo();
    const res = await fetch(`${url}/v1/sessions/${sessionId}`, { method: 'DELETE', headers: { Authorization: `Bearer ${DEMO_KEY}` } });
    expect(res.status).toBe(204);
    await page.waitForFunction(() => window.__parleyDemo.lastClose?.code === 4003 && window.__parleyDemo.state === 'closed', null, WAIT);
    const s = await demo();
    expect(s.lastClose).toMatchObject({ code: 4003, action: 'stop', willReconnect: false });
    const expected = CLOSE_CODES[4003].message;
    expect(s.lastClose!.message).toBe(expected);
    expect(await page.getByTestId('close-message').textContent()).toBe(`Connection closed 4003 (forbidden): ${expected}`);
    expect(await page.getByRole('button', { name: 'Start session' }).isEnabled()).toBe(true);
    expect(await page.getByTestId('talk').isDisabled()).toBe(true);
  });
});
