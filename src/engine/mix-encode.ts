/**
 * Renders the distinct personal mixes of one ring slot into packets, in the
 * same result layout as encode-kernels.ts (index, then 4-aligned packets each
 * preceded by PACKET_HEADROOM free bytes), so the send pool fans both out the
 * same way. One ArrayBuffer per period (per pool shard) for all pcm mixes, and
 * one more for the opus mixes' packets when there are any; nothing per client.
 *
 * Two steps, because an Opus encoder is native memory that cannot follow a
 * mix into a pool worker:
 * - {@link renderMixPackets} renders and limits each mix (its carried state
 *   in the mix slab, engine/mix-slab.ts) and writes a pcm16/pcm24 packet, or,
 *   for an opus mix, quantises the period to Int16 into the mix's slab pcm.
 *   Pure and allocation-free but for its result; runs in a pool worker or on
 *   the main thread alike, with the same result.
 * - {@link opusMixPackets} (main thread, where the encoders live) pushes each
 *   opus mix's Int16 period into its OpusStream (re-blocker + encoder) and
 *   writes the 0..n packets it completes. Several index entries may then carry
 *   the same output id, in stream order; fan-out walks the index in order,
 *   which keeps them in order on every socket.
 *
 * Opus needs a 48 kHz capture: at another rate (a device that came back at
 * 44.1 kHz) an opus mix sends nothing until the rate is 48 kHz again.
 */
import type { AudioRing } from './audio-ring';
import { SLOT_HEADER_WORDS } from './audio-ring';
import { firstPacketAt, packetSpan, writeCount, writeEntry } from './encode-result';
import { limit, type LimiterState } from './limiter';
import { floatToPcm16, floatToPcm24, renderMix, type MixState } from './mix-kernel';
import { OPUS_RATE } from './opus-encoder';
import type { OpusStream } from './opus-stream';
import { CODEC_IDS, FLAG_MIX, headerBytesFor, writeHeader } from '../protocol';

/** What rendering one mix needs: its carried state and this thread's scratch. */
export interface MixItem {
  readonly id: number;
  /** CODEC_IDS.pcm16, CODEC_IDS.pcm24 or CODEC_IDS.opus. */
  codecId: number;
  readonly state: MixState;
  readonly limiter: LimiterState;
  /** Float scratch for one period, stereo-sized. */
  readonly buf: Float32Array;
  /** Where an opus mix's quantised period goes (its slab slot's pcm). */
  readonly pcm: Int16Array;
}

/** One distinct mix as the main thread holds it. */
export interface MixRender extends MixItem {
  /** Its slot in the mix slab. */
  readonly slot: number;
  /** The mix's re-blocker and encoder when codecId is opus, else null. */
  opus: OpusStream | null;
}

const STEREO = [0, 1];
const MONO = [0];
const OPUS = CODEC_IDS.opus;

/**
 * Renders the first `count` items for ring slot `slot`; returns the pcm
 * mixes' packets (an opus mix leaves its period in `pcm` instead), with
 * `tailBytes` free bytes at the end of the buffer for the caller.
 */
export function renderMixPackets(ring: AudioRing, slot: number, items: readonly MixItem[], count = items.length, tailBytes = 0): ArrayBuffer {
  const frames = ring.shape.periodFrames;
  const h = slot * SLOT_HEADER_WORDS;
  let packets = 0;
  let packetBytes = 0;
  for (let i = 0; i < count; i++) {
    const m = items[i]!;
    const n = m.state.outChannels;
    renderMix(ring, slot, m.state, m.buf);
    limit(m.buf, frames * n, n, m.limiter);
    if (m.codecId === OPUS) floatToPcm16(m.buf, frames * n, m.pcm);
    else {
      packetBytes += packetSpan(headerBytesFor(n) + frames * n * (m.codecId === CODEC_IDS.pcm24 ? 3 : 2));
      packets++;
    }
  }
  const out = new ArrayBuffer(firstPacketAt(packets) + packetBytes + tailBytes);
  const view = new DataView(out);
  writeCount(view, packets);
  if (packets === 0) return out;
  const bytes = new Uint8Array(out);
  const seq = Number(ring.headers[h]!);
  const samplePos = ring.headers[h + 1]!;
  const captureNs = ring.headers[h + 2]!;
  const flags = Number(ring.headers[h + 3]!) | FLAG_MIX;
  let at = firstPacketAt(packets);
  let entry = 0;
  for (let i = 0; i < count; i++) {
    const m = items[i]!;
    if (m.codecId === OPUS) continue;
    const n = m.state.outChannels;
    const hb = writeHeader(view, at, { codec: m.codecId, frames, seq, rate: ring.shape.rate, samplePos, captureNs, flags, channels: n === 2 ? STEREO : MONO });
    let len: number;
    if (m.codecId === CODEC_IDS.pcm24) {
      floatToPcm24(m.buf, frames * n, bytes, at + hb);
      len = hb + frames * n * 3;
    } else {
      floatToPcm16(m.buf, frames * n, new Int16Array(out, at + hb, frames * n));
      len = hb + frames * n * 2;
    }
    writeEntry(view, entry++, m.id, at, len);
    at += packetSpan(len);
  }
  return out;
}

/**
 * Main thread, after {@link renderMixPackets} rendered `mixes` for ring slot
 * `slot`: encodes each opus mix's period; returns their packets, or null when
 * no frame completed in this period.
 */
export function opusMixPackets(ring: AudioRing, slot: number, mixes: readonly MixRender[]): ArrayBuffer | null {
  const frames = ring.shape.periodFrames;
  const rate = ring.shape.rate;
  const h = slot * SLOT_HEADER_WORDS;
  const samplePos = ring.headers[h + 1]!;
  const captureNs = ring.headers[h + 2]!;
  const periodFlags = Number(ring.headers[h + 3]!);
  let count = 0;
  let packetBytes = 0;
  for (const m of mixes) {
    const o = m.opus;
    if (m.codecId !== OPUS || o === null) continue;
    const n = m.state.outChannels;
    // A stream is made for the mix's output; a mismatch is a change still being staged.
    if (rate !== OPUS_RATE || o.channels !== n) {
      o.count = 0;
      continue;
    }
    o.push(m.pcm, frames, samplePos, captureNs, periodFlags);
    for (let k = 0; k < o.count; k++) packetBytes += packetSpan(headerBytesFor(n) + o.packets[k]!.data.length);
    count += o.count;
  }
  if (count === 0) return null;
  const out = new ArrayBuffer(firstPacketAt(count) + packetBytes);
  const view = new DataView(out);
  const bytes = new Uint8Array(out);
  writeCount(view, count);
  let at = firstPacketAt(count);
  let entry = 0;
  for (const m of mixes) {
    const o = m.opus;
    if (m.codecId !== OPUS || o === null) continue;
    const channels = o.channels === 2 ? STEREO : MONO;
    for (let k = 0; k < o.count; k++) {
      const p = o.packets[k]!;
      const hb = writeHeader(view, at, { codec: OPUS, frames: o.frameFrames, seq: p.seq, rate, samplePos: p.samplePos, captureNs: p.captureNs, flags: p.flags | FLAG_MIX, channels });
      bytes.set(p.data, at + hb);
      const len = hb + p.data.length;
      writeEntry(view, entry++, m.id, at, len);
      at += packetSpan(len);
    }
  }
  return out;
}
