import path from 'node:path';
import { Piscina } from 'piscina';
import { AudioRing, ringBytes } from '../engine/audio-ring';
import { encodeSlot } from '../engine/encode-kernels';
import { LatencyHistogram } from '../health/latency-histogram';
import type { OutputRegistry } from './output-registry';
import type { EncodeTask } from './encode-worker';

export const RING_SLOTS = 32;
export const MAX_CHANNELS = 64;

export interface SendPoolOptions {
  /** Worker threads (already resolved from "auto"); 0 = encode on the main thread. */
  size: number;
  /** Periods whose weighted work is at most this are encoded inline. */
  inlineMaxWork: number;
  periodFrames: number;
}

/** A period between dispatch and fan-out. Reused: one per ring slot. */
interface PendingPeriod {
  seq: number;
  slot: number;
  arrivalMs: number;
  blockMs: number;
  remaining: number;
  results: ArrayBuffer[];
  active: boolean;
}

export interface SendPoolStats {
  size: number;
  inlineMaxWork: number;
  outputs: number;
  periods: number;
  inlinePeriods: number;
  pooledPeriods: number;
  skippedPeriods: number;
  deadlineMisses: number;
  encodeErrors: number;
  utilization: number;
  pending: number;
}

/**
 * Encodes each period's distinct outputs (in the pool or inline, whichever
 * the load warrants), then fans each packet out to its sinks, strictly in
 * period order. Nothing here awaits: results arrive as callbacks.
 */
export class SendPool {
  private ringView: AudioRing;
  private readonly ringSab: SharedArrayBuffer;
  private readonly piscina: Piscina | null;
  private readonly pending: PendingPeriod[];
  private head = 0; // oldest pending seq
  private tail = 0; // next seq to be dispatched
  private periodMs = 0;
  private stats = { periods: 0, inlinePeriods: 0, pooledPeriods: 0, skippedPeriods: 0, deadlineMisses: 0, encodeErrors: 0 };
  /** Period arrival → packet handed to a client's socket. */
  readonly serverLatency = new LatencyHistogram();
  /** Main-thread time each period holds the event loop (ingest + fan-out). */
  readonly captureBlock = new LatencyHistogram();
  /** Called when a period was skipped (pool backlog), so the next packet says discontinuity. */
  onSkip: (() => void) | null = null;
  onEncodeError: ((err: Error) => void) | null = null;

  /**
   * `frame` turns one packet of an encode result into the bytes every
   * subscriber's socket gets (the transport's framing), once per packet.
   */
  constructor(
    private readonly opts: SendPoolOptions,
    private readonly outputs: OutputRegistry,
    shape: { channels: number; rate: number },
    private readonly frame: (ab: ArrayBuffer, offset: number, length: number) => Buffer,
  ) {
    this.ringSab = new SharedArrayBuffer(ringBytes(MAX_CHANNELS, opts.periodFrames, RING_SLOTS));
    this.ringView = new AudioRing({ ...shape, periodFrames: opts.periodFrames, slotCount: RING_SLOTS }, this.ringSab);
    this.pending = Array.from({ length: RING_SLOTS }, () => ({ seq: 0, slot: 0, arrivalMs: 0, blockMs: 0, remaining: 0, results: [], active: false }));
    outputs.setShardCount(Math.max(1, opts.size));
    this.piscina =
      opts.size > 0
        ? new Piscina({
            filename: path.join(__dirname, 'encode-worker.js'),
            minThreads: opts.size,
            maxThreads: opts.size,
            idleTimeout: Number.MAX_SAFE_INTEGER,
            concurrentTasksPerWorker: 1,
            workerData: { ringSab: this.ringSab, periodFrames: opts.periodFrames, slotCount: RING_SLOTS },
          })
        : null;
    this.setShape(shape);
  }

  /** The source came back with another channel count or rate. */
  setShape(shape: { channels: number; rate: number }): void {
    if (shape.channels > MAX_CHANNELS) throw new RangeError(`channels: got ${shape.channels}; allowed: 1-${MAX_CHANNELS}`);
    const same = this.ring.shape.channels === shape.channels && this.ring.shape.rate === shape.rate;
    if (!same) {
      this.ringView = new AudioRing({ ...shape, periodFrames: this.opts.periodFrames, slotCount: RING_SLOTS }, this.ringSab);
    }
    this.periodMs = (this.opts.periodFrames / shape.rate) * 1000;
  }

  /** The ring periods are written into; replaced when the source's shape changes. */
  get ring(): AudioRing {
    return this.ringView;
  }

  get size(): number {
    return this.opts.size;
  }

  /** Whether the slot for `seq` is free to be written (the pool is not a ring behind). */
  canAccept(): boolean {
    return this.tail - this.head < RING_SLOTS - 1;
  }

  /**
   * The slot for `seq` has been written; encode it and fan it out.
   * `ingestStartMs` is when the period arrived (performance.now()).
   */
  dispatch(seq: number, ingestStartMs: number): void {
    const slot = this.ring.slotOf(seq);
    if (this.outputs.size === 0) return;
    if (!this.canAccept()) {
      this.stats.skippedPeriods++;
      this.onSkip?.();
      return;
    }
    this.stats.periods++;
    const p = this.pending[this.tail % RING_SLOTS]!;
    p.seq = seq;
    p.slot = slot;
    p.arrivalMs = ingestStartMs;
    p.blockMs = 0;
    p.results.length = 0;
    p.active = true;
    this.tail++;
    const work = this.outputs.periodWork;
    if (this.piscina === null || work <= this.opts.inlineMaxWork) {
      this.stats.inlinePeriods++;
      p.remaining = 1;
      try {
        p.results.push(encodeSlot(this.ring, slot, this.outputs.wholeSpec));
      } catch (err) {
        this.stats.encodeErrors++;
        this.onEncodeError?.(err as Error);
      }
      p.remaining = 0;
      p.blockMs += performance.now() - ingestStartMs;
      this.release();
      return;
    }
    this.stats.pooledPeriods++;
    const shards = this.outputs.shardSpecs;
    p.remaining = shards.length;
    const { channels, rate } = this.ring.shape;
    for (const spec of shards) {
      const task: EncodeTask = { slot, channels, rate, spec };
      this.piscina.run(task).then(
        (ab: ArrayBuffer) => this.shardDone(p, seq, ab),
        (err: Error) => this.shardDone(p, seq, null, err),
      );
    }
    p.blockMs += performance.now() - ingestStartMs;
  }

  private shardDone(p: PendingPeriod, seq: number, ab: ArrayBuffer | null, err?: Error): void {
    if (!p.active || p.seq !== seq) return;
    if (ab) p.results.push(ab);
    else {
      this.stats.encodeErrors++;
      this.onEncodeError?.(err ?? new Error('encode failed'));
    }
    if (--p.remaining === 0) this.release();
  }

  /** Fans out every completed period at the head, in order. */
  private release(): void {
    while (this.head < this.tail) {
      const p = this.pending[this.head % RING_SLOTS]!;
      if (p.remaining > 0) return;
      const t0 = performance.now();
      for (const ab of p.results) this.fanOut(ab, p.arrivalMs);
      const t1 = performance.now();
      p.blockMs += t1 - t0;
      this.captureBlock.record(p.blockMs);
      if (t1 - p.arrivalMs > this.periodMs) this.stats.deadlineMisses++;
      p.active = false;
      p.results.length = 0;
      this.head++;
    }
  }

  private fanOut(ab: ArrayBuffer, arrivalMs: number): void {
    const view = new DataView(ab);
    const count = view.getUint32(0, true);
    for (let i = 0; i < count; i++) {
      const out = this.outputs.get(view.getUint32(4 + i * 12, true));
      if (!out || out.sinks.size === 0) continue;
      const frame = this.frame(ab, view.getUint32(8 + i * 12, true), view.getUint32(12 + i * 12, true));
      for (const sink of out.sinks) sink.pushPacket(frame, arrivalMs);
    }
  }

  snapshot(): SendPoolStats {
    return {
      size: this.opts.size,
      inlineMaxWork: this.opts.inlineMaxWork,
      outputs: this.outputs.size,
      ...this.stats,
      utilization: this.piscina ? this.piscina.utilization : 0,
      pending: this.tail - this.head,
    };
  }

  resetPerf(): void {
    this.serverLatency.reset();
    this.captureBlock.reset();
    this.stats.deadlineMisses = 0;
  }

  async stop(): Promise<void> {
    for (const p of this.pending) p.active = false;
    this.head = this.tail;
    if (this.piscina) await this.piscina.destroy();
  }
}
