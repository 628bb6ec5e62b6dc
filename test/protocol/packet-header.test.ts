import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CODEC_IDS, FIXED_HEADER_BYTES, headerBytesFor, PacketError, parsePacket, writeHeader } from '../../src/protocol';

/**
 * The one packet parser (src/protocol/packet-header.ts): the library, the
 * CLI, the bench and these tests all read packets with it, so its refusals
 * are the protocol's.
 */

const CHANNELS = [0, 1, 2];
const FRAMES = 32;

function valid(): Uint8Array {
  const hb = headerBytesFor(CHANNELS.length);
  const b = new Uint8Array(hb + FRAMES * CHANNELS.length * 2);
  writeHeader(new DataView(b.buffer), 0, { codec: CODEC_IDS.pcm16, frames: FRAMES, seq: 7, rate: 48000, samplePos: 224n, captureNs: 5n, flags: 0, channels: CHANNELS });
  for (let i = hb; i < b.length; i++) b[i] = i & 0xff;
  return b;
}

describe('packet header parser', () => {
  for (const [what, mutate, message] of [
    ['a packet shorter than the fixed header', (p: Uint8Array) => p.subarray(0, FIXED_HEADER_BYTES - 1), 'packet is 35 bytes; the header alone needs at least 36'],
    ['a wrong magic', (p: Uint8Array) => ((p[1] = 0x43), p), 'packet magic is 0x53 0x43; allowed: 0x53 0x42 ("SB")'],
    ['another layout version', (p: Uint8Array) => ((p[2] = 2), p), 'packet layout version is 2; this client reads version 1'],
    ['codec id 0', (p: Uint8Array) => ((p[3] = 0), p), 'packet codec id is 0; allowed: 1 (pcm16), 2 (pcm24), 3 (deflate), 4 (opus)'],
    ['codec id 5', (p: Uint8Array) => ((p[3] = 5), p), 'packet codec id is 5; allowed: 1 (pcm16), 2 (pcm24), 3 (deflate), 4 (opus)'],
    ['no channels', (p: Uint8Array) => ((p[32] = 0), p), 'packet channelCount is 0; allowed: 1-64'],
    ['headerBytes too small for the channels', (p: Uint8Array) => (new DataView(p.buffer).setUint16(4, 36, true), p), 'packet headerBytes is 36; allowed for 3 channels in a 232-byte packet: 39-232'],
    ['headerBytes beyond the packet', (p: Uint8Array) => (new DataView(p.buffer).setUint16(4, 300, true), p), 'packet headerBytes is 300; allowed for 3 channels in a 232-byte packet: 39-232'],
    ['zero frames', (p: Uint8Array) => (new DataView(p.buffer).setUint16(6, 0, true), p), 'packet frames is 0; allowed: 1-65535'],
    ['a zero rate', (p: Uint8Array) => (new DataView(p.buffer).setUint32(12, 0, true), p), 'packet rate is 0 Hz; allowed: above 0'],
  ] as const) {
    test(`refuses ${what} with a PacketError naming the value`, () => {
      assert.throws(() => parsePacket(mutate(valid())), (err: Error) => err instanceof PacketError && err.message === message);
    });
  }

  test('a longer header from a future version: the payload starts at headerBytes', () => {
    const p = valid();
    const hb = headerBytesFor(3);
    const longer = new Uint8Array(p.length + 8);
    longer.set(p.subarray(0, hb));
    longer.set([1, 2, 3, 4, 5, 6, 7, 8], hb);
    longer.set(p.subarray(hb), hb + 8);
    new DataView(longer.buffer).setUint16(4, hb + 8, true);
    const parsed = parsePacket(longer);
    assert.equal(parsed.headerBytes, hb + 8);
    assert.deepEqual(parsed.payload, p.subarray(hb));
    assert.deepEqual(parsed.channels, [0, 1, 2]);
  });

  test('reads a packet that sits at an odd offset of a larger buffer', () => {
    const p = valid();
    const host = new Uint8Array(p.length + 3);
    host.set(p, 3);
    const parsed = parsePacket(host.subarray(3));
    assert.deepEqual(parsed.payload, p.subarray(parsed.headerBytes));
    assert.equal(parsed.frames, FRAMES);
    assert.equal(parsed.seq, 7);
    assert.equal(parsed.samplePos, 224n);
  });
});
