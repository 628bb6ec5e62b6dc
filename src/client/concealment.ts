/**
 * Waveform concealment (NetEq's "expand"): audio that is missing when its turn comes (a lost packet, or a buffer
 * that ran dry) is replaced by the audio just before it, repeated at the period that best matches what came
 * before (a pitch period of a held note), held at full level for 5 ms and faded out over 15 ms (then silence),
 * and crossfaded into the received audio after it over 1 ms. A 2.7 ms packet lost from a note is then a short
 * repeat of that note, not a click of silence.
 *
 * Reads the jitter buffer's ring (never writes it). Allocates nothing after construction.
 */
import type { PeriodSearch } from './period-search.js';

/** Full level for this long, then a raised-cosine fade to silence over FADE_MS. */
const HOLD_MS = 5;
const FADE_MS = 15;
/** Crossfade from the concealment into the audio after a gap, ms. */
const MERGE_MS = 1;
/** Repetition periods searched, ms (a 1 kHz to 40 Hz fundamental: a bass's low E is 41 Hz), and the stretch they are matched against. */
const LAG_MIN_MS = 1;
const LAG_MAX_MS = 25;
const MATCH_MS = 2;

/** Frames of history behind the playback position the concealment may read (LAG_MAX_MS + MATCH_MS). */
export function concealmentHistoryFrames(rate: number): number {
  return Math.ceil(((LAG_MAX_MS + MATCH_MS) * rate) / 1000) + 1;
}

export class Concealment {
  private readonly holdFrames: number;
  private readonly fadeFrames: number;
  private readonly mergeFrames: number;
  private readonly lagMin: number;
  private readonly lagMax: number;
  private readonly matchFrames: number;
  /** Stream position where the gap being concealed began; -1: none. */
  private at = -1;
  /** Repetition period, frames; 0: nothing to repeat (silence). */
  private lag = 0;
  /** Frames put in since `at` (the merge after the gap continues the count). */
  private n = 0;
  /** Frames of the crossfade into received audio still to play. */
  private mergeLeft = 0;

  constructor(
    private readonly ring: Float32Array,
    private readonly cap: number,
    private readonly channels: number,
    rate: number,
    private readonly search: PeriodSearch,
  ) {
    const frames = (ms: number): number => Math.max(1, Math.round((ms * rate) / 1000));
    this.holdFrames = frames(HOLD_MS);
    this.fadeFrames = frames(FADE_MS);
    this.mergeFrames = frames(MERGE_MS);
    this.lagMin = frames(LAG_MIN_MS);
    this.lagMax = Math.max(this.lagMin, frames(LAG_MAX_MS));
    this.matchFrames = frames(MATCH_MS);
    if (search.capacity < this.lagMax + this.matchFrames) throw new RangeError(`Concealment: the period search holds ${search.capacity} frames; needs ${this.lagMax + this.matchFrames}`);
  }

  /** A gap is being concealed, or its crossfade into received audio is still playing. */
  get active(): boolean {
    return this.at >= 0;
  }

  /** Concealment frames played since the gap began, beyond which it is silence. */
  get audibleFrames(): number {
    return this.holdFrames + this.fadeFrames;
  }

  /**
   * Writes the frame at stream position `src` to out[o …]: received audio (hole false), the concealment of a gap
   * (hole true), or the crossfade from one into the other.
   */
  frame(src: number, hole: boolean, out: Float32Array, o: number): void {
    const ch = this.channels;
    if (hole) {
      if (this.at < 0 || this.mergeLeft > 0) this.start(src);
      this.write(out, o, 1, 0);
      return;
    }
    const at = (src % this.cap) * ch;
    if (this.at >= 0 && this.mergeLeft === 0) this.mergeLeft = this.mergeFrames;
    if (this.mergeLeft === 0) {
      for (let c = 0; c < ch; c++) out[o + c] = this.ring[at + c]!;
      return;
    }
    // Raised cosine from the concealment (still running on) to the received audio.
    const w = 0.5 - 0.5 * Math.cos((Math.PI * (this.mergeFrames - this.mergeLeft + 1)) / (this.mergeFrames + 1));
    for (let c = 0; c < ch; c++) out[o + c] = this.ring[at + c]! * w;
    this.write(out, o, 1 - w, 1);
    if (--this.mergeLeft === 0) this.at = -1;
  }

  /** The buffer ran dry at stream position `src`: the concealment starts there (or runs on) for `count` frames. */
  dry(src: number, out: Float32Array, o: number, count: number): void {
    if (this.at < 0 || this.mergeLeft > 0) this.start(src);
    for (let i = 0; i < count; i++, o += this.channels) this.write(out, o, 1, 0);
  }

  /** Runs an ongoing concealment on (fading out, then silence) for `count` frames; silence when none is going. */
  runOn(out: Float32Array, o: number, count: number): void {
    if (this.at < 0) {
      out.fill(0, o, o + count * this.channels);
      return;
    }
    for (let i = 0; i < count; i++, o += this.channels) this.write(out, o, 1, 0);
  }

  /** Forgets the gap (a new stretch of audio starts). */
  reset(): void {
    this.at = -1;
    this.mergeLeft = 0;
  }

  /** Adds (add = 1) or writes (add = 0) the next concealment frame, times `scale`, at out[o …]. */
  private write(out: Float32Array, o: number, scale: number, add: number): void {
    const ch = this.channels;
    const k = this.n++;
    let g = 0;
    if (this.lag > 0 && k < this.holdFrames + this.fadeFrames) {
      g = k < this.holdFrames ? scale : scale * (0.5 + 0.5 * Math.cos((Math.PI * (k - this.holdFrames)) / this.fadeFrames));
    }
    const from = g === 0 ? 0 : ((this.at - this.lag + (k % this.lag)) % this.cap) * ch;
    for (let c = 0; c < ch; c++) out[o + c] = (add === 1 ? out[o + c]! : 0) + g * this.ring[from + c]!;
  }

  /** A gap begins at `h0`: picks the repetition period (about 40 000 multiply-adds at 48 kHz). */
  private start(h0: number): void {
    this.at = h0;
    this.n = 0;
    this.mergeLeft = 0;
    const m = this.matchFrames;
    // Only audio still in the ring behind the gap (and after the stream's start) can be repeated.
    const lagMax = Math.min(this.lagMax, h0 - m, this.cap - m - 1);
    if (lagMax < this.lagMin) {
      this.lag = 0;
      return;
    }
    const len = lagMax + m;
    this.search.load(this.ring, this.cap, this.channels, h0 - len, len);
    // The reference is the last m frames before the gap; candidates lie lag frames before it.
    this.lag = this.search.best(lagMax, -1, this.lagMin, lagMax, m);
  }
}
