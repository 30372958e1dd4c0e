/**
 * The conversation pipeline on virtual time (issue 13; TURNS.md "Testing on virtual time"): a Turn
 * run by `runConversation` through the real governed upstreams (governor, fair queue, concurrency
 * leases in the in-memory store, all on a ManualScheduler) in front of fake providers the test
 * drives step by step. Each fake rejects at once when its call is aborted, as the HTTP adapters do.
 *
 * After every case nothing is left behind: no lease, no attempt in flight or queued, no live
 * scheduler action (attempt timeouts, queue deadlines), no abort listener of a fake.
 */
import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import type { ServerEvent } from '../../../src/protocol/messages.js';
import { createSimulatedProviders } from '../../../src/simulator/index.js';
import { MemoryStore } from '../../../src/store/memory.js';
import { createLogger } from '../../../src/telemetry/logger.js';
import { runConversation, type ConversationContext, type TurnInput } from '../../../src/turns/conversation.js';
import { Turn, type CancelStage } from '../../../src/turns/turn.js';
import { createGovernedProviders, type GovernedUpstreams } from '../../../src/upstream/governed.js';
import type { ChatMessage, ChatReply, Providers } from '../../../src/upstream/provider.js';
import { ManualScheduler } from '../../helpers/scheduler.js';

interface FakeCall<T> {
  readonly signal: AbortSignal;
  /** Not yet answered, failed or aborted. */
  isOpen(): boolean;
  resolve(value: T): void;
  fail(err: Error): void;
}
interface FakeChat extends FakeCall<ChatReply> {
  readonly messages: readonly ChatMessage[];
  delta(text: string): void;
  end(): void;
}
interface FakeTts extends FakeCall<void> {
  readonly text: string;
  push(chunk: Buffer): Promise<void>;
  end(): void;
}

/** A call that settles when the test says so, or rejects with an AbortError the moment `signal` aborts. */
function abortable<T>(signal: AbortSignal | undefined, register: (call: FakeCall<T>) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let open = true;
    const onAbort = (): void => {
      open = false;
      reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
    };
    signal!.addEventListener('abort', onAbort, { once: true });
    const done = (): void => {
      open = false;
      signal!.removeEventListener('abort', onAbort);
    };
    register({
      signal: signal!,
      isOpen: () => open,
      resolve: (v) => {
        done();
        resolve(v);
      },
      fail: (err) => {
        done();
        reject(err);
      },
    });
  });
}

/** 100 ms of PCM16 at 24 kHz. */
const pcm100ms = (): Buffer => Buffer.alloc(4_800, 1);

const open: GovernedUpstreams[] = [];
afterEach(() => {
  for (const up of open.splice(0)) up.close();
});

function pipeline(opts: { concurrency?: number } = {}) {
  const scheduler = new ManualScheduler();
  const store = new MemoryStore({ now: () => scheduler.now() });
  const limits = { concurrency: opts.concurrency ?? 3 };
  const config = parseConfig({ upstreams: { conversation: { account: 'up', limits }, stt: { account: 'up', limits }, tts: { account: 'up', limits } } }, {});
  const stt: FakeCall<string>[] = [];
  const chat: FakeChat[] = [];
  const tts: FakeTts[] = [];
  const adapters: Providers = {
    ...createSimulatedProviders(),
    stt: { transcribe: (_req, o) => abortable<string>(o?.signal, (call) => stt.push(call)) },
    conversation: {
      reply: () => Promise.reject(new Error('the pipeline streams')),
      stream: (req, o, onDelta) => {
        let text = '';
        return abortable<ChatReply>(o?.signal, (call) =>
          chat.push({
            ...call,
            messages: req.messages,
            delta: (d) => {
              text += d;
              onDelta(d);
            },
            end: () => call.resolve({ text }),
          }),
        );
      },
    },
    tts: {
      speak: () => Promise.reject(new Error('the pipeline streams')),
      stream: (req, o, sink) =>
        abortable<void>(o?.signal, (call) =>
          tts.push({ ...call, text: req.text, push: async (chunk) => sink(chunk, 24_000), end: () => call.resolve(undefined) }),
        ),
    },
  };
  const up = createGovernedProviders({ config, store, scheduler, logger: createLogger({ level: 'silent' }), adapters });
  open.push(up);
  const events: ServerEvent[] = [];
  const audio: Buffer[] = [];
  const history: { user: string; assistant: string }[] = [];
  const observed: string[] = [];
  const turn = new Turn('t', 'conversation', {
    output: { event: (e) => events.push(e), audio: (c) => audio.push(c) },
    now: () => scheduler.now(),
    history: {
      add: (user, assistant) => history.push({ user, assistant }),
      truncateLast: (assistant) => {
        history[history.length - 1]!.assistant = assistant;
      },
    },
    observer: { turnCompleted: (firstAudioMs, totalMs) => observed.push(`completed ${firstAudioMs} ${totalMs}`), turnCancelled: (stage) => observed.push(`cancelled ${stage}`) },
  });
  const callFor = (t: Turn) => ({
    signal: t.signal,
    context: { accountId: 'acct', sessionId: 'sess', acceptedAt: t.acceptedAt, onQueued: (p: number) => t.queued(p), onStart: () => t.startedUpstream() },
  });
  const ctx: ConversationContext = { providers: up.providers, language: 'es', history: () => [], call: callFor, ttsMaxChars: 2000, segmentsInFlight: 2 };
  let outcome: 'pending' | 'resolved' | 'rejected' = 'pending';
  return {
    scheduler,
    up,
    stt,
    chat,
    tts,
    turn,
    events,
    audio,
    history,
    observed,
    get outcome() {
      return outcome;
    },
    start(input: TurnInput): void {
      runConversation(turn, input, ctx).then(
        () => (outcome = 'resolved'),
        () => (outcome = 'rejected'),
      );
    },
    /** Another session's STT call, to fill the upstream's slots. */
    other: () => up.providers.stt.transcribe({ audio: { data: Buffer.alloc(2), format: 'pcm16', sampleRate: 16_000, channels: 1 }, language: 'es' }, { context: { accountId: 'other', sessionId: 'other', acceptedAt: scheduler.now() } }),
    types: () => events.map((e) => e.type),
    /** Lets every pending promise and store answer run (virtual time does not move). */
    settle: () => new Promise<void>((r) => setImmediate(r)),
    async expectClean(): Promise<void> {
      await this.settle();
      expect(await store.countLeases('up:{up}:conc')).toBe(0);
      const governor = up.governors.get('up')!;
      expect(governor.inFlight).toBe(0);
      expect(governor.queued).toBe(0);
      expect(scheduler.live).toBe(0);
      for (const call of [...stt, ...chat, ...tts]) expect(getEventListeners(call.signal, 'abort')).toHaveLength(0);
    },
  };
}

type Pipeline = ReturnType<typeof pipeline>;

/** Audio in: speech to text answers "Hola" after 250 ms. */
async function transcribed(p: Pipeline): Promise<void> {
  p.start({ audio: { data: Buffer.alloc(3_200), format: 'pcm16', sampleRate: 16_000, channels: 1 } });
  await p.settle();
  p.scheduler.advanceBy(250);
  p.stt[0]!.resolve('Hola');
  await p.settle();
}

describe('the conversation pipeline on virtual time', () => {
  it('runs a whole turn: events in order, exact turn.metrics, the first sentence spoken while the model still writes, nothing left behind', async () => {
    const p = pipeline();
    await transcribed(p);
    expect(p.turn.stage).toBe('running');
    // What `expectClean` looks for is there while a call is open: its attempt timeout, its listener.
    expect(p.scheduler.live).toBe(1);
    expect(getEventListeners(p.chat[0]!.signal, 'abort')).toHaveLength(1);
    p.scheduler.advanceBy(350);
    p.chat[0]!.delta('Muy bien. ');
    p.chat[0]!.delta('¿Y tú?');
    await p.settle();
    expect(p.tts.map((c) => c.text)).toEqual(['Muy bien.']); // before the chat ended
    p.scheduler.advanceBy(150);
    await p.tts[0]!.push(pcm100ms());
    expect(p.turn.stage).toBe('speaking');
    p.chat[0]!.end();
    await p.settle();
    expect(p.tts.map((c) => c.text)).toEqual(['Muy bien.', '¿Y tú?']);
    p.scheduler.advanceBy(100);
    p.tts[0]!.end();
    await p.tts[1]!.push(pcm100ms());
    p.tts[1]!.end();
    await p.settle();
    expect(p.outcome).toBe('resolved');
    expect(p.types()).toEqual(['transcript', 'reply.text.delta', 'reply.text.delta', 'reply.audio.start', 'reply.text', 'reply.audio.end', 'turn.metrics']);
    expect(p.events.at(-1)).toEqual({ type: 'turn.metrics', request_id: 't', queued_ms: 0, stt_ms: 250, first_token_ms: 600, first_audio_ms: 750, total_ms: 850, tts_requests: 2 });
    expect(p.audio).toHaveLength(2);
    expect(p.history).toEqual([{ user: 'Hola', assistant: 'Muy bien. ¿Y tú?' }]);
    expect(p.observed).toEqual(['completed 750 850']);
    await p.expectClean();
  });

  const stages: [CancelStage, string, (p: Pipeline) => Promise<void>][] = [
    [
      'queued',
      'its STT call waits for the one slot another session holds',
      async (p) => {
        void p.other();
        await p.settle();
        p.start({ audio: { data: Buffer.alloc(3_200), format: 'pcm16', sampleRate: 16_000, channels: 1 } });
        await p.settle();
      },
    ],
    [
      'running',
      'speech to text is transcribing',
      async (p) => {
        p.start({ audio: { data: Buffer.alloc(3_200), format: 'pcm16', sampleRate: 16_000, channels: 1 } });
        await p.settle();
      },
    ],
    [
      'running',
      'the model is writing',
      async (p) => {
        await transcribed(p);
        p.chat[0]!.delta('Muy ');
        await p.settle();
      },
    ],
    [
      'speaking',
      'the first sentence is spoken while the model is still writing',
      async (p) => {
        await transcribed(p);
        p.chat[0]!.delta('Muy bien. ¿Y');
        await p.settle();
        await p.tts[0]!.push(pcm100ms());
      },
    ],
  ];

  it.each(stages)('a cancel while %s (%s) names the stage, aborts every open call, keeps what was heard, and nothing follows', async (stage, _what, reach) => {
    const p = pipeline({ concurrency: stage === 'queued' ? 1 : 3 });
    await reach(p);
    expect(p.turn.stage).toBe(stage);
    // The calls of this turn still open (in the queued case the only call open is the other session's).
    const open = [...p.stt, ...p.chat, ...p.tts].filter((c) => c.isOpen() && !(stage === 'queued' && c === p.stt[0]));
    expect(open.length).toBe(stage === 'speaking' ? 2 : stage === 'running' ? 1 : 0);
    expect(p.turn.cancel(undefined)).toBe(true);
    const kept = stage === 'speaking' ? 'Muy bien.' : '';
    expect(p.events.at(-1)).toEqual({ type: 'request.cancelled', request_id: 't', stage, audio_bytes_sent: stage === 'speaking' ? 4_800 : 0, kept_text: kept });
    expect(open.every((c) => c.signal.aborted && !c.isOpen())).toBe(true);
    expect(p.observed).toEqual([`cancelled ${stage}`]);
    // The fakes go on as if they had not noticed: nothing of it reaches the learner.
    const before = p.events.length;
    const frames = p.audio.length;
    for (const c of p.chat) c.delta(' más. Adiós.');
    for (const c of p.tts) await c.push(pcm100ms());
    await p.settle();
    expect(p.events.length).toBe(before);
    expect(p.audio.length).toBe(frames);
    expect(p.outcome).toBe('rejected');
    expect(p.history).toEqual(stage === 'speaking' ? [{ user: 'Hola', assistant: 'Muy bien.' }] : stage === 'running' && p.chat.length > 0 ? [{ user: 'Hola', assistant: '' }] : []);
    if (stage === 'queued') {
      expect(p.stt).toHaveLength(1); // the cancelled turn's call never reached the upstream
      p.stt[0]!.resolve('other');
    }
    await p.expectClean();
  });

  it('done: a cancel after reply.audio.end truncates the history to the position heard, once', async () => {
    const p = pipeline();
    await transcribed(p);
    p.chat[0]!.delta('Muy bien. ¿Y tú?');
    p.chat[0]!.end();
    await p.settle();
    await p.tts[0]!.push(pcm100ms());
    p.tts[0]!.end();
    await p.tts[1]!.push(pcm100ms());
    p.tts[1]!.end();
    await p.settle();
    expect(p.turn.stage).toBe('done');
    expect(p.turn.cancel(100, true)).toBe(true);
    expect(p.events.at(-1)).toEqual({ type: 'request.cancelled', request_id: 't', stage: 'done', audio_bytes_sent: 9_600, kept_text: 'Muy bien.' });
    expect(p.turn.cancel(200, true)).toBe(false);
    expect(p.history).toEqual([{ user: 'Hola', assistant: 'Muy bien.' }]);
    expect(p.observed).toEqual(['completed 250 250']);
    await p.expectClean();
  });
});

describe('cancel racing completion', () => {
  /** A turn whose last TTS body is about to end: "Hola." spoken, its body still open, the chat done. */
  async function lastBodyOpen(): Promise<Pipeline> {
    const p = pipeline();
    await transcribed(p);
    p.chat[0]!.delta('Hola.');
    p.chat[0]!.end();
    await p.settle();
    await p.tts[0]!.push(pcm100ms());
    return p;
  }

  it('the last body ends and the cancel comes before the turn could finish: cancelled while speaking, no reply.audio.end, no turn.metrics', async () => {
    const p = await lastBodyOpen();
    p.tts[0]!.end();
    expect(p.turn.cancel(undefined)).toBe(true); // same tick: the pipeline has not seen the end yet
    await p.settle();
    expect(p.types().slice(-2)).toEqual(['reply.audio.start', 'request.cancelled']);
    expect(p.events.at(-1)).toMatchObject({ stage: 'speaking', kept_text: 'Hola.' });
    expect(p.observed).toEqual(['cancelled speaking']);
    expect(p.history).toEqual([{ user: 'Hola', assistant: 'Hola.' }]);
    await p.expectClean();
  });

  it('the turn finished first: the same cancel a moment later is the latest reply truncated (done), and the turn counts as completed', async () => {
    const p = await lastBodyOpen();
    p.tts[0]!.end();
    await p.settle();
    expect(p.turn.cancel(0, true)).toBe(true);
    expect(p.types().slice(-3)).toEqual(['reply.audio.end', 'turn.metrics', 'request.cancelled']);
    expect(p.events.at(-1)).toMatchObject({ stage: 'done', kept_text: '' });
    expect(p.observed).toEqual(['completed 250 250']);
    expect(p.history).toEqual([{ user: 'Hola', assistant: '' }]);
    await p.expectClean();
  });

  it('the model ends its stream in the same tick as the cancel: no reply.text after request.cancelled', async () => {
    const p = pipeline();
    await transcribed(p);
    p.chat[0]!.delta('Muy');
    p.chat[0]!.end();
    p.turn.cancel(undefined);
    await p.settle();
    expect(p.types()).toEqual(['transcript', 'reply.text.delta', 'request.cancelled']);
    expect(p.tts).toEqual([]);
    await p.expectClean();
  });

  it('a TTS failure and a cancel in the same tick: the cancel answers, the failure is not reported after it', async () => {
    const p = await lastBodyOpen();
    p.tts[0]!.fail(new Error('tts 500'));
    p.turn.cancel(undefined);
    await p.settle();
    expect(p.outcome).toBe('rejected');
    // What the session does with a failed run: `fail`, which a final turn ignores.
    p.turn.fail({ type: 'error', code: 'upstream_error', message: 'tts: 500', request_id: 't' });
    expect(p.types().at(-1)).toBe('request.cancelled');
    expect(p.types()).not.toContain('error');
    await p.expectClean();
  });

  it('a TTS failure reported before the cancel: the error answers, the late cancel is ignored', async () => {
    const p = await lastBodyOpen();
    p.tts[0]!.fail(new Error('tts 500'));
    await p.settle();
    expect(p.outcome).toBe('rejected');
    p.turn.fail({ type: 'error', code: 'upstream_error', message: 'tts: 500', request_id: 't' });
    expect(p.turn.cancel(undefined)).toBe(false);
    expect(p.types().at(-1)).toBe('error');
    expect(p.types()).not.toContain('request.cancelled');
    await p.expectClean();
  });
});

describe('a TTS request that fails for good', () => {
  it('fails the turn at once and aborts the chat still streaming (no upstream capacity spent on a reply nobody will hear)', async () => {
    const p = pipeline();
    await transcribed(p);
    p.chat[0]!.delta('Muy bien. ');
    p.chat[0]!.delta('Ahora');
    await p.settle();
    expect(p.tts).toHaveLength(1);
    p.tts[0]!.fail(Object.assign(new Error('HTTP 400: bad voice'), { name: 'UpstreamHttpError', status: 400 }));
    await p.settle();
    expect(p.outcome).toBe('rejected');
    // The session fails the turn with the error it threw, which aborts every call of the turn.
    p.turn.fail({ type: 'error', code: 'upstream_error', message: 'tts failed', request_id: 't' });
    expect(p.chat[0]!.isOpen()).toBe(false);
    await p.expectClean();
  });
});
