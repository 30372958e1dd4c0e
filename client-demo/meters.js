// Quota meters from `quota.updated` (docs/protocol.md "quota.updated"). The clocks (session time,
// idle countdown) tick down locally between updates; the server's value wins at each update.

const METERS = [
  // The connection buckets: burst tokens left, refilled at the session's per-second rate.
  { name: 'connection.messages', label: 'Messages/s', unit: 'messages', rate: (l) => l?.messages_per_second },
  { name: 'connection.bytes', label: 'Bytes/s', bytes: true, rate: (l) => l?.bytes_per_second },
  { name: 'session.seconds', label: 'Session time left', clock: true },
  { name: 'session.idle_seconds', label: 'Idle countdown', clock: true },
  { name: 'account.conversation.turn', label: 'Turns left', unit: 'this minute' },
  { name: 'account.pronunciation.assess', label: 'Assessments left', unit: 'this minute' },
  { name: 'account.translate', label: 'Translations left', unit: 'this minute' },
  { name: 'account.audio_minutes', label: 'Audio minutes left', unit: 'today' },
];

function fmtClock(s) {
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, '0')}`;
}

function fmtNumber(n) {
  return String(Math.round(n * 100) / 100);
}

function fmtBytes(n) {
  if (n >= 1048576) return `${Math.round((n / 1048576) * 10) / 10} MiB`;
  if (n >= 1024) return `${Math.round(n / 1024)} KiB`;
  return `${n} B`;
}

function fmtWait(s) {
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

export class MeterBoard {
  constructor(root, state) {
    this.root = root;
    this.state = state; // window.__parleyDemo: meters (server values), shown (displayed values)
    this.values = new Map();
    this.sessionLimits = null;
    this.rows = new Map();
    for (const m of METERS) {
      const dt = document.createElement('dt');
      dt.textContent = m.label;
      const dd = document.createElement('dd');
      dd.dataset.testid = `meter-${m.name}`;
      dd.dataset.name = m.name;
      dd.innerHTML = '<span class="value">—</span><meter min="0" max="1" value="0"></meter>';
      dd.querySelector('meter').setAttribute('aria-label', m.label);
      root.append(dt, dd);
      this.rows.set(m.name, { meta: m, dd, value: dd.querySelector('.value'), bar: dd.querySelector('meter') });
    }
    this.ticker = setInterval(() => this.render(), 1000);
  }

  setSessionLimits(limits) {
    this.sessionLimits = limits;
  }

  update(limits) {
    const at = Date.now();
    for (const l of limits) {
      this.values.set(l.name, { ...l, at });
      this.state.meters[l.name] = l.remaining;
    }
    this.state.initialMeters ??= { ...this.state.meters };
    this.render();
  }

  render() {
    const now = Date.now();
    for (const [name, row] of this.rows) {
      const v = this.values.get(name);
      if (!v) continue;
      let remaining = v.remaining;
      if (row.meta.clock) remaining = Math.max(0, remaining - Math.floor((now - v.at) / 1000));
      this.state.shown[name] = remaining;
      row.dd.dataset.remaining = String(remaining);
      row.bar.max = v.limit || 1;
      row.bar.value = Math.min(remaining, v.limit || 1);
      row.bar.low = (v.limit || 1) * 0.2;
      row.bar.optimum = v.limit || 1;
      if (row.meta.clock) {
        row.value.textContent = `${fmtClock(remaining)} of ${fmtClock(v.limit)}`;
      } else {
        const fmt = row.meta.bytes ? fmtBytes : fmtNumber;
        const rate = row.meta.rate?.(this.sessionLimits);
        const reset = v.reset_seconds > 0 && !row.meta.rate ? ` · resets in ${fmtWait(v.reset_seconds)}` : '';
        const refill = rate ? ` · refills ${fmt(rate)}/s` : '';
        const unit = row.meta.unit ? ` ${row.meta.unit}` : '';
        row.value.textContent = `${fmt(remaining)} / ${fmt(v.limit)}${unit}${refill}${reset}`;
      }
      row.dd.classList.toggle('low', remaining <= (v.limit || 1) * 0.2);
    }
  }

  clear() {
    this.values.clear();
    for (const row of this.rows.values()) {
      row.value.textContent = '—';
      row.bar.value = 0;
      delete row.dd.dataset.remaining;
    }
  }
}
