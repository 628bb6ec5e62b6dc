import type { Codec } from '../appliance/config-schema';
import { createLimiter, configureLimiter, type LimiterOptions } from '../engine/limiter';
import type { MixRender } from '../engine/mix-encode';
import { createMixState, setMixTargets, type MixParams } from '../engine/mix-kernel';
import { CODEC_IDS } from '../engine/packet-format';

/** Input channels a mix state is sized for (the ring's maximum). */
const MIX_MAX_CHANNELS = 64;

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
  codec: Codec;
  readonly channels: readonly number[];
  readonly sinks: Set<PacketSink>;
  readonly mix: MixRender | null;
}

/** What a client asked for in a mix message, already validated and resolved per channel. */
export interface MixRequest {
  /** Canonical form of the request: equal keys mean equal mixes, rendered once. */
  key: string;
  codec: 'pcm16' | 'pcm24';
  params: MixParams;
  limiter: LimiterOptions;
}

/** Deflate costs several times a plain extraction; used to balance shards. */
const CODEC_WEIGHT: Readonly<Record<Codec, number>> = { pcm16: 1, pcm24: 1, deflate: 4 };

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
  private mixList: MixRender[] = [];
  private mixesDirty = true;

  static keyOf(codec: Codec, channels: readonly number[]): string {
    return `${codec}:${channels.join(',')}`;
  }

  /** Adds `sink` to the output for (codec, channels), creating it if new. */
  subscribe(sink: PacketSink, codec: Codec, channels: readonly number[]): Output {
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
      this.byKey.delete(current.key);
      current.key = key;
      current.codec = req.codec;
      this.byKey.set(key, current);
      this.applyMix(current.mix, req);
      return current;
    }
    const mix: MixRender = {
      id: this.allocId(),
      codecId: CODEC_IDS[req.codec],
      state: createMixState(MIX_MAX_CHANNELS),
      limiter: createLimiter(rate, req.limiter),
      buf: new Float32Array(periodFrames * 2),
    };
    if (current?.mix) {
      mix.state.curL.set(current.mix.state.curL);
      mix.state.curR.set(current.mix.state.curR);
      mix.limiter.gain = current.mix.limiter.gain;
    }
    this.applyMix(mix, req);
    const out: Output = { id: mix.id, key, codec: req.codec, channels: [], sinks: new Set([sink]), mix };
    this.add(out);
    if (current) this.unsubscribe(sink, current);
    return out;
  }

  private applyMix(mix: MixRender, req: MixRequest): void {
    mix.codecId = CODEC_IDS[req.codec];
    setMixTargets(mix.state, req.params);
    configureLimiter(mix.limiter, req.limiter);
  }

  /** Every distinct mix, for rendering each period. */
  get mixRenders(): readonly MixRender[] {
    if (this.mixesDirty) {
      this.mixesDirty = false;
      this.mixList = [...this.byKey.values()].flatMap((o) => (o.mix ? [o.mix] : []));
    }
    return this.mixList;
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
      if (out.mix) this.mixesDirty = true;
      else this.dirty = true;
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

function weight(o: Output): number {
  return o.channels.length * CODEC_WEIGHT[o.codec];
}

function record(o: Output): number[] {
  return [o.id, CODEC_IDS[o.codec], o.channels.length, ...o.channels];
}
