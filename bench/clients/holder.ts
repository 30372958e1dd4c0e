/**
 * A socket holder (bench/lib/holders.ts): a child process that opens client sessions when asked,
 * holds them idle, and closes them when asked. The same code opens sessions on bare `ws`, on the
 * floor and on Parley; only the handshake differs (OpenAuth). A client socket answers the server's
 * protocol pings by itself (`ws` does), as a browser does.
 *
 * Run as a child of the bench orchestrator (IPC), never on its own.
 */
import { Pool } from 'undici';
import { BenchConn, newAnomalies, type Anomalies, type ClientTarget } from '../lib/clients.js';
import type { HolderReply, HolderRequest, OpenResult, OpenSpec } from '../lib/holders.js';

if (!process.send) {
  console.error('this is a bench socket holder; run it through `npm run bench`');
  process.exit(2);
}

const send = (msg: HolderReply): void => {
  process.send?.(msg);
};

/** Everything held: the sockets, and what went wrong while holding them. */
let conns: BenchConn[] = [];
let anomalies: Anomalies = newAnomalies();
/** One keep-alive pool per server for token mints, as an app back end keeps one. */
const pools = new Map<string, Pool>();
/** Successive opens on one holder continue the learner numbering and the source-address rotation. */
let sequence = 0;

/** More failures than this in one open stops it: something is wrong, and the report says what. */
const maxFailures = (count: number): number => Math.max(50, Math.ceil(count * 0.01));

async function mint(spec: OpenSpec, learner: string): Promise<string> {
  let pool = pools.get(spec.httpUrl);
  if (!pool) {
    // Enough connections that mints do not wait for each other behind the server's handshakes
    // (4 held the token path to ~250 sessions/s), few enough to fit the server's file-descriptor
    // reserve at its open-files limit in run (a) (SERVER_FD_RESERVE in bench/scale.ts).
    pool = new Pool(spec.httpUrl, { connections: 16, pipelining: 1 });
    pools.set(spec.httpUrl, pool);
  }
  const res = await pool.request({
    method: 'POST',
    path: '/v1/tokens',
    headers: { authorization: `Bearer ${spec.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ learner_id: learner }),
  });
  const text = await res.body.text();
  if (res.statusCode !== 201) throw new Error(`POST /v1/tokens answered ${res.statusCode}: ${text.slice(0, 200)}`);
  return (JSON.parse(text) as { token: string }).token;
}

async function openOne(spec: OpenSpec, n: number): Promise<void> {
  let target: ClientTarget;
  if (spec.auth === 'none') target = { url: spec.wsUrl, startSession: false };
  else if (spec.auth === 'key') target = { url: spec.wsUrl, headers: { Authorization: `Bearer ${spec.key}` }, startSession: true };
  else target = { url: spec.wsUrl, protocols: ['parley.v1', `parley.token.${await mint(spec, `${spec.learnerPrefix}${n}`)}`], startSession: true };
  const local = spec.localAddresses.length ? spec.localAddresses[n % spec.localAddresses.length] : undefined;
  const conn = new BenchConn(target, anomalies, local);
  try {
    await conn.open(target.startSession);
  } catch (err) {
    conn.stop();
    throw err;
  }
  conns.push(conn);
}

async function open(spec: OpenSpec): Promise<OpenResult> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deciles: number[] = [];
  let started = 0;
  let opened = 0;
  let failed = 0;
  let firstError: string | undefined;
  const limit = maxFailures(spec.count);
  const deadline = t0 + spec.deadlineSeconds * 1000;
  let stopped: OpenResult['stopped'];
  const worker = async (): Promise<void> => {
    // Attempts beyond `count` replace failures, so `count` sessions open unless too many fail.
    while (started - failed < spec.count) {
      if (failed > limit) {
        stopped = 'failures';
        break;
      }
      if (performance.now() > deadline) {
        stopped = 'deadline';
        break;
      }
      started++;
      try {
        await openOne(spec, sequence++);
        opened++;
        while (deciles.length < 10 && opened >= (spec.count * (deciles.length + 1)) / 10) deciles.push((performance.now() - t0) / 1000);
      } catch (err) {
        failed++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(spec.concurrency, spec.count)) }, worker));
  const cpu = process.cpuUsage(cpu0);
  return {
    opened,
    failed,
    ...(firstError !== undefined ? { firstError } : {}),
    ...(stopped && opened < spec.count ? { stopped } : {}),
    seconds: (performance.now() - t0) / 1000,
    deciles,
    holderCpuUs: cpu.user + cpu.system,
    anomalies: structuredClone(anomalies),
  };
}

function closeAll(): number {
  const n = conns.length;
  for (const c of conns) c.stop();
  conns = [];
  // A new run starts counting afresh: closes seen after this belong to nobody's figures.
  anomalies = newAnomalies();
  return n;
}

process.on('message', (msg: HolderRequest) => {
  switch (msg.type) {
    case 'open':
      open(msg.spec).then(
        (result) => send({ type: 'opened', id: msg.id, result }),
        (err: unknown) => send({ type: 'failed', id: msg.id, message: err instanceof Error ? err.message : String(err) }),
      );
      return;
    case 'close':
      send({ type: 'closed', id: msg.id, count: closeAll() });
      return;
    case 'status':
      send({ type: 'status', id: msg.id, held: conns.length, anomalies });
      return;
    case 'exit':
      closeAll();
      process.exit(0);
  }
});
// The orchestrator is gone (however it went): let go of every socket at once.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
