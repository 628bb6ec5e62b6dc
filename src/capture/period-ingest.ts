import { FLAG_DISCONTINUITY } from '../protocol';
import { toInt32 } from '../engine/sample-format';
import { LatencyHistogram } from '../metrics/latency-histogram';
import type { SendPool } from '../pool/send-pool';
import type { CaptureFormat, CaptureSource } from './capture-source';

/**
 * Sees every period the source delivers, before the send pool (recording).
 * It runs on the period path: it may only copy (bounded) and count.
 */
export interface PeriodTap {
  /** The source (re)started with this format; before its first period. */
  format(f: CaptureFormat): void;
  /** `dropout`: audio was lost just before this period (xrun, reopen, new format). */
  period(data: Uint8Array, frames: number, samplePos: bigint, captureNs: bigint, dropout: boolean): void;
}

/**
 * The capture callback: stamp the period (seq, sample position, monotonic
 * ns), convert it once into the shared ring, hand it to the send pool.
 * No JSON, no logging, no per-client work here.
 */
export class PeriodIngest {
  private seq = 0;
  private samplePos = 0n;
  private flags = FLAG_DISCONTINUITY;
  private format: CaptureFormat | null = null;
  private lastArrival = 0;
  periods = 0;
  /**
   * performance.now() of the last period handed to the send pool, ms (0:
   * none yet). The watchdog's proof that audio flows: a period that arrives
   * but is skipped because the pool is a ring behind does not count.
   */
  lastDispatchAt = 0;
  /** Deviation of period arrival intervals from the nominal period, ms. */
  readonly jitter = new LatencyHistogram();
  /** Recording's tap, while a take runs. */
  tap: PeriodTap | null = null;
  private tapDropout = true;

  constructor(private readonly pool: SendPool) {}

  attach(source: CaptureSource): void {
    source.on('format', this.onFormat);
    source.on('discontinuity', this.onDiscontinuity);
    source.on('period', this.onPeriod);
  }

  detach(source: CaptureSource): void {
    source.off('format', this.onFormat);
    source.off('discontinuity', this.onDiscontinuity);
    source.off('period', this.onPeriod);
  }

  get currentFormat(): CaptureFormat | null {
    return this.format;
  }

  /** The seq the next period will get; every earlier one has been written to the ring (or skipped). */
  get nextSeq(): number {
    return this.seq;
  }

  private readonly onFormat = (f: CaptureFormat): void => {
    this.format = f;
    this.pool.setShape({ channels: f.channels, rate: f.rate });
    this.flags |= FLAG_DISCONTINUITY;
    this.tapDropout = true;
    this.lastArrival = 0;
    this.tap?.format(f);
  };

  private readonly onDiscontinuity = (): void => {
    this.flags |= FLAG_DISCONTINUITY;
    this.tapDropout = true;
  };

  private readonly onPeriod = (data: Uint8Array, frames: number): void => {
    const t0 = performance.now();
    const captureNs = process.hrtime.bigint();
    const f = this.format;
    if (f === null || frames !== f.periodFrames) return;
    if (this.lastArrival !== 0) this.jitter.record(Math.abs(t0 - this.lastArrival - (f.periodFrames / f.rate) * 1000));
    this.lastArrival = t0;
    const seq = this.seq;
    this.seq = (seq + 1) >>> 0;
    this.periods++;
    const pos = this.samplePos;
    this.samplePos += BigInt(frames);
    // Before the pool's check: a period the pool must skip is still recorded.
    if (this.tap !== null) {
      this.tap.period(data, frames, pos, captureNs, this.tapDropout);
      this.tapDropout = false;
    }
    if (!this.pool.canAccept(seq)) {
      // The pool is a ring behind: drop this period whole (the next one is flagged) rather than overwrite unread audio.
      this.flags |= FLAG_DISCONTINUITY;
      this.pool.skip();
      return;
    }
    const ring = this.pool.ring;
    const slot = ring.slotOf(seq);
    toInt32(data, f.format, ring.samples, slot * ring.samplesPerSlot, frames * f.channels);
    ring.writeHeader(slot, seq, pos, captureNs, this.flags);
    this.flags = 0;
    this.lastDispatchAt = t0;
    this.pool.dispatch(seq, t0);
  };
}
