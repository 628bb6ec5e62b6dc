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
import { frameInPlace } from '../../src/transport/ws-frame';

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
