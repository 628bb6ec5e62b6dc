import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { CaptureSource, type CaptureFormat } from '../../src/capture/capture-source';
import { PeriodIngest } from '../../src/capture/period-ingest';
import { FLAG_DISCONTINUITY, parsePacket, type ParsedPacket } from '../../src/protocol';
import { OutputRegistry, type MixRequest, type PacketSink } from '../../src/pool/output-registry';
import { SendPool, RING_SLOTS } from '../../src/pool/send-pool';
import { FanOut } from '../../src/transport/fan-out';
import { waitFor } from '../helpers/wait';

/**
 * Overload, forced on purpose: a worker slower than the source, an event loop
 * held while results pile up, a source that delivers a burst of periods at
 * once. Whatever the box has to drop, every client must still get audio in
 * order, labelled with the seq and samplePos it was captured at, with every
 * seq gap flagged (docs/protocol.md §7). The source never loses a frame itself,
 * so a packet's samplePos is exactly seq × period and its payload is the
 * source pattern at that position.
 */

const CHANNELS = 8;
const FRAMES = 128;
const RATE = 48000;
const SLOW_WORKER = path.join(__dirname, '..', 'fixtures', 'slow-encode-worker.js');

/**
 * The source's clock in these scenarios. Its pauses are the load's shape (how
 * fast periods arrive against a worker of known slowness), not a wait for
 * something to happen, so they stay timers. No assertion depends on their
 * length: each run checks its own precondition instead (skippedPeriods > 0,
 * or it proves nothing) and then that every period was delivered or counted.
 */
function sourcePause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Top 16 bits of the source at absolute frame f, channel c: distinct per period, so a payload 32 periods off is caught. */
function top16(f: number, c: number): number {
  return (f * 7 + c * 1009 + 13) & 0xffff;
}

/** A source that delivers exactly the periods the test asks for, with a self-identifying S32 pattern. */
class ScriptedSource extends CaptureSource {
  private frame = 0;
  private readonly buf = Buffer.alloc(FRAMES * CHANNELS * 4);
  readonly format: CaptureFormat = { format: 'S32_LE', channels: CHANNELS, rate: RATE, periodFrames: FRAMES };
  constructor() {
    super('test-signal', 'scripted');
  }
  start(): void {
    this.emit('format', this.format);
  }
  async stop(): Promise<void> {}
  /** Delivers the next period. */
  period(): void {
    for (let i = 0; i < FRAMES; i++) {
      for (let c = 0; c < CHANNELS; c++) this.buf.writeInt32LE(((top16(this.frame + i, c) << 16) | (c << 8)) | 0, (i * CHANNELS + c) * 4);
    }
    this.frame += FRAMES;
    this.emit('period', this.buf, FRAMES);
  }
}

class Collector implements PacketSink {
  readonly packets: ParsedPacket[] = [];
  pushPacket(frame: Buffer): void {
    const len = frame[1]! & 0x7f;
    const hdr = len < 126 ? 2 : len === 126 ? 4 : 10;
    this.packets.push(parsePacket(Buffer.from(frame.subarray(hdr))));
  }
}

/** Every way a client's stream can break the protocol's promise; empty when it keeps it. */
function anomalies(packets: readonly ParsedPacket[], channels: readonly number[] | null): string[] {
  const out: string[] = [];
  let prev: ParsedPacket | null = null;
  for (const p of packets) {
    const where = `seq ${p.seq} (samplePos ${p.samplePos})`;
    if (p.samplePos !== BigInt(p.seq) * BigInt(FRAMES)) out.push(`${where}: labelled with samplePos ${p.samplePos}, captured as period ${p.seq} at ${p.seq * FRAMES}`);
    if (prev) {
      const step = (p.seq - prev.seq) >>> 0;
      if (step === 0) out.push(`${where}: repeated`);
      else if (step > 0x7fffffff) out.push(`${where}: out of order after seq ${prev.seq}`);
      else if (step > 1 && (p.flags & FLAG_DISCONTINUITY) === 0) out.push(`${where}: ${step - 1} period(s) missing after seq ${prev.seq} without the discontinuity flag`);
    }
    if (channels) {
      const s16 = new Int16Array(new Uint8Array(p.payload).buffer, 0, FRAMES * channels.length);
      const f0 = Number(p.samplePos);
      let bad = 0;
      for (let i = 0; i < FRAMES; i++) {
        for (let k = 0; k < channels.length; k++) if ((s16[i * channels.length + k]! & 0xffff) !== top16(f0 + i, channels[k]!)) bad++;
      }
      if (bad > 0) {
        const got = (s16[0]! & 0xffff) as number;
        let at = -1;
        for (let d = -64; d <= 64 && at < 0; d++) if (top16(f0 + d * FRAMES, channels[0]!) === got) at = d;
        out.push(`${where}: ${bad} samples are not the source at samplePos${at >= 0 ? ` (they are the audio of period ${p.seq + at})` : ''}`);
      }
    }
    prev = p;
  }
  return out;
}

interface Rig {
  source: ScriptedSource;
  ingest: PeriodIngest;
  pool: SendPool;
  outputs: OutputRegistry;
  sinks: { raw: Collector; raw2: Collector; mix: Collector };
}

/** A constant stereo pcm16 mix of channels 0-3, limiter off: after its first period, a pure function of the input. */
const MIX: MixRequest = {
  key: 'overload-test',
  codec: 'pcm16',
  params: { channels: [0, 1, 2, 3].map((c) => ({ gainDb: -6 - c, pan: (c - 1.5) / 2, mute: false, solo: false })), masterDb: 0, output: 'stereo' },
  limiter: { enabled: false },
  opus: null,
};

const rigs: Rig[] = [];
after(async () => {
  for (const r of rigs) await r.pool.stop();
});

function makeRig(opts: { size: number; inlineBudgetPct: number; workerFile?: string }): Rig {
  const outputs = new OutputRegistry();
  const pool = new SendPool({ size: opts.size, inlineBudgetPct: opts.inlineBudgetPct, periodFrames: FRAMES, workerFile: opts.workerFile }, outputs, { channels: CHANNELS, rate: RATE }, new FanOut(outputs).deliver);
  const ingest = new PeriodIngest(pool);
  const source = new ScriptedSource();
  ingest.attach(source);
  const sinks = { raw: new Collector(), raw2: new Collector(), mix: new Collector() };
  outputs.subscribe(sinks.raw, 'pcm16', [5, 0, 3]);
  outputs.subscribe(sinks.raw2, 'pcm16', [7, 1]);
  outputs.setMix(sinks.mix, null, MIX, RATE, FRAMES);
  source.start();
  const rig = { source, ingest, pool, outputs, sinks };
  rigs.push(rig);
  return rig;
}

/** The mix's packets of a run without overload (inline, one period at a time), by samplePos. */
async function referenceMix(periods: number): Promise<Map<bigint, Buffer>> {
  const rig = makeRig({ size: 0, inlineBudgetPct: 100 });
  for (let i = 0; i < periods; i++) rig.source.period();
  await waitFor(() => rig.sinks.mix.packets.length >= periods, { timeoutMs: 10_000, what: 'reference mix packets' });
  return new Map(rig.sinks.mix.packets.map((p) => [p.samplePos, Buffer.from(p.payload)]));
}

async function drained(rig: Rig): Promise<void> {
  await waitFor(() => rig.pool.snapshot().pending === 0, { timeoutMs: 20_000, what: 'the pool to drain' });
}

function assertStreamsIntact(rig: Rig, ref: Map<bigint, Buffer>, periods: number): void {
  const stats = rig.pool.snapshot();
  assert.ok(stats.skippedPeriods > 0, `the run must overload the pool (skipped ${stats.skippedPeriods} periods); otherwise it proves nothing`);
  for (const [name, sink, channels] of [
    ['raw [5,0,3]', rig.sinks.raw, [5, 0, 3]],
    ['raw [7,1]', rig.sinks.raw2, [7, 1]],
    ['mix', rig.sinks.mix, null],
  ] as const) {
    const problems = anomalies(sink.packets, channels);
    assert.deepEqual(problems.slice(0, 8), [], `${name}: ${problems.length} anomalies in ${sink.packets.length} packets`);
    // Every period was either delivered or counted as skipped.
    assert.equal(sink.packets.length + stats.skippedPeriods, periods, `${name}: delivered + skipped`);
  }
  let compared = 0;
  for (const p of rig.sinks.mix.packets) {
    if (p.seq === 0) continue; // the mix's first period ramps in from silence
    const want = ref.get(p.samplePos);
    assert.ok(want, `mix: no reference for samplePos ${p.samplePos}`);
    assert.ok(Buffer.from(p.payload).equals(want), `mix seq ${p.seq}: payload is not the mix of the audio at samplePos ${p.samplePos}`);
    compared++;
  }
  assert.ok(compared > 0);
}

describe('overload: the box drops whole periods, flagged, and never sends stale, repeated or mislabelled audio', () => {
  const PERIODS = 600;

  test('a send-pool worker slower than the source (6 ms per task against 1 ms periods)', async () => {
    process.env.STAGEBOX_TEST_WORKER_DELAY_MS = '6';
    const ref = await referenceMix(PERIODS);
    const rig = makeRig({ size: 1, inlineBudgetPct: 0, workerFile: SLOW_WORKER });
    for (let i = 0; i < PERIODS; i++) {
      rig.source.period();
      await sourcePause(1);
    }
    await drained(rig);
    assertStreamsIntact(rig, ref, PERIODS);
  });

  test('an event loop held for 12 periods at a time while worker results pile up, then a burst of periods', async () => {
    process.env.STAGEBOX_TEST_WORKER_DELAY_MS = '0';
    const ref = await referenceMix(PERIODS);
    const rig = makeRig({ size: 1, inlineBudgetPct: 0, workerFile: SLOW_WORKER });
    let sent = 0;
    while (sent < PERIODS) {
      // Periods arrive one per turn of the loop, then the loop is held (a long GC, a slow handler)
      // and the device hands over everything it captured meanwhile at once.
      for (let i = 0; i < 20 && sent < PERIODS; i++, sent++) {
        rig.source.period();
        await new Promise((r) => setImmediate(r));
      }
      const until = performance.now() + 12 * (FRAMES / RATE) * 1000;
      while (performance.now() < until) {
        // held
      }
      for (let i = 0; i < RING_SLOTS + 8 && sent < PERIODS; i++, sent++) rig.source.period();
      await sourcePause(1);
    }
    await drained(rig);
    assertStreamsIntact(rig, ref, PERIODS);
  });

  test('a source that bursts two rings of periods at once into a slow pool', async () => {
    process.env.STAGEBOX_TEST_WORKER_DELAY_MS = '2';
    const ref = await referenceMix(PERIODS);
    const rig = makeRig({ size: 1, inlineBudgetPct: 0, workerFile: SLOW_WORKER });
    let sent = 0;
    while (sent < PERIODS) {
      for (let i = 0; i < 2 * RING_SLOTS && sent < PERIODS; i++, sent++) rig.source.period();
      // Let some, not all, results come back before the next burst.
      await sourcePause(7);
    }
    await drained(rig);
    assertStreamsIntact(rig, ref, PERIODS);
  });
});
