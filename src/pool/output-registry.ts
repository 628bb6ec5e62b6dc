import type { ChannelCodec } from '../protocol/codecs';
import { createLimiter, configureLimiter, type LimiterOptions } from '../engine/limiter';
import type { MixRender } from '../engine/mix-encode';
import { createMixState, setMixTargets, type MixParams, type MixState } from '../engine/mix-kernel';
import { initSlabLimiter, MixSlab, SLAB_MAX_CHANNELS, slabMixState } from '../engine/mix-slab';
import type { OpusFrameMs } from '../engine/opus-encoder';
import { OpusStream } from '../engine/opus-stream';
import { CODEC_IDS, type PacketCodec } from '../protocol';

/** Distinct mixes a registry without a send pool's slab can hold (tests); the service sizes it from stream.maxClients. */
const DEFAULT_MIX_CAPACITY = 256;

/** Every mix slot is taken: a new distinct mix cannot be rendered. */
export class MixCapacityError extends RangeError {}

/** Anything that takes encoded packets: a client connection. */
export interface PacketSink {
  /** `frame` is one packet, already framed for the wire. Main thread; must never block or await. */
  pushPacket(frame: Buffer, arrivalMs: number): void;
}

/**
 * One distinct output, shared by every client that wants exactly it: a codec
 * and an ordered channel list, or a personal mix (`mix` set, `channels` empty).
 */
export interface Output {
  readonly id: number;
  key: string;
  /** A channel codec, or a mix codec (opus only for mixes). */
  codec: PacketCodec;
  readonly channels: readonly number[];
  readonly sinks: Set<PacketSink>;
  readonly mix: RegisteredMix | null;
}

/**
 * A mix with what the control plane staged for it. Changes (fader moves,
 * codec, limiter) are staged here and copied into the shared render state by
 * {@link OutputRegistry.commitMixes} between two of the mix's periods, never
 * while a pool worker may be rendering it.
 */
export interface RegisteredMix extends MixRender {
  /** Targets and output layout of the last request, not yet committed. */
  readonly stage: MixState;
  stagedLimiter: LimiterOptions;
  stagedCodecId: number;
  stagedOpus: OpusStream | null;
  dirty: boolean;
  /** Cost units for the pool's model: audible input channels × output channels (at least 1). */
  work: number;
}

/** What a client asked for in a mix message, already validated and resolved per channel. */
export interface MixRequest {
  /** Canonical form of the request: equal keys mean equal mixes, rendered once. */
  key: string;
  codec: 'pcm16' | 'pcm24' | 'opus';
  params: MixParams;
  limiter: LimiterOptions;
  /** Opus frame and bitrate when codec is opus, else null. */
  opus: { frameMs: OpusFrameMs; bitrateKbps: number } | null;
}

/** (√5 − 1) / 2: multiples of it mod 1 spread evenly over [0, 1) whatever the count. */
const GOLDEN = 0.6180339887498949;

/** Deflate costs several times a plain extraction; used to balance shards. */
const CODEC_WEIGHT: Readonly<Record<ChannelCodec, number>> = { pcm16: 1, pcm24: 1, deflate: 4 };

/**
 * Keeps the distinct outputs (encode once, send many) and their packed specs,
 * split into shards for the pool. Specs are rebuilt only when the set of
 * outputs changes, never per period.
 */
export class OutputRegistry {
  private readonly byKey = new Map<string, Output>();
  private readonly byId = new Map<number, Output>();
  private nextId = 1;
  private shardCount = 1;
  private dirty = true;
  private shards: Int32Array[] = [];
  private whole = new Int32Array(0);
  private work = 0;
  private mixList: RegisteredMix[] = [];
  private mixesDirty = true;
  private slab: MixSlab | null = null;
  private freeSlots: number[] = [];
  /** Slots of removed mixes a worker may still be rendering; free again at the next commit. */
  private releasedSlots: number[] = [];
  private deferSlotReuse = false;
  private mixSpecsDirty = true;
  private mixShards: Int32Array[] = [];
  private mixWorkTotal = 0;

  static keyOf(codec: ChannelCodec, channels: readonly number[]): string {
    return `${codec}:${channels.join(',')}`;
  }

  /** Adds `sink` to the output for (codec, channels), creating it if new. */
  subscribe(sink: PacketSink, codec: ChannelCodec, channels: readonly number[]): Output {
    const key = OutputRegistry.keyOf(codec, channels);
    let out = this.byKey.get(key);
    if (!out) {
      out = { id: this.allocId(), key, codec, channels: [...channels], sinks: new Set(), mix: null };
      this.add(out);
    }
    out.sinks.add(sink);
    return out;
  }

  /**
   * Points `sink` at the mix `req`, leaving `current` (its previous output).
   * A mix the client had to itself is changed in place, so its gains ramp
   * from where they are instead of restarting from silence; a new mix starts
   * from the gains of the one the client leaves.
   */
  setMix(sink: PacketSink, current: Output | null, req: MixRequest, rate: number, periodFrames: number): Output {
    const key = `mix:${req.key}`;
    const existing = this.byKey.get(key);
    if (existing) {
      if (current && current !== existing) this.unsubscribe(sink, current);
      existing.sinks.add(sink);
      return existing;
    }
    if (current?.mix && current.sinks.size === 1 && current.sinks.has(sink)) {
      this.stageMix(current.mix, req, periodFrames);
      this.byKey.delete(current.key);
      current.key = key;
      current.codec = req.codec;
      this.byKey.set(key, current);
      return current;
    }
    const slab = this.mixSlabFor(periodFrames);
    const slot = this.allocSlot();
    slab.clear(slot);
    const mix: RegisteredMix = {
      id: this.allocId(),
      slot,
      codecId: CODEC_IDS[req.codec],
      state: slabMixState(slab, slot),
      limiter: initSlabLimiter(slab, slot, createLimiter(rate, req.limiter)),
      buf: new Float32Array(periodFrames * 2),
      pcm: slab.pcm(slot),
      opus: null,
      stage: createMixState(SLAB_MAX_CHANNELS),
      stagedLimiter: {},
      stagedCodecId: CODEC_IDS[req.codec],
      stagedOpus: null,
      dirty: false,
      work: 1,
    };
    try {
      this.stageMix(mix, req, periodFrames);
    } catch (err) {
      this.freeSlots.push(slot);
      throw err;
    }
    if (current?.mix) {
      mix.state.curL.set(current.mix.state.curL);
      mix.state.curR.set(current.mix.state.curR);
      mix.limiter.gain = current.mix.limiter.gain;
    }
    // Not rendering yet: its first state can go straight in.
    this.commitMix(mix);
    const out: Output = { id: mix.id, key, codec: req.codec, channels: [], sinks: new Set([sink]), mix };
    this.add(out);
    if (current) this.unsubscribe(sink, current);
    return out;
  }

  /**
   * The send pool's slab: mix state in shared memory its workers can render
   * from, `capacity` distinct mixes at most. Set before any mix exists.
   */
  attachMixSlab(slab: MixSlab): void {
    if (this.mixRenders.length > 0) throw new Error('output registry: cannot change the mix slab while mixes exist');
    this.slab = slab;
    this.freeSlots = Array.from({ length: slab.capacity }, (_, i) => slab.capacity - 1 - i);
    this.releasedSlots = [];
    this.deferSlotReuse = true;
  }

  private mixSlabFor(periodFrames: number): MixSlab {
    if (!this.slab) {
      this.slab = new MixSlab(DEFAULT_MIX_CAPACITY, periodFrames);
      this.freeSlots = Array.from({ length: DEFAULT_MIX_CAPACITY }, (_, i) => DEFAULT_MIX_CAPACITY - 1 - i);
    }
    if (this.slab.periodFrames < periodFrames) {
      throw new RangeError(`mix: period of ${periodFrames} frames; the mix slab was sized for ${this.slab.periodFrames}`);
    }
    return this.slab;
  }

  private allocSlot(): number {
    const slot = this.freeSlots.pop();
    if (slot === undefined) {
      throw new MixCapacityError(`the box already renders ${this.slab!.capacity} distinct mixes, its most; share a mix or use raw channels`);
    }
    return slot;
  }

  /** Stages `req` for `mix`: nothing reaches the render state before commitMix. */
  private stageMix(mix: RegisteredMix, req: MixRequest, periodFrames: number): void {
    // The Opus stream first: it is the step that can refuse (a bad frame or bitrate), and then nothing has changed.
    const opus = this.opusStreamFor(mix, req, periodFrames);
    setMixTargets(mix.stage, req.params);
    mix.stagedOpus = opus;
    mix.stagedCodecId = CODEC_IDS[req.codec];
    mix.stagedLimiter = req.limiter;
    let audible = 0;
    for (let c = 0; c < SLAB_MAX_CHANNELS; c++) if (mix.stage.tgtL[c] !== 0 || mix.stage.tgtR[c] !== 0) audible++;
    mix.work = Math.max(1, audible * mix.stage.outChannels);
    mix.dirty = true;
  }

  private commitMix(mix: RegisteredMix): void {
    mix.state.tgtL.set(mix.stage.tgtL);
    mix.state.tgtR.set(mix.stage.tgtR);
    mix.state.outChannels = mix.stage.outChannels;
    configureLimiter(mix.limiter, mix.stagedLimiter);
    mix.codecId = mix.stagedCodecId;
    mix.opus = mix.stagedOpus;
    mix.dirty = false;
    this.mixSpecsDirty = true;
  }

  /**
   * Between two mix periods, when no render is in flight (the send pool calls
   * it just before it renders or dispatches a period's mixes): frees the
   * slots of removed mixes and copies every staged change into the render
   * state. Returns the mixes to render.
   */
  commitMixes(): readonly RegisteredMix[] {
    if (this.releasedSlots.length > 0) {
      for (const s of this.releasedSlots) this.freeSlots.push(s);
      this.releasedSlots.length = 0;
    }
    const mixes = this.mixRenders;
    for (const m of mixes) if (m.dirty) this.commitMix(m);
    return mixes;
  }

  /**
   * The mix's Opus stream for `req`: kept when frame and channel count are
   * unchanged (a bitrate change applies from the next frame), new otherwise
   * (an encoder's channel count is fixed, and a new frame size restarts the
   * re-blocker), none for a pcm mix.
   */
  private opusStreamFor(mix: RegisteredMix, req: MixRequest, periodFrames: number): OpusStream | null {
    if (req.codec !== 'opus' || !req.opus) return null;
    const channels = req.params.output === 'mono' ? 1 : 2;
    const bitrate = req.opus.bitrateKbps * 1000;
    const cur = mix.dirty ? mix.stagedOpus : mix.opus;
    if (cur && cur.channels === channels && cur.frameMs === req.opus.frameMs) {
      if (cur.encoder.config.bitrate !== bitrate) cur.setBitrate(bitrate);
      return cur;
    }
    // Spread the mixes' frame starts over the frame (golden-ratio steps by id), so that each period
    // encodes about mixes × period / frame frames instead of every mix encoding in the same period.
    const frameFrames = req.opus.frameMs * 48;
    const phase = Math.floor(((mix.id * GOLDEN) % 1) * frameFrames);
    return new OpusStream({ channels, frameMs: req.opus.frameMs, bitrate, periodFrames, phase });
  }

  /** Every distinct mix (a new array whenever the set changes, so a caller's reference is a snapshot). */
  get mixRenders(): readonly RegisteredMix[] {
    if (this.mixesDirty) {
      this.mixesDirty = false;
      this.mixSpecsDirty = true;
      this.mixList = [...this.byKey.values()].flatMap((o) => (o.mix ? [o.mix] : []));
    }
    return this.mixList;
  }

  /** Cost units of rendering every mix once (sum of RegisteredMix.work). */
  get mixWork(): number {
    this.rebuildMixSpecs();
    return this.mixWorkTotal;
  }

  /** The mixes as pool tasks, [id, slab slot, codec id] per mix, balanced by work over the shard count. */
  get mixShardSpecs(): readonly Int32Array[] {
    this.rebuildMixSpecs();
    return this.mixShards;
  }

  private rebuildMixSpecs(): void {
    const mixes = this.mixRenders;
    if (!this.mixSpecsDirty) return;
    this.mixSpecsDirty = false;
    const sorted = [...mixes].sort((a, b) => b.work - a.work);
    const n = Math.min(this.shardCount, Math.max(1, sorted.length));
    const buckets: number[][] = Array.from({ length: n }, () => []);
    const load = new Array<number>(n).fill(0);
    for (const m of sorted) {
      let best = 0;
      for (let i = 1; i < n; i++) if (load[i]! < load[best]!) best = i;
      buckets[best]!.push(m.id, m.slot, m.codecId);
      load[best]! += m.work;
    }
    this.mixShards = buckets.filter((b) => b.length > 0).map((b) => Int32Array.from(b));
    this.mixWorkTotal = load.reduce((a, b) => a + b, 0);
  }

  private allocId(): number {
    const id = this.nextId++;
    if (this.nextId > 0x7fffffff) this.nextId = 1;
    return id;
  }

  private add(out: Output): void {
    this.byKey.set(out.key, out);
    this.byId.set(out.id, out);
    if (out.mix) this.mixesDirty = true;
    else this.dirty = true;
  }

  unsubscribe(sink: PacketSink, out: Output): void {
    out.sinks.delete(sink);
    if (out.sinks.size === 0 && this.byKey.get(out.key) === out) {
      this.byKey.delete(out.key);
      this.byId.delete(out.id);
      if (out.mix) {
        this.mixesDirty = true;
        (this.deferSlotReuse ? this.releasedSlots : this.freeSlots).push(out.mix.slot);
      } else this.dirty = true;
    }
  }

  get(id: number): Output | undefined {
    return this.byId.get(id);
  }

  get size(): number {
    return this.byKey.size;
  }

  setShardCount(n: number): void {
    if (n !== this.shardCount) {
      this.shardCount = Math.max(1, n);
      this.dirty = true;
      this.mixSpecsDirty = true;
    }
  }

  /** Weighted work of one period: sum of channels x codec weight. */
  get periodWork(): number {
    this.rebuild();
    return this.work;
  }

  /** Spec of every output in one array, for encoding on the main thread. */
  get wholeSpec(): Int32Array {
    this.rebuild();
    return this.whole;
  }

  /** Non-empty shard specs, balanced by work. */
  get shardSpecs(): readonly Int32Array[] {
    this.rebuild();
    return this.shards;
  }

  private rebuild(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const outs = [...this.byKey.values()].filter((o) => o.mix === null).sort((a, b) => weight(b) - weight(a));
    const n = Math.min(this.shardCount, Math.max(1, outs.length));
    const buckets: number[][] = Array.from({ length: n }, () => []);
    const load = new Array<number>(n).fill(0);
    for (const o of outs) {
      let best = 0;
      for (let i = 1; i < n; i++) if (load[i]! < load[best]!) best = i;
      buckets[best]!.push(...record(o));
      load[best]! += weight(o);
    }
    this.shards = buckets.filter((b) => b.length > 0).map((b) => Int32Array.from(b));
    this.whole = Int32Array.from(outs.flatMap(record));
    this.work = load.reduce((a, b) => a + b, 0);
  }
}

// Only channel outputs (mix === null) reach these; their codec is a channel codec.
function weight(o: Output): number {
  return o.channels.length * CODEC_WEIGHT[o.codec as ChannelCodec];
}

function record(o: Output): number[] {
  return [o.id, CODEC_IDS[o.codec], o.channels.length, ...o.channels];
}
