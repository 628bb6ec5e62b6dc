import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketQueue } from '../../src/transport/packet-queue';

const pkt = (n: number): Buffer => Buffer.from([n]);

test('a full queue drops the oldest packet and reports the drop', () => {
  const q = new PacketQueue(3);
  assert.equal(q.push(pkt(1), 1), false);
  assert.equal(q.push(pkt(2), 2), false);
  assert.equal(q.push(pkt(3), 3), false);
  assert.equal(q.push(pkt(4), 4), true);
  assert.equal(q.length, 3);
  assert.equal(q.peekArrival(), 2);
  assert.deepEqual([q.shift()![0], q.shift()![0], q.shift()![0]], [2, 3, 4]);
  assert.equal(q.shift(), undefined);
});

test('the queue keeps order across wrap-around', () => {
  const q = new PacketQueue(2);
  const out: number[] = [];
  for (let i = 0; i < 10; i++) {
    q.push(pkt(i), i);
    if (i % 3 === 0) out.push(q.shift()![0]!);
  }
  while (q.length) out.push(q.shift()![0]!);
  // i=3 drops 1, i=5 drops 3, i=6 drops 4, i=8 drops 6, i=9 drops 7.
  assert.deepEqual(out, [0, 2, 5, 8, 9]);
});

test('a capacity below 1 is a RangeError naming the value', () => {
  assert.throws(() => new PacketQueue(0), { name: 'RangeError', message: 'queue capacity: got 0; allowed: an integer >= 1' });
});
