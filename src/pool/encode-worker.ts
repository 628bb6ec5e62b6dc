/**
 * Send-pool worker entry (piscina). Renders its shard of one period's
 * distinct outputs from the shared ring and moves the result back without a copy.
 */
import { Piscina } from 'piscina';
import { AudioRing } from '../engine/audio-ring';
import { encodeSlot } from '../engine/encode-kernels';

export interface EncodeTask {
  slot: number;
  channels: number;
  rate: number;
  spec: Int32Array;
}

interface WorkerData {
  ringSab: SharedArrayBuffer;
  periodFrames: number;
  slotCount: number;
}

const data = Piscina.workerData as WorkerData;
let ring: AudioRing | undefined;

export default function encode(task: EncodeTask): unknown {
  if (!ring || ring.shape.channels !== task.channels || ring.shape.rate !== task.rate) {
    ring = new AudioRing({ channels: task.channels, rate: task.rate, periodFrames: data.periodFrames, slotCount: data.slotCount }, data.ringSab);
  }
  return Piscina.move(encodeSlot(ring, task.slot, task.spec));
}
