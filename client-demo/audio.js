// Microphone capture (AudioWorklet -> PCM16 16 kHz mono, 100 ms frames) and reply playback
// (PCM16 chunks at the announced rate, scheduled back to back through the Web Audio graph).

export const INPUT_RATE = 16000;
const FRAME_SAMPLES = INPUT_RATE / 10; // 100 ms: small enough to feel live, few enough messages

function rmsOf(samples) {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  return samples.length ? Math.sqrt(sum / samples.length) : 0;
}

/**
 * The microphone. open() asks for it once (the fake device of the e2e test starts its file
 * then); start()/stop() bracket one utterance. Frames go to `onFrame(Int16Array)`.
 */
export class Microphone {
  constructor({ workletUrl, onFrame, onLevel }) {
    this.workletUrl = workletUrl;
    this.onFrame = onFrame;
    this.onLevel = onLevel ?? (() => {});
    this.ctx = null;
    this.opening = null;
    this.recording = false;
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.filled = 0;
    this.resampler = null;
    /** Figures of the latest utterance (and totals), for the page and the e2e test. */
    this.stats = { utterances: 0, frames: 0, bytes: 0, ms: 0, rms: 0, maxFrameRms: 0, totalBytes: 0, contextRate: 0 };
    this.sumSquares = 0;
    this.samples = 0;
  }

  open() {
    this.opening ??= this.#open().catch((err) => {
      this.opening = null;
      throw err;
    });
    return this.opening;
  }

  async #open() {
    // The context and the worklet first: the device starts delivering at getUserMedia, and
    // whatever it says before the worklet listens is lost.
    let ctx = await this.#context({ sampleRate: INPUT_RATE });
    let stream;
    try {
      // Echo cancellation, noise suppression and gain control reshape the signal: a pronunciation
      // score should hear the learner, not the browser's idea of them.
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    } catch (err) {
      await ctx.close().catch(() => {});
      throw err;
    }
    let source;
    try {
      source = ctx.createMediaStreamSource(stream);
    } catch {
      // Some browsers cannot connect a device to a context at another rate: capture at the
      // device rate and resample here.
      await ctx.close().catch(() => {});
      ctx = await this.#context({});
      source = ctx.createMediaStreamSource(stream);
    }
    const node = new AudioWorkletNode(ctx, 'parley-capture', { numberOfInputs: 1, numberOfOutputs: 0 });
    node.port.onmessage = (e) => this.#samples(e.data);
    source.connect(node);
    this.ctx = ctx;
    this.stream = stream;
    this.stats.contextRate = ctx.sampleRate;
    if (ctx.sampleRate !== INPUT_RATE) this.resampler = new LinearResampler(ctx.sampleRate, INPUT_RATE);
  }

  async #context(opts) {
    const ctx = new AudioContext(opts);
    await ctx.audioWorklet.addModule(this.workletUrl);
    return ctx;
  }

  async start() {
    await this.open();
    await this.ctx.resume();
    this.filled = 0;
    this.sumSquares = 0;
    this.samples = 0;
    Object.assign(this.stats, { frames: 0, bytes: 0, ms: 0, rms: 0, maxFrameRms: 0 });
    this.recording = true;
  }

  /** Ends the utterance, sending the partial last frame; returns its figures. */
  stop() {
    if (this.recording) {
      this.recording = false;
      this.#flush();
      this.stats.utterances++;
    }
    this.onLevel(0);
    return { ...this.stats };
  }

  #samples(input) {
    if (!this.recording) return;
    const samples = this.resampler ? this.resampler.push(input) : input;
    for (let i = 0; i < samples.length; i++) {
      const s = Math.max(-1, Math.min(1, samples[i]));
      this.frame[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
      if (this.filled === FRAME_SAMPLES) this.#flush();
    }
  }

  #flush() {
    if (this.filled === 0) return;
    const frame = this.frame.slice(0, this.filled);
    this.filled = 0;
    let sum = 0;
    for (let i = 0; i < frame.length; i++) sum += (frame[i] / 32768) ** 2;
    const level = Math.sqrt(sum / frame.length);
    this.sumSquares += sum;
    this.samples += frame.length;
    this.stats.frames++;
    this.stats.bytes += frame.byteLength;
    this.stats.totalBytes += frame.byteLength;
    this.stats.ms = Math.round((this.stats.bytes / 2 / INPUT_RATE) * 1000);
    this.stats.maxFrameRms = Math.max(this.stats.maxFrameRms, level);
    this.stats.rms = Math.sqrt(this.sumSquares / this.samples);
    this.onLevel(level);
    this.onFrame(frame);
  }
}

/** Linear interpolation from the device rate to 16 kHz; good enough for speech. */
class LinearResampler {
  constructor(from, to) {
    this.step = from / to;
    this.pos = 0;
  }

  push(input) {
    const out = [];
    while (this.pos < input.length) {
      const i = Math.floor(this.pos);
      const frac = this.pos - i;
      const a = input[i];
      const b = i + 1 < input.length ? input[i + 1] : input[i];
      out.push(a + (b - a) * frac);
      this.pos += this.step;
    }
    this.pos -= input.length;
    return out;
  }
}

/**
 * Plays reply audio as it streams in: each PCM16 chunk becomes an AudioBuffer scheduled right
 * after the previous one, through an AnalyserNode whose level the page (and the test) reads.
 */
export class ReplyPlayer {
  constructor({ onLevel } = {}) {
    this.onLevel = onLevel ?? (() => {});
    this.ctx = null;
    this.analyser = null;
    this.rate = 24000;
    this.nextTime = 0;
    this.live = 0;
    this.finished = true;
    this.carry = null;
    this.timer = null;
    this.stats = { replies: 0, chunks: 0, samples: 0, maxRms: 0, lastRms: 0, ended: 0, playing: false, dataRms: 0, stopped: 0 };
    this.sumSquares = 0;
    /** The reply being played: its request id, when its first sample plays (context time), its sources. */
    this.requestId = null;
    this.firstAt = null;
    this.sources = new Set();
    /** Where playback of `requestId` was stopped (ms from its first sample), or null. */
    this.stoppedAtMs = null;
  }

  /**
   * Where the learner is in reply `requestId`, in ms from its first audio sample (CONTRACT §6
   * `played_ms`): the position now while it plays, the position at `stop()` after a barge-in, and
   * undefined once it finished playing (or for another reply).
   */
  playedMs(requestId) {
    if (requestId !== this.requestId) return undefined;
    if (this.stoppedAtMs !== null) return this.stoppedAtMs;
    if (!this.stats.playing || this.firstAt === null || !this.ctx) return undefined;
    return Math.max(0, (this.ctx.currentTime - this.firstAt) * 1000);
  }

  /** Stops the reply at once (barge-in): every scheduled chunk is cut, the position is kept. */
  stop() {
    if (!this.stats.playing) return;
    this.stoppedAtMs = this.playedMs(this.requestId) ?? 0;
    for (const src of this.sources) {
      src.onended = null;
      try {
        src.stop();
      } catch {
        /* not started yet */
      }
    }
    this.sources.clear();
    this.live = 0;
    this.finished = true;
    this.nextTime = 0;
    this.stats.stopped++;
    this.#maybeEnded();
  }

  /** Creates or resumes the context; call from a user gesture so autoplay rules allow sound. */
  unlock() {
    if (!this.ctx) {
      this.ctx = new AudioContext();
      this.analyser = this.ctx.createAnalyser();
      this.analyser.fftSize = 2048;
      this.analyser.connect(this.ctx.destination);
      this.probe = new Float32Array(this.analyser.fftSize);
    }
    return this.ctx.resume();
  }

  begin(sampleRate, requestId = null) {
    this.unlock();
    this.rate = sampleRate;
    this.requestId = requestId;
    this.firstAt = null;
    this.stoppedAtMs = null;
    this.finished = false;
    this.carry = null;
    this.stats.replies++;
    this.stats.playing = true;
    this.sumSquares = 0;
    this.replySamples = 0;
  }

  push(chunk) {
    if (!this.ctx || this.stoppedAtMs !== null) return;
    let bytes = chunk;
    if (this.carry) {
      bytes = new Uint8Array(this.carry.length + chunk.length);
      bytes.set(this.carry);
      bytes.set(chunk, this.carry.length);
      this.carry = null;
    }
    const whole = bytes.length & ~1;
    if (whole < bytes.length) this.carry = bytes.slice(whole);
    if (whole === 0) return;
    const view = new DataView(bytes.buffer, bytes.byteOffset, whole);
    const n = whole / 2;
    const buffer = this.ctx.createBuffer(1, n, this.rate);
    const data = buffer.getChannelData(0);
    for (let i = 0; i < n; i++) {
      const v = view.getInt16(i * 2, true) / 32768;
      data[i] = v;
      this.sumSquares += v * v;
    }
    this.replySamples += n;
    this.stats.samples += n;
    this.stats.chunks++;
    this.stats.dataRms = Math.sqrt(this.sumSquares / this.replySamples);

    const src = this.ctx.createBufferSource();
    src.buffer = buffer;
    src.connect(this.analyser);
    // A little slack so a chunk arriving just in time does not click against the previous one.
    const at = Math.max(this.nextTime, this.ctx.currentTime + 0.05);
    src.start(at);
    if (this.firstAt === null) this.firstAt = at;
    this.nextTime = at + buffer.duration;
    this.live++;
    this.sources.add(src);
    src.onended = () => {
      this.sources.delete(src);
      this.live--;
      this.#maybeEnded();
    };
    this.#watch();
  }

  /** No more chunks for this reply: `onended` fires once the last one has played. */
  end() {
    this.finished = true;
    this.#maybeEnded();
  }

  #maybeEnded() {
    if (!this.finished || this.live > 0 || !this.stats.playing) return;
    this.stats.playing = false;
    this.stats.ended++;
    clearInterval(this.timer);
    this.timer = null;
    this.onLevel(0);
  }

  #watch() {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.analyser.getFloatTimeDomainData(this.probe);
      const level = rmsOf(this.probe);
      this.stats.lastRms = level;
      this.stats.maxRms = Math.max(this.stats.maxRms, level);
      this.onLevel(level);
    }, 40);
  }
}
