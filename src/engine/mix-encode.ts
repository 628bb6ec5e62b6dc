/**
 * Renders the distinct personal mixes of one ring slot into packets, in the
 * same result layout as encode-kernels.ts (index, then 4-aligned packets each
 * preceded by PACKET_HEADROOM free bytes), so the send pool fans both out the
 * same way. One ArrayBuffer per period for all mixes; nothing per client.
 */
import type { AudioRing } from './audio-ring';
import { SLOT_HEADER_WORDS } from './audio-ring';
import { PACKET_HEADROOM } from './encode-kernels';
import { limit, type LimiterState } from './limiter';
import { floatToPcm16, floatToPcm24, renderMix, type MixState } from './mix-kernel';
import { CODEC_IDS, FLAG_MIX, headerBytesFor, writeHeader } from './packet-format';

/** One distinct mix with its preallocated render state. */
export interface MixRender {
  readonly id: number;
  /** CODEC_IDS.pcm16 or CODEC_IDS.pcm24. */
  codecId: number;
  readonly state: MixState;
  readonly limiter: LimiterState;
  /** Float scratch for one period, stereo-sized. */
  readonly buf: Float32Array;
}

const STEREO = [0, 1];
const MONO = [0];

function align4(n: number): number {
  return (n + 3) & ~3;
}

export function encodeMixes(ring: AudioRing, slot: number, mixes: readonly MixRender[]): ArrayBuffer {
  const frames = ring.shape.periodFrames;
  const h = slot * SLOT_HEADER_WORDS;
  const seq = Number(ring.headers[h]!);
  const samplePos = ring.headers[h + 1]!;
  const captureNs = ring.headers[h + 2]!;
  const flags = Number(ring.headers[h + 3]!) | FLAG_MIX;
  const indexBytes = 4 + mixes.length * 12;
  let total = align4(indexBytes) + PACKET_HEADROOM;
  for (const m of mixes) {
    const n = m.state.outChannels;
    total += align4(headerBytesFor(n) + frames * n * (m.codecId === CODEC_IDS.pcm24 ? 3 : 2)) + PACKET_HEADROOM;
  }
  const out = new ArrayBuffer(total);
  const view = new DataView(out);
  const bytes = new Uint8Array(out);
  view.setUint32(0, mixes.length, true);
  let at = align4(indexBytes) + PACKET_HEADROOM;
  for (let i = 0; i < mixes.length; i++) {
    const m = mixes[i]!;
    const n = m.state.outChannels;
    renderMix(ring, slot, m.state, m.buf);
    limit(m.buf, frames * n, n, m.limiter);
    const hb = writeHeader(view, at, { codec: m.codecId, frames, seq, rate: ring.shape.rate, samplePos, captureNs, flags, channels: n === 2 ? STEREO : MONO });
    let len: number;
    if (m.codecId === CODEC_IDS.pcm24) {
      floatToPcm24(m.buf, frames * n, bytes, at + hb);
      len = hb + frames * n * 3;
    } else {
      floatToPcm16(m.buf, frames * n, new Int16Array(out, at + hb, frames * n));
      len = hb + frames * n * 2;
    }
    view.setUint32(4 + i * 12, m.id, true);
    view.setUint32(8 + i * 12, at, true);
    view.setUint32(12 + i * 12, len, true);
    at += align4(len) + PACKET_HEADROOM;
  }
  return out;
}
