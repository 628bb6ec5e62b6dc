/**
 * Re-blocks capture periods into codec-sized frames.
 *
 * Capture delivers periods of P frames (32–1024, default 128 = 2.67 ms at
 * 48 kHz); Opus encodes frames of exactly F frames (120, 240 or 480 at
 * 48 kHz: 2.5, 5 or 10 ms). P and F rarely divide each other, so a frame can
 * start in one period and end in a later one, and one period can complete
 * several frames (P = 1024 into F = 120 completes 8 or 9).
 *
 * The re-blocker copies each period's interleaved samples (Int16, Float32 in
 * [-1, 1], or Int32 left-aligned as {@link AudioRing} holds them) into a ring
 * of `slots` Int16 frames allocated once at construction, and calls `onFrame`
 * synchronously, inside the {@link FrameReblocker.push} that supplies a
 * frame's last sample, before it copies the rest of that period. It never
 * holds a complete frame. Nothing is allocated per period; per emitted frame
 * the only allocation is the two BigInts of its timestamps (none at all for
 * the capture time when the frame starts on a period boundary).
 *
 * Each emitted frame carries the sample position and capture time of its
 * FIRST sample: the period's `samplePos` + k and `captureNs` + round(k × 1e9
 * / rate), where k is that sample's offset in frames inside the period that
 * delivered it (which, for a frame spanning periods, is an earlier period
 * than the one that completes it).
 *
 * Added latency. A frame is emitted at the end of the period holding its
 * last sample, so its first sample waits from capture F to F + P − 1 sample
 * periods (F to fill the frame, which any F-sample codec frame costs, plus up
 * to P − 1 until the period holding the last sample is delivered). Sending
 * each period as it is costs its oldest sample P, so re-blocking adds at most
 * F − 1 samples (under one Opus frame) to the oldest sample of each packet.
 * At 48 kHz with P = 128:
 *
 *   frame   F     fill wait   worst capture→emit (F + P − 1)   + Opus lookahead (120)
 *   2.5 ms  120   2.50 ms     247 samples = 5.15 ms            7.65 ms
 *   5 ms    240   5.00 ms     367 samples = 7.65 ms            10.15 ms
 *   10 ms   480   10.00 ms    607 samples = 12.65 ms           15.15 ms
 *
 * The Opus lookahead column is the encoder's algorithmic delay with
 * OPUS_APPLICATION_RESTRICTED_LOWDELAY: Fs/400 = 120 samples = 2.5 ms
 * (libopus OPUS_GET_LOOKAHEAD; the binding cannot call GET ctls, so
 * test/engine/opus-encoder.test.ts measures it as the decoded output's lag).
 * It shows up at the decoder, not here. Network, jitter buffer and the
 * phone's output buffer come on top.
 *
 * Discontinuity: a period whose `samplePos` is not the one the re-blocker
 * expects (an xrun, a restarted device) discards the partial frame collected
 * so far (counted in {@link FrameReblocker.discardedFrames}), so no emitted
 * frame mixes audio from both sides of a gap or carries a wrong timestamp for
 * its later samples. The next frame starts at the new period's first sample.
 */

export type PeriodSamples = Int16Array | Float32Array | Int32Array;

export interface ReblockedFrame {
  /**
   * The frame's interleaved Int16 samples (frameFrames × channels): a view
   * into the ring, reused after `slots` further frames have been emitted.
   */
  readonly samples: Int16Array;
  /** Which ring slot `samples` is (0 … slots − 1). */
  readonly slot: number;
  /** Frames captured before this frame's first frame. */
  samplePos: bigint;
  /** Box monotonic clock (ns) at capture of this frame's first frame. */
  captureNs: bigint;
}

export interface FrameReblockerOptions {
  channels: number;
  /** Frames (samples per channel) in one emitted frame, e.g. 240 for 5 ms at 48 kHz. */
  frameFrames: number;
  /** Capture rate in Hz, for the capture time of a frame starting inside a period. */
  rate: number;
  /** Ring size in frames: an emitted frame's samples stay valid until this many more are emitted. Default 4. */
  slots?: number;
}

export type FrameSink = (frame: ReblockedFrame) => void;

function checkInt(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`frame reblocker: ${name} ${v} is not allowed; allowed: integers ${min}–${max}`);
  }
}

export class FrameReblocker {
  readonly channels: number;
  readonly frameFrames: number;
  readonly rate: number;
  readonly slots: number;
  /** All slots' samples, slot k at k × frameFrames × channels. */
  readonly ring: Int16Array;
  /** Frames emitted so far. */
  emittedFrames = 0;
  /** Partial frames dropped at a samplePos discontinuity. */
  discardedFrames = 0;

  private readonly onFrame: FrameSink;
  private readonly frames: ReblockedFrame[];
  private readonly samplesPerFrame: number;
  private slot = 0;
  /** Frames already in the current slot. */
  private fill = 0;
  /** samplePos the next period must start at to continue the stream; -1 before the first period. */
  private expectedPos = -1;

  constructor(opts: FrameReblockerOptions, onFrame: FrameSink) {
    checkInt('channels', opts.channels, 1, 64);
    checkInt('frameFrames', opts.frameFrames, 1, 48000);
    checkInt('rate', opts.rate, 8000, 384000);
    checkInt('slots', opts.slots ?? 4, 1, 1024);
    this.channels = opts.channels;
    this.frameFrames = opts.frameFrames;
    this.rate = opts.rate;
    this.slots = opts.slots ?? 4;
    this.samplesPerFrame = this.frameFrames * this.channels;
    this.ring = new Int16Array(this.slots * this.samplesPerFrame);
    this.onFrame = onFrame;
    this.frames = [];
    for (let s = 0; s < this.slots; s++) {
      this.frames.push({
        samples: this.ring.subarray(s * this.samplesPerFrame, (s + 1) * this.samplesPerFrame),
        slot: s,
        samplePos: 0n,
        captureNs: 0n,
      });
    }
  }

  /** Frames collected towards the next (incomplete) frame. */
  get pendingFrames(): number {
    return this.fill;
  }

  /** Drops the partial frame (e.g. when the stream is stopped or reconfigured). */
  reset(): void {
    if (this.fill > 0) this.discardedFrames++;
    this.fill = 0;
    this.expectedPos = -1;
  }

  /**
   * Adds one period: `frames` interleaved frames of `src` starting at sample
   * `srcOffset`, whose first frame is stream position `samplePos`, captured at
   * `captureNs`. Calls `onFrame` for every frame the period completes, in
   * order, before returning. Returns how many frames it emitted.
   */
  push(src: PeriodSamples, frames: number, samplePos: bigint, captureNs: bigint, srcOffset = 0): number {
    const ch = this.channels;
    if (!Number.isInteger(frames) || frames < 0 || srcOffset < 0 || srcOffset + frames * ch > src.length) {
      throw new RangeError(
        `frame reblocker: ${frames} frames × ${ch} channels from sample ${srcOffset} do not fit a source of ${src.length} samples`,
      );
    }
    const pos = Number(samplePos);
    if (this.expectedPos !== -1 && pos !== this.expectedPos && this.fill > 0) {
      this.discardedFrames++;
      this.fill = 0;
    }
    this.expectedPos = pos + frames;

    let emitted = 0;
    let k = 0; // frames of this period consumed
    while (k < frames) {
      const frame = this.frames[this.slot]!;
      if (this.fill === 0) {
        frame.samplePos = k === 0 ? samplePos : samplePos + BigInt(k);
        frame.captureNs = k === 0 ? captureNs : captureNs + BigInt(Math.round((k * 1e9) / this.rate));
      }
      const n = Math.min(frames - k, this.frameFrames - this.fill);
      copyToInt16(src, srcOffset + k * ch, frame.samples, this.fill * ch, n * ch);
      this.fill += n;
      k += n;
      if (this.fill === this.frameFrames) {
        this.fill = 0;
        this.slot = this.slot + 1 === this.slots ? 0 : this.slot + 1;
        this.emittedFrames++;
        emitted++;
        this.onFrame(frame);
      }
    }
    return emitted;
  }
}

/** Copies `count` samples, converting to Int16: Float32 is clamped to [-1, 1] (NaN → 0); Int32 keeps its top 16 bits. */
function copyToInt16(src: PeriodSamples, srcOff: number, dst: Int16Array, dstOff: number, count: number): void {
  if (src instanceof Int16Array) {
    for (let i = 0; i < count; i++) dst[dstOff + i] = src[srcOff + i]!;
  } else if (src instanceof Int32Array) {
    for (let i = 0; i < count; i++) dst[dstOff + i] = src[srcOff + i]! >> 16;
  } else {
    for (let i = 0; i < count; i++) {
      const x = src[srcOff + i]!;
      dst[dstOff + i] = x >= 1 ? 32767 : x <= -1 ? -32767 : x === x ? Math.round(x * 32767) : 0;
    }
  }
}
