import { createLimiter } from '../engine/limiter';
import { createMixState } from '../engine/mix-kernel';
import { initSlabLimiter, type MixSlab, SLAB_MAX_CHANNELS, slabMixState } from '../engine/mix-slab';
import type { ChannelCodec } from '../protocol/codecs';
import { CODEC_IDS } from '../protocol';
import { commitMix, stageMix } from './mix-staging';
import { MixSlots } from './mix-slots';
import type { MixRequest, Output, PacketSink, RegisteredMix } from './output-types';
import { balance } from './shard-balancer';

export { MixCapacityError } from './mix-slots';
export type { MixRequest, Output, PacketSink, RegisteredMix } from './output-types';

/** Deflate costs several times a plain extraction; used to balance shards. */
const CODEC_WEIGHT: Readonly<Record<ChannelCodec, number>> = { pcm16: 1, pcm24: 1, deflate: 4 };

/**
 * Keeps the distinct outputs (encode once, send many) and who subscribes to
 * them, and their packed specs split into shards for the pool. Specs are
 * rebuilt only when the set of outputs changes, never per period.
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
  private readonly slots = new MixSlots();
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
      stageMix(current.mix, req, periodFrames);
      this.byKey.delete(current.key);
      current.key = key;
      current.codec = req.codec;
      this.byKey.set(key, current);
      return current;
    }
    const slab = this.slots.slab(periodFrames);
    const slot = this.slots.take();
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
      stageMix(mix, req, periodFrames);
    } catch (err) {
      this.slots.giveBack(slot);
      throw err;
    }
    if (current?.mix) {
      mix.state.curL.set(current.mix.state.curL);
      mix.state.curR.set(current.mix.state.curR);
      mix.limiter.gain = current.mix.limiter.gain;
    }
    // Not rendering yet: its first state can go straight in.
    commitMix(mix);
    this.mixSpecsDirty = true;
    const out: Output = { id: mix.id, key, codec: req.codec, channels: [], sinks: new Set([sink]), mix };
    this.add(out);
    if (current) this.unsubscribe(sink, current);
    return out;
  }

  /**
   * The send pool's slab: mix state in shared memory its workers can render
   * from. Set before any mix exists.
   */
  attachMixSlab(slab: MixSlab): void {
    if (this.mixRenders.length > 0) throw new Error('output registry: cannot change the mix slab while mixes exist');
    this.slots.attach(slab);
  }

  /**
   * Between two mix periods, when no render is in flight (the send pool calls
   * it just before it renders or dispatches a period's mixes): frees the
   * slots of removed mixes and copies every staged change into the render
   * state. Returns the mixes to render.
   */
  commitMixes(): readonly RegisteredMix[] {
    this.slots.commit();
    const mixes = this.mixRenders;
    for (const m of mixes) {
      if (!m.dirty) continue;
      commitMix(m);
      this.mixSpecsDirty = true;
    }
    return mixes;
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
    const b = balance(mixes, this.shardCount, (m) => m.work, (m) => [m.id, m.slot, m.codecId]);
    this.mixShards = b.shards;
    this.mixWorkTotal = b.total;
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
        this.slots.release(out.mix.slot);
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
    const outs = [...this.byKey.values()].filter((o) => o.mix === null);
    const b = balance(outs, this.shardCount, weight, record);
    this.shards = b.shards;
    this.whole = Int32Array.from(outs.sort((x, y) => weight(y) - weight(x)).flatMap(record));
    this.work = b.total;
  }
}

// Only channel outputs (mix === null) reach these; their codec is a channel codec.
function weight(o: Output): number {
  return o.channels.length * CODEC_WEIGHT[o.codec as ChannelCodec];
}

function record(o: Output): number[] {
  return [o.id, CODEC_IDS[o.codec], o.channels.length, ...o.channels];
}
