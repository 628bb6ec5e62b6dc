/**
 * The Opus stream of one personal mix: re-blocks the mix's rendered periods
 * into Opus frames (frame-reblocker.ts) and encodes each frame as soon as it
 * is complete (opus-encoder.ts), so no frame waits longer than the period
 * that completes it. One per opus mix, allocated when the mix is created or
 * switched to opus and dropped with it (the native encoder is freed when the
 * binding's object is collected; it has no explicit close).
 *
 * Per period a push yields 0..n packets (n = maxPackets, e.g. 0 or 1 for 5 ms
 * frames and 128-frame periods), kept in preallocated records until the next
 * push. Each packet carries:
 * - seq: this stream's frame counter, from 0 when the stream is created, +1
 *   per Opus frame, wrapping at 2^32 (one period's seq would not do: a period
 *   may complete no frame or several);
 * - samplePos / captureNs of the frame's FIRST sample, from the re-blocker;
 * - FLAG_DISCONTINUITY when audio is missing before the frame: a period was
 *   flagged (xrun, reopen, skipped periods) or did not start where the
 *   previous one ended; the partial frame is then dropped and the stream
 *   starts again at its next frame start.
 *
 * Allocation: nothing per period; per frame, the packet Buffer the binding
 * returns and the re-blocker's timestamp BigInts.
 */
import { FrameReblocker, type ReblockedFrame } from './frame-reblocker';
import { OPUS_RATE, OpusFrameEncoder, type OpusFrameMs } from './opus-encoder';
import { FLAG_DISCONTINUITY } from '../protocol';

export interface OpusStreamOptions {
  /** 1 (mono mix) or 2 (stereo mix). */
  channels: 1 | 2;
  frameMs: OpusFrameMs;
  /** b/s, 6000–510000. */
  bitrate: number;
  /** Capture period in frames: the most one push carries. */
  periodFrames: number;
  /**
   * Frame phase: frames start at samplePos ≡ phase (mod frameFrames). Mixes
   * given different phases complete their frames in different periods, which
   * spreads the encodes evenly over periods instead of all mixes encoding in
   * the same one. Default 0.
   */
  phase?: number;
}

/** One encoded Opus frame, ready to be framed as a packet. Reused: valid until the next push. */
export interface OpusPacket {
  data: Buffer;
  samplePos: bigint;
  captureNs: bigint;
  seq: number;
  flags: number;
}

const NO_DATA = Buffer.alloc(0);

export class OpusStream {
  readonly channels: 1 | 2;
  readonly frameMs: OpusFrameMs;
  /** Frames (samples per channel) per Opus frame: 120, 240 or 480. */
  readonly frameFrames: number;
  readonly encoder: OpusFrameEncoder;
  /** Packets of the last push: packets[0 … count). */
  readonly packets: readonly OpusPacket[];
  count = 0;
  private readonly reblocker: FrameReblocker;
  private readonly phase: number;
  /** Whether the current stretch of audio has reached its first frame start (see phase). */
  private aligned = false;
  /** samplePos the next period must start at to continue the stretch; -1 before the first. */
  private nextPeriodPos = -1;
  private nextSeq = 0;
  /** samplePos the next frame starts at if nothing was lost; -1 before the first frame. */
  private expectedPos = -1;
  private discontinuity = false;

  constructor(opts: OpusStreamOptions) {
    this.encoder = new OpusFrameEncoder({ rate: OPUS_RATE, channels: opts.channels, frameMs: opts.frameMs, bitrate: opts.bitrate });
    this.channels = opts.channels;
    this.frameMs = opts.frameMs;
    this.frameFrames = this.encoder.config.frameFrames;
    const phase = opts.phase ?? 0;
    if (!Number.isInteger(phase) || phase < 0 || phase >= this.frameFrames) {
      throw new RangeError(`opus stream: phase ${phase} is not allowed; allowed: integers 0–${this.frameFrames - 1} (frames of a ${opts.frameMs} ms frame)`);
    }
    this.phase = phase;
    // A period completes at most floor((F − 1 + P) / F) frames (F − 1 already collected).
    const maxPackets = Math.max(1, Math.floor((this.frameFrames - 1 + opts.periodFrames) / this.frameFrames));
    this.packets = Array.from({ length: maxPackets }, () => ({ data: NO_DATA, samplePos: 0n, captureNs: 0n, seq: 0, flags: 0 }));
    // Frames are encoded inside push, before the next one is collected: two slots are plenty.
    this.reblocker = new FrameReblocker({ channels: opts.channels, frameFrames: this.frameFrames, rate: OPUS_RATE, slots: 2 }, this.onFrame);
  }

  /** Most packets one push can yield. */
  get maxPackets(): number {
    return this.packets.length;
  }

  /** Changes the bitrate from the next frame on (same frame and channels: the stream carries on). */
  setBitrate(bitrate: number): void {
    this.encoder.setBitrate(bitrate);
  }

  /** Adds one period of interleaved Int16 samples; encodes every frame it completes. Returns the packet count. */
  push(pcm: Int16Array, frames: number, samplePos: bigint, captureNs: bigint, periodFlags: number): number {
    this.count = 0;
    const pos = Number(samplePos);
    if ((periodFlags & FLAG_DISCONTINUITY) !== 0 || (this.nextPeriodPos !== -1 && pos !== this.nextPeriodPos)) {
      // Audio before this period is missing (a flagged xrun, where samplePos may run on, or a
      // samplePos gap): never bridge it in one frame; start again at the next frame start.
      this.reblocker.reset();
      this.discontinuity = true;
      this.aligned = false;
    }
    this.nextPeriodPos = pos + frames;
    if (this.aligned) {
      this.reblocker.push(pcm, frames, samplePos, captureNs);
      return this.count;
    }
    // Skip to the first sample at this stream's phase. Once per stretch: the BigInts here are not per period.
    const skip = (((this.phase - pos) % this.frameFrames) + this.frameFrames) % this.frameFrames;
    if (skip >= frames) return 0;
    this.aligned = true;
    const startNs = skip === 0 ? captureNs : captureNs + BigInt(Math.round((skip * 1e9) / OPUS_RATE));
    this.reblocker.push(pcm, frames - skip, samplePos + BigInt(skip), startNs, skip * this.channels);
    return this.count;
  }

  private readonly onFrame = (f: ReblockedFrame): void => {
    if (this.count === this.packets.length) {
      throw new RangeError(`opus stream: a period completed more than ${this.packets.length} frames of ${this.frameFrames}; the period is longer than configured`);
    }
    const pos = Number(f.samplePos);
    const p = this.packets[this.count]!;
    p.data = this.encoder.encode(f.samples);
    p.samplePos = f.samplePos;
    p.captureNs = f.captureNs;
    p.seq = this.nextSeq;
    p.flags = this.discontinuity || (this.expectedPos !== -1 && pos !== this.expectedPos) ? FLAG_DISCONTINUITY : 0;
    this.discontinuity = false;
    this.expectedPos = pos + this.frameFrames;
    this.nextSeq = (this.nextSeq + 1) >>> 0;
    this.count++;
  };
}
