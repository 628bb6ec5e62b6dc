import { test } from 'node:test';
import assert from 'node:assert/strict';
import { align4, entryBytes, entryLength, entryOffset, entryOutput, firstPacketAt, PACKET_HEADROOM, packetSpan, resultCount, writeCount, writeEntry } from '../../src/engine/encode-result';

test('an encode result reads back what was written, in the documented byte layout', () => {
  const count = 3;
  const lens = [5, 40, 1];
  let at = firstPacketAt(count);
  assert.equal(at, align4(4 + 3 * 12) + PACKET_HEADROOM);
  const total = at + lens.reduce((n, l) => n + packetSpan(l), 0);
  const ab = new ArrayBuffer(total);
  const view = new DataView(ab);
  writeCount(view, count);
  const offsets: number[] = [];
  lens.forEach((len, i) => {
    offsets.push(at);
    new Uint8Array(ab, at, len).fill(i + 1);
    writeEntry(view, i, 100 + i, at, len);
    at += packetSpan(len);
  });
  assert.equal(resultCount(view), 3);
  for (let i = 0; i < count; i++) {
    assert.equal(entryOutput(view, i), 100 + i);
    assert.equal(entryOffset(view, i), offsets[i]);
    assert.equal(entryLength(view, i), lens[i]);
    assert.deepEqual([...entryBytes(ab, i)], new Array(lens[i]).fill(i + 1));
    assert.equal(offsets[i]! % 4, 0, 'packets are 4-aligned');
    assert.ok(offsets[i]! - (i === 0 ? 4 + count * 12 : offsets[i - 1]! + lens[i - 1]!) >= PACKET_HEADROOM, 'headroom before every packet');
  }
  // The layout as docs and workers know it: little-endian u32s, count then (id, offset, length) per packet.
  assert.deepEqual([...new Uint32Array(ab, 0, 4)], [3, 100, offsets[0], 5]);
});
