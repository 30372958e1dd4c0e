/**
 * The IPC protocol between the orchestrator (bench/run.ts) and a server child, and the child's side
 * of it. Both server children speak exactly the same protocol, so the orchestrator measures them the
 * same way; the only difference between the two children is the server they run.
 *
 * Measurements are taken INSIDE the child (process.cpuUsage(), process.memoryUsage()) because that is
 * the only place they describe the server alone: the load client runs in the parent.
 */
import fs from 'node:fs';
import inspector from 'node:inspector';
import v8 from 'node:v8';

/** Parent → child. */
export type ParentMessage =
  | { readonly type: 'cpu'; readonly id: number }
  | { readonly type: 'mem'; readonly id: number; readonly quick?: boolean }
  /** Starts V8's CPU profiler in the child (node:inspector), for one measured window. */
  | { readonly type: 'profile-start'; readonly id: number }
  /** Stops it and writes the profile (.cpuprofile JSON) to `file`. */
  | { readonly type: 'profile-stop'; readonly id: number; readonly file: string }
  | { readonly type: 'exit' };

/** Child → parent. */
export type ChildMessage =
  | { readonly type: 'ready'; readonly port: number }
  | { readonly type: 'failed'; readonly message: string }
  | CpuSnapshot
  | MemSnapshot
  | { readonly type: 'profiled'; readonly id: number };

/** Cumulative CPU of the child since it started, and when it was read (monotonic clock). */
export interface CpuSnapshot {
  readonly type: 'cpu';
  readonly id: number;
  /** process.cpuUsage().user, µs */
  readonly userUs: number;
  /** process.cpuUsage().system, µs */
  readonly systemUs: number;
  /** process.hrtime.bigint() / 1000, µs (as a number: fits easily in a double) */
  readonly atUs: number;
}

/** Memory of the child after forced, settled garbage collection. */
export interface MemSnapshot {
  readonly type: 'mem';
  readonly id: number;
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
  /** How many gc() rounds it took for RSS to settle (for the record). */
  readonly gcRounds: number;
  /** Open file descriptors of the child (/proc/self/fd; NaN where there is no /proc): sizing against `ulimit -n`. */
  readonly fds: number;
  /** V8's young generation as committed now (new_space size): grown while the process allocates, shrunk by the memory reducer when it idles. */
  readonly newSpaceBytes: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Memory after garbage collection has settled, in two steps.
 *
 * 1. Full GCs until RSS stops moving (two readings within 0.5 %, at most 8 rounds): V8 sweeps and
 *    releases pages concurrently after gc() returns, so RSS keeps falling for a little while.
 * 2. Then, unless `quick`, readings a second apart until RSS has not fallen by more than 0.5 % over
 *    the last QUIET_MS, and at least MIN_SETTLE_MS after the request. V8's memory reducer (on by
 *    default, as in production) shrinks the young generation and returns pooled pages some 8 s
 *    after a busy spell, which gc() does not do: measured on this machine, a fresh child's RSS fell
 *    by 8 MB (bare ws), 12 MB (the floor) and 28 MB (Parley) 5-8 s after start, with the heap
 *    unchanged; a reading taken before that charges the fall to whatever is measured next.
 */
async function settledMemory(id: number, quick: boolean): Promise<MemSnapshot> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('server child started without --expose-gc');
  const started = Date.now();
  const collect = async (): Promise<number> => {
    let previous = Number.NaN;
    let rounds = 0;
    for (; rounds < 8; rounds++) {
      gc();
      await sleep(150);
      const rss = process.memoryUsage.rss();
      if (Math.abs(rss - previous) <= previous * 0.005) break;
      previous = rss;
    }
    return rounds + 1;
  };
  let rounds = await collect();
  if (!quick) {
    // Left alone (no gc(): a forced GC puts the memory reducer off) until RSS has stopped falling.
    const history: { at: number; rss: number }[] = [];
    for (;;) {
      const now = Date.now();
      const rss = process.memoryUsage.rss();
      history.push({ at: now, rss });
      const old = history.find((h) => h.at <= now - QUIET_MS);
      if (now - started >= MAX_SETTLE_MS) break;
      if (now - started >= MIN_SETTLE_MS && old && old.rss - rss <= old.rss * 0.005) break;
      await sleep(1000);
    }
    rounds += await collect();
  }
  const m = process.memoryUsage();
  return { type: 'mem', id, rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, gcRounds: rounds, fds: openFds(), newSpaceBytes: v8.getHeapSpaceStatistics().find((sp) => sp.space_name === 'new_space')?.space_size ?? Number.NaN };
}

/** See settledMemory: the memory reducer acts about 8 s after a busy spell. */
const MIN_SETTLE_MS = 15_000;
const QUIET_MS = 5_000;
const MAX_SETTLE_MS = 30_000;

let inspectorSession: inspector.Session | undefined;

/** The child's profiler over a window the orchestrator chooses (node --cpu-prof covers a whole life only). */
async function profile(msg: Extract<ParentMessage, { type: 'profile-start' | 'profile-stop' }>): Promise<void> {
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((resolve, reject) => inspectorSession!.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result))));
  if (msg.type === 'profile-start') {
    inspectorSession ??= new inspector.Session();
    inspectorSession.connect();
    await post('Profiler.enable');
    await post('Profiler.start');
    return;
  }
  if (!inspectorSession) throw new Error('profile-stop without profile-start');
  const { profile: result } = (await post('Profiler.stop')) as { profile: unknown };
  inspectorSession.disconnect();
  inspectorSession = undefined;
  fs.writeFileSync(msg.file, JSON.stringify(result));
}

function openFds(): number {
  try {
    // One entry is the directory handle readdir itself holds while listing.
    return fs.readdirSync('/proc/self/fd').length - 1;
  } catch {
    return Number.NaN;
  }
}

function send(msg: ChildMessage): void {
  process.send?.(msg);
}

/**
 * The child's side: answers measurement requests, and makes sure the child never outlives the
 * orchestrator. `disconnect` fires when the parent exits for any reason (even SIGKILL: the IPC pipe
 * closes), so an interrupted bench leaves no server behind holding ports and CPU.
 * `start` starts the server and returns its port; `stop` is best-effort cleanup before exiting.
 */
export async function runChild(start: () => Promise<number>, stop: () => Promise<void> = async () => undefined): Promise<void> {
  if (!process.send) {
    console.error('this is a bench server child; run it through `npm run bench`');
    process.exit(2);
  }
  let exiting = false;
  const exit = (code: number): void => {
    if (exiting) return;
    exiting = true;
    // Exit even if stop() hangs (e.g. a close waiting on 5,000 sockets); --cpu-prof still writes on process.exit.
    setTimeout(() => process.exit(code), 1000).unref();
    stop().then(
      () => process.exit(code),
      () => process.exit(code),
    );
  };
  process.on('disconnect', () => exit(0));
  process.on('SIGTERM', () => exit(0));
  process.on('SIGINT', () => exit(0));
  process.on('message', (msg: ParentMessage) => {
    switch (msg.type) {
      case 'cpu': {
        const u = process.cpuUsage();
        send({ type: 'cpu', id: msg.id, userUs: u.user, systemUs: u.system, atUs: Number(process.hrtime.bigint() / 1000n) });
        return;
      }
      case 'mem':
        settledMemory(msg.id, msg.quick === true).then(send, (err: unknown) => send({ type: 'failed', message: String(err) }));
        return;
      case 'profile-start':
      case 'profile-stop':
        profile(msg).then(
          () => send({ type: 'profiled', id: msg.id }),
          (err: unknown) => send({ type: 'failed', message: `profile: ${String(err)}` }),
        );
        return;
      case 'exit':
        exit(0);
        return;
    }
  });
  try {
    const port = await start();
    send({ type: 'ready', port });
  } catch (err) {
    send({ type: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    exit(1);
  }
}
