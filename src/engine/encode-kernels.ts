/**
 * Pure encode kernels: render the distinct outputs of one ring slot into one
 * ArrayBuffer that holds every packet plus an index. Runs in a pool worker or,
 * for a tiny load, on the main thread; the same code either way.
 *
 * Output spec (packed Int32Array, one record after another):
 *   [outputId, codecId, channelCount, ch0, ch1, ...]
 * The result's layout (an index, then the packets with headroom for the
 * transport's frame header) is engine/encode-result.ts's.
 */
import { deflateSync, constants as zc } from 'node:zlib';
import { AudioRing, SLOT_HEADER_WORDS } from './audio-ring';
import { firstPacketAt, packetSpan, writeCount, writeEntry } from './encode-result';
import { CODEC_IDS, headerBytesFor, writeHeader } from '../protocol';

const PCM16 = CODEC_IDS.pcm16;
const PCM24 = CODEC_IDS.pcm24;
const DEFLATE = CODEC_IDS.deflate;

/** zlib level for the deflate codec: speed over ratio, since late audio is worthless. */
export const DEFLATE_LEVEL = zc.Z_BEST_SPEED;


function countSpecs(spec: Int32Array): number {
  let count = 0;
  for (let p = 0; p < spec.length; p += 3 + spec[p + 2]!) count++;
  return count;
}

function pcmBytes(codec: number, frames: number, n: number): number {
  return frames * n * (codec === PCM24 ? 3 : 2);
}

/** Extracts the channel subset into pcm16 at `out[byteOffset..]` (byteOffset even). */
function writePcm16(ring: AudioRing, base: number, ch: Int32Array, chStart: number, n: number, out: ArrayBuffer, byteOffset: number): void {
  const frames = ring.shape.periodFrames;
  const stride = ring.shape.channels;
  const s = ring.samples;
  const o = new Int16Array(out, byteOffset, frames * n);
  for (let c = 0; c < n; c++) {
    const src = base + ch[chStart + c]!;
    for (let f = 0, si = src, oi = c; f < frames; f++, si += stride, oi += n) o[oi] = s[si]! >> 16;
  }
}

function writePcm24(ring: AudioRing, base: number, ch: Int32Array, chStart: number, n: number, out: Uint8Array, byteOffset: number): void {
  const frames = ring.shape.periodFrames;
  const stride = ring.shape.channels;
  const s = ring.samples;
  for (let c = 0; c < n; c++) {
    const src = base + ch[chStart + c]!;
    for (let f = 0, si = src, oi = byteOffset + c * 3; f < frames; f++, si += stride, oi += n * 3) {
      const v = s[si]!;
      out[oi] = v >> 8;
      out[oi + 1] = v >> 16;
      out[oi + 2] = v >> 24;
    }
  }
}

/**
 * Renders every output in `spec` for ring slot `slot`. Returns a fresh
 * ArrayBuffer (transferable: one allocation per call, not per client).
 */
export function encodeSlot(ring: AudioRing, slot: number, spec: Int32Array): ArrayBuffer {
  const frames = ring.shape.periodFrames;
  const h = slot * SLOT_HEADER_WORDS;
  const seq = Number(ring.headers[h]!);
  const samplePos = ring.headers[h + 1]!;
  const captureNs = ring.headers[h + 2]!;
  const flags = Number(ring.headers[h + 3]!);
  const base = slot * ring.samplesPerSlot;
  const count = countSpecs(spec);

  // Deflate payloads are sized only after compressing; do them first.
  let deflated: Buffer[] | undefined;
  let total = firstPacketAt(count);
  for (let p = 0, i = 0; p < spec.length; p += 3 + spec[p + 2]!, i++) {
    const codec = spec[p + 1]!;
    const n = spec[p + 2]!;
    let payload = pcmBytes(codec, frames, n);
    if (codec === DEFLATE) {
      const tmp = new ArrayBuffer(payload);
      writePcm16(ring, base, spec, p + 3, n, tmp, 0);
      const z = deflateSync(new Uint8Array(tmp), { level: DEFLATE_LEVEL });
      (deflated ??= [])[i] = z;
      payload = z.length;
    }
    total += packetSpan(headerBytesFor(n) + payload);
  }

  const out = new ArrayBuffer(total);
  const bytes = new Uint8Array(out);
  const view = new DataView(out);
  writeCount(view, count);
  let at = firstPacketAt(count);
  for (let p = 0, i = 0; p < spec.length; p += 3 + spec[p + 2]!, i++) {
    const id = spec[p]!;
    const codec = spec[p + 1]!;
    const n = spec[p + 2]!;
    const hb = writeHeader(view, at, {
      codec,
      frames,
      seq,
      rate: ring.shape.rate,
      samplePos,
      captureNs,
      flags,
      channels: spec.subarray(p + 3, p + 3 + n),
    });
    let len: number;
    if (codec === PCM16) {
      writePcm16(ring, base, spec, p + 3, n, out, at + hb);
      len = hb + pcmBytes(codec, frames, n);
    } else if (codec === PCM24) {
      writePcm24(ring, base, spec, p + 3, n, bytes, at + hb);
      len = hb + pcmBytes(codec, frames, n);
    } else {
      const z = deflated![i]!;
      bytes.set(z, at + hb);
      len = hb + z.length;
    }
    writeEntry(view, i, id, at, len);
    at += packetSpan(len);
  }
  return out;
}
