import { readFileSync } from 'node:fs';
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AudioRing } from '../../src/engine/audio-ring';
import { encodeSlot } from '../../src/engine/encode-kernels';
import { OpusFrameEncoder } from '../../src/engine/opus-encoder';
import { CODEC_IDS as BOX_CODEC_IDS, headerBytesFor, writeHeader } from '../../src/protocol';
import { PacketDecoder, PacketError, adler32, parseHeader, type DecodedPacket, type PacketCodec } from '../../src/client/packet-decoder';
import { createNodeOpusDecoder, nodeInflateRaw } from '../../src/listen/node-platform';

/**
 * The client library's packet decoder against the protocol's test vectors
 * (docs/protocol.md section 10, read from the document itself) and against
 * packets made by the box's real encoder (encodeSlot, the Opus encoder).
 */

const doc = readFileSync(path.resolve(__dirname, '../../../docs/protocol.md'), 'utf8');

function docHex(codec: string): Uint8Array {
  const m = [...doc.matchAll(/^```hex (\S+)\n([\s\S]*?)^```$/gm)].find((b) => b[1] === codec);
  assert.ok(m, `docs/protocol.md has no hex ${codec} block`);
  return Uint8Array.from(m[2]!.trim().split(/\s+/), (t) => parseInt(t, 16));
}

/** The "Decoded samples" table: per frame [ch2 pcm16, ch0 pcm16, ch2 pcm24, ch0 pcm24]. */
function decodedTable(): number[][] {
  const at = doc.indexOf('#### Decoded samples');
  assert.ok(at >= 0);
  return doc
    .slice(at)
    .split('\n')
    .filter((l) => /^\| \d+ \|/.test(l))
    .map((l) => l.split('|').slice(2, -1).map((c) => Number(c.trim())));
}

function decodeSync(d: PacketDecoder, bytes: Uint8Array): DecodedPacket {
  const r = d.decode(bytes);
  assert.ok(!(r instanceof Promise), 'a synchronous inflater or decoder must give a synchronous result');
  return r;
}

const decoder = () => new PacketDecoder({ inflateRaw: nodeInflateRaw, createOpusDecoder: createNodeOpusDecoder });

describe('packet decoder: docs/protocol.md test vectors', () => {
  const table = decodedTable();
  for (const codec of ['pcm16', 'pcm24', 'deflate'] as const) {
    test(`${codec}: header fields and decoded samples`, () => {
      const p = decodeSync(decoder(), docHex(codec));
      const h = p.header;
      assert.equal(h.codec, codec);
      assert.equal(h.version, 1);
      assert.equal(h.headerBytes, 40);
      assert.equal(h.frames, 4);
      assert.equal(h.seq, 7);
      assert.equal(h.rate, 48000);
      assert.equal(h.samplePos, 896n);
      assert.equal(h.captureNs, 123456789012345n);
      assert.equal(h.flags, 0);
      assert.equal(h.discontinuity, false);
      assert.equal(h.mix, false);
      assert.deepEqual(h.channels, [2, 0]);
      assert.equal(p.frames, 4);
      assert.equal(p.channels, 2);
      const scale = codec === 'pcm24' ? 8388608 : 32768;
      const col = codec === 'pcm24' ? 2 : 0;
      const want = table.flatMap((row) => [row[col]! / scale, row[col + 1]! / scale]);
      assert.deepEqual([...p.samples], want);
    });
  }

  test('a box async inflater (a Promise, as DecompressionStream gives) decodes the same', async () => {
    const d = new PacketDecoder({ inflateRaw: (b) => Promise.resolve(nodeInflateRaw(b)) });
    const r = d.decode(docHex('deflate'));
    assert.ok(r instanceof Promise);
    const p = await r;
    assert.deepEqual([...p.samples], [...decodeSync(decoder(), docHex('pcm16')).samples]);
  });
});

/** A period of random left-aligned samples through the box's encoder, for `channels` of a `deviceChannels` capture. */
function boxPacket(codec: 'pcm16' | 'pcm24' | 'deflate', deviceChannels: number, frames: number, channels: number[], seed: number): { bytes: Uint8Array; input: Int32Array } {
  const ring = new AudioRing({ channels: deviceChannels, periodFrames: frames, rate: 48000, slotCount: 2 });
  const input = new Int32Array(frames * deviceChannels);
  let x = seed;
  for (let i = 0; i < input.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) | 0;
    input[i] = x;
  }
  // Some silence too, which deflate compresses.
  input.fill(0, 0, deviceChannels * 8);
  const seq = 41;
  const slot = ring.slotOf(seq);
  ring.samples.set(input, slot * ring.samplesPerSlot);
  ring.writeHeader(slot, seq, 1000n, 99n, 1);
  const out = encodeSlot(ring, slot, Int32Array.from([3, BOX_CODEC_IDS[codec], channels.length, ...channels]));
  const index = new DataView(out);
  return { bytes: new Uint8Array(out, index.getUint32(8, true), index.getUint32(12, true)), input };
}

describe('packet decoder: packets of the box encoder', () => {
  for (const codec of ['pcm16', 'pcm24', 'deflate'] as const) {
    test(`${codec}: 128 frames of 5 of 16 channels decode to the box's samples, truncated to the codec`, () => {
      const channels = [15, 3, 0, 7, 8];
      const { bytes, input } = boxPacket(codec, 16, 128, channels, 7 + codec.length);
      const p = decodeSync(decoder(), bytes);
      assert.equal(p.header.codec, codec);
      assert.equal(p.header.discontinuity, true);
      assert.deepEqual(p.header.channels, channels);
      assert.equal(p.frames, 128);
      const shift = codec === 'pcm24' ? 8 : 16;
      const scale = codec === 'pcm24' ? 8388608 : 32768;
      for (let f = 0; f < 128; f++) {
        for (let c = 0; c < channels.length; c++) {
          const want = (input[f * 16 + channels[c]!]! >> shift) / scale;
          assert.equal(p.samples[f * channels.length + c], want, `frame ${f} channel ${channels[c]}`);
        }
      }
    });
  }

  test('opus: a mix of a 1 kHz tone decodes through the injected libopus decoder at its level', () => {
    const enc = new OpusFrameEncoder({ rate: 48000, channels: 2, frameMs: 5 });
    const d = decoder();
    const frames = 240;
    const decoded: Float32Array[] = [];
    for (let k = 0; k < 40; k++) {
      const pcm = new Int16Array(frames * 2);
      for (let f = 0; f < frames; f++) pcm[f * 2] = pcm[f * 2 + 1] = Math.round(8192 * Math.sin((2 * Math.PI * 1000 * (k * frames + f)) / 48000));
      const payload = enc.encode(pcm);
      const bytes = opusPacket(k, frames, 2, payload, k === 0 ? 3 : 2);
      const p = decodeSync(d, bytes);
      assert.equal(p.header.codec, 'opus');
      assert.equal(p.header.mix, true);
      assert.equal(p.frames, frames);
      assert.equal(p.concealedFrames, 0);
      decoded.push(p.samples);
    }
    // RMS of the last 20 frames (after the decoder settled): 8192/32768/sqrt(2) = 0.177 (-15.05 dBFS), ±0.5 dB.
    let sum = 0;
    let n = 0;
    for (const s of decoded.slice(20)) for (let i = 0; i < s.length; i++) (sum += s[i]! * s[i]!), n++;
    const db = 20 * Math.log10(Math.sqrt(sum / n));
    assert.ok(Math.abs(db - 20 * Math.log10(0.25 / Math.SQRT2)) < 0.5, `decoded level ${db.toFixed(2)} dBFS`);
  });

  test('opus: a seq gap puts one frame of concealment per lost frame in front; a discontinuity starts a fresh decoder', () => {
    const made: number[] = [];
    let freed = 0;
    const d = new PacketDecoder({
      createOpusDecoder: (rate, ch) => {
        made.push(rate * 10 + ch);
        return {
          decode: (pkt) => new Float32Array(120 * ch).fill(pkt[0]! / 100),
          conceal: (frames) => new Float32Array(frames * ch).fill(-0.5),
          free: () => void freed++,
        };
      },
    });
    const payload = Uint8Array.of(25);
    decodeSync(d, opusPacket(10, 120, 2, payload, 2));
    const gap = decodeSync(d, opusPacket(13, 120, 2, payload, 2));
    assert.equal(gap.frames, 360);
    assert.equal(gap.concealedFrames, 240);
    assert.equal(gap.samples[0], -0.5);
    assert.equal(gap.samples[240 * 2], 0.25);
    assert.equal(made.length, 1);
    decodeSync(d, opusPacket(14, 120, 2, payload, 3));
    assert.equal(made.length, 2, 'the discontinuity flag makes a new decoder');
    assert.equal(freed, 1, 'and frees the old one');
    decodeSync(d, opusPacket(15, 120, 1, payload, 2));
    assert.equal(made.length, 3, 'a change of channel count makes a new decoder');
  });

  test('opus: a flagged seq gap (frames dropped from this client\'s queue) is concealed with the same decoder; a flag without a gap starts a fresh one', () => {
    let made = 0;
    const d = new PacketDecoder({
      createOpusDecoder: (_rate, ch) => {
        made++;
        return { decode: (pkt) => new Float32Array(120 * ch).fill(pkt[0]! / 100), conceal: (frames) => new Float32Array(frames * ch).fill(-0.5) };
      },
    });
    const payload = Uint8Array.of(25);
    decodeSync(d, opusPacket(10, 120, 2, payload, 2));
    const gap = decodeSync(d, opusPacket(13, 120, 2, payload, 3));
    assert.equal(gap.concealedFrames, 240, 'two lost frames concealed');
    assert.equal(made, 1, 'no new decoder for a flagged gap');
    decodeSync(d, opusPacket(14, 120, 2, payload, 3));
    assert.equal(made, 2, 'a flag on the next seq is audio lost before encoding: a fresh decoder');
  });

  test('opus: without a concealment call, a seq gap puts nothing in: the packet is its own frames, for the jitter buffer to conceal by seq', () => {
    const d = new PacketDecoder({ createOpusDecoder: (_rate, ch) => ({ decode: (pkt) => new Float32Array(120 * ch).fill(pkt[0]! / 100) }) });
    const payload = Uint8Array.of(25);
    decodeSync(d, opusPacket(10, 120, 2, payload, 2));
    const gap = decodeSync(d, opusPacket(13, 120, 2, payload, 2));
    assert.equal(gap.frames, 120);
    assert.equal(gap.concealedFrames, 0);
    assert.equal(gap.header.seq, 13);
    assert.ok(gap.samples.every((v) => v === 0.25));
  });
});

function opusPacket(seq: number, frames: number, channels: number, payload: Uint8Array, flags: number): Uint8Array {
  const hb = headerBytesFor(channels);
  const bytes = new Uint8Array(hb + payload.length);
  writeHeader(new DataView(bytes.buffer), 0, {
    codec: 4,
    frames,
    seq,
    rate: 48000,
    samplePos: BigInt(seq * frames),
    captureNs: 5n,
    flags,
    channels: channels === 2 ? [0, 1] : [0],
  });
  bytes.set(payload, hb);
  return bytes;
}

describe('packet decoder: bad packets', () => {
  const good = () => docHex('pcm16').slice();
  const bad: [string, (b: Uint8Array) => Uint8Array, RegExp][] = [
    ['a packet shorter than the header', (b) => b.subarray(0, 20), /packet is 20 bytes; the header alone needs at least 36/],
    ['a wrong magic', (b) => ((b[0] = 0x54), b), /packet magic is 0x54 0x42; allowed: 0x53 0x42/],
    ['a layout version 2', (b) => ((b[2] = 2), b), /packet layout version is 2; this client reads version 1/],
    ['codec id 9', (b) => ((b[3] = 9), b), /packet codec id is 9; allowed: 1 \(pcm16\)/],
    ['headerBytes 37 for 2 channels… beyond the packet', (b) => ((b[4] = 200), b), /packet headerBytes is 200; allowed for 2 channels in a 56-byte packet: 38-56/],
    ['channelCount 0', (b) => ((b[32] = 0), b), /channelCount is 0; allowed: 1-64/],
    ['a payload one byte short', (b) => b.subarray(0, b.length - 1), /pcm16 packet seq 7: payload is 15 bytes; 4 frames × 2 channels need 16/],
    ['frames 0', (b) => ((b[6] = 0), b), /packet frames is 0/],
  ];
  for (const [what, mutate, message] of bad) {
    test(`${what} is a PacketError naming the value`, () => {
      assert.throws(() => decoder().decode(mutate(good())), (e: unknown) => e instanceof PacketError && message.test((e as Error).message));
    });
  }

  test('a deflate payload whose Adler-32 is wrong is refused', () => {
    const b = docHex('deflate').slice();
    b[b.length - 1] ^= 1;
    assert.throws(() => decoder().decode(b), /Adler-32 of the inflated payload is 0x[0-9a-f]+; the stream says/);
  });

  test('a deflate payload that inflates to the wrong length is refused', () => {
    const b = docHex('deflate');
    const z = deflateSync(new Uint8Array(14));
    const p = new Uint8Array(40 + z.length);
    p.set(b.subarray(0, 40));
    p.set(z, 40);
    assert.throws(() => decoder().decode(p), /deflate packet seq 7: inflated deflate payload is 14 bytes; 4 frames × 2 channels need 16/);
  });

  test('a deflate or opus packet without the injected codec says what is missing', () => {
    const d = new PacketDecoder();
    assert.equal(d.supports('pcm24'), true);
    assert.equal(d.supports('deflate'), false);
    assert.equal(d.supports('opus' as PacketCodec), false);
    assert.throws(() => d.decode(docHex('deflate')), /a deflate packet arrived but no inflateRaw was given/);
  });

  test('after a bad packet the decoder goes on decoding good ones', () => {
    const d = decoder();
    assert.throws(() => d.decode(new Uint8Array(3)));
    assert.equal(decodeSync(d, docHex('pcm24')).samples[0], -1);
  });

  test('adler32 matches zlib for a long input (the modulo runs)', () => {
    const data = new Uint8Array(100000).map((_, i) => (i * 7919) & 0xff);
    const z = deflateSync(data);
    const trailer = ((z[z.length - 4]! << 24) | (z[z.length - 3]! << 16) | (z[z.length - 2]! << 8) | z[z.length - 1]!) >>> 0;
    assert.equal(adler32(data), trailer);
  });

  test('parseHeader reads a header with more padding than today (future header fields)', () => {
    const b = good();
    const longer = new Uint8Array(b.length + 8);
    longer.set(b.subarray(0, 36));
    longer[4] = 48;
    longer.set(b.subarray(36, 38), 36);
    longer.set(b.subarray(40), 48);
    const p = decodeSync(decoder(), longer);
    assert.equal(p.header.headerBytes, 48);
    assert.deepEqual([...p.samples], [...decodeSync(decoder(), b).samples]);
    assert.equal(parseHeader(longer).seq, 7);
  });
});
