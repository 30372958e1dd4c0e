/**
 * Real chromium for browser tests: Debian's `chromium` driven by playwright-core, with a fake
 * microphone that plays a WAV the test writes (VERIFIED.md: flags, WAV format, pitfalls).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** The system chromium (`command -v chromium`); `npx playwright install` cannot download here. */
export function chromiumPath(): string {
  let path = '';
  try {
    path = execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
  } catch {
    /* reported below */
  }
  if (!path) throw new Error('chromium not found on PATH (apt-get install chromium); browser tests need it');
  return path;
}

export interface SpeechWavOptions {
  readonly sampleRate?: number;
  /** Silence before the speech: the fake device starts the file at getUserMedia. */
  readonly leadingSilenceMs?: number;
  readonly speechMs?: number;
  readonly trailingSilenceMs?: number;
}

/**
 * A 16-bit PCM mono WAV (the only fake-mic format VERIFIED.md found reliable; 24-bit plays as
 * silence): leading silence, then a voiced, syllable-modulated harmonic signal loud enough for
 * the simulated speech-to-text to count as speech (20 ms frames well above its voiced threshold).
 */
export function speechWav(opts: SpeechWavOptions = {}): Buffer {
  const rate = opts.sampleRate ?? 16000;
  const lead = Math.round(((opts.leadingSilenceMs ?? 200) / 1000) * rate);
  const speech = Math.round(((opts.speechMs ?? 1500) / 1000) * rate);
  const trail = Math.round(((opts.trailingSilenceMs ?? 300) / 1000) * rate);
  const n = lead + speech + trail;
  const pcm = Buffer.alloc(n * 2);
  for (let i = 0; i < speech; i++) {
    const t = i / rate;
    // A 130 Hz voice with a few formant-ish harmonics and a 4 Hz syllable envelope that never
    // drops to silence, so every frame stays voiced.
    const f0 = 130 + 15 * Math.sin(2 * Math.PI * 0.7 * t);
    const phase = 2 * Math.PI * f0 * t;
    const voice = 0.55 * Math.sin(phase) + 0.25 * Math.sin(2 * phase) + 0.15 * Math.sin(5 * phase) + 0.05 * Math.sin(9 * phase);
    const envelope = 0.45 + 0.55 * Math.abs(Math.sin(2 * Math.PI * 2 * t));
    const ramp = Math.min(1, i / (0.02 * rate), (speech - i) / (0.02 * rate));
    const s = 0.5 * voice * envelope * ramp;
    pcm.writeInt16LE(Math.round(Math.max(-1, Math.min(1, s)) * 32767), (lead + i) * 2);
  }
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + pcm.length, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([header, pcm]);
}

export interface FakeMicBrowser {
  readonly context: BrowserContext;
  /** The WAV the fake microphone plays. */
  readonly wavPath: string;
  close(): Promise<void>;
}

/**
 * Launches headless chromium with a fresh profile and a fake microphone playing `wav` once
 * (`%noloop`). Chromium's D-Bus complaints on start are harmless.
 */
export async function launchWithFakeMic(wav: Buffer): Promise<FakeMicBrowser> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-e2e-'));
  const wavPath = join(dir, 'speech.wav');
  writeFileSync(wavPath, wav);
  const args = [
    '--no-sandbox',
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    `--use-file-for-fake-audio-capture=${wavPath}%noloop`,
    '--autoplay-policy=no-user-gesture-required',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ];
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: chromiumPath(),
      headless: true,
      args,
      viewport: { width: 1280, height: 900 },
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    context,
    wavPath,
    async close() {
      await context.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
