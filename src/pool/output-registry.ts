import type { Codec } from '../appliance/config-schema';
import { CODEC_IDS } from '../engine/packet-format';

/** Anything that takes encoded packets: a client connection. */
export interface PacketSink {
  /** `frame` is one packet, already framed for the wire. Main thread; must never block or await. */
  pushPacket(frame: Buffer, arrivalMs: number): void;
}

/** One distinct output: a codec and an ordered channel list, shared by every client that wants exactly it. */
export interface Output {
  readonly id: number;
  readonly key: string;
  readonly codec: Codec;
  readonly channels: readonly number[];
  readonly sinks: Set<PacketSink>;
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

  static keyOf(codec: Codec, channels: readonly number[]): string {
    return `${codec}:${channels.join(',')}`;
  }

  /** Adds `sink` to the output for (codec, channels), creating it if new. */
  subscribe(sink: PacketSink, codec: Codec, channels: readonly number[]): Output {
    const key = OutputRegistry.keyOf(codec, channels);
    let out = this.byKey.get(key);
    if (!out) {
      out = { id: this.nextId++, key, codec, channels: [...channels], sinks: new Set() };
      if (this.nextId > 0x7fffffff) this.nextId = 1;
      this.byKey.set(key, out);
      this.byId.set(out.id, out);
      this.dirty = true;
    }
    out.sinks.add(sink);
    return out;
  }

  unsubscribe(sink: PacketSink, out: Output): void {
    out.sinks.delete(sink);
    if (out.sinks.size === 0 && this.byKey.get(out.key) === out) {
      this.byKey.delete(out.key);
      this.byId.delete(out.id);
      this.dirty = true;
    }
  }

  get(id: number): Output | undefined {
    return this.byId.get(id);
  }

  get size(): number {
    return this.byKey.size;
  }

  all(): IterableIterator<Output> {
    return this.byKey.values();
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
    const outs = [...this.byKey.values()].sort((a, b) => weight(b) - weight(a));
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
