/**
 * Shared memory for the carried state of personal mixes, so that a send-pool
 * worker can render a mix as well as the main thread can: one
 * SharedArrayBuffer of `capacity` fixed-size slots, allocated once (by the
 * send pool, which hands it to its workers at start), one slot per distinct
 * mix for the mix's life.
 *
 * A slot holds exactly what runs from one period to the next, plus the
 * quantised output an opus mix hands back to the main thread (its encoder is
 * native memory and stays there):
 *
 *   off   bytes                 what
 *   0     4 × 64 × 4            Float32 curL, curR, tgtL, tgtR (mix-kernel.ts MixState gains)
 *   1024  8 × 8                 Float64 limiter: rate, enabled, ceilingDb, ceiling, releaseMs,
 *                               releaseCoef, gain, gainReductionDb (limiter.ts LimiterState)
 *   1088  4 × 4                 Int32 outChannels, reserved
 *   1104  periodFrames × 2 × 2  Int16 pcm: the last rendered period, quantised (opus mixes)
 *
 * {@link slabMixState} and {@link slabLimiter} give objects with the kernels'
 * own interfaces over a slot (getters/setters for the scalar fields), so the
 * same renderMix/limit code runs on either thread and is bit-identical on
 * both. Scratch that does not carry over (renderMix's active list, the float
 * render buffer) stays thread-local.
 *
 * Who writes when: a slot is written by exactly one render at a time; the
 * send pool never starts a mix's period before its previous period has
 * returned, and control-plane changes are staged and copied in between
 * periods (pool/output-registry.ts commitMix), never during a render.
 */
import type { LimiterState } from './limiter';
import type { MixState } from './mix-kernel';

/** Input channels a slot holds gains for (the ring's maximum). */
export const SLAB_MAX_CHANNELS = 64;
const GAINS_BYTES = 4 * SLAB_MAX_CHANNELS * 4;
const LIMITER_OFFSET = GAINS_BYTES;
const META_OFFSET = LIMITER_OFFSET + 8 * 8;
const PCM_OFFSET = META_OFFSET + 4 * 4;

// Limiter words.
const L_RATE = 0;
const L_ENABLED = 1;
const L_CEILING_DB = 2;
const L_CEILING = 3;
const L_RELEASE_MS = 4;
const L_RELEASE_COEF = 5;
const L_GAIN = 6;
const L_REDUCTION = 7;

export class MixSlab {
  readonly sab: SharedArrayBuffer;
  readonly slotBytes: number;

  /** `periodFrames`: the capture period, sizing each slot's pcm output. */
  constructor(
    readonly capacity: number,
    readonly periodFrames: number,
    sab?: SharedArrayBuffer,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`mix slab capacity ${capacity} is not allowed; allowed: integers ≥ 1`);
    this.slotBytes = (PCM_OFFSET + periodFrames * 2 * 2 + 7) & ~7;
    this.sab = sab ?? new SharedArrayBuffer(capacity * this.slotBytes);
    if (this.sab.byteLength < capacity * this.slotBytes) {
      throw new RangeError(`mix slab buffer is ${this.sab.byteLength} bytes; ${capacity} slots of ${this.slotBytes} need ${capacity * this.slotBytes}`);
    }
  }

  /** The slot's quantised output of the last rendered period (interleaved, outChannels per frame). */
  pcm(slot: number): Int16Array {
    return new Int16Array(this.sab, slot * this.slotBytes + PCM_OFFSET, this.periodFrames * 2);
  }

  /** Zeroes a slot for a new mix: silent gains, stereo; the limiter is set up by {@link initSlabLimiter}. */
  clear(slot: number): void {
    new Uint8Array(this.sab, slot * this.slotBytes, this.slotBytes).fill(0);
    new Int32Array(this.sab, slot * this.slotBytes + META_OFFSET, 4)[0] = 2;
  }
}

/** MixState whose carried fields live in slot `slot` of the slab; scratch arrays are this thread's own. */
class SlabMixState implements MixState {
  readonly maxChannels = SLAB_MAX_CHANNELS;
  readonly curL: Float32Array;
  readonly curR: Float32Array;
  readonly tgtL: Float32Array;
  readonly tgtR: Float32Array;
  readonly active = new Int32Array(SLAB_MAX_CHANNELS);
  readonly startL = new Float64Array(SLAB_MAX_CHANNELS);
  readonly stepL = new Float64Array(SLAB_MAX_CHANNELS);
  readonly startR = new Float64Array(SLAB_MAX_CHANNELS);
  readonly stepR = new Float64Array(SLAB_MAX_CHANNELS);
  private readonly meta: Int32Array;

  constructor(slab: MixSlab, slot: number) {
    const base = slot * slab.slotBytes;
    const n = SLAB_MAX_CHANNELS;
    this.curL = new Float32Array(slab.sab, base, n);
    this.curR = new Float32Array(slab.sab, base + 4 * n, n);
    this.tgtL = new Float32Array(slab.sab, base + 8 * n, n);
    this.tgtR = new Float32Array(slab.sab, base + 12 * n, n);
    this.meta = new Int32Array(slab.sab, base + META_OFFSET, 4);
  }

  get outChannels(): 1 | 2 {
    return this.meta[0] === 1 ? 1 : 2;
  }

  set outChannels(n: 1 | 2) {
    this.meta[0] = n;
  }
}

/** LimiterState whose fields live in slot `slot` of the slab. */
class SlabLimiter implements LimiterState {
  private readonly v: Float64Array;

  constructor(slab: MixSlab, slot: number) {
    this.v = new Float64Array(slab.sab, slot * slab.slotBytes + LIMITER_OFFSET, 8);
  }

  get rate(): number {
    return this.v[L_RATE]!;
  }
  get enabled(): boolean {
    return this.v[L_ENABLED] === 1;
  }
  set enabled(b: boolean) {
    this.v[L_ENABLED] = b ? 1 : 0;
  }
  get ceilingDb(): number {
    return this.v[L_CEILING_DB]!;
  }
  set ceilingDb(x: number) {
    this.v[L_CEILING_DB] = x;
  }
  get ceiling(): number {
    return this.v[L_CEILING]!;
  }
  set ceiling(x: number) {
    this.v[L_CEILING] = x;
  }
  get releaseMs(): number {
    return this.v[L_RELEASE_MS]!;
  }
  set releaseMs(x: number) {
    this.v[L_RELEASE_MS] = x;
  }
  get releaseCoef(): number {
    return this.v[L_RELEASE_COEF]!;
  }
  set releaseCoef(x: number) {
    this.v[L_RELEASE_COEF] = x;
  }
  get gain(): number {
    return this.v[L_GAIN]!;
  }
  set gain(x: number) {
    this.v[L_GAIN] = x;
  }
  get gainReductionDb(): number {
    return this.v[L_REDUCTION]!;
  }
  set gainReductionDb(x: number) {
    this.v[L_REDUCTION] = x;
  }
}

export function slabMixState(slab: MixSlab, slot: number): MixState {
  return new SlabMixState(slab, slot);
}

export function slabLimiter(slab: MixSlab, slot: number): LimiterState {
  return new SlabLimiter(slab, slot);
}

/** Copies a freshly created limiter (limiter.ts createLimiter) into a slot's limiter words. */
export function initSlabLimiter(slab: MixSlab, slot: number, from: LimiterState): LimiterState {
  const v = new Float64Array(slab.sab, slot * slab.slotBytes + LIMITER_OFFSET, 8);
  v[L_RATE] = from.rate;
  v[L_ENABLED] = from.enabled ? 1 : 0;
  v[L_CEILING_DB] = from.ceilingDb;
  v[L_CEILING] = from.ceiling;
  v[L_RELEASE_MS] = from.releaseMs;
  v[L_RELEASE_COEF] = from.releaseCoef;
  v[L_GAIN] = from.gain;
  v[L_REDUCTION] = from.gainReductionDb;
  return new SlabLimiter(slab, slot);
}
