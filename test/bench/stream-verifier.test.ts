import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CODEC_IDS, FLAG_DISCONTINUITY, headerBytesFor, writeHeader } from '../../src/protocol';
import { PATTERN_FRAMES, StreamVerifier, patternU16, patternWav } from '../../bench/stream-verifier';
import { parseWav } from '../../src/capture/wav-file';

/**
 * The soak's checker must catch each way a stream can break the protocol's
 * promise, or a soak reporting 0 anomalies proves nothing.
 */

const FRAMES = 128;
const CHANNELS = [3, 0, 17];

/** A pcm16 packet of the pattern: labelled (seq, samplePos), carrying the audio of frame `audioAt`. */
function packet(seq: number, samplePos: number, opts: { audioAt?: number; flags?: number; corrupt?: boolean } = {}): Buffer {
  const hb = headerBytesFor(CHANNELS.length);
  const b = Buffer.alloc(hb + FRAMES * CHANNELS.length * 2);
  writeHeader(new DataView(b.buffer, b.byteOffset, b.length), 0, {
    codec: CODEC_IDS.pcm16,
    frames: FRAMES,
    seq,
    rate: 48000,
    samplePos: BigInt(samplePos),
    captureNs: 1n,
    flags: opts.flags ?? 0,
    channels: CHANNELS,
  });
  const at = opts.audioAt ?? samplePos;
  for (let i = 0; i < FRAMES; i++) for (let k = 0; k < CHANNELS.length; k++) b.writeUInt16LE(patternU16(at + i, CHANNELS[k]!), hb + (i * CHANNELS.length + k) * 2);
  if (opts.corrupt) b[hb + 100] ^= 0x40;
  return b;
}

function run(packets: Buffer[]): StreamVerifier {
  const v = new StreamVerifier('t', CHANNELS);
  for (const p of packets) v.check(p);
  return v;
}

describe('the soak stream verifier', () => {
  test('a contiguous stream, a flagged gap and a flagged shift of the source are clean', () => {
    const v = run([packet(0, 0), packet(1, 128), packet(5, 640, { flags: FLAG_DISCONTINUITY }), packet(6, 768, { audioAt: 768 + 9000, flags: FLAG_DISCONTINUITY }), packet(7, 896, { audioAt: 896 + 9000 })]);
    assert.deepEqual(v.examples, []);
    assert.equal(v.counts.checked, 5);
  });

  for (const [what, packets, kind] of [
    ['a packet out of order', [packet(0, 0), packet(2, 256, { flags: 1 }), packet(1, 128)], 'out-of-order'],
    ['a repeated packet', [packet(0, 0), packet(1, 128), packet(1, 128)], 'repeated'],
    ['a gap without the discontinuity flag', [packet(0, 0), packet(3, 384)], 'unflagged-gap'],
    ['the audio of samplePos + 4096 frames (a reused ring slot), not flagged', [packet(0, 0), packet(1, 128), packet(2, 256, { audioAt: 256 + 4096 })], 'mislabelled'],
    ['a sample that is not the source', [packet(0, 0), packet(1, 128, { corrupt: true })], 'not-the-source'],
    ['a truncated packet', [packet(0, 0), packet(1, 128).subarray(0, 20)], 'malformed'],
  ] as const) {
    test(`catches ${what}`, () => {
      const v = run([...packets]);
      assert.equal(v.counts.anomalies[kind], 1, `${kind}: ${JSON.stringify(v.counts.anomalies)}; ${v.examples.join('; ')}`);
      assert.equal(Object.values(v.counts.anomalies).reduce((a, b) => a + b, 0), 1, v.examples.join('; '));
    });
  }

  test('the pattern WAV loops seamlessly: its last frame is followed by frame 0 of the pattern', () => {
    const wav = parseWav(patternWav(4, 48000));
    assert.equal(wav.format, 'S16_LE');
    assert.equal(wav.data.length, PATTERN_FRAMES * 4 * 2);
    assert.equal(wav.data.readUInt16LE(((PATTERN_FRAMES - 1) * 4 + 2) * 2), patternU16(PATTERN_FRAMES - 1, 2));
    assert.equal(patternU16(PATTERN_FRAMES, 2), patternU16(0, 2));
  });
});
