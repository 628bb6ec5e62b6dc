import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OutputRegistry, type MixRequest, type Output, type PacketSink } from '../../src/pool/output-registry';
import { SendPool } from '../../src/pool/send-pool';
import { parsePacket } from '../../src/protocol';
import { FanOut } from '../../src/transport/fan-out';
import { resolvePoolSize } from '../../src/pool/pool-size';
import { waitFor, withTimeout } from '../helpers/wait';

/** Collects the packets a sink receives, unframing the WebSocket header. */
class Collector implements PacketSink {
  packets: ReturnType<typeof parsePacket>[] = [];
  private waiter: { n: number; resolve: () => void } | null = null;
  pushPacket(frame: Buffer): void {
    const len = frame[1]! & 0x7f;
    const hdr = len < 126 ? 2 : len === 126 ? 4 : 10;
    this.packets.push(parsePacket(Buffer.from(frame.subarray(hdr))));
    if (this.waiter && this.packets.length >= this.waiter.n) this.waiter.resolve();
  }
  /** Resolves once `n` packets have arrived (bounded). */
  received(n: number, timeoutMs = 10_000): Promise<void> {
    if (this.packets.length >= n) return Promise.resolve();
    const arrived = new Promise<void>((resolve) => (this.waiter = { n, resolve }));
    return withTimeout(arrived, timeoutMs, `${n} packets (have ${this.packets.length})`).finally(() => (this.waiter = null));
  }
}

/** Resolves once every dispatched period has been released to its sinks (the pool holds none). */
function drained(pool: SendPool): Promise<unknown> {
  return waitFor(() => pool.snapshot().pending === 0, { timeoutMs: 10_000, intervalMs: 5, what: 'the pool to release every period' });
}

function fillPeriod(pool: SendPool, seq: number, channels: number, frames: number): void {
  const ring = pool.ring;
  const slot = ring.slotOf(seq);
  for (let f = 0; f < frames; f++) for (let c = 0; c < channels; c++) ring.samples[slot * ring.samplesPerSlot + f * channels + c] = ((seq * 1000 + f * 10 + c) << 16) | 0x1234;
  ring.writeHeader(slot, seq, BigInt(seq * frames), 1000n + BigInt(seq), 0);
}

async function runPeriods(inlineBudgetPct: number, size: number): Promise<Collector[]> {
  const outputs = new OutputRegistry();
  const pool = new SendPool({ size, inlineBudgetPct, periodFrames: 32 }, outputs, { channels: 8, rate: 48000 }, new FanOut(outputs).deliver);
  const sinks = [new Collector(), new Collector(), new Collector()];
  outputs.subscribe(sinks[0]!, 'pcm16', [7, 0, 3]);
  outputs.subscribe(sinks[1]!, 'pcm16', [7, 0, 3]);
  outputs.subscribe(sinks[2]!, 'pcm24', [1]);
  for (let seq = 0; seq < 20; seq++) {
    fillPeriod(pool, seq, 8, 32);
    pool.dispatch(seq, performance.now());
  }
  await Promise.all(sinks.map((s) => s.received(20)));
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

/** A mix request the way control/mix-request.ts resolves one: `gains` in dB per device channel, all at `pan`. */
function mixReq(tag: string, codec: 'pcm16' | 'pcm24' | 'opus', output: 'stereo' | 'mono', gains: number[], pan: number, ceilingDb = -1): MixRequest {
  return {
    key: `${tag}:${codec}:${output}:${gains.join(',')}:${pan}:${ceilingDb}`,
    codec,
    params: { channels: gains.map((gainDb) => ({ gainDb, pan, mute: false, solo: false })), masterDb: 0, output },
    limiter: { enabled: true, ceilingDb },
    opus: codec === 'opus' ? { frameMs: 5, bitrateKbps: 96 } : null,
  };
}

/** Loud, distinct tones per channel (−6 dBFS peak), so +10 dB mixes drive the limiter hard. */
function fillLoud(pool: SendPool, seq: number, channels: number, frames: number): void {
  const ring = pool.ring;
  const slot = ring.slotOf(seq);
  for (let f = 0; f < frames; f++) {
    const t = seq * frames + f;
    for (let c = 0; c < channels; c++) ring.samples[slot * ring.samplesPerSlot + f * channels + c] = Math.round(Math.sin((2 * Math.PI * (200 + 110 * c) * t) / 48000) * 0.5 * 2 ** 31);
  }
  ring.writeHeader(slot, seq, BigInt(seq * frames), 1000n + BigInt(seq), 0);
}

const MIX_FRAMES = 128;
const MIX_CHANNELS = 8;

/**
 * Runs `periods` periods through a pool with three mixes (pcm16 stereo, pcm24 mono, opus stereo),
 * moving their faders every `changeEvery` periods (ramps) between quiet and +10 dB (limiter). `awaitEach`:
 * wait for each period's packets before the next (changes then land on the same period boundary
 * in every pool); otherwise dispatch back to back, as fast as possible (the queue builds up).
 */
async function runMixes(size: number, inlineBudgetPct: number, periods: number, awaitEach: boolean, changeEvery = 7): Promise<{ sinks: Collector[]; stats: ReturnType<SendPool['snapshot']> }> {
  const outputs = new OutputRegistry();
  const pool = new SendPool({ size, inlineBudgetPct, periodFrames: MIX_FRAMES }, outputs, { channels: MIX_CHANNELS, rate: 48000 }, new FanOut(outputs).deliver);
  const sinks = [new Collector(), new Collector(), new Collector()];
  const outs: (Output | null)[] = [null, null, null];
  const apply = (step: number): void => {
    const loud = step % 2 === 0;
    const g = (c: number): number => (loud ? 10 - c : -20 + 2 * c - (step % 3));
    const gains = Array.from({ length: MIX_CHANNELS }, (_, c) => g(c));
    outs[0] = outputs.setMix(sinks[0]!, outs[0], mixReq('a', 'pcm16', 'stereo', gains, ((step % 5) - 2) / 4), 48000, MIX_FRAMES);
    outs[1] = outputs.setMix(sinks[1]!, outs[1], mixReq('b', 'pcm24', 'mono', gains.slice(0, 5), 0, -3), 48000, MIX_FRAMES);
    outs[2] = outputs.setMix(sinks[2]!, outs[2], mixReq('c', 'opus', 'stereo', gains.slice(2), 0.3), 48000, MIX_FRAMES);
  };
  apply(0);
  for (let seq = 0; seq < periods; seq++) {
    if (changeEvery > 0 && seq > 0 && seq % changeEvery === 0) apply(seq / changeEvery);
    fillLoud(pool, seq, MIX_CHANNELS, MIX_FRAMES);
    pool.dispatch(seq, performance.now());
    if (awaitEach) {
      // The pcm mixes' packet of this period has arrived, so the opus mix's render has too (one mix part per period).
      await Promise.all(sinks.slice(0, 2).map((s) => s.received(seq + 1)));
    }
  }
  await Promise.all(sinks.slice(0, 2).map((s) => s.received(periods)));
  // The Opus mix sends a packet per full Opus frame, not per period: its last ones are in once the pool holds nothing.
  await drained(pool);
  const stats = pool.snapshot();
  await pool.stop();
  return { sinks, stats };
}

test('mixes rendered in workers are bit-identical to inline ones across gain ramps, limiter action and Opus, over 120 periods', async () => {
  const inline = await runMixes(0, 50, 120, true);
  const pooled = await runMixes(2, 0, 120, true);
  assert.equal(inline.stats.pooledMixPeriods, 0);
  assert.equal(pooled.stats.inlineMixPeriods, 0, 'inlineBudgetPct 0 sends every mix period to the workers');
  assert.equal(pooled.stats.pooledMixPeriods, 120);
  for (let i = 0; i < 3; i++) {
    const a = inline.sinks[i]!.packets;
    const b = pooled.sinks[i]!.packets;
    assert.ok(a.length > 0);
    assert.equal(b.length, a.length, `mix ${i}: packet count`);
    for (let k = 0; k < a.length; k++) assert.deepEqual(b[k], a[k], `mix ${i}, packet ${k} (seq ${a[k]!.seq}) differs`);
  }
  // The loud stretches were limited: pcm16 samples sit at the -1 dBFS ceiling, not clipped at full scale.
  const loudPacket = inline.sinks[0]!.packets[3]!;
  const s16 = new Int16Array(new Uint8Array(loudPacket.payload).buffer);
  const peak = Math.max(...s16.map((x) => Math.abs(x)));
  assert.ok(peak > 28000 && peak <= Math.ceil(32768 * 10 ** (-1 / 20)), `peak ${peak} of a +10 dB period should sit at the -1 dBFS ceiling`);
  assert.equal(inline.stats.encodeErrors + pooled.stats.encodeErrors, 0);
});

test('under load (periods dispatched back to back) pooled mixes are released in period order and equal the inline render', async () => {
  // Loud (+10 dB, limited) mixes without fader moves: a move made while periods wait would land on
  // whichever period's mixes start next, which is the point of staging, but not comparable to inline.
  // 30 periods: one short of the ring (32 slots, one kept free), so none is skipped for being a ring behind.
  const inline = await runMixes(0, 50, 30, false, 0);
  const pooled = await runMixes(2, 0, 30, false, 0);
  assert.equal(pooled.stats.pooledMixPeriods, 30);
  assert.equal(pooled.stats.skippedPeriods, 0);
  for (let i = 0; i < 2; i++) assert.deepEqual(pooled.sinks[i]!.packets.map((p) => p.seq), [...Array(30).keys()], `mix ${i}: seq order`);
  const opusSeqs = pooled.sinks[2]!.packets.map((p) => p.seq);
  assert.deepEqual(opusSeqs, [...opusSeqs.keys()], 'opus frames in order, none missing');
  for (let i = 0; i < 3; i++) assert.deepEqual(pooled.sinks[i]!.packets, inline.sinks[i]!.packets, `mix ${i}`);
});
