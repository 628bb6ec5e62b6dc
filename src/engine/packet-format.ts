/**
 * Binary audio packet, protocol version 1 (docs/protocol.md). All integers
 * little-endian. Framing knows bytes only, never clients or sockets.
 *
 *  off size field
 *    0    2 magic "SB" (0x53 0x42)
 *    2    1 protocol version (1)
 *    3    1 codec (1 pcm16, 2 pcm24, 3 deflate, 4 opus)
 *    4    2 headerBytes (36 + channelCount rounded up to a multiple of 4)
 *    6    2 frames in this packet (the period; for opus the Opus frame: 120, 240 or 480)
 *    8    4 seq: period sequence number (opus: frame counter of that mix's stream); wraps at 2^32
 *   12    4 sample rate, Hz
 *   16    8 samplePos: frames captured before this packet's first frame
 *   24    8 captureNs: box monotonic clock (CLOCK_MONOTONIC) at capture, ns
 *   32    1 channelCount
 *   33    1 flags (bit 0: discontinuity before this packet; bit 1: personal mix)
 *   34    2 reserved, 0
 *   36    N channel numbers (0-based device channels, in payload order), zero padded
 *  hdr     payload: frames x channelCount interleaved samples (opus: exactly one Opus packet)
 */
import type { Codec } from '../appliance/config-schema';

export const PROTOCOL_VERSION = 1;
export const MAGIC0 = 0x53;
export const MAGIC1 = 0x42;
export const FIXED_HEADER_BYTES = 36;
/** Offset of the flags byte in a packet. */
export const FLAGS_OFFSET = 33;
export const FLAG_DISCONTINUITY = 1;
/** The packet is a personal mix rendered on the box: its channel list is the mix's outputs, [0, 1] (L, R) or [0] (mono). */
export const FLAG_MIX = 2;

/** Codecs a packet can carry: the channel codecs, plus opus, which only personal mixes use. */
export type PacketCodec = Codec | 'opus';
export const CODEC_IDS: Readonly<Record<PacketCodec, number>> = { pcm16: 1, pcm24: 2, deflate: 3, opus: 4 };
export const CODEC_NAMES: readonly (PacketCodec | undefined)[] = [undefined, 'pcm16', 'pcm24', 'deflate', 'opus'];

export function headerBytesFor(channelCount: number): number {
  return FIXED_HEADER_BYTES + ((channelCount + 3) & ~3);
}

export interface PacketHeaderFields {
  codec: number;
  frames: number;
  seq: number;
  rate: number;
  samplePos: bigint;
  captureNs: bigint;
  flags: number;
  channels: ArrayLike<number>;
}

/** Writes the header at `offset` of `view`; returns the header length. */
export function writeHeader(view: DataView, offset: number, f: PacketHeaderFields): number {
  const n = f.channels.length;
  const hb = headerBytesFor(n);
  view.setUint8(offset, MAGIC0);
  view.setUint8(offset + 1, MAGIC1);
  view.setUint8(offset + 2, PROTOCOL_VERSION);
  view.setUint8(offset + 3, f.codec);
  view.setUint16(offset + 4, hb, true);
  view.setUint16(offset + 6, f.frames, true);
  view.setUint32(offset + 8, f.seq >>> 0, true);
  view.setUint32(offset + 12, f.rate, true);
  view.setBigUint64(offset + 16, f.samplePos, true);
  view.setBigUint64(offset + 24, f.captureNs, true);
  view.setUint8(offset + 32, n);
  view.setUint8(offset + FLAGS_OFFSET, f.flags);
  view.setUint16(offset + 34, 0, true);
  for (let i = 0; i < n; i++) view.setUint8(offset + FIXED_HEADER_BYTES + i, f.channels[i]!);
  for (let i = FIXED_HEADER_BYTES + n; i < hb; i++) view.setUint8(offset + i, 0);
  return hb;
}

export interface ParsedPacket {
  version: number;
  codec: PacketCodec;
  headerBytes: number;
  frames: number;
  seq: number;
  rate: number;
  samplePos: bigint;
  captureNs: bigint;
  flags: number;
  channels: number[];
  payload: Uint8Array;
}

/** Parses a packet (for clients, tests and the bench). Throws RangeError on a malformed one. */
export function parsePacket(bytes: Uint8Array): ParsedPacket {
  if (bytes.length < FIXED_HEADER_BYTES) throw new RangeError(`packet is ${bytes.length} bytes; at least ${FIXED_HEADER_BYTES} needed`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint8(0) !== MAGIC0 || v.getUint8(1) !== MAGIC1) throw new RangeError('packet magic is not "SB"');
  const version = v.getUint8(2);
  const codec = CODEC_NAMES[v.getUint8(3)];
  if (!codec) throw new RangeError(`packet codec id ${v.getUint8(3)} is unknown; known: 1-4`);
  const headerBytes = v.getUint16(4, true);
  const n = v.getUint8(32);
  if (headerBytes < headerBytesFor(n) || headerBytes > bytes.length) throw new RangeError(`packet headerBytes ${headerBytes} is invalid for ${n} channels`);
  const channels: number[] = [];
  for (let i = 0; i < n; i++) channels.push(v.getUint8(FIXED_HEADER_BYTES + i));
  return {
    version,
    codec,
    headerBytes,
    frames: v.getUint16(6, true),
    seq: v.getUint32(8, true),
    rate: v.getUint32(12, true),
    samplePos: v.getBigUint64(16, true),
    captureNs: v.getBigUint64(24, true),
    flags: v.getUint8(FLAGS_OFFSET),
    channels,
    payload: bytes.subarray(headerBytes),
  };
}
