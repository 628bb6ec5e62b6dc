import { readFileSync } from 'node:fs';
import path from 'node:path';
import { inflateSync } from 'node:zlib';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChannelCodec } from '../../src/protocol/codecs';
import { AudioRing } from '../../src/engine/audio-ring';
import { encodeSlot } from '../../src/engine/encode-kernels';
import { entryBytes, entryOutput, resultCount } from '../../src/engine/encode-result';
import { CODEC_IDS, parsePacket } from '../../src/protocol';

/**
 * Keeps the "Test vectors" section of docs/protocol.md true: its packets are
 * rebuilt here with the real encoder from the input the document states, and
 * its input and decoded-sample tables are checked against the same numbers.
 */

// Compiled to dist/test/protocol/, so the repo root is three levels up.
const DOC_PATH = path.resolve(__dirname, '../../../docs/protocol.md');
const CODECS: readonly ChannelCodec[] = ['pcm16', 'pcm24', 'deflate'];

/** The vector input, as section 10 of docs/protocol.md states it (the test also reads it back from there). */
const RING = { channels: 4, periodFrames: 4, rate: 48000 };
const SEQ = 7;
const SAMPLE_POS = 896n;
const CAPTURE_NS = 123456789012345n;
const FLAGS = 0;
const SUBSCRIPTION = [2, 0];
const INPUT: readonly (readonly number[])[] = [
  [0x12345678, 0x11111111, -0x80000000, 0x33333333],
  [-0x12345678, 0x11111111, 0x00010000, 0x33333333],
  [0x7fffffff, 0x11111111, 0x000000ff, 0x33333333],
  [-1, 0x11111111, -0x00010000, 0x33333333],
];

const doc = readFileSync(DOC_PATH, 'utf8');

function vectorSection(): string {
  const start = doc.indexOf('## 10. Test vectors');
  assert.ok(start >= 0, 'docs/protocol.md has no "## 10. Test vectors" section');
  return doc.slice(start);
}

function docHex(codec: ChannelCodec): Uint8Array {
  const blocks = [...doc.matchAll(/^```hex (\S+)\n([\s\S]*?)^```$/gm)].filter((m) => m[1] === codec);
  assert.equal(blocks.length, 1, `docs/protocol.md must hold exactly one \`\`\`hex ${codec} block`);
  const tokens = blocks[0]![2]!.trim().split(/\s+/);
  for (const t of tokens) assert.match(t, /^[0-9a-f]{2}$/, `hex ${codec} block: ${JSON.stringify(t)} is not a lowercase hex byte`);
  return Uint8Array.from(tokens, (t) => parseInt(t, 16));
}

/** Rows of the Markdown table under `heading` in the vector section, as cell strings (first column included). */
function tableRows(heading: string): string[][] {
  const section = vectorSection();
  const at = section.indexOf(`#### ${heading}\n`);
  assert.ok(at >= 0, `test vectors: no "#### ${heading}" table`);
  const rows: string[][] = [];
  for (const line of section.slice(at).split('\n').slice(1)) {
    if (rows.length > 0 && !line.startsWith('|')) break;
    if (!/^\| \d+ \|/.test(line)) continue;
    rows.push(line.split('|').slice(1, -1).map((c) => c.trim()));
  }
  return rows;
}

function buildPacket(codec: ChannelCodec): Uint8Array {
  const ring = new AudioRing({ ...RING, slotCount: 2 });
  // Slot 1 rather than 0, so that a slot offset error in the encoder shows.
  const slot = ring.slotOf(SEQ);
  ring.samples.set(INPUT.flat(), slot * ring.samplesPerSlot);
  ring.writeHeader(slot, SEQ, SAMPLE_POS, CAPTURE_NS, FLAGS);
  const out = encodeSlot(ring, slot, Int32Array.from([9, CODEC_IDS[codec], SUBSCRIPTION.length, ...SUBSCRIPTION]));
  const index = new DataView(out);
  assert.equal(resultCount(index), 1);
  assert.equal(entryOutput(index, 0), 9);
  return entryBytes(out, 0);
}

function hexBlock(codec: ChannelCodec, bytes: Uint8Array): string {
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0'));
  const lines: string[] = [];
  for (let i = 0; i < hex.length; i += 16) lines.push(hex.slice(i, i + 16).join(' '));
  return `\`\`\`hex ${codec}\n${lines.join('\n')}\n\`\`\``;
}

/** Decodes a payload the way a client would; independent of the encoder. */
function decodeSamples(codec: ChannelCodec, payload: Uint8Array): number[] {
  const pcm = codec === 'deflate' ? new Uint8Array(inflateSync(payload)) : payload;
  const out: number[] = [];
  if (codec === 'pcm24') {
    for (let i = 0; i < pcm.length; i += 3) out.push(((pcm[i]! | (pcm[i + 1]! << 8) | (pcm[i + 2]! << 16)) << 8) >> 8);
  } else {
    for (let i = 0; i < pcm.length; i += 2) out.push(((pcm[i]! | (pcm[i + 1]! << 8)) << 16) >> 16);
  }
  return out;
}

describe('docs/protocol.md test vectors', () => {
  test('the prose states the input this test encodes', () => {
    const s = vectorSection();
    assert.match(s, new RegExp(`${RING.channels} channels at rate ${RING.rate} with a period of ${RING.periodFrames} frames`));
    assert.match(s, new RegExp(`\`seq\` ${SEQ}, \`samplePos\` ${SAMPLE_POS}, \`captureNs\` ${CAPTURE_NS} and flags ${FLAGS}`));
    assert.ok(s.includes(`channels \`[${SUBSCRIPTION.join(', ')}]\``), 'subscription channels differ');
  });

  test('the input table holds the samples this test encodes', () => {
    const rows = tableRows('Input samples');
    assert.equal(rows.length, RING.periodFrames);
    rows.forEach((cells, f) => {
      assert.equal(Number(cells[0]), f);
      const values = cells.slice(1).map((c) => {
        const m = /^`0x([0-9A-F]{8})` \((-?\d+)\)$/.exec(c);
        assert.ok(m, `input table cell ${JSON.stringify(c)} is not "\`0xXXXXXXXX\` (decimal)"`);
        const fromHex = parseInt(m[1]!, 16) | 0;
        assert.equal(fromHex, Number(m[2]), `input table cell ${c}: hex and decimal disagree`);
        return fromHex;
      });
      assert.deepEqual(values, INPUT[f]);
    });
  });

  for (const codec of CODECS) {
    test(`hex ${codec} is byte-identical to the encoder's packet`, () => {
      const documented = docHex(codec);
      const built = buildPacket(codec);
      const fix = `regenerate the block in docs/protocol.md from the encoder; it now produces:\n${hexBlock(codec, built)}`;
      if (codec === 'deflate') {
        const hb = parsePacket(built).headerBytes;
        assert.deepEqual(documented.subarray(0, hb), built.subarray(0, hb), `deflate header differs; ${fix}`);
        // Compressed bytes depend on the zlib build; say so when only they differ.
        assert.deepEqual(
          new Uint8Array(inflateSync(documented.subarray(hb))),
          new Uint8Array(inflateSync(built.subarray(hb))),
          `deflate payload inflates to other samples; ${fix}`,
        );
        assert.deepEqual(documented, built, `deflate payload inflates the same but its compressed bytes differ (zlib ${process.versions.zlib}); ${fix}`);
      } else {
        assert.deepEqual(documented, built, fix);
      }
    });

    test(`hex ${codec} parses to the documented header fields`, () => {
      const p = parsePacket(docHex(codec));
      assert.equal(p.version, 1);
      assert.equal(p.codec, codec);
      assert.equal(p.headerBytes, 40);
      assert.equal(p.frames, RING.periodFrames);
      assert.equal(p.seq, SEQ);
      assert.equal(p.rate, RING.rate);
      assert.equal(p.samplePos, SAMPLE_POS);
      assert.equal(p.captureNs, CAPTURE_NS);
      assert.equal(p.flags, FLAGS);
      assert.deepEqual(p.channels, SUBSCRIPTION);
      if (codec !== 'deflate') assert.equal(p.payload.length, RING.periodFrames * SUBSCRIPTION.length * (codec === 'pcm24' ? 3 : 2));
    });
  }

  test('the decoded-samples table matches the packets and the input', () => {
    const rows = tableRows('Decoded samples').map((cells) => cells.map(Number));
    assert.equal(rows.length, RING.periodFrames);
    const d16 = decodeSamples('pcm16', parsePacket(docHex('pcm16')).payload);
    const dz = decodeSamples('deflate', parsePacket(docHex('deflate')).payload);
    const d24 = decodeSamples('pcm24', parsePacket(docHex('pcm24')).payload);
    assert.deepEqual(dz, d16);
    rows.forEach((row, f) => {
      const [ch2, ch0] = [INPUT[f]![2]!, INPUT[f]![0]!];
      // Independent expectation: the top 16 / top 24 bits of the left-aligned sample.
      assert.deepEqual(row, [f, ch2 >> 16, ch0 >> 16, ch2 >> 8, ch0 >> 8], `decoded table row ${f}`);
      assert.deepEqual([f, d16[f * 2], d16[f * 2 + 1], d24[f * 2], d24[f * 2 + 1]], row, `packets disagree with decoded table row ${f}`);
    });
  });
});
