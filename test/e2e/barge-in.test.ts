/**
 * Barge-in on the demo page (issue 13, CONTRACT §6): the tutor is still speaking when the learner
 * presses the talk button. Playback stops at once, the SDK cancels the reply with the player's
 * position, the gateway answers `request.cancelled`, and the learner's new turn is answered.
 *
 * The real app (real time) with the built-in simulated upstream, its speech made at real time
 * (realTimeFactor 1), so the reply's audio is still arriving while it plays; the real chromium with
 * a fake microphone (VERIFIED.md).
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type ParleyApp } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import { logSink } from '../helpers/log-sink.js';
import { launchWithFakeMic, speechWav, type FakeMicBrowser } from './helpers/browser.js';

const DEMO_KEY = 'sk_demo_e2e_0123456789abcdef';
/** Real-time waits in a browser on a busy 2-core machine: generous on purpose. */
const WAIT = { timeout: 30_000 };

/** The page's `(window as unknown as DemoWindow).__parleyDemo` (client-demo/demo.js), as far as this test reads it. */
interface DemoState {
  state: string;
  lastTranscript: string | null;
  lastReply: string | null;
  lastCancel: { requestId: string; stage: string; keptText: string } | null;
  counts: Record<'transcripts' | 'replies' | 'turnsDone' | 'cancelled' | 'errors', number>;
  capture: { utterances: number; ms: number; rms: number };
  playback: { replies: number; chunks: number; samples: number; playing: boolean; stopped: number; ended: number };
  errors: { what: string; code: string; message: string }[];
}

/** The page's window (a cast, not a global declaration: demo.test.ts declares its own view of it). */
type DemoWindow = { __parleyDemo: DemoState };

let app: ParleyApp;
let url: string;
let browser: FakeMicBrowser;
let page: Page;
const pageErrors: string[] = [];

const demo = (): Promise<DemoState> => page.evaluate(() => JSON.parse(JSON.stringify((window as unknown as DemoWindow).__parleyDemo)) as DemoState);

beforeAll(async () => {
  const config = parseConfig(
    {
      server: { host: '127.0.0.1', port: 0, demo: true, drainSeconds: 1 },
      logLevel: 'info',
      plans: { standard: {} },
      accounts: [{ id: 'acct_demo', plan: 'standard', keys: [{ id: 'key_demo', secret: DEMO_KEY }] }],
      upstreams: {
        stt: { provider: 'simulated', latencyMs: 100 },
        conversation: { provider: 'simulated', simulatedTiming: { firstTokenMs: 100 } },
        // The tutor's voice arrives as fast as it plays: the reply is still streaming while it is heard.
        tts: { provider: 'simulated', simulatedTiming: { firstByteMs: 100, realTimeFactor: 1 } },
      },
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
});

afterAll(async () => {
  await browser?.close();
  await app?.close();
});

describe('barge-in on the demo page', () => {
  it('pressing talk while the tutor speaks stops playback at once, cancels the reply, and the next turn is answered', async () => {
    await page.goto(`${url}/demo/`);
    await page.getByRole('button', { name: 'Start session' }).click();
    await page.waitForFunction(() => (window as unknown as DemoWindow).__parleyDemo.state === 'open', null, WAIT);

    // A typed turn: the tutor answers, and its voice plays while more of it arrives.
    await page.getByLabel('Type a turn instead').fill('Hola, quiero un café con leche y un croissant, por favor');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.waitForFunction(() => (window as unknown as DemoWindow).__parleyDemo.playback.playing && (window as unknown as DemoWindow).__parleyDemo.playback.chunks >= 5, null, WAIT);
    const speaking = await demo();
    expect(speaking.counts.replies).toBe(1);

    // The learner talks over the tutor.
    const box = (await page.getByTestId('talk').boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    const stopped = await demo();
    expect(stopped.playback.playing).toBe(false);
    expect(stopped.playback.stopped).toBe(1);

    // The SDK cancels the reply with the player's position; the gateway answers while it still speaks.
    await page.waitForFunction(() => (window as unknown as DemoWindow).__parleyDemo.counts.cancelled >= 1, null, WAIT);
    const cancelled = await demo();
    expect(cancelled.lastCancel).toMatchObject({ requestId: expect.stringMatching(/^demo-/) as unknown, stage: 'speaking' });
    const kept = cancelled.lastCancel!.keptText;
    expect(kept.length).toBeGreaterThan(0);
    expect(speaking.lastReply!.startsWith(kept)).toBe(true);
    expect(kept.length).toBeLessThan(speaking.lastReply!.length); // the unheard rest is not kept
    // Audio that still arrived after the stop was not played.
    expect(cancelled.playback.samples).toBe(stopped.playback.samples);
    expect(cancelled.playback.playing).toBe(false);
    await expect.poll(() => page.getByTestId('line-tutor').first().textContent()).toContain('(interrupted)');

    // The learner's own turn goes on: captured, transcribed, answered, and its reply plays.
    await page.waitForFunction(() => (window as unknown as DemoWindow).__parleyDemo.capture.ms >= 1800, null, WAIT);
    await page.mouse.up();
    await page.waitForFunction(() => (window as unknown as DemoWindow).__parleyDemo.counts.replies >= 2 && (window as unknown as DemoWindow).__parleyDemo.playback.replies >= 2, null, WAIT);
    const next = await demo();
    expect(next.capture.rms).toBeGreaterThan(0.02); // the fake microphone's speech, not silence
    expect(next.counts.transcripts).toBe(1);
    expect(next.lastTranscript).toMatch(/\p{L}{2,}/u);
    expect(next.lastReply).toMatch(/\p{L}{2,}/u);
    expect(next.counts.cancelled).toBe(1);
    await page.waitForFunction(() => (window as unknown as DemoWindow).__parleyDemo.counts.turnsDone >= 2, null, WAIT);

    // The gateway counted the barge-in as a turn cancelled while speaking.
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^parley_turns_cancelled_total\{stage="speaking"\} 1$/m);
    expect((await demo()).errors).toEqual([]);
    expect(pageErrors).toEqual([]);
  });

  it('typing a turn while the tutor speaks also stops playback at once and cancels the reply being heard', async () => {
    // The answer to the spoken turn is playing now, its audio still arriving.
    await page.waitForFunction(() => (window as unknown as DemoWindow).__parleyDemo.playback.playing && (window as unknown as DemoWindow).__parleyDemo.playback.chunks >= 3, null, WAIT);
    const before = await demo();
    await page.getByLabel('Type a turn instead').fill('Perdón, ¿puede repetir?');
    await page.getByRole('button', { name: 'Send' }).click();
    const stopped = await demo();
    expect(stopped.playback.playing).toBe(false);
    expect(stopped.playback.stopped).toBe(before.playback.stopped + 1);
    await page.waitForFunction(() => (window as unknown as DemoWindow).__parleyDemo.counts.cancelled >= 2, null, WAIT);
    const cancelled = await demo();
    expect(cancelled.lastCancel!.requestId).not.toBe(before.lastCancel!.requestId);
    expect(cancelled.playback.samples).toBe(stopped.playback.samples); // nothing more of it played
    await page.waitForFunction(() => (window as unknown as DemoWindow).__parleyDemo.counts.replies >= 3 && (window as unknown as DemoWindow).__parleyDemo.playback.replies >= 3, null, WAIT);
    expect((await demo()).errors).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
