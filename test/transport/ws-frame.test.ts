import { test } from 'node:test';
import assert from 'node:assert/strict';
import { frameInPlace, withDiscontinuity } from '../../src/transport/ws-frame';
import { FLAG_DISCONTINUITY, FLAG_MIX, FLAGS_OFFSET, headerBytesFor, parsePacket, writeHeader } from '../../src/engine/packet-format';

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
    want[hdr + FLAGS_OFFSET] = want[hdr + FLAGS_OFFSET]! | FLAG_DISCONTINUITY;
    assert.ok(copy.equals(want), 'only the flags byte differs');
  });
}
