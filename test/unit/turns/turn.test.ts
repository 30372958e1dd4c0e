import { describe, expect, it } from 'vitest';
import type { ServerEvent } from '../../../src/protocol/messages.js';
import { Turn, type CancelStage, type TurnHistory } from '../../../src/turns/turn.js';

type Harness = ReturnType<typeof harness>;

function harness(kind: 'conversation' | 'translation' = 'conversation') {
  let now = 1_000;
  const events: ServerEvent[] = [];
  const audio: Buffer[] = [];
  const history: { user: string; assistant: string }[] = [];
  const cancelled: CancelStage[] = [];
  const completed: [number | undefined, number][] = [];
  const h: TurnHistory = {
    add: (user, assistant) => history.push({ user, assistant }),
    truncateLast: (assistant) => {
      history[history.length - 1]!.assistant = assistant;
    },
  };
  const turn = new Turn('t1', kind, {
    output: { event: (e) => events.push(e), audio: (c) => audio.push(c) },
    now: () => now,
    history: h,
    observer: { turnCompleted: (a, b) => completed.push([a, b]), turnCancelled: (s) => cancelled.push(s) },
  });
  return {
    turn,
    events,
    audio,
    history,
    cancelled,
    completed,
    at(ms: number) {
      now = 1_000 + ms;
    },
    types: () => events.map((e) => e.type),
  };
}

/** 100 ms of 24 kHz PCM16. */
const pcm100ms = (): Buffer => Buffer.alloc(4800);

/** Drives a whole text turn: queued at 10, started at 50, tokens from 400, first audio at 700, end at 1200. */
function fullTurn(h: Harness): void {
  h.at(10);
  h.turn.queued(2);
  h.at(50);
  h.turn.startedUpstream();
  h.turn.setUserText('Hola', false);
  h.at(400);
  h.turn.replyDelta('Hola. ');
  h.turn.replyDelta('¿Qué tal?');
  h.at(500);
  const part = h.turn.speechRequested(0, 6, [{ index: 0, start: 0, end: 6 }]);
  h.at(700);
  h.turn.audio(part, pcm100ms(), 24_000);
  h.turn.speechDone(part);
  h.turn.replyDone();
  const part2 = h.turn.speechRequested(6, 15, [{ index: 1, start: 6, end: 15 }]);
  h.turn.audio(part2, pcm100ms(), 24_000);
  h.turn.speechDone(part2);
  h.at(1200);
  h.turn.finish();
}

describe('Turn', () => {
  it('moves waiting → queued → running → speaking → done and reports exact turn.metrics', () => {
    const h = harness();
    expect(h.turn.stage).toBe('waiting');
    fullTurn(h);
    expect(h.turn.stage).toBe('done');
    expect(h.types()).toEqual(['request.queued', 'reply.text.delta', 'reply.text.delta', 'reply.audio.start', 'reply.text', 'reply.audio.end', 'turn.metrics']);
    expect(h.events.at(-1)).toEqual({ type: 'turn.metrics', request_id: 't1', queued_ms: 50, first_token_ms: 400, first_audio_ms: 700, total_ms: 1200, tts_requests: 2 });
    expect(h.events.find((e) => e.type === 'reply.audio.end')).toEqual({ type: 'reply.audio.end', request_id: 't1', bytes: 9600 });
    expect(h.history).toEqual([{ user: 'Hola', assistant: 'Hola. ¿Qué tal?' }]);
    expect(h.completed).toEqual([[700, 1200]]);
  });

  it.each([
    ['waiting', (_h: Harness): void => undefined],
    ['queued', (h: Harness): void => h.turn.queued(1)],
    ['running', (h: Harness): void => h.turn.startedUpstream()],
    [
      'speaking',
      (h: Harness): void => {
        h.turn.startedUpstream();
        h.turn.setUserText('Hola', false);
        h.turn.replyDelta('Hola. ');
        h.turn.audio(h.turn.speechRequested(0, 6, [{ index: 0, start: 0, end: 6 }]), pcm100ms(), 24_000);
      },
    ],
  ] as const)('a cancel while %s names that stage, aborts the signal, and nothing follows it', (stage, reach) => {
    const h = harness();
    reach(h);
    expect(h.turn.stage).toBe(stage);
    expect(h.turn.cancel(undefined)).toBe(true);
    expect(h.turn.signal.aborted).toBe(true);
    expect(h.events.at(-1)).toMatchObject({ type: 'request.cancelled', request_id: 't1', stage });
    expect(h.cancelled).toEqual([stage]);
    const before = h.events.length;
    const audioBefore = h.audio.length;
    h.turn.replyDelta('late');
    h.turn.audio(h.turn.speechRequested(0, 1, []), pcm100ms(), 24_000);
    h.turn.queued(1);
    h.turn.finish();
    h.turn.fail({ type: 'error', code: 'upstream_error', message: 'x', request_id: 't1' });
    expect(h.events.length).toBe(before);
    expect(h.audio.length).toBe(audioBefore);
    expect(h.turn.cancel(undefined)).toBe(false); // a second cancel is ignored
  });

  it('a cancel before the learner\'s words are known keeps neither message', () => {
    const h = harness();
    h.turn.startedUpstream();
    h.turn.cancel(undefined);
    expect(h.history).toEqual([]);
  });

  it('a cancel with nothing heard keeps the learner\'s words and no empty assistant message', () => {
    const h = harness();
    h.turn.setUserText('Hola', true);
    h.turn.replyDelta('Hola. ¿Qué tal?');
    h.turn.cancel(0);
    expect(h.events.at(-1)).toMatchObject({ kept_text: '', audio_bytes_sent: 0 });
    expect(h.history).toEqual([{ user: 'Hola', assistant: '' }]);
  });

  it('keeps what was heard: played_ms inside the second sentence keeps both', () => {
    const h = harness();
    h.turn.setUserText('Hola', false);
    h.turn.replyDelta('Hola. ¿Qué tal?');
    const p1 = h.turn.speechRequested(0, 6, [{ index: 0, start: 0, end: 6 }]);
    h.turn.audio(p1, pcm100ms(), 24_000);
    h.turn.speechDone(p1);
    const p2 = h.turn.speechRequested(6, 15, [{ index: 1, start: 6, end: 15 }]);
    h.turn.audio(p2, pcm100ms(), 24_000);
    h.turn.cancel(100);
    expect(h.events.at(-1)).toEqual({ type: 'request.cancelled', request_id: 't1', stage: 'speaking', audio_bytes_sent: 9600, kept_text: 'Hola.' });
    h.turn.cancel(150);
    expect(h.history).toEqual([{ user: 'Hola', assistant: 'Hola.' }]);
  });

  it('after done: a cancel truncates the history only when told it is the latest reply', () => {
    const h = harness();
    fullTurn(h);
    expect(h.turn.cancel(50)).toBe(false);
    expect(h.history).toEqual([{ user: 'Hola', assistant: 'Hola. ¿Qué tal?' }]);
    expect(h.turn.cancel(50, true)).toBe(true);
    expect(h.events.at(-1)).toEqual({ type: 'request.cancelled', request_id: 't1', stage: 'done', audio_bytes_sent: 9600, kept_text: 'Hola.' });
    expect(h.history).toEqual([{ user: 'Hola', assistant: 'Hola.' }]);
    expect(h.cancelled).toEqual([]); // a finished turn is not a cancelled one in the histograms
  });

  it('a failed turn sends its error, keeps the completed reply text, and settles', async () => {
    const h = harness();
    h.turn.setUserText('Hola', false);
    h.turn.replyDelta('Hola.');
    h.turn.replyDone();
    h.turn.fail({ type: 'error', code: 'upstream_error', message: 'tts failed', request_id: 't1' });
    await h.turn.settled;
    expect(h.turn.stage).toBe('failed');
    expect(h.history).toEqual([{ user: 'Hola', assistant: 'Hola.' }]);
    expect(h.types().at(-1)).toBe('error');
  });

  it('a translation finishes without audio events or metrics', () => {
    const h = harness('translation');
    h.turn.startedUpstream();
    h.turn.emit({ type: 'translation.result', request_id: 't1', text: 'Hello' });
    h.turn.finish();
    expect(h.types()).toEqual(['translation.result']);
    expect(h.turn.cancel(undefined, true)).toBe(false);
  });
});
