import { test } from 'node:test';
import assert from 'node:assert/strict';
import { firstPacketAt, packetSpan, writeCount, writeEntry } from '../../src/engine/encode-result';
import { OutputRegistry, type PacketSink } from '../../src/pool/output-registry';
import { FanOut } from '../../src/transport/fan-out';

class Recorder implements PacketSink {
  readonly frames: Buffer[] = [];
  readonly arrivals: number[] = [];
  pushPacket(frame: Buffer, arrivalMs: number): void {
    this.frames.push(frame);
    this.arrivals.push(arrivalMs);
  }
}

/** A result holding one packet per (output id, payload) pair, in this order. */
function result(packets: [number, number[]][]): ArrayBuffer {
  let at = firstPacketAt(packets.length);
  const ab = new ArrayBuffer(at + packets.reduce((n, [, p]) => n + packetSpan(p.length), 0));
  const view = new DataView(ab);
  writeCount(view, packets.length);
  packets.forEach(([id, p], i) => {
    new Uint8Array(ab, at, p.length).set(p);
    writeEntry(view, i, id, at, p.length);
    at += packetSpan(p.length);
  });
  return ab;
}

test('fan-out gives every subscriber of an output the very same framed bytes, in result order, and skips outputs nobody wants', () => {
  const outputs = new OutputRegistry();
  const a = new Recorder();
  const b = new Recorder();
  const c = new Recorder();
  const shared = outputs.subscribe(a, 'pcm16', [0]);
  outputs.subscribe(b, 'pcm16', [0]);
  const own = outputs.subscribe(c, 'pcm24', [1]);
  const ab = result([
    [own.id, [9, 9]],
    [shared.id, [1, 2, 3]],
    [4242, [7]], // an output that left meanwhile
    [own.id, [8]],
  ]);
  new FanOut(outputs).deliver(ab, 12.5);
  assert.equal(a.frames.length, 1);
  assert.equal(a.frames[0], b.frames[0], 'one Buffer for every subscriber: framed once');
  assert.deepEqual([...a.frames[0]!], [0x82, 3, 1, 2, 3]);
  assert.deepEqual(c.frames.map((f) => [...f]), [[0x82, 2, 9, 9], [0x82, 1, 8]]);
  assert.deepEqual([...a.arrivals, ...c.arrivals], [12.5, 12.5, 12.5]);
});
