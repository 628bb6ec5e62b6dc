// The listener's playback core: owns the client library's adaptive JitterBuffer and turns its output into the two
// speaker channels, one render quantum at a time. It runs in the AudioWorklet (listen-worklet.js) or, where a
// browser has no AudioWorklet (plain http on a phone is not a secure context), in a ScriptProcessorNode on the page.
// Nothing here allocates per quantum on the steady path.
import { JitterBuffer } from './client/jitter-buffer.js';

const CENTRE = Math.SQRT1_2; // a raw channel played centred, constant power: -3.01 dB each side

export class PlaybackCore {
  /**
   * @param {number} rate the AudioContext's sample rate, Hz
   * @param {{ captureSeconds?: number }} opts captureSeconds > 0 keeps that much of the decoded audio per channel
   *   for a test to read (the `?capture=1` hook); 0 (default) keeps nothing
   */
  constructor(rate, opts = {}) {
    this.rate = rate;
    this.channels = 0; // channels of the stream now in the buffer
    this.mixed = false; // a box-rendered mix (L/R or mono) rather than raw channels
    this.jb = null;
    this.scratch = new Float32Array(0);
    this.lastSeq = -1;
    this.captureFrames = Math.round((opts.captureSeconds ?? 0) * rate);
    this.capture = null; // per channel ring of captureFrames
    this.capturePos = 0;
    this.captured = 0;
    this.pulls = 0;
  }

  /**
   * One decoded packet: `samples` interleaved (frames x channels). A change of layout or rate starts a new buffer.
   * @param {{ seq: number, samples: Float32Array, channels: number, rate: number, mixed: boolean, captureNs?: bigint, discontinuity?: boolean }} p
   * @param {number} nowMs arrival time on the audio clock
   */
  push(p, nowMs) {
    if (this.jb === null || p.channels !== this.channels || p.mixed !== this.mixed || p.rate !== this.jbRate) this.reset(p.channels, p.mixed, p.rate);
    // The box's capture time lets the buffer estimate clock drift; a discontinuity starts a new stretch.
    this.jb.push(p.seq, p.samples, nowMs, p.captureNs, p.discontinuity === true);
  }

  reset(channels, mixed, rate) {
    this.channels = channels;
    this.mixed = mixed;
    this.jbRate = rate;
    this.jb = new JitterBuffer({ rate, channels });
    this.scratch = new Float32Array(128 * channels);
    if (this.captureFrames > 0) {
      this.capture = [];
      for (let c = 0; c < channels; c++) this.capture.push(new Float32Array(this.captureFrames));
      this.capturePos = 0;
      this.captured = 0;
    }
  }

  /**
   * Fills one render quantum of both speakers.
   * @param {Float32Array} left
   * @param {Float32Array} right
   * @param {number} nowMs the audio clock
   */
  render(left, right, nowMs) {
    const frames = left.length;
    if (this.jb === null) {
      left.fill(0);
      right.fill(0);
      return;
    }
    const n = this.channels;
    if (this.scratch.length !== frames * n) this.scratch = new Float32Array(frames * n);
    const buf = this.scratch;
    this.jb.pull(buf, nowMs);
    this.pulls++;
    if (this.mixed) {
      // The box's mix: [L, R] or [mono].
      for (let i = 0; i < frames; i++) {
        left[i] = buf[i * n];
        right[i] = n > 1 ? buf[i * n + 1] : buf[i * n];
      }
    } else {
      // Raw channels: each centred (the musician's own mix is rendered by the box, in mix mode).
      for (let i = 0; i < frames; i++) {
        let s = 0;
        for (let c = 0; c < n; c++) s += buf[i * n + c];
        left[i] = right[i] = s * CENTRE;
      }
    }
    if (this.capture !== null) {
      const cap = this.capture;
      let pos = this.capturePos;
      for (let i = 0; i < frames; i++) {
        for (let c = 0; c < n; c++) cap[c][pos] = buf[i * n + c];
        if (++pos === this.captureFrames) pos = 0;
      }
      this.capturePos = pos;
      this.captured += frames;
    }
  }

  /** The jitter buffer's numbers plus the layout, for the page's read-out (a few times a second). */
  stats() {
    const s = this.jb === null ? null : this.jb.stats();
    return { jitter: s, channels: this.channels, mixed: this.mixed, rate: this.jbRate ?? null, quanta: this.pulls };
  }

  /** The last captured audio per channel, oldest first (test hook: only with captureSeconds). */
  takeCapture() {
    if (this.capture === null) return { rate: this.jbRate ?? this.rate, channels: [], frames: 0 };
    const len = Math.min(this.captured, this.captureFrames);
    const out = [];
    for (const ring of this.capture) {
      const a = new Float32Array(len);
      for (let i = 0; i < len; i++) a[i] = ring[(this.capturePos - len + i + this.captureFrames) % this.captureFrames];
      out.push(a);
    }
    return { rate: this.jbRate, channels: out, frames: len, mixed: this.mixed };
  }
}
