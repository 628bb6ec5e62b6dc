import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import ws from 'ws';

/** ws's own frame parser (exported by the package, not by its type definitions). */
interface FrameReceiver {
  on(event: 'message', cb: (data: Buffer, isBinary: boolean) => void): void;
  on(event: 'error', cb: (err: Error) => void): void;
  write(chunk: Buffer): void;
}
const Receiver = (ws as unknown as { Receiver: new (opts: { isServer: boolean; binaryType: string }) => FrameReceiver }).Receiver;
import { frameInPlace, withDiscontinuity } from '../../src/transport/ws-frame';
import { FLAG_DISCONTINUITY, FLAG_MIX, headerBytesFor, OFFSET, parsePacket, writeHeader } from '../../src/protocol';

/** Reads one frame back with ws's own receiver (the client side of RFC 6455), so the framing is checked by a parser we did not write. */
function receive(frame: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const r = new Receiver({ isServer: false, binaryType: 'nodebuffer' });
    r.on('message', (data: Buffer, isBinary: boolean) => (isBinary ? resolve(data) : reject(new Error('not binary'))));
    r.on('error', reject);
    r.write(frame);
  });
}

describe('WebSocket framing in place', () => {
  for (const length of [0, 1, 125, 126, 200, 65535, 65536, 70000]) {
    test(`a ${length}-byte packet is one unmasked binary frame with the right length form, written in the headroom without a copy`, async () => {
      const ab = new ArrayBuffer(12 + length + 4);
      const payload = new Uint8Array(ab, 12, length);
      for (let i = 0; i < length; i++) payload[i] = (i * 7) & 0xff;
      const frame = frameInPlace(ab, 12, length);
      const hdr = length < 126 ? 2 : length < 65536 ? 4 : 10;
      assert.equal(frame.buffer, ab, 'the frame is a view of the encoder\'s buffer');
      assert.equal(frame.byteOffset, 12 - hdr);
      assert.equal(frame.length, hdr + length);
      assert.equal(frame[0], 0x82, 'FIN + binary opcode');
      assert.equal(frame[1]! & 0x80, 0, 'server frames are not masked');
      assert.deepEqual(await receive(frame), Buffer.from(payload));
    });
  }

  test('a packet without room for its header is refused, naming the offset', () => {
    assert.throws(() => frameInPlace(new ArrayBuffer(300), 3, 200), /packet at offset 3 has no room for a 4-byte frame header/);
  });
});

/** A framed packet of `payloadBytes` payload bytes, as the encoder leaves it: 10 bytes of headroom, then the packet. */
function framed(payloadBytes: number, flags: number): Buffer {
  const hb = headerBytesFor(2);
  const ab = new ArrayBuffer(10 + hb + payloadBytes);
  writeHeader(new DataView(ab), 10, { codec: 1, frames: payloadBytes / 4, seq: 77, rate: 48000, samplePos: 9n, captureNs: 5n, flags, channels: [0, 1] });
  new Uint8Array(ab, 10 + hb).forEach((_, i, a) => (a[i] = i & 0xff));
  return frameInPlace(ab, 10, hb + payloadBytes);
}

for (const [payloadBytes, hdr] of [[64, 2], [4096, 4], [70000, 10]] as const) {
  test(`withDiscontinuity on a frame with a ${hdr}-byte header: a copy with flag bit 0 set in the packet, the shared frame untouched`, () => {
    const shared = framed(payloadBytes, FLAG_MIX);
    const before = Buffer.from(shared);
    const copy = withDiscontinuity(shared);
    assert.ok(shared.equals(before), 'the shared frame is not written to');
    assert.notEqual(copy.buffer, shared.buffer);
    const p = parsePacket(copy.subarray(hdr));
    assert.equal(p.flags, FLAG_MIX | FLAG_DISCONTINUITY);
    assert.equal(p.seq, 77);
    const want = Buffer.from(before);
    want[hdr + OFFSET.flags] = want[hdr + OFFSET.flags]! | FLAG_DISCONTINUITY;
    assert.ok(copy.equals(want), 'only the flags byte differs');
  });
}
