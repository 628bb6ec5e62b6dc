import path from 'node:path';
import { Piscina } from 'piscina';
import { AudioRing, ringBytes } from '../engine/audio-ring';
import { encodeSlot } from '../engine/encode-kernels';
import { opusMixPackets, renderMixPackets } from '../engine/mix-encode';
import { MixSlab } from '../engine/mix-slab';
import { LatencyHistogram } from '../metrics/latency-histogram';
import type { OutputRegistry, RegisteredMix } from './output-registry';
import type { EncodeTask, MixTask } from './encode-worker';
import { InlineDecider } from './inline-decider';

export const RING_SLOTS = 32;
export const MAX_CHANNELS = 64;
/** Distinct mixes the pool's mix slab holds when the caller gives no bound. */
const DEFAULT_MAX_MIXES = 256;
/** Bytes a worker appends to a mix result: its render time, µs (float64), for mixCostUsPerPeriod. */
const MIX_TAIL_BYTES = 8;

export interface SendPoolOptions {
  /** Worker threads (already resolved from "auto"); 0 = encode on the main thread. */
  size: number;
  /** Share of a period the main thread may spend encoding it, percent; 0 = always the pool. */
  inlineBudgetPct: number;
  periodFrames: number;
  /** Most distinct personal mixes at once (the mix slab's slots); default 256. */
  maxMixes?: number;
  /** The worker script; default the real encode-worker. Tests give a fixture that wraps it (a deliberately slow worker). */
  workerFile?: string;
}

/** A period between dispatch and fan-out. Reused: one per ring slot, the slot its audio is in. */
interface PendingPeriod {
  seq: number;
  slot: number;
  arrivalMs: number;
  blockMs: number;
  /** Parts still out: channel shards, the mix part (1 until its mixes are all done), the dispatch itself. */
  remaining: number;
  results: ArrayBuffer[];
  active: boolean;
  /** The mixes rendered for this period (a snapshot of the registry's list), and their shards still out. */
  mixes: readonly RegisteredMix[];
  mixShardsLeft: number;
  /** Worker render time of this period's mixes, µs. */
  mixWorkerUs: number;
}

export interface SendPoolStats {
  size: number;
  inlineBudgetPct: number;
  /** Measured main-thread encode cost per unit of work (channel x codec weight), µs. */
  inlineCostUsPerWork: number;
  /** Measured main-thread mix render cost per unit of mix work (audible channel × output channel), µs. */
  mixCostUsPerWork: number;
  outputs: number;
  mixes: number;
  /**
   * Median time to render (and Opus-encode) all mixes of one period, µs:
   * on the main thread when inline, the workers' render time plus the main
   * thread's Opus encoding when pooled.
   */
  mixCostUsPerPeriod: number;
  periods: number;
  inlinePeriods: number;
  pooledPeriods: number;
  /** Periods whose mixes rendered on the main thread / in the workers. */
  inlineMixPeriods: number;
  pooledMixPeriods: number;
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
  /** Indexed by ring slot: a slot is free for a new period only when its record is not active. */
  private readonly pending: PendingPeriod[];
  /** Periods dispatched and not yet fanned out. */
  private inFlight = 0;
  /** Oldest seq not yet fanned out (meaningful while inFlight > 0). */
  private headSeq = 0;
  private periodMs = 0;
  private readonly channelDecider = new InlineDecider();
  private readonly mixDecider = new InlineDecider();
  private readonly slab: MixSlab;
  /** A period's mixes are in the workers; the next period's mixes wait (strict per-mix period order). */
  private mixBusy = false;
  /** Periods waiting for their mix part, oldest first (at most the ring). */
  private readonly mixQueue: PendingPeriod[] = [];
  private stats = {
    periods: 0,
    inlinePeriods: 0,
    pooledPeriods: 0,
    inlineMixPeriods: 0,
    pooledMixPeriods: 0,
    skippedPeriods: 0,
    deadlineMisses: 0,
    encodeErrors: 0,
  };
  /** Period arrival → packet handed to a client's socket. */
  readonly serverLatency = new LatencyHistogram();
  /** Main-thread time each period holds the event loop (ingest + fan-out). */
  readonly captureBlock = new LatencyHistogram();
  /** Time rendering all personal mixes of a period takes, ms (reported in µs). */
  readonly mixUs = new LatencyHistogram();
  onEncodeError: ((err: Error) => void) | null = null;

  /**
   * `deliver` takes each encode result of a period, in period order, and
   * hands its packets to the clients (the transport's fan-out): the pool
   * encodes, it never touches a socket.
   */
  constructor(
    private readonly opts: SendPoolOptions,
    private readonly outputs: OutputRegistry,
    shape: { channels: number; rate: number },
    private readonly deliver: (result: ArrayBuffer, arrivalMs: number) => void,
  ) {
    this.ringSab = new SharedArrayBuffer(ringBytes(MAX_CHANNELS, opts.periodFrames, RING_SLOTS));
    this.ringView = new AudioRing({ ...shape, periodFrames: opts.periodFrames, slotCount: RING_SLOTS }, this.ringSab);
    this.pending = Array.from({ length: RING_SLOTS }, () => ({
      seq: 0,
      slot: 0,
      arrivalMs: 0,
      blockMs: 0,
      remaining: 0,
      results: [],
      active: false,
      mixes: [],
      mixShardsLeft: 0,
      mixWorkerUs: 0,
    }));
    this.slab = new MixSlab(opts.maxMixes ?? DEFAULT_MAX_MIXES, opts.periodFrames);
    outputs.attachMixSlab(this.slab);
    outputs.setShardCount(Math.max(1, opts.size));
    this.piscina =
      opts.size > 0
        ? new Piscina({
            filename: opts.workerFile ?? path.join(__dirname, 'encode-worker.js'),
            minThreads: opts.size,
            maxThreads: opts.size,
            idleTimeout: Number.MAX_SAFE_INTEGER,
            concurrentTasksPerWorker: 1,
            workerData: { ringSab: this.ringSab, periodFrames: opts.periodFrames, slotCount: RING_SLOTS, mixSab: this.slab.sab, mixCapacity: this.slab.capacity },
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

  /**
   * Whether period `seq` may be written into the ring: every period still
   * being encoded or waiting for fan-out must lie within one ring before it,
   * or `seq` would overwrite audio a worker has yet to read (or a queued mix
   * has yet to render). A pool that far behind drops `seq` whole instead.
   */
  canAccept(seq: number): boolean {
    return this.inFlight === 0 || ((seq - this.headSeq) >>> 0) < RING_SLOTS;
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
    if (!this.canAccept(seq)) {
      this.skip();
      return;
    }
    this.stats.periods++;
    const p = this.pending[slot]!;
    p.seq = seq;
    p.slot = slot;
    p.arrivalMs = ingestStartMs;
    p.blockMs = 0;
    p.results.length = 0;
    p.active = true;
    p.mixes = [];
    p.mixShardsLeft = 0;
    p.mixWorkerUs = 0;
    // One part for this call, so nothing is released before it returns.
    p.remaining = 1;
    if (this.inFlight++ === 0) this.headSeq = seq;
    let budgetMs = this.budgetMs();
    if (this.outputs.mixRenders.length > 0) {
      p.remaining++;
      // A mix's period N+1 never starts before its period N has returned.
      if (this.mixBusy || this.mixQueue.length > 0) this.mixQueue.push(p);
      else budgetMs -= this.startMixes(p);
    }
    const spec = this.outputs.wholeSpec;
    if (spec.length > 0) {
      const work = this.outputs.periodWork;
      if (this.piscina === null || (this.opts.inlineBudgetPct > 0 && this.channelDecider.inline(work, budgetMs))) {
        this.stats.inlinePeriods++;
        try {
          const t0 = performance.now();
          p.results.push(encodeSlot(this.ring, slot, spec));
          this.channelDecider.learn(performance.now() - t0, work);
        } catch (err) {
          this.stats.encodeErrors++;
          this.onEncodeError?.(err as Error);
        }
      } else {
        this.stats.pooledPeriods++;
        const shards = this.outputs.shardSpecs;
        p.remaining += shards.length;
        const { channels, rate } = this.ring.shape;
        for (const shard of shards) {
          const task: EncodeTask = { slot, channels, rate, spec: shard };
          this.piscina.run(task).then(
            (ab: ArrayBuffer) => this.shardDone(p, seq, ab),
            (err: Error) => this.shardDone(p, seq, null, err),
          );
        }
      }
    }
    p.blockMs += performance.now() - ingestStartMs;
    this.partDone(p);
  }

  /** Main-thread time a period may take, ms (pool.inlineBudgetPct of a period). */
  private budgetMs(): number {
    return (this.periodMs * this.opts.inlineBudgetPct) / 100;
  }

  private partDone(p: PendingPeriod): void {
    if (--p.remaining === 0) this.release();
  }

  /**
   * Renders period `p`'s mixes, inline or in the workers, whichever the
   * measured cost warrants. Called only when no mix render is in flight, so
   * the staged control changes can be committed first. Returns the main-thread
   * time it took, ms (0 when pooled).
   */
  private startMixes(p: PendingPeriod): number {
    const mixes = this.outputs.commitMixes();
    p.mixes = mixes;
    if (mixes.length === 0) {
      this.partDone(p);
      return 0;
    }
    const work = this.outputs.mixWork;
    if (this.piscina === null || (this.opts.inlineBudgetPct > 0 && this.mixDecider.inline(work, this.budgetMs()))) {
      this.stats.inlineMixPeriods++;
      const t0 = performance.now();
      try {
        p.results.push(renderMixPackets(this.ring, p.slot, mixes));
        this.mixDecider.learn(performance.now() - t0, work);
        const opus = opusMixPackets(this.ring, p.slot, mixes);
        if (opus) p.results.push(opus);
      } catch (err) {
        this.stats.encodeErrors++;
        this.onEncodeError?.(err as Error);
      }
      const ms = performance.now() - t0;
      this.mixUs.record(ms);
      this.partDone(p);
      return ms;
    }
    this.stats.pooledMixPeriods++;
    this.mixBusy = true;
    const shards = this.outputs.mixShardSpecs;
    p.mixShardsLeft = shards.length;
    const { channels, rate } = this.ring.shape;
    const seq = p.seq;
    for (const spec of shards) {
      const task: MixTask = { kind: 'mix', slot: p.slot, channels, rate, spec };
      this.piscina.run(task).then(
        (ab: ArrayBuffer) => this.mixShardDone(p, seq, ab),
        (err: Error) => this.mixShardDone(p, seq, null, err),
      );
    }
    return 0;
  }

  /** A mix shard came back; once all have, the Opus mixes are encoded here and the next waiting period's mixes start. */
  private mixShardDone(p: PendingPeriod, seq: number, ab: ArrayBuffer | null, err?: Error): void {
    if (!p.active || p.seq !== seq) return;
    if (ab) {
      p.mixWorkerUs += new DataView(ab).getFloat64(ab.byteLength - MIX_TAIL_BYTES, true);
      p.results.push(ab);
    } else {
      this.stats.encodeErrors++;
      this.onEncodeError?.(err ?? new Error('mix render failed'));
    }
    if (--p.mixShardsLeft > 0) return;
    const t0 = performance.now();
    try {
      const opus = opusMixPackets(this.ring, p.slot, p.mixes);
      if (opus) p.results.push(opus);
    } catch (e) {
      this.stats.encodeErrors++;
      this.onEncodeError?.(e as Error);
    }
    const ms = performance.now() - t0;
    p.blockMs += ms;
    this.mixUs.record(p.mixWorkerUs / 1000 + ms);
    this.mixBusy = false;
    this.partDone(p);
    // The next period's mixes may start now; inline ones complete (and may release) right here.
    while (!this.mixBusy && this.mixQueue.length > 0) {
      const next = this.mixQueue.shift()!;
      if (next.active) this.startMixes(next);
    }
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

  /** Fans out every completed period at the head, in seq order; skipped seqs are stepped over. */
  private release(): void {
    while (this.inFlight > 0) {
      const p = this.pending[this.headSeq % RING_SLOTS]!;
      if (!p.active || p.seq !== this.headSeq) {
        // Never dispatched (skipped, or no outputs then): within a ring of headSeq, so this ends.
        this.headSeq = (this.headSeq + 1) >>> 0;
        continue;
      }
      if (p.remaining > 0) return;
      const t0 = performance.now();
      for (const ab of p.results) this.deliver(ab, p.arrivalMs);
      const t1 = performance.now();
      p.blockMs += t1 - t0;
      this.captureBlock.record(p.blockMs);
      if (t1 - p.arrivalMs > this.periodMs) this.stats.deadlineMisses++;
      p.active = false;
      p.results.length = 0;
      this.inFlight--;
      this.headSeq = (this.headSeq + 1) >>> 0;
    }
  }

  snapshot(): SendPoolStats {
    return {
      size: this.opts.size,
      inlineBudgetPct: this.opts.inlineBudgetPct,
      inlineCostUsPerWork: Math.round(this.channelDecider.costMsPerWork * 1e6) / 1000,
      mixCostUsPerWork: Math.round(this.mixDecider.costMsPerWork * 1e6) / 1000,
      outputs: this.outputs.size,
      mixes: this.outputs.mixRenders.length,
      mixCostUsPerPeriod: Math.round(this.mixUs.quantile(0.5) * 1000),
      ...this.stats,
      utilization: this.piscina ? this.piscina.utilization : 0,
      pending: this.inFlight,
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
    this.mixQueue.length = 0;
    this.mixBusy = false;
    this.inFlight = 0;
    if (this.piscina) await this.piscina.destroy();
  }
}
