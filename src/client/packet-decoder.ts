/**
 * Binary audio packets of the stagebox protocol, version 1 (docs/protocol.md,
 * section 5): the decoders of every codec the box sends
 * (pcm16, pcm24, deflate, opus) into interleaved Float32 samples in [-1, 1).
 *
 * Portable: no Node or DOM imports. The two codecs that need native help are
 * injected: `inflateRaw` (raw DEFLATE, RFC 1951) for `deflate`, and an Opus
 * decoder factory for `opus`. The header is read by the protocol module's
 * parser (src/protocol/packet-header.ts), the same one the box's tests and
 * bench use.
 */
import { hex2, PacketError, parseHeader, type PacketHeader } from '../protocol/packet-header.js';
import type { PacketCodec } from '../protocol/codecs.js';

export { CODEC_IDS, CODEC_NAMES, type PacketCodec } from '../protocol/codecs.js';
export { FIXED_HEADER_BYTES, FLAG_DISCONTINUITY, FLAG_MIX, PACKET_VERSION, PacketError, parseHeader, type PacketHeader } from '../protocol/packet-header.js';

/** Raw DEFLATE (RFC 1951) inflater. Node: zlib.inflateRawSync; browser: DecompressionStream('deflate-raw'). */
export type InflateRaw = (bytes: Uint8Array) => Uint8Array | Promise<Uint8Array>;

/** One Opus decoder for one stream (48000 Hz, 1 or 2 channels). */
export interface OpusDecoder {
  /** Decodes one Opus packet into interleaved samples in [-1, 1]. */
  decode(packet: Uint8Array): Float32Array | Promise<Float32Array>;
  /**
   * Packet-loss concealment for one lost frame of `frames` frames; optional. Without it nothing is put in for a lost
   * frame: the seq gap reaches the jitter buffer, which conceals it (and a recorder puts silence in).
   */
  conceal?(frames: number): Float32Array | Promise<Float32Array>;
  /** Releases native resources. */
  free?(): void;
}
export type CreateOpusDecoder = (rate: number, channels: number) => OpusDecoder;

/** pcm16 little-endian → float (x / 32768), `count` samples from `bytes[offset]`. Exact: every value is a float32. */
export function decodePcm16(bytes: Uint8Array, offset: number, count: number, out: Float32Array): void {
  for (let i = 0, o = offset; i < count; i++, o += 2) {
    out[i] = (((bytes[o]! | (bytes[o + 1]! << 8)) << 16) >> 16) / 32768;
  }
}

/** pcm24 little-endian → float (x / 8388608). Exact: 24 significant bits fit a float32. */
export function decodePcm24(bytes: Uint8Array, offset: number, count: number, out: Float32Array): void {
  for (let i = 0, o = offset; i < count; i++, o += 3) {
    out[i] = (((bytes[o]! | (bytes[o + 1]! << 8) | (bytes[o + 2]! << 16)) << 8) >> 8) / 8388608;
  }
}

/** Adler-32 (RFC 1950) of `bytes`. */
export function adler32(bytes: Uint8Array): number {
  let a = 1;
  let b = 0;
  // 5552 is the longest run before b can overflow 2^32 (zlib's NMAX).
  for (let i = 0; i < bytes.length; ) {
    const end = Math.min(i + 5552, bytes.length);
    for (; i < end; i++) {
      a += bytes[i]!;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/**
 * The raw DEFLATE data inside the zlib stream (RFC 1950) of a `deflate` payload, and its Adler-32. The box sends
 * a 2-byte header (no preset dictionary) and a big-endian Adler-32 trailer.
 */
export function unwrapZlib(payload: Uint8Array): { raw: Uint8Array; adler: number } {
  if (payload.length < 6) throw new PacketError(`deflate payload is ${payload.length} bytes; a zlib stream needs at least 6`);
  const cmf = payload[0]!;
  const flg = payload[1]!;
  if ((cmf & 0x0f) !== 8 || (cmf >> 4) > 7) throw new PacketError(`deflate payload's zlib CMF byte is 0x${hex2(cmf)}; allowed: method 8 (deflate), window up to 32 KiB`);
  if ((cmf * 256 + flg) % 31 !== 0) throw new PacketError(`deflate payload's zlib header 0x${hex2(cmf)}${hex2(flg)} fails its check (not a multiple of 31)`);
  if (flg & 0x20) throw new PacketError('deflate payload asks for a preset dictionary; the box never uses one');
  const t = payload.length - 4;
  const adler = ((payload[t]! << 24) | (payload[t + 1]! << 16) | (payload[t + 2]! << 8) | payload[t + 3]!) >>> 0;
  return { raw: payload.subarray(2, t), adler };
}

/** One decoded packet: its header and its samples, interleaved frames × channels. */
export interface DecodedPacket {
  header: PacketHeader;
  /** Interleaved samples in [-1, 1); a new array per packet, the caller may keep it. */
  samples: Float32Array;
  /** Frames in `samples` (for opus after a gap: the concealed frames come first, see `concealedFrames`). */
  frames: number;
  channels: number;
  /** Opus only: frames of the decoder's own loss concealment put in front of the packet's audio for a seq gap (0 without one). */
  concealedFrames: number;
}

export interface PacketDecoderOptions {
  inflateRaw?: InflateRaw;
  createOpusDecoder?: CreateOpusDecoder;
}

/**
 * Decodes the packets of one connection, in arrival order. Keeps the state the
 * protocol asks for: one long-lived Opus decoder per stream (reset on a
 * discontinuity or a change of frames, channels or rate; concealment on a seq
 * gap). pcm packets decode synchronously; deflate and opus return a Promise
 * when the injected inflater or decoder does.
 */
export class PacketDecoder {
  private readonly inflateRaw: InflateRaw | undefined;
  private readonly createOpus: CreateOpusDecoder | undefined;
  private opus: OpusDecoder | null = null;
  private opusKey = '';
  private opusLastSeq = -1;

  constructor(opts: PacketDecoderOptions = {}) {
    this.inflateRaw = opts.inflateRaw;
    this.createOpus = opts.createOpusDecoder;
  }

  /** Which codecs this decoder can handle with what it was given. */
  supports(codec: PacketCodec): boolean {
    if (codec === 'deflate') return this.inflateRaw !== undefined;
    if (codec === 'opus') return this.createOpus !== undefined;
    return true;
  }

  /** Decodes one packet. Throws (or rejects with) {@link PacketError} for a malformed one. */
  decode(bytes: Uint8Array): DecodedPacket | Promise<DecodedPacket> {
    const header = parseHeader(bytes);
    const n = header.channels.length;
    const count = header.frames * n;
    const off = header.headerBytes;
    switch (header.codec) {
      case 'pcm16': {
        checkLength(header, bytes.length - off, count * 2);
        const samples = new Float32Array(count);
        decodePcm16(bytes, off, count, samples);
        return { header, samples, frames: header.frames, channels: n, concealedFrames: 0 };
      }
      case 'pcm24': {
        checkLength(header, bytes.length - off, count * 3);
        const samples = new Float32Array(count);
        decodePcm24(bytes, off, count, samples);
        return { header, samples, frames: header.frames, channels: n, concealedFrames: 0 };
      }
      case 'deflate':
        return this.decodeDeflate(header, bytes.subarray(off), count);
      case 'opus':
        return this.decodeOpus(header, bytes.subarray(off));
    }
  }

  private decodeDeflate(header: PacketHeader, payload: Uint8Array, count: number): DecodedPacket | Promise<DecodedPacket> {
    if (!this.inflateRaw) throw new PacketError('a deflate packet arrived but no inflateRaw was given to the client');
    const { raw, adler } = unwrapZlib(payload);
    const finish = (pcm: Uint8Array): DecodedPacket => {
      checkLength(header, pcm.length, count * 2, 'inflated deflate payload');
      const got = adler32(pcm);
      if (got !== adler) throw new PacketError(`deflate packet seq ${header.seq}: Adler-32 of the inflated payload is 0x${got.toString(16)}; the stream says 0x${adler.toString(16)}`);
      const samples = new Float32Array(count);
      decodePcm16(pcm, 0, count, samples);
      return { header, samples, frames: header.frames, channels: header.channels.length, concealedFrames: 0 };
    };
    const r = this.inflateRaw(raw);
    return r instanceof Uint8Array ? finish(r) : r.then(finish);
  }

  private decodeOpus(header: PacketHeader, payload: Uint8Array): DecodedPacket | Promise<DecodedPacket> {
    if (!this.createOpus) throw new PacketError('an opus packet arrived but no createOpusDecoder was given to the client');
    const n = header.channels.length;
    const key = `${header.rate}/${n}/${header.frames}`;
    let missing = this.opus && key === this.opusKey ? (header.seq - this.opusLastSeq - 1) >>> 0 : 0;
    // A wrapped-around "gap" of billions means an older packet; and a long gap is a new stretch: no concealment.
    if (missing > 50) missing = 0;
    // A flagged seq gap is frames the box encoded but dropped from this client's queue: the decoder's state still
    // fits the stream, so they are concealed. A flag without a gap is audio lost before encoding: start afresh.
    if (!this.opus || key !== this.opusKey || (header.discontinuity && missing === 0)) {
      missing = 0;
      this.reset();
      this.opus = this.createOpus(header.rate, n);
      this.opusKey = key;
    }
    this.opusLastSeq = header.seq;
    const dec = this.opus;
    const parts: (Float32Array | Promise<Float32Array>)[] = [];
    if (dec.conceal) for (let i = 0; i < missing; i++) parts.push(dec.conceal(header.frames));
    parts.push(dec.decode(payload));
    const finish = (arrays: Float32Array[]): DecodedPacket => {
      let total = 0;
      for (const a of arrays) total += a.length;
      if (total % n !== 0) throw new PacketError(`opus packet seq ${header.seq} decoded to ${total} samples, not a multiple of ${n} channels`);
      let samples: Float32Array;
      if (arrays.length === 1) samples = arrays[0]!;
      else {
        samples = new Float32Array(total);
        let o = 0;
        for (const a of arrays) {
          samples.set(a, o);
          o += a.length;
        }
      }
      const own = arrays[arrays.length - 1]!.length / n;
      return { header, samples, frames: total / n, channels: n, concealedFrames: total / n - own };
    };
    if (parts.every((p) => p instanceof Float32Array)) return finish(parts as Float32Array[]);
    return Promise.all(parts).then(finish);
  }

  /** Drops the Opus decoder (next opus packet starts a fresh one). */
  reset(): void {
    this.opus?.free?.();
    this.opus = null;
    this.opusKey = '';
    this.opusLastSeq = -1;
  }
}

function checkLength(header: PacketHeader, got: number, want: number, what = 'payload'): void {
  if (got !== want) {
    throw new PacketError(
      `${header.codec} packet seq ${header.seq}: ${what} is ${got} bytes; ${header.frames} frames × ${header.channels.length} channels need ${want}`,
    );
  }
}
