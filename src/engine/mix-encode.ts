/**
 * Renders the distinct personal mixes of one ring slot into packets, in the
 * same result layout as encode-kernels.ts (index, then 4-aligned packets each
 * preceded by PACKET_HEADROOM free bytes), so the send pool fans both out the
 * same way. One ArrayBuffer per period for all mixes; nothing per client.
 *
 * A pcm mix yields exactly one packet per period. An opus mix yields 0..n
 * (its OpusStream re-blocks periods into Opus frames), so several index
 * entries may carry the same output id, in stream order; fan-out walks the
 * index in order, which keeps them in order on every socket. Opus needs a
 * 48 kHz capture: at another rate (a device that came back at 44.1 kHz) an
 * opus mix renders nothing until the rate is 48 kHz again.
 */
import type { AudioRing } from './audio-ring';
import { SLOT_HEADER_WORDS } from './audio-ring';
import { PACKET_HEADROOM } from './encode-kernels';
import { limit, type LimiterState } from './limiter';
import { floatToPcm16, floatToPcm24, renderMix, type MixState } from './mix-kernel';
import { OPUS_RATE } from './opus-encoder';
import type { OpusStream } from './opus-stream';
import { CODEC_IDS, FLAG_MIX, headerBytesFor, writeHeader } from './packet-format';

/** One distinct mix with its preallocated render state. */
export interface MixRender {
  readonly id: number;
  /** CODEC_IDS.pcm16, CODEC_IDS.pcm24 or CODEC_IDS.opus. */
  codecId: number;
  readonly state: MixState;
  readonly limiter: LimiterState;
  /** Float scratch for one period, stereo-sized. */
  readonly buf: Float32Array;
  /** The mix's re-blocker and encoder when codecId is opus, else null. */
  opus: OpusStream | null;
}

const STEREO = [0, 1];
const MONO = [0];
const OPUS = CODEC_IDS.opus;

function align4(n: number): number {
  return (n + 3) & ~3;
}

export function encodeMixes(ring: AudioRing, slot: number, mixes: readonly MixRender[]): ArrayBuffer {
  const frames = ring.shape.periodFrames;
  const rate = ring.shape.rate;
  const h = slot * SLOT_HEADER_WORDS;
  const seq = Number(ring.headers[h]!);
  const samplePos = ring.headers[h + 1]!;
  const captureNs = ring.headers[h + 2]!;
  const periodFlags = Number(ring.headers[h + 3]!);
  // Pass 1: render, limit and (opus) encode every mix, so the result's size is known before it is allocated.
  let count = 0;
  let packetBytes = 0;
  for (const m of mixes) {
    const n = m.state.outChannels;
    renderMix(ring, slot, m.state, m.buf);
    limit(m.buf, frames * n, n, m.limiter);
    if (m.codecId === OPUS) {
      const o = m.opus!;
      if (rate !== OPUS_RATE || o.channels !== n) {
        o.count = 0;
        continue;
      }
      o.pushFloat(m.buf, frames, samplePos, captureNs, periodFlags);
      for (let k = 0; k < o.count; k++) packetBytes += align4(headerBytesFor(n) + o.packets[k]!.data.length) + PACKET_HEADROOM;
      count += o.count;
    } else {
      packetBytes += align4(headerBytesFor(n) + frames * n * (m.codecId === CODEC_IDS.pcm24 ? 3 : 2)) + PACKET_HEADROOM;
      count++;
    }
  }
  const indexBytes = 4 + count * 12;
  const out = new ArrayBuffer(align4(indexBytes) + PACKET_HEADROOM + packetBytes);
  const view = new DataView(out);
  const bytes = new Uint8Array(out);
  view.setUint32(0, count, true);
  let at = align4(indexBytes) + PACKET_HEADROOM;
  let entry = 4;
  // Pass 2: write the packets, in mix order and, within an opus mix, in frame order.
  for (const m of mixes) {
    const n = m.state.outChannels;
    const channels = n === 2 ? STEREO : MONO;
    if (m.codecId === OPUS) {
      const o = m.opus!;
      for (let k = 0; k < o.count; k++) {
        const p = o.packets[k]!;
        const hb = writeHeader(view, at, { codec: OPUS, frames: o.frameFrames, seq: p.seq, rate, samplePos: p.samplePos, captureNs: p.captureNs, flags: p.flags | FLAG_MIX, channels });
        bytes.set(p.data, at + hb);
        const len = hb + p.data.length;
        view.setUint32(entry, m.id, true);
        view.setUint32(entry + 4, at, true);
        view.setUint32(entry + 8, len, true);
        entry += 12;
        at += align4(len) + PACKET_HEADROOM;
      }
      continue;
    }
    const hb = writeHeader(view, at, { codec: m.codecId, frames, seq, rate, samplePos, captureNs, flags: periodFlags | FLAG_MIX, channels });
    let len: number;
    if (m.codecId === CODEC_IDS.pcm24) {
      floatToPcm24(m.buf, frames * n, bytes, at + hb);
      len = hb + frames * n * 3;
    } else {
      floatToPcm16(m.buf, frames * n, new Int16Array(out, at + hb, frames * n));
      len = hb + frames * n * 2;
    }
    view.setUint32(entry, m.id, true);
    view.setUint32(entry + 4, at, true);
    view.setUint32(entry + 8, len, true);
    entry += 12;
    at += align4(len) + PACKET_HEADROOM;
  }
  return out;
}
