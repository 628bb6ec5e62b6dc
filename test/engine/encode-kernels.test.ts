import { inflateSync } from 'node:zlib';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { SampleFormat } from '../../src/engine/sample-format';
import type { ChannelCodec } from '../../src/protocol/codecs';
import { AudioRing } from '../../src/engine/audio-ring';
import { encodeSlot } from '../../src/engine/encode-kernels';
import { entryLength, entryOffset, entryOutput, PACKET_HEADROOM, resultCount } from '../../src/engine/encode-result';
import { CODEC_IDS, FLAG_DISCONTINUITY, headerBytesFor, parsePacket, type ParsedPacket } from '../../src/protocol';
import { toInt32 } from '../../src/engine/sample-format';

// ---------------------------------------------------------------- helpers

/** Deterministic pseudo-random Int32 (full range, both signs) so every bit position is exercised. */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x | 0;
  };
}

interface Slot {
  ring: AudioRing;
  slot: number;
  /** The slot's samples, frame-major: frame f, channel c at f * channels + c. */
  samples: Int32Array;
}

/** A ring whose every slot holds different samples, so reading the wrong slot cannot pass. */
function filledRing(channels: number, periodFrames: number, seq = 5, slotCount = 4): Slot {
  const ring = new AudioRing({ channels, periodFrames, rate: 48000, slotCount });
  const next = lcg(channels * 1000 + periodFrames);
  for (let i = 0; i < ring.samples.length; i++) ring.samples[i] = next();
  for (let s = 0; s < slotCount; s++) ring.writeHeader(s, 1000 + s, 0n, 0n, 0);
  const slot = ring.slotOf(seq);
  ring.writeHeader(slot, seq, 4096n, 987654321n, 0);
  return { ring, slot, samples: ring.samples.slice(slot * ring.samplesPerSlot, (slot + 1) * ring.samplesPerSlot) };
}

type OutputSpec = { id: number; codec: ChannelCodec; channels: number[] };

function specOf(outputs: OutputSpec[]): Int32Array {
  return Int32Array.from(outputs.flatMap((o) => [o.id, CODEC_IDS[o.codec], o.channels.length, ...o.channels]));
}

interface IndexEntry {
  id: number;
  offset: number;
  length: number;
  packet: Uint8Array;
}

function readIndex(out: ArrayBuffer): IndexEntry[] {
  const v = new DataView(out);
  const count = resultCount(v);
  const entries: IndexEntry[] = [];
  for (let i = 0; i < count; i++) {
    const offset = entryOffset(v, i);
    const length = entryLength(v, i);
    entries.push({ id: entryOutput(v, i), offset, length, packet: new Uint8Array(out, offset, length) });
  }
  return entries;
}

function encodeOne(s: Slot, codec: ChannelCodec, channels: number[]): ParsedPacket {
  const entries = readIndex(encodeSlot(s.ring, s.slot, specOf([{ id: 1, codec, channels }])));
  assert.equal(entries.length, 1);
  return parsePacket(entries[0]!.packet);
}

/** What a client must decode: the top 16 or 24 bits of each selected sample, frame-major in subscription order. */
function expected(s: Slot, channels: number[], bits: 16 | 24): number[] {
  const n = s.ring.shape.channels;
  const out: number[] = [];
  for (let f = 0; f < s.ring.shape.periodFrames; f++) for (const c of channels) out.push(s.samples[f * n + c]! >> (32 - bits));
  return out;
}

function decodePcm16(payload: Uint8Array): number[] {
  const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return Array.from({ length: payload.length / 2 }, (_, i) => v.getInt16(i * 2, true));
}

function decodePcm24(payload: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < payload.length; i += 3) out.push(((payload[i]! | (payload[i + 1]! << 8) | (payload[i + 2]! << 16)) << 8) >> 8);
  return out;
}

/** Runs toInt32 on `bytes`, placed at an odd byte offset when asked so that the unaligned paths run too. */
function convert(format: SampleFormat, bytes: number[], samples: number, misalign: boolean, dstOffset = 0): Int32Array {
  const backing = new Uint8Array(bytes.length + 1);
  const src = misalign ? backing.subarray(1) : backing.subarray(0, bytes.length);
  src.set(bytes);
  const dst = new Int32Array(dstOffset + samples).fill(0x5a5a5a5a);
  toInt32(src, format, dst, dstOffset, samples);
  return dst;
}

function le16(values: number[]): number[] {
  return values.flatMap((v) => [v & 0xff, (v >> 8) & 0xff]);
}
function le24(values: number[]): number[] {
  return values.flatMap((v) => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff]);
}
function le32(values: number[]): number[] {
  return values.flatMap((v) => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff]);
}
function f32(values: number[]): number[] {
  return [...new Uint8Array(Float32Array.from(values).buffer)];
}

// ---------------------------------------------------------------- toInt32

describe('toInt32: every format becomes a left-aligned Int32', () => {
  for (const misalign of [false, true]) {
    const where = misalign ? 'odd byte offset' : 'aligned';
    test(`S16_LE, ${where}: shifted left by 16, sign kept`, () => {
      const input = [0, 1, -1, 0x7fff, -0x8000, 0x1234, -0x1234];
      const dst = convert('S16_LE', le16(input), input.length, misalign);
      assert.deepEqual([...dst], input.map((v) => v * 65536));
    });

    test(`S24_3LE, ${where}: shifted left by 8, sign from the third byte`, () => {
      const input = [0, 1, -1, 0x7fffff, -0x800000, 0x123456, -0x123456];
      const dst = convert('S24_3LE', le24(input), input.length, misalign);
      assert.deepEqual([...dst], input.map((v) => v * 256));
    });

    test(`S32_LE, ${where}: unchanged`, () => {
      const input = [0, 1, -1, 0x7fffffff, -0x80000000, 0x12345678, -0x12345678];
      const dst = convert('S32_LE', le32(input), input.length, misalign);
      assert.deepEqual([...dst], input);
    });

    test(`FLOAT_LE, ${where}: scaled by 2^31-1, clamped, NaN to 0`, () => {
      const input = [0, -0, 1, -1, 1.5, -2, Infinity, -Infinity, NaN, 0.5, -0.5, 0.25];
      const dst = convert('FLOAT_LE', f32(input), input.length, misalign);
      assert.deepEqual([...dst].slice(0, 9), [0, 0, 0x7fffffff, -0x80000000, 0x7fffffff, -0x80000000, 0x7fffffff, -0x80000000, 0]);
      // Exact values below full scale are an implementation detail; what a client hears is the top bits.
      assert.deepEqual([...dst].slice(9).map((v) => v >> 16), [16384, -16384, 8192]);
      assert.ok(Math.abs(dst[9]! - 2 ** 30) <= 1 && Math.abs(dst[10]! + 2 ** 30) <= 1);
    });
  }

  test('writes at dstOffset and nowhere else', () => {
    const dst = convert('S16_LE', le16([3, -3]), 2, false, 5);
    assert.deepEqual([...dst], [0x5a5a5a5a, 0x5a5a5a5a, 0x5a5a5a5a, 0x5a5a5a5a, 0x5a5a5a5a, 3 << 16, -3 << 16]);
  });

  test('converts only `samples` samples of a longer buffer', () => {
    const dst = convert('S24_3LE', le24([1, 2, 3]), 2, true);
    assert.deepEqual([...dst], [256, 512]);
  });
});

// ---------------------------------------------------------------- packets

describe('encodeSlot: packets', () => {
  test('pcm16 carries the top 16 bits of the chosen channels, in subscription order', () => {
    const s = filledRing(8, 32);
    for (const channels of [[0], [7], [3, 1], [7, 6, 5, 4, 3, 2, 1, 0], [2, 5, 0]]) {
      const p = encodeOne(s, 'pcm16', channels);
      assert.equal(p.codec, 'pcm16');
      assert.deepEqual(p.channels, channels);
      assert.equal(p.payload.length, 32 * channels.length * 2);
      assert.deepEqual(decodePcm16(p.payload), expected(s, channels, 16), `channels ${channels}`);
    }
  });

  test('pcm24 carries the top 24 bits as 3-byte little-endian two\'s complement', () => {
    const s = filledRing(8, 32);
    for (const channels of [[4], [6, 0, 3], [1, 2, 3, 4, 5]]) {
      const p = encodeOne(s, 'pcm24', channels);
      assert.equal(p.codec, 'pcm24');
      assert.deepEqual(p.channels, channels);
      assert.equal(p.payload.length, 32 * channels.length * 3);
      assert.deepEqual(decodePcm24(p.payload), expected(s, channels, 24), `channels ${channels}`);
    }
  });

  test('extreme samples keep their sign in both codecs', () => {
    const s = filledRing(2, 32);
    const base = s.slot * s.ring.samplesPerSlot;
    const extremes = [0x7fffffff, -0x80000000, -1, 0, 0xff, -0x100, 0x8000, -0x8001];
    for (let f = 0; f < 32; f++) s.ring.samples[base + f * 2 + 1] = extremes[f % extremes.length]!;
    const want16 = Array.from({ length: 32 }, (_, f) => extremes[f % extremes.length]! >> 16);
    const want24 = Array.from({ length: 32 }, (_, f) => extremes[f % extremes.length]! >> 8);
    assert.deepEqual(decodePcm16(encodeOne(s, 'pcm16', [1]).payload), want16);
    assert.deepEqual(decodePcm24(encodeOne(s, 'pcm24', [1]).payload), want24);
  });

  test('deflate is an independent zlib stream of exactly the pcm16 payload', () => {
    const s = filledRing(16, 128);
    const channels = [15, 0, 8, 3];
    const z = encodeOne(s, 'deflate', channels);
    const plain = encodeOne(s, 'pcm16', channels);
    assert.equal(z.codec, 'deflate');
    assert.deepEqual(z.channels, channels);
    assert.equal(z.payload[0]! & 0x0f, 8, 'zlib header: method deflate (RFC 1950)');
    assert.equal(((z.payload[0]! << 8) | z.payload[1]!) % 31, 0, 'zlib header check bits');
    assert.deepEqual(new Uint8Array(inflateSync(z.payload)), plain.payload);
  });

  test('deflate compresses silence well', () => {
    const s = filledRing(4, 256);
    s.ring.samples.fill(0, s.slot * s.ring.samplesPerSlot, (s.slot + 1) * s.ring.samplesPerSlot);
    const z = encodeOne(s, 'deflate', [0, 1, 2, 3]);
    assert.ok(z.payload.length < 64, `silence deflated to ${z.payload.length} bytes`);
    assert.deepEqual(new Uint8Array(inflateSync(z.payload)), new Uint8Array(256 * 4 * 2));
  });

  test('the header carries the slot header, the ring rate and the period size', () => {
    const s = filledRing(4, 64, 2 ** 32 - 1);
    s.ring.writeHeader(s.slot, 2 ** 32 - 1, 2n ** 40n + 3n, 2n ** 62n + 11n, FLAG_DISCONTINUITY);
    for (const codec of ['pcm16', 'pcm24', 'deflate'] as const) {
      const p = encodeOne(s, codec, [1, 2]);
      assert.equal(p.version, 1);
      assert.equal(p.seq, 2 ** 32 - 1);
      assert.equal(p.samplePos, 2n ** 40n + 3n);
      assert.equal(p.captureNs, 2n ** 62n + 11n);
      assert.equal(p.flags, FLAG_DISCONTINUITY);
      assert.equal(p.rate, 48000);
      assert.equal(p.frames, 64);
    }
  });

  test('odd channel counts pad the channel list with zeros to a multiple of 4', () => {
    const s = filledRing(64, 32);
    for (let n = 1; n <= 9; n++) {
      const channels = Array.from({ length: n }, (_, i) => 63 - i * 7);
      const out = encodeSlot(s.ring, s.slot, specOf([{ id: 1, codec: 'pcm16', channels }]));
      const [e] = readIndex(out);
      const hb = 36 + Math.ceil(n / 4) * 4;
      assert.equal(headerBytesFor(n), hb);
      const view = new DataView(e!.packet.buffer, e!.packet.byteOffset);
      assert.equal(view.getUint16(4, true), hb, `headerBytes for ${n} channels`);
      assert.equal(e!.packet[32], n);
      assert.deepEqual([...e!.packet.subarray(36, 36 + n)], channels);
      assert.deepEqual([...e!.packet.subarray(36 + n, hb)], new Array(hb - 36 - n).fill(0), `padding for ${n} channels`);
      assert.equal(view.getUint16(34, true), 0, 'reserved');
      assert.equal(e!.length, hb + 32 * n * 2);
      assert.deepEqual(decodePcm16(e!.packet.subarray(hb)), expected(s, channels, 16));
    }
  });

  test('all 64 channels of a full-size period', () => {
    const s = filledRing(64, 1024, 3, 2);
    const channels = Array.from({ length: 64 }, (_, i) => i);
    const p = encodeOne(s, 'pcm24', channels);
    assert.equal(p.headerBytes, 100);
    assert.deepEqual(decodePcm24(p.payload), expected(s, channels, 24));
  });
});

// ---------------------------------------------------------------- result layout

describe('encodeSlot: result layout', () => {
  test('[count, count x (outputId, byteOffset, byteLength)], then 4-aligned packets with free headroom', () => {
    const s = filledRing(6, 48);
    const outputs: OutputSpec[] = [
      { id: 11, codec: 'pcm24', channels: [5] },
      { id: 3, codec: 'deflate', channels: [0, 1, 2] },
      { id: 7, codec: 'pcm16', channels: [4, 2, 0] },
      { id: 0x7fffffff, codec: 'pcm24', channels: [1, 3, 5] },
      { id: 12, codec: 'deflate', channels: [5] },
    ];
    const out = encodeSlot(s.ring, s.slot, specOf(outputs));
    const entries = readIndex(out);
    assert.deepEqual(entries.map((e) => e.id), outputs.map((o) => o.id));
    // The transport writes its frame header into the headroom, so it must not overlap the index or the previous packet.
    let end = 4 + 12 * outputs.length;
    for (const [i, e] of entries.entries()) {
      assert.equal(e.offset % 4, 0, `packet ${i} is 4-aligned`);
      assert.ok(e.offset >= end + PACKET_HEADROOM, `packet ${i} at ${e.offset} leaves ${PACKET_HEADROOM} free bytes after ${end}`);
      end = e.offset + e.length;
      const o = outputs[i]!;
      const p = parsePacket(e.packet);
      assert.equal(e.length, p.headerBytes + p.payload.length);
      assert.equal(p.codec, o.codec);
      assert.deepEqual(p.channels, o.channels);
      const pcm = o.codec === 'deflate' ? new Uint8Array(inflateSync(p.payload)) : p.payload;
      const decoded = o.codec === 'pcm24' ? decodePcm24(pcm) : decodePcm16(pcm);
      assert.deepEqual(decoded, expected(s, o.channels, o.codec === 'pcm24' ? 24 : 16), `output ${o.id}`);
    }
    assert.ok(end <= out.byteLength);
  });

  test('an empty spec gives a zero count', () => {
    const s = filledRing(2, 32);
    const out = encodeSlot(s.ring, s.slot, new Int32Array(0));
    assert.ok(out.byteLength >= 4);
    assert.equal(resultCount(new DataView(out)), 0);
  });

  test('the same channels in two codecs or two orders are separate outputs', () => {
    const s = filledRing(4, 32);
    const entries = readIndex(
      encodeSlot(
        s.ring,
        s.slot,
        specOf([
          { id: 1, codec: 'pcm16', channels: [0, 1] },
          { id: 2, codec: 'pcm16', channels: [1, 0] },
        ]),
      ),
    );
    const [a, b] = entries.map((e) => decodePcm16(parsePacket(e.packet).payload));
    assert.deepEqual(a, expected(s, [0, 1], 16));
    assert.deepEqual(b, expected(s, [1, 0], 16));
  });
});

