/**
 * The shared ring every period is converted into once: `slotCount` slots of
 * interleaved Int32 samples (left-aligned) plus a small header per slot, all
 * in one SharedArrayBuffer so pool workers read it without a copy.
 *
 * Slot header (BigInt64 words): [seq, samplePos, captureNs, flags].
 * The buffer is sized once for the most channels the service allows, so a
 * device that comes back with another channel count or rate only changes
 * the shape, never the buffer the workers hold.
 */
export interface RingShape {
  channels: number;
  periodFrames: number;
  rate: number;
  slotCount: number;
}

export const SLOT_HEADER_WORDS = 4;

export class AudioRing {
  readonly shape: RingShape;
  readonly sab: SharedArrayBuffer;
  /** All slots' samples; slot k starts at k * samplesPerSlot. */
  readonly samples: Int32Array;
  /** Per-slot header words; slot k starts at k * SLOT_HEADER_WORDS. */
  readonly headers: BigInt64Array;
  readonly samplesPerSlot: number;

  constructor(shape: RingShape, sab?: SharedArrayBuffer) {
    this.shape = shape;
    this.samplesPerSlot = shape.channels * shape.periodFrames;
    const headerBytes = shape.slotCount * SLOT_HEADER_WORDS * 8;
    const bytes = headerBytes + shape.slotCount * this.samplesPerSlot * 4;
    this.sab = sab ?? new SharedArrayBuffer(bytes);
    if (this.sab.byteLength < bytes) {
      throw new RangeError(`ring buffer is ${this.sab.byteLength} bytes; shape ${JSON.stringify(shape)} needs ${bytes}`);
    }
    this.headers = new BigInt64Array(this.sab, 0, shape.slotCount * SLOT_HEADER_WORDS);
    this.samples = new Int32Array(this.sab, headerBytes, shape.slotCount * this.samplesPerSlot);
  }

  slotOf(seq: number): number {
    return seq % this.shape.slotCount;
  }

  writeHeader(slot: number, seq: number, samplePos: bigint, captureNs: bigint, flags: number): void {
    const h = slot * SLOT_HEADER_WORDS;
    this.headers[h] = BigInt(seq);
    this.headers[h + 1] = samplePos;
    this.headers[h + 2] = captureNs;
    this.headers[h + 3] = BigInt(flags);
  }
}

/** Bytes a ring of `slotCount` slots needs for up to `maxChannels` at `periodFrames`. */
export function ringBytes(maxChannels: number, periodFrames: number, slotCount: number): number {
  return slotCount * SLOT_HEADER_WORDS * 8 + slotCount * maxChannels * periodFrames * 4;
}
