/**
 * A fuzz run: the app in its own process, the control learner beside it, then the cases of the
 * seed spread over a pool of connections until the frame target is reached, with the app's
 * memory and handles read before, right after and `settleSeconds` later.
 */
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { CloseCode } from '../../src/protocol/codes.js';
import { AppProcess, type Crash, type LogTally } from './app-process.js';
import { generateCase } from './cases.js';
import { ATTACK_KEY, attackPlan, CONTROL_KEY } from './config.js';
import { ControlSession, type ControlReport } from './control.js';
import { runHttpCase } from './http-case.js';
import type { Probe } from './ipc.js';
import { Model } from './model.js';
import { MUTATIONS } from './payloads.js';
import { runSessionCase } from './session-case.js';
import { Stats } from './stats.js';

export interface FuzzOptions {
  readonly seed: number;
  /** Frames to send in all (WebSocket frames written by the attack connections). */
  readonly frames: number;
  /** Attack connections at once. */
  readonly concurrency?: number;
  /** Protocol ping interval of the app (a dead peer is dropped within two). */
  readonly heartbeatSeconds?: number;
  /** Seconds between the "right after" and the "later" readings; 0 skips memory readings. */
  readonly settleSeconds?: number;
  /** Frames sent before the baseline reading (JIT, lazy modules and pools warm up on them). */
  readonly warmupFrames?: number;
  /** Longest a slowloris socket is held (ms). */
  readonly slowlorisMs?: number;
  /** Runs only this case, printing every step and answer. */
  readonly onlyCase?: number;
  readonly log?: (line: string) => void;
}

export interface Readings {
  readonly before: Probe;
  readonly after: Probe;
  readonly later: Probe | undefined;
}

export interface FuzzReport {
  readonly seed: number;
  readonly framesTarget: number;
  readonly durationMs: number;
  readonly stats: Stats;
  readonly crash: Crash | undefined;
  readonly control: ControlReport | undefined;
  readonly readings: Readings | undefined;
  /** Connection slots the attackers' account still held once every attack socket was gone (GET /v1/usage). */
  readonly slotsAfter: number | undefined;
  readonly slotsLater: number | undefined;
  /** `parley_closes_total` code labels that are not close codes the server sends (client-chosen codes). */
  readonly foreignCloseLabels: readonly string[];
  readonly logs: LogTally;
  readonly mutationCoverage: { readonly hit: number; readonly of: number };
  /**
   * The fuzzer's own longest event-loop stall, ms. Past the app's heartbeat its connections look
   * dead to the app (they cannot answer pings), so the run would be judging the fuzzer, not the app.
   */
  readonly fuzzerStallMs: number;
  /** The 99th percentile of the fuzzer's event-loop delay, ms (a busy machine shows here first). */
  readonly fuzzerLagP99Ms: number;
  readonly heartbeatSeconds: number;
  /** CPU used during the fuzzing phase (after the baseline reading), ms: by the fuzzer, and by the app. */
  readonly cpuMs: { readonly fuzzer: number; readonly app: number | undefined; readonly phaseMs: number } | undefined;
}

/** The limits the oracle judges against: the attackers' plan (config.ts) and ws's own bounds. */
export function fuzzModel(): Model {
  return new Model({
    maxFrameBytes: attackPlan.maxFrameBytes,
    // server.maxPayloadBytes unset: 4 × the largest maxFrameBytes (src/app.ts maxPayloadBytes()).
    maxPayloadBytes: 4 * attackPlan.maxFrameBytes,
    maxUtteranceBytes: attackPlan.maxUtteranceBytes,
    maxTextChars: attackPlan.maxTextChars,
    maxStrikes: 10,
    maxPendingPongs: 60,
    maxFragments: 16_384,
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function get(port: number, path: string, key?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false, headers: { Connection: 'close', ...(key ? { Authorization: `Bearer ${key}` } : {}) } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function slotsHeld(port: number): Promise<number | undefined> {
  const r = await get(port, '/v1/usage', ATTACK_KEY).catch(() => undefined);
  if (!r || r.status !== 200) return undefined;
  return (JSON.parse(r.body) as { connections_used: number }).connections_used;
}

/** Close codes the server itself sends (src/protocol/codes.ts), plus the WebSocket layer's 1002 and 1009. */
const SERVER_CLOSE_CODES = new Set<string>([...Object.values(CloseCode).map(String), '1002', '1005', '1009']);

async function foreignCloseLabels(port: number): Promise<string[]> {
  const r = await get(port, '/metrics').catch(() => undefined);
  if (!r) return [];
  const labels = new Set<string>();
  for (const m of r.body.matchAll(/^parley_closes_total\{code="([^"]*)"\}/gm)) labels.add(m[1]!);
  return [...labels].filter((l) => !SERVER_CLOSE_CODES.has(l)).sort();
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const log = opts.log ?? (() => undefined);
  const heartbeatSeconds = opts.heartbeatSeconds ?? 3;
  const settleSeconds = opts.settleSeconds ?? 30;
  const concurrency = opts.concurrency ?? 24;
  const t0 = Date.now();
  const loop = monitorEventLoopDelay({ resolution: 20 });
  loop.enable();
  const stats = new Stats();
  const model = fuzzModel();
  const app = await AppProcess.start({ heartbeatSeconds, secrets: [ATTACK_KEY, CONTROL_KEY] });
  const ctx = {
    port: app.port,
    seed: opts.seed,
    apiKey: ATTACK_KEY,
    stats,
    model,
    heartbeatSeconds,
    slowlorisMs: opts.slowlorisMs ?? 4000,
    // Generous: on a busy 2-core machine a step can wait seconds; a hang is still caught.
    stepTimeoutMs: 15_000,
    authFailureAddress: '127.0.0.3',
    trace: opts.onlyCase !== undefined ? log : undefined,
  };
  let control: ControlSession | undefined;
  let controlReport: ControlReport | undefined;
  let readings: Readings | undefined;
  let slotsAfter: number | undefined;
  let slotsLater: number | undefined;
  let foreign: string[] = [];
  let cpuMs: FuzzReport['cpuMs'];
  try {
    if (opts.onlyCase !== undefined) {
      const c = generateCase(opts.seed, opts.onlyCase);
      log(`case ${opts.onlyCase} of seed ${opts.seed}: ${c.kind === 'session' ? `session over ${c.transport}, ${c.steps.length} steps` : `http ${c.variant}`}`);
      if (c.kind === 'session') await runSessionCase(c, ctx);
      else await runHttpCase(c, ctx);
    } else {
      control = new ControlSession({ port: app.port, localAddress: '127.0.0.2', intervalMs: 1000, deadlineMs: 10_000 });
      await control.start();
      let next = 0;
      const runCase = async (index: number): Promise<void> => {
        const c = generateCase(opts.seed, index);
        try {
          if (c.kind === 'session') await runSessionCase(c, ctx);
          else await runHttpCase(c, ctx);
        } catch (err) {
          // A refused TCP connect once the app is gone is the crash, reported as such.
          if (!app.alive) return;
          stats.finding({ seed: opts.seed, caseIndex: index, cls: c.kind === 'session' ? 'fuzzer' : c.variant, input: `case ${index}`, expected: [], observed: [], problems: [`the fuzzer failed: ${String(err)}`] }, c.kind === 'http');
        }
      };
      /** Runs cases over `concurrency` connections until `target` frames have been sent. */
      const phase = async (target: number): Promise<void> => {
        const worker = async (): Promise<void> => {
          while (stats.framesSent < target && app.alive) await runCase(next++);
        };
        await Promise.all(Array.from({ length: concurrency }, worker));
      };
      const measure = settleSeconds > 0;
      const drained = async (): Promise<Probe | undefined> => {
        // Every attack socket is closed on our side: the app lets go of their connections, and
        // (for a memory reading) of their sessions once the resume window (5 s) has passed. Only
        // the control's stay.
        const until = Date.now() + 30_000;
        while (app.alive && Date.now() < until) {
          const p = await app.probe(false);
          if (p.connections <= 1 && (!measure || p.sessions <= 1)) break;
          await sleep(100);
        }
        return app.alive ? app.probe(measure) : undefined;
      };
      const warmup = measure ? Math.min(opts.warmupFrames ?? Math.max(1000, Math.floor(opts.frames * 0.05)), opts.frames) : 0;
      let before: Probe | undefined;
      if (measure) {
        await phase(warmup);
        log(`warm-up: ${stats.framesSent} frames; baseline reading…`);
        before = await drained();
      }
      const cpu0 = process.cpuUsage();
      const phase0 = Date.now();
      const progress = setInterval(() => log(`  ${stats.framesSent} frames, ${stats.sessionCases + stats.httpCases} cases, ${stats.unexpected} unexpected`), 10_000);
      try {
        await phase(opts.frames);
      } finally {
        clearInterval(progress);
      }
      log(`fuzzing done: ${stats.framesSent} frames in ${((Date.now() - phase0) / 1000).toFixed(1)} s (${((Date.now() - t0) / 1000).toFixed(1)} s since start)`);
      const cpu1 = process.cpuUsage(cpu0);
      const phaseMs = Date.now() - phase0;
      const after = await drained();
      cpuMs = { fuzzer: Math.round((cpu1.user + cpu1.system) / 1000), app: before && after ? after.cpuMs - before.cpuMs : undefined, phaseMs };
      slotsAfter = app.alive ? await slotsHeld(app.port) : undefined;
      foreign = app.alive ? await foreignCloseLabels(app.port) : [];
      if (measure && before && after) {
        log(`waiting ${settleSeconds} s for the later reading…`);
        await sleep(settleSeconds * 1000);
        const later = app.alive ? await app.probe() : undefined;
        slotsLater = app.alive ? await slotsHeld(app.port) : undefined;
        readings = { before, after, later };
      } else if (after) {
        readings = undefined;
      }
      controlReport = await control.stop();
      control = undefined;
    }
  } finally {
    loop.disable();
    if (control) controlReport = await control.stop().catch(() => undefined);
    await app.stop();
  }
  return {
    seed: opts.seed,
    framesTarget: opts.frames,
    durationMs: Date.now() - t0,
    stats,
    crash: app.crash,
    control: controlReport,
    readings,
    slotsAfter,
    slotsLater,
    foreignCloseLabels: foreign,
    logs: app.logs,
    mutationCoverage: { hit: stats.mutationsHit.size, of: MUTATIONS.length },
    fuzzerStallMs: Math.round(loop.max / 1e6),
    fuzzerLagP99Ms: Math.round(loop.percentile(99) / 1e6),
    heartbeatSeconds,
    cpuMs,
  };
}
