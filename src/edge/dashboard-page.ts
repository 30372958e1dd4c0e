/**
 * The operator live view's page: one self-contained HTML document (inline CSS and JS, hand-written
 * SVG charts, no chart library), kept in TypeScript so the build needs no asset copying.
 *
 * The page holds no data and needs no key to load. The API key is read once from the URL
 * fragment (`/dashboard#key=sk_…`, which browsers never send to the server, so it cannot reach a
 * log or a proxy) or typed into the form, kept in a variable only, and sent as `Authorization:
 * Bearer` on a streaming `fetch` of `/dashboard/events` (EventSource cannot send headers).
 */

const CSS = `
:root { color-scheme: dark; --bg:#0f1419; --panel:#171e26; --line:#263241; --text:#d6dde6; --dim:#7d8b99;
  --c1:#4fb3ff; --c2:#7ee787; --c3:#f2cc60; --c4:#ff7b72; --c5:#d2a8ff; --c6:#56d4dd; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--text); }
header { display:flex; align-items:center; gap:16px; padding:12px 20px; border-bottom:1px solid var(--line); }
header h1 { font-size:18px; margin:0; font-weight:600; }
#status { color:var(--dim); font-size:13px; }
#status.ok::before { content:"● "; color:var(--c2); }
#status.bad::before { content:"● "; color:var(--c4); }
main { padding:16px 20px; display:grid; grid-template-columns:repeat(auto-fill, minmax(420px, 1fr)); gap:16px; }
.tiles { grid-column:1 / -1; display:grid; grid-template-columns:repeat(auto-fill, minmax(150px, 1fr)); gap:12px; }
.tile, .panel { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
.tile .label { color:var(--dim); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.tile .value { font-size:26px; font-weight:600; font-variant-numeric:tabular-nums; margin-top:2px; }
.panel h2 { margin:0 0 8px; font-size:13px; font-weight:600; color:var(--dim); text-transform:uppercase; letter-spacing:.04em; }
svg.chart { width:100%; height:160px; display:block; }
svg.chart .grid { stroke:var(--line); stroke-width:1; }
svg.chart text { fill:var(--dim); font-size:10px; }
svg.chart polyline { fill:none; stroke-width:2; vector-effect:non-scaling-stroke; }
.legend { display:flex; flex-wrap:wrap; gap:12px; font-size:12px; color:var(--dim); margin-top:6px; }
.legend i { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:4px; vertical-align:-1px; }
table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
td, th { padding:4px 5px; text-align:right; border-bottom:1px solid var(--line); white-space:nowrap; }
.panel { overflow-x:auto; }
th:first-child, td:first-child { text-align:left; }
th { color:var(--dim); font-weight:500; font-size:12px; }
.bar { position:relative; height:8px; background:var(--line); border-radius:4px; overflow:hidden; width:100%; min-width:36px; }
.bar span { position:absolute; left:0; top:0; bottom:0; background:var(--c1); }
.bar span.hot { background:var(--c4); }
form#login { grid-column:1 / -1; display:flex; gap:8px; align-items:center; }
form#login input { flex:1; max-width:420px; padding:8px; background:var(--panel); color:var(--text); border:1px solid var(--line); border-radius:6px; }
form#login button { padding:8px 14px; background:var(--c1); color:#00121f; border:0; border-radius:6px; font-weight:600; cursor:pointer; }
.hidden { display:none !important; }
`;

const SCRIPT = `
'use strict';
const POINTS = 120; // two minutes at one event a second
const COLORS = ['var(--c1)','var(--c2)','var(--c3)','var(--c4)','var(--c5)','var(--c6)'];
let key = '';
let updates = 0;
const hist = { connections: [], sessions: [], msgIn: [], msgOut: [], bytesIn: [], bytesOut: [], queue: [], closes: {}, upstream: {} };

function push(arr, v) { arr.push(v); if (arr.length > POINTS) arr.shift(); }
const $ = (id) => document.getElementById(id);

function fmt(n) {
  if (!isFinite(n)) return '–';
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(1) + 'G';
  if (a >= 1e6) return (n / 1e6).toFixed(1) + 'M';
  if (a >= 1e4) return (n / 1e3).toFixed(1) + 'k';
  return (Math.round(n * 10) / 10).toString();
}
function fmtBytes(n) {
  if (n >= 1048576) return (n / 1048576).toFixed(1) + ' MiB';
  if (n >= 1024) return (n / 1024).toFixed(1) + ' KiB';
  return Math.round(n) + ' B';
}

/** Draws series (arrays of numbers, newest last) into an SVG as polylines on a shared y scale. */
function chart(svg, series, format) {
  const W = 400, H = 160, L = 58, B = 14;
  let max = 0;
  for (const s of series) for (const v of s.values) if (v > max) max = v;
  max = max <= 0 ? 1 : niceCeil(max);
  const NS = 'http://www.w3.org/2000/svg';
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
  svg.setAttribute('preserveAspectRatio', 'none');
  for (let i = 0; i <= 4; i++) {
    const y = 4 + (H - B - 8) * (i / 4);
    const line = document.createElementNS(NS, 'line');
    line.setAttribute('x1', L); line.setAttribute('x2', W); line.setAttribute('y1', y); line.setAttribute('y2', y);
    line.setAttribute('class', 'grid');
    svg.appendChild(line);
    const t = document.createElementNS(NS, 'text');
    t.setAttribute('x', L - 4); t.setAttribute('y', y + 3); t.setAttribute('text-anchor', 'end');
    t.textContent = format(max * (1 - i / 4));
    svg.appendChild(t);
  }
  const t0 = document.createElementNS(NS, 'text');
  t0.setAttribute('x', L); t0.setAttribute('y', H - 2); t0.textContent = '-' + POINTS + ' s';
  svg.appendChild(t0);
  const t1 = document.createElementNS(NS, 'text');
  t1.setAttribute('x', W); t1.setAttribute('y', H - 2); t1.setAttribute('text-anchor', 'end'); t1.textContent = 'now';
  svg.appendChild(t1);
  series.forEach((s, idx) => {
    const pts = [];
    const n = s.values.length;
    for (let i = 0; i < n; i++) {
      const x = L + (W - L) * ((POINTS - n + i) / (POINTS - 1));
      const y = 4 + (H - B - 8) * (1 - s.values[i] / max);
      pts.push(x.toFixed(1) + ',' + y.toFixed(1));
    }
    const pl = document.createElementNS(NS, 'polyline');
    pl.setAttribute('points', pts.join(' '));
    // CSSOM, not a style attribute: the page's CSP allows no inline style attributes.
    pl.style.stroke = s.color;
    // Series often coincide (connections = sessions): later ones dashed so both stay visible.
    if (idx > 0) pl.style.strokeDasharray = '6 4';
    svg.appendChild(pl);
  });
}
function niceCeil(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}
function legend(el, series) {
  el.innerHTML = '';
  for (const s of series) {
    const span = document.createElement('span');
    const i = document.createElement('i');
    i.style.background = s.color;
    span.appendChild(i);
    span.appendChild(document.createTextNode(s.name));
    el.appendChild(span);
  }
}

function render(f) {
  updates++;
  document.body.dataset.updates = String(updates);
  $('v-replicas').textContent = String(f.replicas.length);
  $('v-connections').textContent = fmt(f.connections);
  $('v-sessions').textContent = fmt(f.sessions);
  $('v-msgs').textContent = fmt(f.messagesInPerSecond);
  $('v-bytes').textContent = fmtBytes(f.bytesInPerSecond);
  $('v-queue').textContent = fmt(f.queueDepth);
  $('v-lag').textContent = fmt(f.eventLoopLagMs) + ' ms';
  push(hist.connections, f.connections);
  push(hist.sessions, f.sessions);
  push(hist.msgIn, f.messagesInPerSecond);
  push(hist.msgOut, f.messagesOutPerSecond);
  push(hist.bytesIn, f.bytesInPerSecond);
  push(hist.bytesOut, f.bytesOutPerSecond);
  push(hist.queue, f.queueDepth);
  const codes = new Set(Object.keys(hist.closes).concat(Object.keys(f.closesPerSecond)));
  for (const c of codes) { hist.closes[c] = hist.closes[c] || []; push(hist.closes[c], f.closesPerSecond[c] || 0); }
  for (const u of f.upstreams) {
    const h = hist.upstream[u.name] = hist.upstream[u.name] || { rate: [], queued: [] };
    push(h.rate, u.requestsPerSecond); push(h.queued, u.queued);
  }
  const draw = (id, series, format) => { chart($(id), series, format); legend($(id + '-legend'), series); };
  draw('c-load', [{ name: 'connections', values: hist.connections, color: COLORS[0] }, { name: 'sessions', values: hist.sessions, color: COLORS[1] }], fmt);
  draw('c-msgs', [{ name: 'in /s', values: hist.msgIn, color: COLORS[0] }, { name: 'out /s', values: hist.msgOut, color: COLORS[2] }], fmt);
  draw('c-bytes', [{ name: 'in /s', values: hist.bytesIn, color: COLORS[0] }, { name: 'out /s', values: hist.bytesOut, color: COLORS[2] }], fmtBytes);
  draw('c-queue', [{ name: 'all upstreams', values: hist.queue, color: COLORS[2] }].concat(
    Object.keys(hist.upstream).map((n, i) => ({ name: n, values: hist.upstream[n].queued, color: COLORS[(i + 3) % COLORS.length] }))), fmt);
  draw('c-closes', [...codes].sort().map((c, i) => ({ name: c, values: hist.closes[c], color: COLORS[i % COLORS.length] })), fmt);
  // Upstream utilisation: admitted requests per second against the account's allowance, and
  // calls in flight against its concurrency. Built with the DOM (bar widths through CSSOM).
  const body = $('t-upstreams');
  body.textContent = '';
  for (const u of f.upstreams) {
    const tr = document.createElement('tr');
    tr.dataset.upstream = u.name;
    const cell = (text) => { const td = document.createElement('td'); td.textContent = text; tr.appendChild(td); };
    const bar = (share) => {
      const td = document.createElement('td');
      if (share === null) td.textContent = '–';
      else {
        const outer = document.createElement('div'); outer.className = 'bar';
        const inner = document.createElement('span'); if (share >= 0.9) inner.className = 'hot';
        inner.style.width = Math.min(100, share * 100).toFixed(0) + '%';
        outer.appendChild(inner); td.appendChild(outer);
      }
      tr.appendChild(td);
    };
    cell(u.name);
    cell(fmt(u.requestsPerSecond) + ' / ' + (u.allowancePerSecond === null ? '∞' : fmt(u.allowancePerSecond)));
    bar(u.allowancePerSecond ? u.requestsPerSecond / u.allowancePerSecond : null);
    cell(u.inFlight + ' / ' + (u.concurrency === null ? '∞' : u.concurrency));
    bar(u.concurrency ? u.inFlight / u.concurrency : null);
    cell(String(u.queued));
    body.appendChild(tr);
  }
  $('t-closes').innerHTML = Object.keys(f.closesTotal).sort().map((c) => '<tr><td>' + esc(c) + '</td><td>' + f.closesTotal[c] + '</td></tr>').join('') || '<tr><td colspan="2">none yet</td></tr>';
  $('t-replicas').innerHTML = f.replicas.map((r) => '<tr><td>' + esc(r.id) + (r.draining ? ' (draining)' : '') + '</td><td>' + r.connections + '</td><td>' + r.sessions + '</td><td>' + fmt(r.eventLoopLagMs) + ' ms</td><td>' + (r.ageMs / 1000).toFixed(1) + ' s</td></tr>').join('');
}
function esc(s) { return String(s).replace(/[&<>"']/g, (c) => '&#' + c.charCodeAt(0) + ';'); }

function setStatus(text, ok) { const s = $('status'); s.textContent = text; s.className = ok ? 'ok' : 'bad'; }

async function stream() {
  for (;;) {
    let res;
    try {
      res = await fetch('/dashboard/events', { headers: { Authorization: 'Bearer ' + key, Accept: 'text/event-stream' }, cache: 'no-store' });
    } catch (e) {
      setStatus('disconnected; retrying', false);
      await new Promise((r) => setTimeout(r, 2000));
      continue;
    }
    if (res.status === 401) { setStatus('the API key was refused', false); showLogin(); return; }
    if (!res.ok || !res.body) {
      const retry = Number(res.headers.get('retry-after') || 2);
      setStatus('HTTP ' + res.status + '; retrying in ' + retry + ' s', false);
      await new Promise((r) => setTimeout(r, retry * 1000));
      continue;
    }
    setStatus('live', true);
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\\n\\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message', data = '';
          for (const line of block.split('\\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trim();
          }
          if (event === 'figures' && data) render(JSON.parse(data));
        }
      }
    } catch (e) { /* dropped: reconnect */ }
    setStatus('disconnected; retrying', false);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function showLogin() { $('login').classList.remove('hidden'); }
function start(k) {
  key = k;
  $('login').classList.add('hidden');
  setStatus('connecting', false);
  stream();
}

$('login').addEventListener('submit', (e) => { e.preventDefault(); const v = $('key').value.trim(); $('key').value = ''; if (v) start(v); });
// The key in the fragment is read once and removed from the address bar and hist.
const m = /(?:^#|&)key=([^&]+)/.exec(location.hash);
if (m) { history_replace(); start(decodeURIComponent(m[1])); } else { setStatus('enter an API key', false); showLogin(); }
function history_replace() { window.history.replaceState(null, '', location.pathname + location.search); }
`;

/** The page, with a per-response CSP nonce on its one style and one script. */
export function dashboardPage(nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Parley · live</title>
<style nonce="${nonce}">${CSS}</style>
</head>
<body data-updates="0">
<header><h1>Parley · live view</h1><span id="status">loading</span></header>
<main>
  <form id="login" class="hidden" autocomplete="off">
    <label for="key">API key</label>
    <input id="key" type="password" placeholder="sk_…" spellcheck="false">
    <button type="submit">Open</button>
  </form>
  <section class="tiles">
    <div class="tile"><div class="label">replicas</div><div class="value" id="v-replicas">–</div></div>
    <div class="tile"><div class="label">connections</div><div class="value" id="v-connections">–</div></div>
    <div class="tile"><div class="label">sessions</div><div class="value" id="v-sessions">–</div></div>
    <div class="tile"><div class="label">messages in /s</div><div class="value" id="v-msgs">–</div></div>
    <div class="tile"><div class="label">bytes in /s</div><div class="value" id="v-bytes">–</div></div>
    <div class="tile"><div class="label">upstream queue</div><div class="value" id="v-queue">–</div></div>
    <div class="tile"><div class="label">event-loop lag p99</div><div class="value" id="v-lag">–</div></div>
  </section>
  <section class="panel"><h2>Connections and sessions</h2><svg class="chart" id="c-load"></svg><div class="legend" id="c-load-legend"></div></section>
  <section class="panel"><h2>Messages per second</h2><svg class="chart" id="c-msgs"></svg><div class="legend" id="c-msgs-legend"></div></section>
  <section class="panel"><h2>Bytes per second</h2><svg class="chart" id="c-bytes"></svg><div class="legend" id="c-bytes-legend"></div></section>
  <section class="panel"><h2>Upstream queue depth</h2><svg class="chart" id="c-queue"></svg><div class="legend" id="c-queue-legend"></div></section>
  <section class="panel"><h2>Upstream utilisation</h2>
    <table><thead><tr><th>upstream</th><th title="admitted requests per second / configured allowance">req/s</th><th></th><th title="calls in flight / configured concurrency">in flight</th><th></th><th>queued</th></tr></thead><tbody id="t-upstreams"></tbody></table>
  </section>
  <section class="panel"><h2>Closes per second by code</h2><svg class="chart" id="c-closes"></svg><div class="legend" id="c-closes-legend"></div>
    <table><thead><tr><th>close code</th><th>total</th></tr></thead><tbody id="t-closes"></tbody></table>
  </section>
  <section class="panel"><h2>Replicas</h2>
    <table><thead><tr><th>replica</th><th>connections</th><th>sessions</th><th>lag p99</th><th>age</th></tr></thead><tbody id="t-replicas"></tbody></table>
  </section>
</main>
<script nonce="${nonce}">${SCRIPT}</script>
</body>
</html>
`;
}
