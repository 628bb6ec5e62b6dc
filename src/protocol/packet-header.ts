/**
 * The binary audio packet's header, protocol layout version 1
 * (docs/protocol.md §5): the one writer (the box's encoders) and the one
 * parser (the client library, the CLI, the bench and the tests). All
 * integers little-endian. Framing knows bytes only, never clients or
 * sockets. Portable: no Node or DOM imports.
 *
 *  off size field
 *    0    2 magic "SB" (0x53 0x42)
 *    2    1 packet layout version (1)
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
import { CODEC_NAMES, type PacketCodec } from './codecs.js';

export const MAGIC0 = 0x53;
export const MAGIC1 = 0x42;
/** Byte 2: the packet layout version (not the control protocol's `hello.protocol`). */
export const PACKET_VERSION = 1;
export const FIXED_HEADER_BYTES = 36;
/** Most channels one packet carries. */
export const MAX_PACKET_CHANNELS = 64;

/** Byte offsets of the fixed header's fields, for readers that need one field fast (the bench, fan-out). */
export const OFFSET = {
  codec: 3,
  headerBytes: 4,
  frames: 6,
  seq: 8,
  rate: 12,
  samplePos: 16,
  captureNs: 24,
  channelCount: 32,
  flags: 33,
} as const;

/** Flag bit 0: samples were lost on the box before this packet (§7). */
export const FLAG_DISCONTINUITY = 1;
/** Flag bit 1: a personal mix; the channel list is the mix's outputs, [0, 1] (L, R) or [0] (mono), not device channels. */
export const FLAG_MIX = 2;

/** headerBytes the box writes for `channelCount` channels. */
export function headerBytesFor(channelCount: number): number {
  return FIXED_HEADER_BYTES + ((channelCount + 3) & ~3);
}

export interface PacketHeaderFields {
  /** Codec id (CODEC_IDS). */
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
  view.setUint8(offset + 2, PACKET_VERSION);
  view.setUint8(offset + OFFSET.codec, f.codec);
  view.setUint16(offset + OFFSET.headerBytes, hb, true);
  view.setUint16(offset + OFFSET.frames, f.frames, true);
  view.setUint32(offset + OFFSET.seq, f.seq >>> 0, true);
  view.setUint32(offset + OFFSET.rate, f.rate, true);
  view.setBigUint64(offset + OFFSET.samplePos, f.samplePos, true);
  view.setBigUint64(offset + OFFSET.captureNs, f.captureNs, true);
  view.setUint8(offset + OFFSET.channelCount, n);
  view.setUint8(offset + OFFSET.flags, f.flags);
  view.setUint16(offset + 34, 0, true);
  for (let i = 0; i < n; i++) view.setUint8(offset + FIXED_HEADER_BYTES + i, f.channels[i]!);
  for (let i = FIXED_HEADER_BYTES + n; i < hb; i++) view.setUint8(offset + i, 0);
  return hb;
}

/** The header of one packet, as the box wrote it. */
export interface PacketHeader {
  version: number;
  codec: PacketCodec;
  /** Offset of the payload: always read it, never assume 36 + channelCount. */
  headerBytes: number;
  /** Frames in this packet (the period; for opus the Opus frame). */
  frames: number;
  /** uint32, wraps to 0. */
  seq: number;
  rate: number;
  /** Frames captured before this packet's first frame (uint64). */
  samplePos: bigint;
  /** Box CLOCK_MONOTONIC, ns (uint64). */
  captureNs: bigint;
  flags: number;
  discontinuity: boolean;
  mix: boolean;
  /** Device channel (or mix output) of each payload channel, in payload order. */
  channels: number[];
}

/** Thrown for a packet that breaks §5 of the protocol. */
export class PacketError extends RangeError {
  override name = 'PacketError';
}

/** Parses the header of a packet. Throws {@link PacketError} naming the bad field, its value and what is allowed. */
export function parseHeader(bytes: Uint8Array): PacketHeader {
  if (bytes.length < FIXED_HEADER_BYTES) throw new PacketError(`packet is ${bytes.length} bytes; the header alone needs at least ${FIXED_HEADER_BYTES}`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint8(0) !== MAGIC0 || v.getUint8(1) !== MAGIC1) {
    throw new PacketError(`packet magic is 0x${hex2(v.getUint8(0))} 0x${hex2(v.getUint8(1))}; allowed: 0x53 0x42 ("SB")`);
  }
  const version = v.getUint8(2);
  if (version !== PACKET_VERSION) throw new PacketError(`packet layout version is ${version}; this client reads version ${PACKET_VERSION}`);
  const codecId = v.getUint8(OFFSET.codec);
  const codec = CODEC_NAMES[codecId];
  if (!codec) throw new PacketError(`packet codec id is ${codecId}; allowed: 1 (pcm16), 2 (pcm24), 3 (deflate), 4 (opus)`);
  const headerBytes = v.getUint16(OFFSET.headerBytes, true);
  const n = v.getUint8(OFFSET.channelCount);
  if (n < 1 || n > MAX_PACKET_CHANNELS) throw new PacketError(`packet channelCount is ${n}; allowed: 1-${MAX_PACKET_CHANNELS}`);
  if (headerBytes < FIXED_HEADER_BYTES + n || headerBytes > bytes.length) {
    throw new PacketError(`packet headerBytes is ${headerBytes}; allowed for ${n} channels in a ${bytes.length}-byte packet: ${FIXED_HEADER_BYTES + n}-${bytes.length}`);
  }
  const frames = v.getUint16(OFFSET.frames, true);
  if (frames < 1) throw new PacketError('packet frames is 0; allowed: 1-65535');
  const rate = v.getUint32(OFFSET.rate, true);
  if (rate < 1) throw new PacketError('packet rate is 0 Hz; allowed: above 0');
  const channels = new Array<number>(n);
  for (let i = 0; i < n; i++) channels[i] = v.getUint8(FIXED_HEADER_BYTES + i);
  const flags = v.getUint8(OFFSET.flags);
  return {
    version,
    codec,
    headerBytes,
    frames,
    seq: v.getUint32(OFFSET.seq, true),
    rate,
    samplePos: v.getBigUint64(OFFSET.samplePos, true),
    captureNs: v.getBigUint64(OFFSET.captureNs, true),
    flags,
    discontinuity: (flags & FLAG_DISCONTINUITY) !== 0,
    mix: (flags & FLAG_MIX) !== 0,
    channels,
  };
}

/** A packet's header and its payload (a view into the same bytes). */
export interface ParsedPacket extends PacketHeader {
  payload: Uint8Array;
}

/** Parses a packet into its header and payload view. Throws {@link PacketError}. */
export function parsePacket(bytes: Uint8Array): ParsedPacket {
  const h = parseHeader(bytes) as ParsedPacket;
  h.payload = bytes.subarray(h.headerBytes);
  return h;
}

export function hex2(b: number): string {
  return b.toString(16).padStart(2, '0');
}
