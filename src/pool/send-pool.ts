import path from 'node:path';
import { Piscina } from 'piscina';
import { AudioRing, ringBytes } from '../engine/audio-ring';
import { encodeSlot } from '../engine/encode-kernels';
import { encodeMixes } from '../engine/mix-encode';
import { LatencyHistogram } from '../health/latency-histogram';
import type { OutputRegistry } from './output-registry';
import type { EncodeTask } from './encode-worker';

export const RING_SLOTS = 32;
export const MAX_CHANNELS = 64;
/** While pooled, every this many periods one is encoded inline to re-measure its cost. */
const PROBE_EVERY = 256;
/** Weight of the newest sample in the encode cost average (probes are rare, so they count more). */
const COST_EWMA = 0.05;
const PROBE_EWMA = 0.3;
/**
 * The first inline periods run before V8 has optimised the kernels and cost
 * many times their steady price; they are encoded inline but not learned from.
 */
const WARMUP_PERIODS = 200;
/** Back from the pool only below this share of the budget, so a load near it does not flip every period. */
const RETURN_SHARE = 0.7;

export interface SendPoolOptions {
  /** Worker threads (already resolved from "auto"); 0 = encode on the main thread. */
  size: number;
  /** Share of a period the main thread may spend encoding it, percent; 0 = always the pool. */
  inlineBudgetPct: number;
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
  inlineBudgetPct: number;
  /** Measured main-thread encode cost per unit of work (channel x codec weight), µs. */
  inlineCostUsPerWork: number;
  outputs: number;
  mixes: number;
  /** Median time to render all mixes of one period, µs. */
  mixCostUsPerPeriod: number;
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
  /** EWMA of inline encode ms per unit of work; 0 until measured. */
  private costPerWork = 0;
  private periodsSinceProbe = 0;
  private warmupLeft = WARMUP_PERIODS;
  private probing = false;
  private pooled = false;
  private stats = { periods: 0, inlinePeriods: 0, pooledPeriods: 0, skippedPeriods: 0, deadlineMisses: 0, encodeErrors: 0 };
  /** Period arrival → packet handed to a client's socket. */
  readonly serverLatency = new LatencyHistogram();
  /** Main-thread time each period holds the event loop (ingest + fan-out). */
  readonly captureBlock = new LatencyHistogram();
  /** Time rendering all personal mixes of a period takes, ms (reported in µs). */
  readonly mixUs = new LatencyHistogram();
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

  /** A period that could not be written (the pool is a ring behind) is counted and dropped. */
  skip(): void {
    this.stats.skippedPeriods++;
  }

  /**
   * The slot for `seq` has been written; encode it and fan it out.
   * `ingestStartMs` is when the period arrived (performance.now()).
   */
  dispatch(seq: number, ingestStartMs: number): void {
    const slot = this.ring.slotOf(seq);
    if (this.outputs.size === 0) return;
    if (!this.canAccept()) {
      this.skip();
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
    this.renderMixes(p, slot);
    const spec = this.outputs.wholeSpec;
    if (spec.length === 0 || this.encodeInline(this.outputs.periodWork)) {
      if (spec.length > 0) this.stats.inlinePeriods++;
      p.remaining = 1;
      try {
        if (spec.length > 0) {
          const t0 = performance.now();
          p.results.push(encodeSlot(this.ring, slot, spec));
          this.learnCost(performance.now() - t0, this.outputs.periodWork);
        }
      } catch (err) {
        this.stats.encodeErrors++;
        this.onEncodeError?.(err as Error);
      }
      p.remaining = 0;
      p.blockMs += performance.now() - ingestStartMs;
      this.release();
      return;
    }
    const piscina = this.piscina!; // encodeInline() is true whenever there is no pool
    this.stats.pooledPeriods++;
    const shards = this.outputs.shardSpecs;
    p.remaining = shards.length;
    const { channels, rate } = this.ring.shape;
    for (const spec of shards) {
      const task: EncodeTask = { slot, channels, rate, spec };
      piscina.run(task).then(
        (ab: ArrayBuffer) => this.shardDone(p, seq, ab),
        (err: Error) => this.shardDone(p, seq, null, err),
      );
    }
    p.blockMs += performance.now() - ingestStartMs;
  }

  /**
   * Personal mixes carry state from period to period (gain ramps, limiter
   * envelope), so for now they render here on the main thread, in period
   * order; rendering them in the workers needs that state in shared memory.
   */
  private renderMixes(p: PendingPeriod, slot: number): void {
    const mixes = this.outputs.mixRenders;
    if (mixes.length === 0) return;
    try {
      const t0 = performance.now();
      p.results.push(encodeMixes(this.ring, slot, mixes));
      this.mixUs.record(performance.now() - t0);
    } catch (err) {
      this.stats.encodeErrors++;
      this.onEncodeError?.(err as Error);
    }
  }

  /**
   * Inline when the predicted encode time fits the budget. The cost is
   * measured on inline periods; while pooled, one period in PROBE_EVERY is
   * encoded inline to re-measure, so one slow period (GC, a busy core) cannot
   * banish the load to the pool for good.
   */
  private encodeInline(work: number): boolean {
    if (this.piscina === null) return true;
    if (this.opts.inlineBudgetPct === 0) return false;
    this.probing = false;
    if (this.warmupLeft > 0 || this.costPerWork === 0) return true;
    const predicted = work * this.costPerWork;
    const budgetMs = (this.periodMs * this.opts.inlineBudgetPct) / 100;
    this.pooled = predicted > budgetMs * (this.pooled ? RETURN_SHARE : 1);
    if (!this.pooled) return true;
    if (++this.periodsSinceProbe >= PROBE_EVERY) {
      this.periodsSinceProbe = 0;
      this.probing = true;
      return true;
    }
    return false;
  }

  private learnCost(ms: number, work: number): void {
    if (work <= 0) return;
    if (this.warmupLeft > 0) {
      this.warmupLeft--;
      return;
    }
    const sample = ms / work;
    const alpha = this.probing ? PROBE_EWMA : COST_EWMA;
    this.costPerWork = this.costPerWork === 0 ? sample : this.costPerWork + alpha * (sample - this.costPerWork);
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
      inlineBudgetPct: this.opts.inlineBudgetPct,
      inlineCostUsPerWork: Math.round(this.costPerWork * 1e6) / 1000,
      outputs: this.outputs.size,
      mixes: this.outputs.mixRenders.length,
      mixCostUsPerPeriod: Math.round(this.mixUs.quantile(0.5) * 1000),
      ...this.stats,
      utilization: this.piscina ? this.piscina.utilization : 0,
      pending: this.tail - this.head,
    };
  }

  resetPerf(): void {
    this.serverLatency.reset();
    this.captureBlock.reset();
    this.mixUs.reset();
    this.stats.deadlineMisses = 0;
  }

  async stop(): Promise<void> {
    for (const p of this.pending) p.active = false;
    this.head = this.tail;
    if (this.piscina) await this.piscina.destroy();
  }
}
