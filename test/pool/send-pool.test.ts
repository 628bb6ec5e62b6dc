import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OutputRegistry, type PacketSink } from '../../src/pool/output-registry';
import { SendPool } from '../../src/pool/send-pool';
import { parsePacket } from '../../src/engine/packet-format';
import { frameInPlace } from '../../src/transport/ws-frame';
import { resolvePoolSize } from '../../src/pool/pool-size';

/** Collects the packets a sink receives, unframing the WebSocket header. */
class Collector implements PacketSink {
  packets: ReturnType<typeof parsePacket>[] = [];
  pushPacket(frame: Buffer): void {
    const len = frame[1]! & 0x7f;
    const hdr = len < 126 ? 2 : len === 126 ? 4 : 10;
    this.packets.push(parsePacket(Buffer.from(frame.subarray(hdr))));
  }
}

function fillPeriod(pool: SendPool, seq: number, channels: number, frames: number): void {
  const ring = pool.ring;
  const slot = ring.slotOf(seq);
  for (let f = 0; f < frames; f++) for (let c = 0; c < channels; c++) ring.samples[slot * ring.samplesPerSlot + f * channels + c] = ((seq * 1000 + f * 10 + c) << 16) | 0x1234;
  ring.writeHeader(slot, seq, BigInt(seq * frames), 1000n + BigInt(seq), 0);
}

async function runPeriods(inlineBudgetPct: number, size: number): Promise<Collector[]> {
  const outputs = new OutputRegistry();
  const pool = new SendPool({ size, inlineBudgetPct, periodFrames: 32 }, outputs, { channels: 8, rate: 48000 }, frameInPlace);
  const sinks = [new Collector(), new Collector(), new Collector()];
  outputs.subscribe(sinks[0]!, 'pcm16', [7, 0, 3]);
  outputs.subscribe(sinks[1]!, 'pcm16', [7, 0, 3]);
  outputs.subscribe(sinks[2]!, 'pcm24', [1]);
  for (let seq = 0; seq < 20; seq++) {
    fillPeriod(pool, seq, 8, 32);
    pool.dispatch(seq, performance.now());
  }
  const deadline = Date.now() + 10_000;
  while (sinks.some((s) => s.packets.length < 20) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  await pool.stop();
  return sinks;
}

for (const [name, inlineBudgetPct, size] of [
  ['on the main thread', 90, 1],
  ['in real piscina workers', 0, 2],
] as const) {
  test(`periods encoded ${name} reach every subscriber in order with the right samples`, async () => {
    const sinks = await runPeriods(inlineBudgetPct, size);
    for (const s of sinks) assert.deepEqual(s.packets.map((p) => p.seq), [...Array(20).keys()]);
    // Subscribers of the same output receive the very same packets.
    assert.deepEqual(sinks[0]!.packets, sinks[1]!.packets);
    const p = sinks[0]!.packets[5]!;
    assert.deepEqual(p.channels, [7, 0, 3]);
    assert.equal(p.samplePos, 160n);
    const s16 = new Int16Array(new Uint8Array(p.payload).buffer, 0, 32 * 3);
    assert.equal(s16[3 * 2 + 1], 5000 + 2 * 10 + 0); // frame 2, carried channel 1 = device channel 0
    const q = sinks[2]!.packets[5]!;
    assert.equal(q.codec, 'pcm24');
    assert.equal(Buffer.from(q.payload).readIntLE(3 * 4, 3), ((5000 + 40 + 1) << 8) | 0x12);
  });
}

test('pool.size "auto" leaves the main thread a core and never goes below one worker', () => {
  assert.equal(resolvePoolSize('auto', 4), 3);
  assert.equal(resolvePoolSize('auto', 2), 1);
  assert.equal(resolvePoolSize('auto', 1), 1);
  assert.equal(resolvePoolSize(0, 4), 0);
});
