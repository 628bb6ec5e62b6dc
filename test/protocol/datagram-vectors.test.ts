import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AudioRing } from '../../src/engine/audio-ring';
import { encodeSlot } from '../../src/engine/encode-kernels';
import { entryBytes } from '../../src/engine/encode-result';
import {
  audioDatagramBytes,
  CODEC_IDS,
  DatagramError,
  encodeChallenge,
  encodeConfirm,
  encodeTimes,
  encodeTokenTime,
  KIND,
  parseBoxDatagram,
  parseClientDatagram,
  parsePacket,
  tokenFromHex,
  tokenToHex,
  writeAudioDatagram,
} from '../../src/protocol';

/**
 * Keeps the UDP test vectors of docs/protocol.md §12 true: every datagram is
 * rebuilt here from the values the document states and compared byte for
 * byte, then parsed back. With DUMP=1 it prints the blocks for the document.
 */

const DOC_PATH = path.resolve(__dirname, '../../../docs/protocol.md');
const doc = readFileSync(DOC_PATH, 'utf8');

const TOKEN = Uint8Array.from({ length: 16 }, (_, i) => i);
const NONCE = Uint8Array.from({ length: 16 }, (_, i) => 0xf0 + i);
const CLIENT_MS = 1234.5;
const BOX_NS = 123456789012345n;

/** The §10 packet (pcm16 of channels [2, 0], seq 7) and the one before it (seq 6), from the §10 input. */
function packet(seq: number): Uint8Array {
  const ring = new AudioRing({ channels: 4, periodFrames: 4, rate: 48000, slotCount: 8 });
  const slot = ring.slotOf(seq);
  ring.samples.set([0x12345678, 0x11111111, -0x80000000, 0x33333333, -0x12345678, 0x11111111, 0x00010000, 0x33333333, 0x7fffffff, 0x11111111, 0x000000ff, 0x33333333, -1, 0x11111111, -0x00010000, 0x33333333], slot * ring.samplesPerSlot);
  ring.writeHeader(slot, seq, 896n - BigInt((7 - seq) * 4), 123456789012345n - BigInt((7 - seq) * 83333), 0);
  return entryBytes(encodeSlot(ring, slot, Int32Array.from([9, CODEC_IDS.pcm16, 2, 2, 0])), 0).slice();
}

function audio(): Uint8Array {
  const packets = [packet(7), packet(6)];
  const out = new Uint8Array(audioDatagramBytes(packets));
  writeAudioDatagram(out, packets);
  return out;
}

const VECTORS: Record<string, () => Uint8Array> = {
  'udp-bind': () => encodeTokenTime(KIND.BIND, TOKEN, CLIENT_MS),
  'udp-challenge': () => encodeChallenge(NONCE, CLIENT_MS),
  'udp-confirm': () => encodeConfirm(TOKEN, NONCE),
  'udp-bound': () => encodeTimes(KIND.BOUND, 0, BOX_NS),
  'udp-keepalive': () => encodeTokenTime(KIND.KEEPALIVE, TOKEN, CLIENT_MS),
  'udp-pong': () => encodeTimes(KIND.PONG, CLIENT_MS, BOX_NS),
  'udp-audio': audio,
};

function hexLines(b: Uint8Array): string {
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0'));
  const lines: string[] = [];
  for (let i = 0; i < hex.length; i += 16) lines.push(hex.slice(i, i + 16).join(' '));
  return lines.join('\n');
}

function docHex(name: string): Uint8Array {
  const blocks = [...doc.matchAll(/^```hex (\S+)\n([\s\S]*?)^```$/gm)].filter((m) => m[1] === name);
  assert.equal(blocks.length, 1, `docs/protocol.md must hold exactly one \`\`\`hex ${name} block`);
  return Uint8Array.from(blocks[0]![2]!.trim().split(/\s+/), (t) => parseInt(t, 16));
}

if (process.env.DUMP) for (const [name, make] of Object.entries(VECTORS)) process.stdout.write(`\`\`\`hex ${name}\n${hexLines(make())}\n\`\`\`\n\n`);

describe('docs/protocol.md §12 datagram vectors', () => {
  for (const [name, make] of Object.entries(VECTORS)) {
    test(`${name} is exactly what the box and the library build`, () => {
      assert.deepEqual([...docHex(name)], [...make()]);
    });
  }

  test('they parse back to the stated values', () => {
    assert.deepEqual(parseClientDatagram(docHex('udp-bind')), { kind: KIND.BIND, token: TOKEN, clientMs: CLIENT_MS });
    assert.deepEqual(parseClientDatagram(docHex('udp-confirm')), { kind: KIND.CONFIRM, token: TOKEN, nonce: NONCE });
    assert.deepEqual(parseBoxDatagram(docHex('udp-challenge')), { kind: KIND.CHALLENGE, nonce: NONCE, clientMs: CLIENT_MS });
    assert.deepEqual(parseBoxDatagram(docHex('udp-pong')), { kind: KIND.PONG, clientMs: CLIENT_MS, boxNs: BOX_NS });
    const d = parseBoxDatagram(docHex('udp-audio'));
    assert.equal(d.kind, KIND.AUDIO);
    const seqs = (d as { packets: Uint8Array[] }).packets.map((p) => parsePacket(p).seq);
    assert.deepEqual(seqs, [7, 6], 'newest first, then the copy');
    assert.equal(tokenToHex(TOKEN), '000102030405060708090a0b0c0d0e0f');
    assert.deepEqual(tokenFromHex('000102030405060708090a0b0c0d0e0f'), TOKEN);
  });

  for (const [what, bytes, message] of [
    ['a truncated BIND', docHex('udp-bind').subarray(0, 20), 'BIND datagram is 20 bytes; allowed: exactly 28'],
    ['a wrong magic', Uint8Array.from([0x53, 0x42, 1, 1]), 'datagram magic is 0x53 0x42; allowed: 0x53 0x55 ("SU")'],
    ['another version', Uint8Array.from([0x53, 0x55, 2, 1]), 'datagram version is 2; allowed: 1'],
    ['a box kind from a client', docHex('udp-pong'), 'datagram kind 131 is not one a client sends; allowed: 1 (BIND), 2 (CONFIRM), 3 (KEEPALIVE)'],
  ] as const) {
    test(`the box refuses ${what} naming the value`, () => {
      assert.throws(() => parseClientDatagram(bytes), (e: Error) => e instanceof DatagramError && e.message === message);
    });
  }

  test('an AUDIO datagram whose packet runs past its end is refused', () => {
    const a = docHex('udp-audio');
    assert.throws(() => parseBoxDatagram(a.subarray(0, a.length - 10)), /AUDIO datagram packet 1 is 56 bytes, but only 46 follow/);
  });
});
