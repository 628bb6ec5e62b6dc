/**
 * Send-pool worker entry (piscina). Renders its shard of one period from the
 * shared ring and moves the result back without a copy: either channel
 * outputs (EncodeTask) or personal mixes (MixTask), whose carried state lives
 * in the mix slab (engine/mix-slab.ts) the pool shares with every worker.
 */
import { Piscina } from 'piscina';
import { AudioRing } from '../engine/audio-ring';
import { encodeSlot } from '../engine/encode-kernels';
import { renderMixPackets, type MixItem } from '../engine/mix-encode';
import { MixSlab, slabLimiter, slabMixState } from '../engine/mix-slab';

export interface EncodeTask {
  kind?: undefined;
  slot: number;
  channels: number;
  rate: number;
  spec: Int32Array;
}

/** Render these mixes of ring slot `slot`: spec is [output id, slab slot, codec id] per mix. */
export interface MixTask {
  kind: 'mix';
  slot: number;
  channels: number;
  rate: number;
  spec: Int32Array;
}

interface WorkerData {
  ringSab: SharedArrayBuffer;
  periodFrames: number;
  slotCount: number;
  mixSab: SharedArrayBuffer;
  mixCapacity: number;
}

interface WorkerMix extends MixItem {
  id: number;
}

const data = Piscina.workerData as WorkerData;
let ring: AudioRing | undefined;
let slab: MixSlab | undefined;
/** Views of each slab slot, made the first time this worker renders it, kept for the pool's life. */
const views: (WorkerMix | undefined)[] = [];
/** The current task's mixes (reused, so a task allocates nothing but its result). */
const list: WorkerMix[] = [];

export default function encode(task: EncodeTask | MixTask): unknown {
  if (!ring || ring.shape.channels !== task.channels || ring.shape.rate !== task.rate) {
    ring = new AudioRing({ channels: task.channels, rate: task.rate, periodFrames: data.periodFrames, slotCount: data.slotCount }, data.ringSab);
  }
  if (task.kind !== 'mix') return Piscina.move(encodeSlot(ring, task.slot, task.spec));
  const t0 = performance.now();
  slab ??= new MixSlab(data.mixCapacity, data.periodFrames, data.mixSab);
  const spec = task.spec;
  let n = 0;
  for (let i = 0; i < spec.length; i += 3, n++) {
    const s = spec[i + 1]!;
    let m = views[s];
    if (!m) {
      m = { id: 0, codecId: 0, state: slabMixState(slab, s), limiter: slabLimiter(slab, s), buf: new Float32Array(data.periodFrames * 2), pcm: slab.pcm(s) };
      views[s] = m;
    }
    m.id = spec[i]!;
    m.codecId = spec[i + 2]!;
    list[n] = m;
  }
  // The last 8 bytes carry this render's time, µs, for the pool's mix cost.
  const ab = renderMixPackets(ring, task.slot, list, n, 8);
  new DataView(ab).setFloat64(ab.byteLength - 8, (performance.now() - t0) * 1000, true);
  return Piscina.move(ab);
}
