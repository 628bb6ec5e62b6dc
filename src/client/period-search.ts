/**
 * Finds the lag at which a stretch of audio best repeats: the normalised cross-correlation of a reference segment
 * with the segment `lag` frames after (or before) it, over a range of lags. Shared by the concealment (which
 * repeats the audio before a gap at its period) and the time-stretcher (which removes or repeats whole periods).
 *
 * Works on a mono copy (channels 0 and 1 summed) held in its own scratch array, so the cost does not grow with
 * the channel count: every second lag on every second frame first, then the best ±2 lags at full resolution.
 * Allocates nothing after construction.
 */
export class PeriodSearch {
  private readonly mono: Float32Array;
  /** Normalised correlation of the last search's best lag, -1..1 (0 when either segment is silent). */
  score = 0;
  /** Mean square of the last search's reference segment (mono: channels 0 and 1 summed). */
  energy = 0;

  /** `maxFrames`: the longest stretch load() will be asked to copy. */
  constructor(maxFrames: number) {
    this.mono = new Float32Array(maxFrames);
  }

  get capacity(): number {
    return this.mono.length;
  }

  /** Copies ring frames [from, from + len) (stream positions; the ring holds `cap` frames of `channels`) to scratch 0 … len-1. */
  load(ring: Float32Array, cap: number, channels: number, from: number, len: number): void {
    const two = channels > 1 ? 1 : 0;
    const mono = this.mono;
    for (let i = 0, p = from; i < len; i++, p++) {
      const at = (p % cap) * channels;
      mono[i] = ring[at]! + ring[at + two]!;
    }
  }

  /**
   * The lag in [lagMin, lagMax] whose segment at scratch index ref + sign × lag best matches the `m` frames at
   * `ref` (sign +1: after it, -1: before it). Every candidate must lie inside what load() copied.
   */
  best(ref: number, sign: 1 | -1, lagMin: number, lagMax: number, m: number): number {
    let best = lagMin;
    let bestScore = -Infinity;
    for (let lag = lagMin; lag <= lagMax; lag += 2) {
      const s = this.corr(ref, ref + sign * lag, m, 2);
      if (s > bestScore) {
        bestScore = s;
        best = lag;
      }
    }
    const from = Math.max(lagMin, best - 2);
    const to = Math.min(lagMax, best + 2);
    bestScore = -Infinity;
    for (let lag = from; lag <= to; lag++) {
      const s = this.corr(ref, ref + sign * lag, m, 1);
      if (s > bestScore) {
        bestScore = s;
        best = lag;
      }
    }
    this.score = bestScore;
    let xx = 0;
    for (let i = 0; i < m; i++) xx += this.mono[ref + i]! ** 2;
    this.energy = xx / m;
    return best;
  }

  private corr(a: number, b: number, m: number, step: number): number {
    const mono = this.mono;
    let xy = 0;
    let xx = 0;
    let yy = 0;
    for (let i = 0; i < m; i += step) {
      const x = mono[a + i]!;
      const y = mono[b + i]!;
      xy += x * y;
      xx += x * x;
      yy += y * y;
    }
    return xx > 0 && yy > 0 ? xy / Math.sqrt(xx * yy) : 0;
  }
}
