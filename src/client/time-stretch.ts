/**
 * Time-stretching by whole periods (NetEq's accelerate and preemptive expand, WSOLA-like): to play ahead it skips
 * `lag` frames, to fall back it plays `lag` frames again, where `lag` is the shift at which the audio best matches
 * itself (a pitch period or a multiple of it in a held note), and the splice is a raised-cosine crossfade of
 * 2 ms between the two matching stretches. On periodic audio the result is the same note, a period shorter or
 * longer; where nothing matches well enough the stretcher declines (the buffer tries again a little later), unless
 * the audio is so quiet a splice cannot be heard.
 *
 * Reads the jitter buffer's ring (never writes it). Allocates nothing after construction.
 */
import type { PeriodSearch } from './period-search.js';

/** Crossfade and match length, ms. */
const SPLICE_MS = 2;
/** Lags searched, ms. */
export const STRETCH_LAG_MIN_MS = 1;
export const STRETCH_LAG_MAX_MS = 15;
/** Mean square (channels 0 and 1 summed) below which any splice is inaudible: about -50 dBFS. */
const QUIET = 1e-5;

export class TimeStretcher {
  /** Crossfade length, frames. */
  readonly spliceFrames: number;
  readonly lagMin: number;
  readonly lagMax: number;
  /** Source positions being crossfaded: from `a` (fading out) to `b` (fading in); i frames done. */
  private a = 0;
  private b = 0;
  private i = 0;
  active = false;

  constructor(
    private readonly ring: Float32Array,
    private readonly cap: number,
    private readonly channels: number,
    rate: number,
    private readonly search: PeriodSearch,
  ) {
    this.spliceFrames = Math.max(2, Math.round((SPLICE_MS * rate) / 1000));
    this.lagMin = Math.max(1, Math.round((STRETCH_LAG_MIN_MS * rate) / 1000));
    this.lagMax = Math.max(this.lagMin, Math.round((STRETCH_LAG_MAX_MS * rate) / 1000));
    if (search.capacity < this.lagMax + this.spliceFrames) throw new RangeError(`TimeStretcher: the period search holds ${search.capacity} frames; needs ${this.lagMax + this.spliceFrames}`);
  }

  /** Frames of history behind the playback position an expand may read. */
  get historyFrames(): number {
    return this.lagMax;
  }

  /**
   * Looks for a splice at stream position `at`: sign +1 skips ahead (needs at + lagMax + spliceFrames buffered),
   * -1 goes back (needs lagMax frames of history). Returns the lag (lagMin ≤ lag ≤ lagMax), or 0 when the best match
   * scores below `minScore` (normalised correlation) and the audio is not quiet. The caller starts it with start().
   */
  plan(at: number, sign: 1 | -1, lagMin: number, lagMax: number, minScore: number): number {
    const m = this.spliceFrames;
    lagMin = Math.max(1, lagMin);
    lagMax = Math.min(this.lagMax, lagMax);
    if (lagMax < lagMin) return 0;
    let lag: number;
    if (sign > 0) {
      this.search.load(this.ring, this.cap, this.channels, at, lagMax + m);
      lag = this.search.best(0, 1, lagMin, lagMax, m);
    } else {
      this.search.load(this.ring, this.cap, this.channels, at - lagMax, lagMax + m);
      lag = this.search.best(lagMax, -1, lagMin, lagMax, m);
    }
    return this.search.score >= minScore || this.search.energy < QUIET ? lag : 0;
  }

  /** Normalised correlation of the last plan's best lag. */
  get lastScore(): number {
    return this.search.score;
  }

  /** Starts the crossfade from position `at` to at + sign × lag. */
  start(at: number, sign: 1 | -1, lag: number): void {
    this.a = at;
    this.b = at + sign * lag;
    this.i = 0;
    this.active = true;
  }

  /** Writes the next crossfaded frame to out[o …]; after the last one, `active` is false and `next` is where playback goes on. */
  frame(out: Float32Array, o: number): void {
    const ch = this.channels;
    const k = this.spliceFrames;
    const w = 0.5 - 0.5 * Math.cos((Math.PI * (this.i + 1)) / (k + 1));
    const fa = ((this.a + this.i) % this.cap) * ch;
    const fb = ((this.b + this.i) % this.cap) * ch;
    for (let c = 0; c < ch; c++) out[o + c] = (1 - w) * this.ring[fa + c]! + w * this.ring[fb + c]!;
    if (++this.i === k) this.active = false;
  }

  /** The source position after the splice. */
  get next(): number {
    return this.b + this.spliceFrames;
  }
}
