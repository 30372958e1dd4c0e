// Parley demo page: a speaking-practice client built on the SDK bundle (/demo/parley-client.js,
// docs/client.md). Plain ES modules; the SDK does the protocol, pacing and reconnect/resume.
import { CLOSE_CODES, ParleyClient } from './parley-client.js';
import { Microphone, ReplyPlayer } from './audio.js';
import { MeterBoard } from './meters.js';
import { droppableWebSocket } from './network.js';

const $ = (id) => document.getElementById(id);

/**
 * Page state, read by the e2e test (test/e2e/demo.test.ts) and handy in the console. Only
 * plain data: ids, texts, counts, levels.
 */
const demo = {
  state: 'idle',
  sessionId: null,
  sessionIds: [],
  lastTranscript: null,
  lastReply: null,
  lastTranslation: null,
  lastAssessment: null,
  lastClose: null,
  counts: { created: 0, resumed: 0, transcripts: 0, replies: 0, turnsDone: 0, quotaUpdates: 0, queued: 0, errors: 0, drops: 0, reconnects: 0, translations: 0, assessments: 0, cancelled: 0 },
  lastCancel: null,
  lastMetrics: null,
  meters: {},
  shown: {},
  initialMeters: null,
  queuePosition: null,
  capture: null,
  playback: null,
  errors: [],
};
window.__parleyDemo = demo;

let client = null;
let net = null;
const player = new ReplyPlayer({ onLevel: () => {} });
const mic = new Microphone({
  workletUrl: new URL('./worklet.js', import.meta.url),
  onFrame: (frame) => sendFrame(frame),
  onLevel: (level) => { $('mic-level').style.width = `${Math.min(100, Math.round(level * 300))}%`; },
});
demo.capture = mic.stats;
demo.playback = player.stats;
const meters = new MeterBoard($('meters'), demo);

// ---- conversation log and status -------------------------------------------------------------

function addLine(kind, text, label) {
  const li = document.createElement('li');
  li.className = kind;
  li.dataset.testid = `line-${kind}`;
  if (label) {
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = label;
    li.append(who);
  }
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  li.append(body);
  $('log').append(li);
  li.scrollIntoView({ block: 'nearest' });
  return li;
}

function showBanner(text, kind) {
  const b = $('banner');
  b.textContent = text;
  b.dataset.kind = kind;
  b.hidden = !text;
}

const STATUS_TEXT = { idle: 'not connected', connecting: 'connecting…', open: 'live', reconnecting: 'reconnecting…', closed: 'closed' };

function setState(state) {
  demo.state = state;
  $('status').textContent = STATUS_TEXT[state] ?? state;
  $('status').dataset.state = state;
  const live = state === 'open';
  for (const id of ['talk', 'text', 'send', 'assess', 'translate', 'translate-text', 'drop']) $(id).disabled = !live;
  $('end').disabled = !(live || state === 'reconnecting');
  $('start').disabled = state !== 'idle' && state !== 'closed';
}

function reportError(what, err) {
  demo.counts.errors++;
  const code = err?.code ?? 'error';
  demo.errors.push({ what, code, message: err?.message ?? String(err) });
  const retry = err?.retryAfterMs ? ` (retry in ${Math.ceil(err.retryAfterMs / 1000)} s)` : '';
  addLine('error', `${what}: ${code}: ${err?.message ?? err}${retry}`);
}

// ---- session ---------------------------------------------------------------------------------

async function mintToken() {
  const res = await fetch('/demo/token', { method: 'POST' });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new Error(`POST /demo/token: HTTP ${res.status} ${body?.error?.message ?? ''}`.trim());
  }
  return (await res.json()).token;
}

function wire(c) {
  c.on('state', ({ state }) => setState(state));
  const onSession = (ev, resumed) => {
    demo.sessionId = ev.session_id;
    demo.sessionIds.push(ev.session_id);
    $('session-id').textContent = ev.session_id;
    meters.setSessionLimits(ev.limits);
    if (resumed) {
      demo.counts.resumed++;
      showBanner(`Resumed the same session ${ev.session_id}: history and limits intact.`, 'ok');
      addLine('system', `Network back: resumed session ${ev.session_id}.`);
    } else {
      demo.counts.created++;
      showBanner('', 'ok');
      addLine('system', `Session ${ev.session_id} started. Hold the button and say hello!`);
    }
  };
  c.on('session.created', (ev) => onSession(ev, false));
  c.on('session.resumed', (ev) => onSession(ev, true));
  c.on('transcript', (ev) => {
    demo.counts.transcripts++;
    demo.lastTranscript = ev.text;
    addLine('learner', ev.text || '(silence: nothing was heard)', 'You said');
  });
  // The tutor's line grows as the reply streams (reply.text.delta) and is final at reply.text.
  const tutorLines = new Map();
  const tutorLine = (id) => {
    let line = tutorLines.get(id);
    if (!line) {
      line = addLine('tutor', '', 'Tutor');
      tutorLines.set(id, line);
    }
    return line;
  };
  c.on('reply.text.delta', (ev) => {
    const line = tutorLine(ev.request_id);
    line.querySelector('.text').textContent += ev.delta;
  });
  c.on('reply.text', (ev) => {
    demo.counts.replies++;
    demo.lastReply = ev.text;
    tutorLine(ev.request_id).querySelector('.text').textContent = ev.text;
  });
  c.on('request.cancelled', (ev) => {
    demo.counts.cancelled++;
    demo.lastCancel = { requestId: ev.request_id, stage: ev.stage, keptText: ev.kept_text };
    const line = tutorLines.get(ev.request_id);
    if (line) line.querySelector('.text').textContent = `${ev.kept_text || '…'} — (interrupted)`;
  });
  c.on('turn.metrics', (ev) => {
    demo.lastMetrics = ev;
    if (ev.first_audio_ms !== undefined) $('first-audio').textContent = `First audio: ${ev.first_audio_ms} ms after the turn was sent (${ev.tts_requests} TTS request${ev.tts_requests === 1 ? '' : 's'})`;
  });
  c.on('reply.audio.start', (ev) => player.begin(ev.sample_rate, ev.request_id));
  c.on('audio', (ev) => player.push(ev.chunk));
  c.on('reply.audio.end', () => player.end());
  c.on('quota.updated', (ev) => {
    demo.counts.quotaUpdates++;
    meters.update(ev.limits);
  });
  c.on('request.queued', (ev) => {
    demo.counts.queued++;
    demo.queuePosition = ev.position;
    $('queue').textContent = `Queue: request ${ev.request_id} waits for the upstream, position ${ev.position}`;
  });
  const answered = () => {
    demo.queuePosition = null;
    $('queue').textContent = 'Queue: not waiting';
  };
  for (const t of ['transcript', 'reply.text', 'assessment.result', 'translation.result', 'error']) c.on(t, answered);
  c.on('session.expiring', (ev) => {
    const s = Math.round(ev.closes_in_ms / 1000);
    showBanner(ev.reason === 'idle'
      ? `Idle: the session closes in ${s} s unless you say something.`
      : `The session reaches its maximum length in ${s} s.`, 'warn');
  });
  c.on('error', (ev) => {
    // Errors of a request also reject its promise, which reports them; the rest show here.
    if (ev.request_id === undefined && ev.close_code === undefined) reportError('server', { code: ev.code, message: ev.message, retryAfterMs: ev.retry_after_ms });
  });
  c.on('reconnect', (ev) => {
    demo.counts.reconnects++;
    setStatusDetail(`reconnecting (attempt ${ev.attempt}) in ${Math.round(ev.delayMs)} ms`);
  });
  c.on('closed', (ev) => {
    demo.lastClose = { code: ev.code, action: ev.action, message: ev.message, willReconnect: ev.willReconnect, error: ev.error?.code ?? null };
    const why = ev.error ? ` (${ev.error.code})` : '';
    showBanner(`Connection closed ${ev.code}${why}: ${ev.message}`, ev.willReconnect ? 'warn' : 'error');
    if (!ev.willReconnect) {
      meters.clear();
      addLine('system', `Closed ${ev.code}${why}: ${ev.message}`);
    }
  });
  c.on('session.ended', (ev) => {
    const u = ev.usage;
    addLine('system', `Session ended after ${Math.round(u.duration_seconds)} s: ${u.turns} turns, ${u.assessments} assessments, ${u.translations} translations, ${u.audio_seconds} s of audio.`);
  });
}

function setStatusDetail(text) {
  $('status').textContent = text;
}

async function start() {
  player.unlock(); // inside the click: autoplay rules allow reply audio from now on
  net = droppableWebSocket();
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  client = new ParleyClient({
    url: `${scheme}://${location.host}/v1/realtime`,
    token: mintToken,
    session: { language: $('language').value, scenario: $('scenario').value.trim() || undefined },
    WebSocket: net.WebSocket,
    idPrefix: 'demo-',
    // Barge-in: talking over the tutor cancels the reply with the position the learner heard up to.
    bargeIn: { playedMs: (requestId) => player.playedMs(requestId) },
  });
  wire(client);
  demo.initialMeters = null;
  try {
    await client.connect();
  } catch (err) {
    reportError('connect', err);
    setState('closed');
  }
}

// ---- turns -------------------------------------------------------------------------------------

let recording = null;
let frameSends = [];

function sendFrame(frame) {
  if (!client) return;
  frameSends.push(client.sendAudio(frame).catch((err) => reportError('audio', err)));
}

function beginRecording(purpose, button) {
  if (recording || !client || client.state !== 'open') return;
  // Talking over the tutor: stop the reply at once (the SDK's barge-in then cancels it upstream).
  if (purpose === 'turn') player.stop();
  const rec = { purpose, button, released: false, started: null };
  recording = rec;
  button.classList.add('recording');
  button.setAttribute('aria-pressed', 'true');
  frameSends = [];
  rec.started = mic.start().then(
    () => true,
    (err) => {
      reportError('microphone', err);
      return false;
    },
  );
}

async function finishRecording() {
  const rec = recording;
  // pointerup and lostpointercapture (or keyup and blur) both end a recording: act once.
  if (!rec || rec.released) return;
  rec.released = true;
  const ok = await rec.started;
  recording = null;
  rec.button.classList.remove('recording');
  rec.button.setAttribute('aria-pressed', 'false');
  if (!ok) return;
  const stats = mic.stop();
  await Promise.all(frameSends);
  if (stats.bytes === 0) {
    addLine('system', 'Nothing was recorded: hold the button while you speak.');
    return;
  }
  try {
    if (rec.purpose === 'turn') {
      await client.commitAudio({ purpose: 'turn' });
      demo.counts.turnsDone++;
    } else {
      const ref = $('reference').value.trim();
      const result = await client.assess(ref);
      showAssessment(result);
    }
  } catch (err) {
    reportError(rec.purpose === 'turn' ? 'turn' : 'assessment', err);
  }
}

function pushToTalk(button, purpose) {
  button.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    button.setPointerCapture?.(e.pointerId);
    beginRecording(purpose, button);
  });
  for (const t of ['pointerup', 'pointercancel', 'lostpointercapture']) button.addEventListener(t, () => { if (recording?.button === button) finishRecording(); });
  button.addEventListener('keydown', (e) => {
    if ((e.key === ' ' || e.key === 'Enter') && !e.repeat) {
      e.preventDefault();
      beginRecording(purpose, button);
    }
  });
  button.addEventListener('keyup', (e) => {
    if (e.key === ' ' || e.key === 'Enter') {
      e.preventDefault();
      if (recording?.button === button) finishRecording();
    }
  });
  button.addEventListener('blur', () => { if (recording?.button === button) finishRecording(); });
}

function showAssessment(result) {
  demo.counts.assessments++;
  demo.lastAssessment = { score: result.score, words: result.words.map((w) => ({ word: w.word, score: w.score })) };
  const box = $('assessment');
  box.replaceChildren();
  const total = document.createElement('strong');
  total.textContent = `${result.score}/100`;
  box.append(total);
  for (const w of result.words) {
    const span = document.createElement('span');
    span.className = w.score >= 80 ? 'good' : w.score >= 60 ? 'fair' : 'poor';
    span.textContent = `${w.word} ${w.score}`;
    span.title = `${w.word}: ${w.score}/100`;
    box.append(span);
  }
}

// ---- controls ----------------------------------------------------------------------------------

$('start').addEventListener('click', () => start());
$('end').addEventListener('click', async () => {
  try {
    await client?.end();
  } catch (err) {
    reportError('end', err);
  }
});
$('drop').addEventListener('click', () => {
  if (net?.drop()) {
    demo.counts.drops++;
    addLine('system', 'Network dropped (simulated). The client will reconnect and resume…');
  }
});
$('text-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('text').value.trim();
  if (!text || !client) return;
  $('text').value = '';
  addLine('learner', text, 'You wrote');
  try {
    await client.turnText(text);
    demo.counts.turnsDone++;
  } catch (err) {
    reportError('turn', err);
  }
});
$('translate-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('translate-text').value.trim();
  if (!text || !client) return;
  try {
    const translated = await client.translate(text, $('language').value, { sourceLanguage: 'en' });
    demo.counts.translations++;
    demo.lastTranslation = translated;
    $('translation').textContent = translated;
  } catch (err) {
    reportError('translation', err);
  }
});
pushToTalk($('talk'), 'turn');
pushToTalk($('assess'), 'assessment');

// The SDK's close-code table, so a learner (or developer) can see what each close means.
for (const [code, info] of Object.entries(CLOSE_CODES)) {
  const dt = document.createElement('dt');
  dt.textContent = code;
  const dd = document.createElement('dd');
  dd.textContent = info.message;
  $('close-codes').append(dt, dd);
}
setState('idle');
