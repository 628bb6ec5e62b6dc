import type { Codec } from '../appliance/config-schema';
import { createLimiter, configureLimiter, type LimiterOptions } from '../engine/limiter';
import type { MixRender } from '../engine/mix-encode';
import { createMixState, setMixTargets, type MixParams } from '../engine/mix-kernel';
import type { OpusFrameMs } from '../engine/opus-encoder';
import { OpusStream } from '../engine/opus-stream';
import { CODEC_IDS, type PacketCodec } from '../engine/packet-format';

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
  /** A channel codec, or a mix codec (opus only for mixes). */
  codec: PacketCodec;
  readonly channels: readonly number[];
  readonly sinks: Set<PacketSink>;
  readonly mix: MixRender | null;
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
      this.applyMix(current.mix, req, periodFrames);
      this.byKey.delete(current.key);
      current.key = key;
      current.codec = req.codec;
      this.byKey.set(key, current);
      return current;
    }
    const mix: MixRender = {
      id: this.allocId(),
      codecId: CODEC_IDS[req.codec],
      state: createMixState(MIX_MAX_CHANNELS),
      limiter: createLimiter(rate, req.limiter),
      buf: new Float32Array(periodFrames * 2),
      opus: null,
    };
    if (current?.mix) {
      mix.state.curL.set(current.mix.state.curL);
      mix.state.curR.set(current.mix.state.curR);
      mix.limiter.gain = current.mix.limiter.gain;
    }
    this.applyMix(mix, req, periodFrames);
    const out: Output = { id: mix.id, key, codec: req.codec, channels: [], sinks: new Set([sink]), mix };
    this.add(out);
    if (current) this.unsubscribe(sink, current);
    return out;
  }

  private applyMix(mix: MixRender, req: MixRequest, periodFrames: number): void {
    // The Opus stream first: it is the step that can refuse (a bad frame or bitrate), and then nothing has changed.
    mix.opus = this.opusStreamFor(mix, req, periodFrames);
    mix.codecId = CODEC_IDS[req.codec];
    setMixTargets(mix.state, req.params);
    configureLimiter(mix.limiter, req.limiter);
  }

  /**
   * The mix's Opus stream for `req`: kept when frame and channel count are
   * unchanged (a bitrate change applies from the next frame), new otherwise
   * (an encoder's channel count is fixed, and a new frame size restarts the
   * re-blocker), none for a pcm mix.
   */
  private opusStreamFor(mix: MixRender, req: MixRequest, periodFrames: number): OpusStream | null {
    if (req.codec !== 'opus' || !req.opus) return null;
    const channels = req.params.output === 'mono' ? 1 : 2;
    const bitrate = req.opus.bitrateKbps * 1000;
    const cur = mix.opus;
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

// Only channel outputs (mix === null) reach these; their codec is a channel codec.
function weight(o: Output): number {
  return o.channels.length * CODEC_WEIGHT[o.codec as Codec];
}

function record(o: Output): number[] {
  return [o.id, CODEC_IDS[o.codec], o.channels.length, ...o.channels];
}
