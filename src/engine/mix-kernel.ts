/**
 * Personal-mix kernel: renders one musician's stereo (or mono) monitor mix of
 * one ring slot into a caller-owned Float32Array. Pure and allocation-free per
 * call, so it runs in a pool worker or on the main thread alike; the caller
 * keeps one `MixState` per distinct mix and one output buffer.
 *
 * What reaches the kernel is flat, per input channel: the control plane has
 * already resolved stereo-linked pairs (e.g. a keyboard L/R pair moved as one,
 * each side keeping its own pan) and groups ("drums -3 dB") into plain
 * per-channel `gainDb`/`pan`/`mute`/`solo` values, and validated ranges. The
 * kernel knows nothing about links or groups; a group move is just several
 * channels' targets changing in the same `setMixTargets` call, so they ramp
 * together over the same period.
 *
 * Gain changes never jump: `setMixTargets` only sets targets, and the next
 * `renderMix` ramps every gain linearly from its current value to its target
 * across exactly one period (the last frame reaches the target, to rounding),
 * then holds. A new `MixState` starts at silence, so a freshly joined mix fades
 * in over its first period.
 *
 * Pan law (stereo output): constant power, θ = (pan + 1)·π/4,
 *   L = cos θ, R = sin θ   (evaluated as L = sin((1 − pan)·π/4), R = sin(θ),
 *                           the same values, but exactly 0 and 1 at the ends).
 * pan −1 → L 1, R 0; pan +1 → L 0, R 1; pan 0 → L = R = √½ = 0.70710678,
 * i.e. −3.0103 dB (20·log10(√½)) on each side, so L² + R² = 1 at every pan
 * position and a centred source keeps its acoustic power.
 *
 * Mono output: pan is ignored; each channel's mono gain is its channel gain
 * (× master), so a centred channel is at unity (0 dB) and a hard-panned one is
 * not lost. (Summing the panned L + R would give +3.01 dB at centre; averaging
 * would give −3.01 dB; neither keeps a centred vocal where the musician set it.)
 *
 * Samples: the ring holds left-aligned Int32, full scale 2^31; the kernel
 * reads them as x = s / 2^31 ∈ [−1, 1). Sums are accumulated in double and
 * rounded to float32 once per output sample; a mix may exceed ±1.0 (that is the
 * limiter's job, see limiter.ts), and quantisation to the wire is done by
 * `floatToPcm16` / `floatToPcm24` below.
 */
import type { AudioRing } from './audio-ring';

/** 2^−31: the Int32 → float scale, folded into the gains (a power of two, so it adds no rounding). */
const INT32_SCALE = 1 / 2147483648;
const QUARTER_PI = Math.PI / 4;

/** Maximum per-channel and master gain the kernel accepts, dB. */
export const MAX_GAIN_DB = 10;

/** One input channel's settings, already resolved from links/groups by the control plane. */
export interface ChannelMixParams {
  /** Channel gain in dB, −Infinity (off) … +10. */
  gainDb: number;
  /** Pan position, −1 (hard left) … 0 (centre) … +1 (hard right). Ignored for mono output. */
  pan: number;
  /** Silences the channel; wins over `solo`. */
  mute: boolean;
  /** While any channel is soloed, only soloed (and unmuted) channels are audible. */
  solo: boolean;
}

/** A whole personal mix, as set by the control plane. */
export interface MixParams {
  /**
   * Per input channel, indexed by device channel (ring channel) number.
   * Channels without an entry (index ≥ length) are silent. At most the
   * state's `maxChannels` entries.
   */
  channels: readonly ChannelMixParams[];
  /** Master gain in dB, −Infinity … +10; multiplies every channel (and ramps like them). */
  masterDb: number;
  /** 'stereo': interleaved L,R frames; 'mono': one sample per frame. */
  output: 'stereo' | 'mono';
}

/**
 * Per-mix state, preallocated for `maxChannels` input channels. Gains are
 * linear amplitude factors (1 = 0 dB). In mono mode the mono gain lives in the
 * L arrays and the R targets are 0.
 */
export interface MixState {
  /** Input channels this state was sized for. */
  readonly maxChannels: number;
  /** Output channels per frame: 2 (stereo) or 1 (mono), from the last `setMixTargets`. */
  outChannels: 1 | 2;
  /** Gains applied at the end of the last rendered period (start of the next ramp). */
  readonly curL: Float32Array;
  readonly curR: Float32Array;
  /** Gains the next rendered period ramps to. */
  readonly tgtL: Float32Array;
  readonly tgtR: Float32Array;
  /** Scratch for renderMix: the active channel list and its per-frame gain start/step (pre-scaled by 2^−31). */
  readonly active: Int32Array;
  readonly startL: Float64Array;
  readonly stepL: Float64Array;
  readonly startR: Float64Array;
  readonly stepR: Float64Array;
}

/**
 * Allocates the state for one mix of up to `maxChannels` input channels
 * (match the ring's maximum, so a device coming back with more channels
 * needs no reallocation). Starts silent, stereo.
 */
export function createMixState(maxChannels: number): MixState {
  if (!Number.isInteger(maxChannels) || maxChannels < 1) throw new RangeError(`maxChannels is ${maxChannels}; need an integer ≥ 1`);
  return {
    maxChannels,
    outChannels: 2,
    curL: new Float32Array(maxChannels),
    curR: new Float32Array(maxChannels),
    tgtL: new Float32Array(maxChannels),
    tgtR: new Float32Array(maxChannels),
    active: new Int32Array(maxChannels),
    startL: new Float64Array(maxChannels),
    stepL: new Float64Array(maxChannels),
    startR: new Float64Array(maxChannels),
    stepR: new Float64Array(maxChannels),
  };
}

/** dB → linear amplitude; −Infinity → exactly 0, 0 dB → exactly 1. */
function dbToGain(db: number): number {
  return db === -Infinity ? 0 : Math.pow(10, db / 20);
}

/** `channel` −1 means masterDb. The message is built only on failure, so a valid call allocates nothing. */
function checkDb(channel: number, db: number): void {
  // The control plane validates, but a NaN here would poison the mix until the
  // next reset, so the (per-change, not per-sample) check is worth keeping.
  if (!(db <= MAX_GAIN_DB)) {
    const what = channel < 0 ? 'masterDb' : `channel ${channel} gainDb`;
    throw new RangeError(`${what} is ${db} dB; allowed −Infinity … +${MAX_GAIN_DB}`);
  }
}

/**
 * Sets the targets the next `renderMix` ramps to. Effective channel gain is 0
 * if the channel is muted, or if any channel in `params` is soloed and this
 * one is not (a channel that is both muted and soloed still turns solo mode on,
 * and stays silent); otherwise 10^(gainDb/20) · 10^(masterDb/20), split by the
 * pan law (stereo) or taken whole (mono) — see the module doc.
 * Switching between stereo and mono takes effect in the very next render's
 * output layout; the gains still ramp. Throws RangeError on out-of-range input.
 */
export function setMixTargets(state: MixState, params: MixParams): void {
  const chans = params.channels;
  if (chans.length > state.maxChannels) {
    throw new RangeError(`mix has ${chans.length} channels; this state holds at most ${state.maxChannels}`);
  }
  checkDb(-1, params.masterDb);
  const master = dbToGain(params.masterDb);
  const mono = params.output === 'mono';
  state.outChannels = mono ? 1 : 2;
  let soloing = false;
  for (let c = 0; c < chans.length; c++) if (chans[c]!.solo) soloing = true;
  const tgtL = state.tgtL;
  const tgtR = state.tgtR;
  for (let c = 0; c < chans.length; c++) {
    const p = chans[c]!;
    checkDb(c, p.gainDb);
    if (!(p.pan >= -1 && p.pan <= 1)) throw new RangeError(`channel ${c} pan is ${p.pan}; allowed −1 … +1`);
    const audible = !p.mute && (!soloing || p.solo);
    const g = audible ? dbToGain(p.gainDb) * master : 0;
    if (mono) {
      tgtL[c] = g;
      tgtR[c] = 0;
    } else {
      tgtL[c] = g * Math.sin((1 - p.pan) * QUARTER_PI);
      tgtR[c] = g * Math.sin((1 + p.pan) * QUARTER_PI);
    }
  }
  tgtL.fill(0, chans.length);
  tgtR.fill(0, chans.length);
}

/**
 * Fills the active-channel scratch for the next render; returns how many.
 * A channel is active when its current or target gain is non-zero on an
 * output side that the current layout renders.
 */
function collectActive(state: MixState, channels: number, frames: number): number {
  const { curL, curR, tgtL, tgtR, active, startL, stepL, startR, stepR } = state;
  const stereo = state.outChannels === 2;
  let n = 0;
  for (let c = 0; c < channels; c++) {
    const l0 = curL[c]!;
    const l1 = tgtL[c]!;
    const r0 = stereo ? curR[c]! : 0;
    const r1 = stereo ? tgtR[c]! : 0;
    if (l0 === 0 && l1 === 0 && r0 === 0 && r1 === 0) continue;
    active[n] = c;
    startL[n] = l0 * INT32_SCALE;
    stepL[n] = ((l1 - l0) / frames) * INT32_SCALE;
    startR[n] = r0 * INT32_SCALE;
    stepR[n] = ((r1 - r0) / frames) * INT32_SCALE;
    n++;
  }
  return n;
}

/**
 * Renders ring slot `slot` through the mix into `out`: `periodFrames` frames,
 * interleaved L,R (stereo) or one sample per frame (mono), as float in
 * nominal [−1, 1] (may exceed it; limit before quantising). Gains ramp from
 * current to target across this period, and current = target afterwards.
 * Only ring channels below min(ring channels, maxChannels) are read; cost grows
 * with the number of audible channels only. Allocates nothing.
 * Throws RangeError if `out` holds fewer than periodFrames × outChannels samples.
 */
export function renderMix(ring: AudioRing, slot: number, state: MixState, out: Float32Array): void {
  const frames = ring.shape.periodFrames;
  const stride = ring.shape.channels;
  const stereo = state.outChannels === 2;
  if (out.length < frames * state.outChannels) {
    throw new RangeError(`mix output holds ${out.length} samples; ${frames} frames × ${state.outChannels} channels needed`);
  }
  const n = collectActive(state, Math.min(stride, state.maxChannels), frames);
  const s = ring.samples;
  const { active, startL, stepL, startR, stepR } = state;
  let ramping = false;
  for (let k = 0; k < n; k++) {
    if (stepL[k] !== 0 || stepR[k] !== 0) {
      ramping = true;
      break;
    }
  }
  // Frame-outer, channel-inner: the slot is read sequentially, and the sum
  // stays in a double register until one float32 store per output sample.
  let base = slot * ring.samplesPerSlot;
  if (stereo) {
    for (let f = 0, o = 0; f < frames; f++, o += 2, base += stride) {
      let accL = 0;
      let accR = 0;
      if (ramping) {
        const t = f + 1;
        for (let k = 0; k < n; k++) {
          const x = s[base + active[k]!]!;
          accL += x * (startL[k]! + stepL[k]! * t);
          accR += x * (startR[k]! + stepR[k]! * t);
        }
      } else {
        for (let k = 0; k < n; k++) {
          const x = s[base + active[k]!]!;
          accL += x * startL[k]!;
          accR += x * startR[k]!;
        }
      }
      out[o] = accL;
      out[o + 1] = accR;
    }
  } else {
    for (let f = 0; f < frames; f++, base += stride) {
      let acc = 0;
      if (ramping) {
        const t = f + 1;
        for (let k = 0; k < n; k++) acc += s[base + active[k]!]! * (startL[k]! + stepL[k]! * t);
      } else {
        for (let k = 0; k < n; k++) acc += s[base + active[k]!]! * startL[k]!;
      }
      out[f] = acc;
    }
  }
  state.curL.set(state.tgtL);
  state.curR.set(state.tgtR);
}

/**
 * Work units for the pool's cost model: the number of input channels the next
 * `renderMix` will actually mix (current or target gain non-zero), 0 … maxChannels.
 * Cost per period ≈ this × periodFrames channel-frames.
 */
export function mixCostWork(state: MixState): number {
  const { curL, curR, tgtL, tgtR } = state;
  const stereo = state.outChannels === 2;
  let n = 0;
  for (let c = 0; c < state.maxChannels; c++) {
    if (curL[c] !== 0 || tgtL[c] !== 0 || (stereo && (curR[c] !== 0 || tgtR[c] !== 0))) n++;
  }
  return n;
}

// Adding then subtracting 1.5·2^52 rounds a double to the nearest integer,
// ties to even (the FPU's own rounding), without Math.round's ties-up bias.
const ROUND_MAGIC = 6755399441055744;

/**
 * Quantises `count` float samples of `src` (full scale ±1.0) to signed 16-bit
 * into `dst[0..count)`: round to nearest, ties to even, after clipping to
 * [−32768, 32767] (so +1.0 → 32767, −1.0 → −32768); NaN → 0.
 * Exact for values that came from 16-bit samples: an S16 sample v read from the
 * ring (v/32768) and passed at unity gain comes back as v, bit for bit, which is
 * the same as the pcm16 encoder's `s >> 16`. (Unlike that encoder, which
 * truncates, wider sources are rounded here.)
 */
export function floatToPcm16(src: Float32Array, count: number, dst: Int16Array): void {
  for (let i = 0; i < count; i++) {
    let v = src[i]! * 32768;
    if (v > 32767) v = 32767;
    else if (v < -32768) v = -32768;
    dst[i] = v + ROUND_MAGIC - ROUND_MAGIC;
  }
}

/**
 * Quantises `count` float samples of `src` (full scale ±1.0) to signed 24-bit
 * little-endian, 3 bytes each, into `dst` from byte `offset`: round to nearest,
 * ties to even, after clipping to [−8388608, 8388607]; NaN → 0.
 * Exact for values that came from 16- or 24-bit samples at unity gain (float32
 * holds every 24-bit value), matching the pcm24 encoder's bytes bit for bit.
 */
export function floatToPcm24(src: Float32Array, count: number, dst: Uint8Array, offset: number): void {
  for (let i = 0, o = offset; i < count; i++, o += 3) {
    let v = src[i]! * 8388608;
    if (v > 8388607) v = 8388607;
    else if (v < -8388608) v = -8388608;
    const q = (v + ROUND_MAGIC - ROUND_MAGIC) | 0;
    dst[o] = q;
    dst[o + 1] = q >> 8;
    dst[o + 2] = q >> 16;
  }
}
