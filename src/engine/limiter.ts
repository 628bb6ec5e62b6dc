/**
 * Per-mix output limiter: keeps a personal mix (float, full scale ±1.0, as
 * rendered by mix-kernel.ts) under a ceiling before it is quantised, so a
 * musician's own +10 dB boosts can never clip into their ears.
 *
 * No lookahead: in-ear latency matters more than a transparent attack. Per
 * frame, the gain that would bring the frame's loudest channel exactly to the
 * ceiling is taken at once when it is lower than the current gain (instant
 * attack, so the output never exceeds the ceiling); otherwise the gain
 * recovers toward 1.0 with a one-pole release, g ← 1 − (1 − g)·a, where
 * a = exp(−1 / (releaseSec · rate)) is precomputed: after one time constant
 * the remaining reduction (1 − g, linear) has fallen to 1/e. Channels are
 * linked (one gain for L and R), so the stereo image does not shift.
 *
 * Bit-identity: while the gain is exactly 1.0 and no sample exceeds the
 * ceiling, samples are not written at all; a signal that never exceeds the
 * ceiling passes through bit-identical (and costs only the peak scan). What
 * could break that is a gain that is merely close to 1 after a burst, so the
 * release snaps to exactly 1.0 once less than RELEASE_SNAP (1e−6, ≈ −0.0000087
 * dB) of reduction is left, and pass-through resumes.
 *
 * Ceiling: the caller passes the effective ceiling. A box-wide maximum output
 * level (admin setting) is just a lower ceiling: pass
 * min(clientCeilingDb, boxMaxDb).
 */

/** Default ceiling, dBFS. */
export const DEFAULT_CEILING_DB = -1;
/** Default release time constant, ms. */
export const DEFAULT_RELEASE_MS = 50;
/** Remaining linear reduction below which the release snaps to exactly 1.0. */
export const RELEASE_SNAP = 1e-6;

/** Limiter settings; omitted fields keep their current value (or the default on creation). */
export interface LimiterOptions {
  /** On by default; when off, `limit` leaves the buffer alone and reports 0 dB. */
  enabled?: boolean;
  /** Ceiling in dBFS, ≤ 0 (default −1). Pass min(client ceiling, box maximum). */
  ceilingDb?: number;
  /** Release time constant in ms, > 0 (default 50). */
  releaseMs?: number;
}

/** Preallocated limiter state, one per mix. Mutated by `limit`. */
export interface LimiterState {
  /** Sample rate the release coefficient was computed for, Hz. */
  readonly rate: number;
  enabled: boolean;
  ceilingDb: number;
  /** Linear ceiling, 10^(ceilingDb/20). */
  ceiling: number;
  releaseMs: number;
  /** Per-frame release coefficient a = exp(−1 / (releaseMs/1000 · rate)). */
  releaseCoef: number;
  /** Gain currently applied, linear, (0, 1]; exactly 1 when not limiting. */
  gain: number;
  /** Largest reduction applied during the last `limit` call, dB, ≥ 0 (0 = untouched). */
  gainReductionDb: number;
}

/** Creates a limiter for a mix at `rate` Hz (on, −1 dBFS, 50 ms release unless `opts` says otherwise). */
export function createLimiter(rate: number, opts: LimiterOptions = {}): LimiterState {
  if (!(rate > 0)) throw new RangeError(`limiter rate is ${rate} Hz; need > 0`);
  const state: LimiterState = {
    rate,
    enabled: true,
    ceilingDb: DEFAULT_CEILING_DB,
    ceiling: Math.pow(10, DEFAULT_CEILING_DB / 20),
    releaseMs: DEFAULT_RELEASE_MS,
    releaseCoef: releaseCoefficient(DEFAULT_RELEASE_MS, rate),
    gain: 1,
    gainReductionDb: 0,
  };
  configureLimiter(state, opts);
  return state;
}

function releaseCoefficient(releaseMs: number, rate: number): number {
  return Math.exp(-1 / ((releaseMs / 1000) * rate));
}

/**
 * Changes settings in place (from the control plane, between periods). A
 * lowered ceiling takes hold at the next frame (instant attack); disabling
 * resets the gain to 1. Throws RangeError on ceilingDb > 0 or non-finite,
 * or releaseMs ≤ 0.
 */
export function configureLimiter(state: LimiterState, opts: LimiterOptions): void {
  if (opts.ceilingDb !== undefined) {
    if (!(opts.ceilingDb <= 0 && opts.ceilingDb > -Infinity)) throw new RangeError(`limiter ceilingDb is ${opts.ceilingDb}; need a finite value ≤ 0`);
    state.ceilingDb = opts.ceilingDb;
    state.ceiling = Math.pow(10, opts.ceilingDb / 20);
  }
  if (opts.releaseMs !== undefined) {
    if (!(opts.releaseMs > 0 && opts.releaseMs < Infinity)) throw new RangeError(`limiter releaseMs is ${opts.releaseMs}; need a finite value > 0`);
    state.releaseMs = opts.releaseMs;
    state.releaseCoef = releaseCoefficient(opts.releaseMs, state.rate);
  }
  if (opts.enabled !== undefined) {
    state.enabled = opts.enabled;
    if (!opts.enabled) {
      state.gain = 1;
      state.gainReductionDb = 0;
    }
  }
}

/**
 * Limits `samples` interleaved samples (frames × `channels`) of `buf` in
 * place, one gain per frame shared by all channels. Afterwards every |sample|
 * ≤ ceiling (to float32 rounding, ≤ 1 ulp) and `state.gainReductionDb` holds
 * the period's largest reduction. Allocates nothing.
 * Throws RangeError if `samples` is not a multiple of `channels` or exceeds `buf`.
 */
export function limit(buf: Float32Array, samples: number, channels: number, state: LimiterState): void {
  if (samples % channels !== 0 || samples > buf.length) {
    throw new RangeError(`limit got ${samples} samples of ${channels} channels in a buffer of ${buf.length}`);
  }
  if (!state.enabled) {
    state.gainReductionDb = 0;
    return;
  }
  const ceiling = state.ceiling;
  const a = state.releaseCoef;
  let g = state.gain;
  let minG = 1;
  for (let i = 0; i < samples; i += channels) {
    let peak = 0;
    for (let c = 0; c < channels; c++) {
      const v = Math.abs(buf[i + c]!);
      if (v > peak) peak = v;
    }
    if (g !== 1) {
      g = 1 - (1 - g) * a;
      if (1 - g < RELEASE_SNAP) g = 1;
    }
    if (peak * g > ceiling) g = ceiling / peak;
    if (g !== 1) {
      if (g < minG) minG = g;
      for (let c = 0; c < channels; c++) buf[i + c] = buf[i + c]! * g;
    }
  }
  state.gain = g;
  state.gainReductionDb = minG < 1 ? -20 * Math.log10(minG) : 0;
}
