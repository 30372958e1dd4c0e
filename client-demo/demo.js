// Parley demo page: a speaking-practice client written against the gateway's WebSocket protocol
// (docs/protocol.md). Plain browser JavaScript, no build step.
const $ = (id) => document.getElementById(id);
const state = { ws: null, resumeToken: null, sessionId: null, nextId: 1, pendingAudio: null, recording: null, limits: null, wantOpen: false, queue: new Map() };

/** What a client should do for each close code (docs/protocol.md "Close codes"). */
const CLOSE_ACTIONS = {
  1000: ['done', 'Session ended.'],
  1006: ['resume', 'Connection lost; resuming…'],
  1008: ['stop', 'Closed by policy (origin, invalid messages or a slow connection).'],
  1009: ['stop', 'A frame was too large.'],
  1011: ['resume', 'Server error; resuming…'],
  1012: ['resume', 'Server restarting; resuming on another replica…'],
  1013: ['retry', 'Server full; retrying…'],
  3000: ['resume', 'Network dropped (simulated); resuming…'],
  4001: ['retry', 'Token refused; getting a new one…'],
  4003: ['stop', 'Session ended by the operator.'],
  4008: ['new', 'The session reached its maximum length.'],
  4029: ['retry', 'Rate limit: slowing down…'],
  4030: ['stop', 'This session was resumed in another tab.'],
  4031: ['resume', 'Idle timeout.'],
};

function setStatus(text, s) { $('status').textContent = text; $('status').dataset.state = s; }
function addLine(cls, text) {
  const li = document.createElement('li');
  li.className = cls;
  li.textContent = text;
  $('log').appendChild(li);
  li.scrollIntoView({ block: 'end' });
  return li;
}
function enable(on) {
  for (const id of ['talk', 'text', 'send', 'assess', 'translate', 'translate-text', 'end', 'drop']) $(id).disabled = !on;
  $('start').disabled = on;
}

async function mintToken() {
  const res = await fetch('/demo/token', { method: 'POST' });
  if (!res.ok) throw new Error(`token: HTTP ${res.status}`);
  return (await res.json()).token;
}

async function connect(resume) {
  const token = await mintToken();
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}/v1/realtime`, ['parley.v1', `parley.token.${token}`]);
  ws.binaryType = 'arraybuffer';
  state.ws = ws;
  setStatus('connecting…', 'idle');
  ws.onopen = () => {
    const start = resume && state.resumeToken
      ? { type: 'session.start', id: 'start', resume_token: state.resumeToken }
      : { type: 'session.start', id: 'start', language: $('language').value, scenario: $('scenario').value || undefined };
    ws.send(JSON.stringify(start));
  };
  ws.onmessage = (m) => (typeof m.data === 'string' ? onEvent(JSON.parse(m.data)) : onAudio(m.data));
  ws.onclose = (e) => onClose(e.code, ws);
}

let lastError = null;
function onClose(code, ws) {
  if (ws !== state.ws) return;
  enable(false);
  const [action, text] = CLOSE_ACTIONS[code] ?? ['resume', `Closed (${code}).`];
  setStatus(`closed ${code}`, 'closed');
  addLine('system', `${text}${lastError ? ` (${lastError.code})` : ''}`);
  const wait = lastError?.retry_after_ms ?? 1000;
  lastError = null;
  if (!state.wantOpen) return;
  if (action === 'resume' && state.resumeToken) setTimeout(() => connect(true), Math.min(wait, 3000));
  else if (action === 'retry') setTimeout(() => connect(Boolean(state.resumeToken)), wait);
  else if (action === 'new') { state.resumeToken = null; $('start').disabled = false; }
  else $('start').disabled = false;
}

function onEvent(ev) {
  switch (ev.type) {
    case 'session.created':
    case 'session.resumed':
      state.resumeToken = ev.resume_token;
      state.sessionId = ev.session_id;
      state.limits = ev.limits;
      enable(true);
      setStatus(`${ev.type === 'session.resumed' ? 'resumed' : 'live'} · ${ev.session_id.slice(0, 13)}…`, 'open');
      addLine('system', ev.type === 'session.resumed' ? `Resumed the same session (${ev.session_id}).` : `Session started (${ev.session_id}). Say hello!`);
      break;
    case 'transcript': addLine('learner', ev.text || '(silence)'); break;
    case 'reply.text': addLine('tutor', ev.text); break;
    case 'reply.audio.start': state.pendingAudio = { rate: ev.sample_rate, chunks: [] }; break;
    case 'reply.audio.end': playReply(); break;
    case 'assessment.result': showAssessment(ev); break;
    case 'translation.result': $('translation').textContent = ev.text; break;
    case 'request.queued': $('queue').textContent = `Request ${ev.request_id} queued, position ${ev.position}`; break;
    case 'quota.updated': showMeters(ev.limits); break;
    case 'session.expiring': addLine('system', `Session closing in ${Math.round(ev.closes_in_ms / 1000)} s (${ev.reason}).`); break;
    case 'session.ended': addLine('system', `Session ended: ${ev.usage.turns} turns, ${ev.usage.audio_seconds} s of audio.`); state.resumeToken = null; break;
    case 'error':
      lastError = ev;
      addLine('error', `${ev.code}: ${ev.message}`);
      break;
  }
  if (ev.request_id !== undefined && ev.type !== 'request.queued') $('queue').textContent = '';
}

function onAudio(buf) { state.pendingAudio?.chunks.push(new Int16Array(buf)); }

let playback;
function playReply() {
  const p = state.pendingAudio;
  state.pendingAudio = null;
  if (!p || p.chunks.length === 0) return;
  playback ??= new AudioContext();
  const total = p.chunks.reduce((n, c) => n + c.length, 0);
  const buffer = playback.createBuffer(1, total, p.rate);
  const data = buffer.getChannelData(0);
  let off = 0;
  for (const c of p.chunks) for (let i = 0; i < c.length; i++) data[off++] = c[i] / 32768;
  const src = playback.createBufferSource();
  src.buffer = buffer;
  src.connect(playback.destination);
  src.onended = () => { document.body.dataset.lastPlayback = String(total); };
  src.start();
}

function showAssessment(ev) {
  const box = $('assessment');
  box.innerHTML = `<strong>${ev.score}/100</strong> `;
  for (const w of ev.words) {
    const span = document.createElement('span');
    span.textContent = `${w.word} ${w.score}`;
    span.style.background = w.score >= 80 ? '#d6f5d6' : w.score >= 60 ? '#fff1c2' : '#fbd3cf';
    box.appendChild(span);
  }
}

function showMeters(limits) {
  const box = $('meters');
  box.innerHTML = '';
  for (const l of limits) {
    const pct = l.limit > 0 ? Math.max(0, Math.min(100, (l.remaining / l.limit) * 100)) : 0;
    const div = document.createElement('div');
    div.className = 'meter';
    div.dataset.name = l.name;
    div.innerHTML = `<div>${l.name}: ${l.remaining} / ${l.limit}${l.reset_seconds ? ` · resets in ${l.reset_seconds}s` : ''}</div><div class="bar"><div style="width:${pct}%"></div></div>`;
    box.appendChild(div);
  }
}

// ---- microphone: AudioWorklet → PCM16 16 kHz, ~100 ms frames ----
let mic;
async function ensureMic() {
  if (mic) return mic;
  const ctx = new AudioContext({ sampleRate: 16000 });
  await ctx.audioWorklet.addModule('worklet.js');
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  const source = ctx.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(ctx, 'parley-capture');
  source.connect(node);
  mic = { ctx, node, frame: new Int16Array(1600), filled: 0 };
  node.port.onmessage = (e) => {
    if (!state.recording) return;
    const samples = e.data;
    for (let i = 0; i < samples.length; i++) {
      const s = Math.max(-1, Math.min(1, samples[i]));
      mic.frame[mic.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
      if (mic.filled === mic.frame.length) flushFrame();
    }
  };
  return mic;
}
function flushFrame() {
  if (mic.filled === 0) return;
  if (state.ws?.readyState === WebSocket.OPEN) state.ws.send(mic.frame.slice(0, mic.filled).buffer);
  state.recording.bytes += mic.filled * 2;
  mic.filled = 0;
}
async function startRecording(purpose) {
  await ensureMic();
  await mic.ctx.resume();
  state.recording = { purpose, bytes: 0 };
  (purpose === 'turn' ? $('talk') : $('assess')).classList.add('recording');
}
function stopRecording() {
  const rec = state.recording;
  if (!rec) return;
  flushFrame();
  state.recording = null;
  $('talk').classList.remove('recording');
  $('assess').classList.remove('recording');
  const msg = { type: 'input_audio.commit', id: `r${state.nextId++}`, purpose: rec.purpose };
  if (rec.purpose === 'assessment') msg.reference_text = $('reference').value;
  state.ws?.send(JSON.stringify(msg));
}
for (const [id, purpose] of [['talk', 'turn'], ['assess', 'assessment']]) {
  $(id).addEventListener('pointerdown', () => startRecording(purpose).catch((e) => addLine('error', `microphone: ${e.message}`)));
  $(id).addEventListener('pointerup', stopRecording);
  $(id).addEventListener('pointerleave', stopRecording);
}

$('start').onclick = () => { state.wantOpen = true; connect(false).catch((e) => addLine('error', e.message)); };
$('end').onclick = () => { state.wantOpen = false; state.ws?.send(JSON.stringify({ type: 'session.end' })); };
$('drop').onclick = () => state.ws?.close(3000, 'simulated network drop');
$('text-form').onsubmit = (e) => {
  e.preventDefault();
  const text = $('text').value.trim();
  if (!text) return;
  addLine('learner', text);
  state.ws?.send(JSON.stringify({ type: 'turn.text', id: `t${state.nextId++}`, text }));
  $('text').value = '';
};
$('translate-form').onsubmit = (e) => {
  e.preventDefault();
  state.ws?.send(JSON.stringify({ type: 'translate', id: `x${state.nextId++}`, text: $('translate-text').value, target_language: $('language').value, source_language: 'en' }));
};
window.parleyDemo = state;
