/**
 * `npm run cluster` as a person runs it (tools/cluster/cli.ts in its own process): a real
 * `redis-server`, two real replicas (`src/main.ts` with deploy/parley.yaml) and Debian's HAProxy.
 * A learner's session goes through HAProxy; the replica holding it is SIGKILLed; the learner
 * reconnects through HAProxy, lands on the other replica and resumes the same session with its
 * history (CONTRACT §9 "Deployment", issue 15). Then Ctrl-C (SIGINT) stops every process the
 * command started. Needs redis-server and haproxy (.ci/run installs both).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { REPLICA_HEADER } from '../../tools/cluster/haproxy.js';
import { PROJECT_DIR } from '../../tools/cluster/replica.js';
import { TestClient } from '../helpers/client.js';

const API_KEY = 'sk_cluster_test_0123456789abcdef';

interface Started {
  readonly url: string;
  readonly demoUrl: string;
  readonly replicas: ReadonlyMap<string, number>;
  readonly pids: readonly number[];
}

let cli: ChildProcess | undefined;
let output = '';
let exited: Promise<number | null> = Promise.resolve(null);

afterAll(async () => {
  // A failed run still stops everything: SIGINT drains, a second one kills what the CLI started.
  if (cli && cli.exitCode === null && cli.signalCode === null) {
    cli.kill('SIGINT');
    const late = setTimeout(() => cli?.kill('SIGINT'), 20_000);
    await exited;
    clearTimeout(late);
  }
}, 40_000);

/** Starts the CLI and resolves with what it printed once the cluster is up. */
async function startCli(): Promise<Started> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'tools/cluster/cli.ts', '--port', '0', '--log-level', 'warn'], {
    cwd: PROJECT_DIR,
    env: { ...process.env, PARLEY_API_KEY: API_KEY, REDIS_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cli = child;
  exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 90_000;
  while (!output.includes('Ctrl-C stops everything')) {
    if (child.exitCode !== null) throw new Error(`npm run cluster exited ${child.exitCode}:\n${output}`);
    if (Date.now() > deadline) throw new Error(`npm run cluster did not come up within 90 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const haproxy = /HAProxy: +(http:\/\/127\.0\.0\.1:\d+) \(pid (\d+);/.exec(output);
  const demo = /Demo page: +(\S+)/.exec(output);
  const redis = /Redis: +redis:\/\/127\.0\.0\.1:\d+ \(pid (\d+)\)/.exec(output);
  const replicas = new Map([...output.matchAll(/\b(r\d+) http:\/\/127\.0\.0\.1:\d+ \(pid (\d+);/g)].map((m) => [m[1]!, Number(m[2])]));
  if (!haproxy || !demo || !redis) throw new Error(`unexpected banner:\n${output}`);
  return { url: haproxy[1]!, demoUrl: demo[1]!, replicas, pids: [Number(haproxy[2]), Number(redis[1]), ...replicas.values()] };
}

/** A WebSocket through HAProxy with a fresh token, and the replica HAProxy sent it to. */
async function connectThrough(url: string): Promise<{ client: TestClient; replica: string }> {
  const res = await fetch(`${url}/v1/tokens`, { method: 'POST', headers: { Authorization: `Bearer ${API_KEY}` } });
  expect(res.status).toBe(201);
  const { token } = (await res.json()) as { token: string };
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/realtime`, ['parley.v1', `parley.token.${token}`]);
  let replica = '';
  ws.once('upgrade', (r) => (replica = String(r.headers[REPLICA_HEADER])));
  const client = new TestClient(ws);
  await client.opened;
  return { client, replica };
}

type Listed = { sessions: { session_id: string; replica_id: string; turns: number }[] };

/** GET /v1/sessions through HAProxy until the session's record shows `turns` (the record is written after the answer). */
async function sessionWithTurns(url: string, sessionId: string, turns: number): Promise<Listed['sessions'][number]> {
  const deadline = Date.now() + 15_000;
  let last: unknown;
  for (;;) {
    const res = await fetch(`${url}/v1/sessions`, { headers: { Authorization: `Bearer ${API_KEY}` } });
    last = await res.json();
    const s = (last as Listed).sessions?.find((x) => x.session_id === sessionId);
    if (s?.turns === turns) return s;
    if (Date.now() > deadline) throw new Error(`session ${sessionId} never showed ${turns} turns: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('npm run cluster', () => {
  it('serves a session through HAProxy, resumes it on the other replica after one is killed, and stops everything on Ctrl-C', async () => {
    const started = await startCli();
    expect([...started.replicas.keys()]).toEqual(['r1', 'r2']);
    // Where it tells a person to point a browser: the demo page, through HAProxy.
    expect(started.demoUrl).toBe(`${started.url}/demo/`);
    const page = await fetch(started.demoUrl);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);

    const first = await connectThrough(started.url);
    expect(started.replicas.has(first.replica)).toBe(true);
    first.client.send({ type: 'session.start', language: 'es', scenario: 'ordering coffee' });
    const created = await first.client.waitFor('session.created');
    first.client.send({ type: 'turn.text', id: 't1', text: 'Hola, quiero un café' });
    await first.client.waitFor('reply.audio.end', (e) => e.request_id === 't1', 20_000);
    const before = await sessionWithTurns(started.url, created.session_id, 1);

    // The replica holding the session crashes (no drain): the learner's socket drops.
    process.kill(started.replicas.get(first.replica)!, 'SIGKILL');
    expect((await first.client.closed).code).toBe(1006);

    const second = await connectThrough(started.url);
    expect(second.replica).not.toBe(first.replica);
    expect(started.replicas.has(second.replica)).toBe(true);
    second.client.send({ type: 'session.start', resume_token: created.resume_token });
    const resumed = await second.client.waitFor('session.resumed', undefined, 20_000);
    expect(resumed.session_id).toBe(created.session_id);
    expect(resumed.expires_at).toBe(created.expires_at);
    second.client.send({ type: 'turn.text', id: 't2', text: 'Y un croissant, por favor' });
    await second.client.waitFor('reply.audio.end', (e) => e.request_id === 't2', 20_000);
    // The history came along: the resumed session counts the turn before the crash and this one.
    const after = await sessionWithTurns(started.url, created.session_id, 2);
    expect(after.replica_id).not.toBe(before.replica_id);
    expect(second.client.invalid).toEqual([]);
    // The command reports the crash (it polls its replicas twice a second).
    const reported = new RegExp(`\\[cluster\\] ${first.replica} exited unasked`);
    for (const deadline = Date.now() + 10_000; !reported.test(output) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
    expect(output).toMatch(reported);

    second.client.close(1000);
    await second.client.closed;
    cli!.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(output).toContain('[cluster] stopped');
    expect(started.pids.filter(alive)).toEqual([]);
    await expect(fetch(`${started.url}/healthz`)).rejects.toThrow();
  }, 180_000);
});
