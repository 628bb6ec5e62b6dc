import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TakeSource, type TakePlayPlan } from '../../src/capture/take-source';
import { RecordDrives } from '../../src/recording/record-drives';
import { TakeLibrary } from '../../src/recording/take-library';
import { TakeWriter } from '../../src/recording/take-writer';
import { leftAligned, patternBytes } from '../helpers/alsa-fixture';
import { sleep, waitFor } from '../helpers/wait';

/**
 * Virtual soundcheck's source on a real take in two parts (as on FAT): what
 * it emits, period by period, is the take bit for bit, every recorded input
 * on its own number and silence on the others; it plays across the part
 * boundary, loops across it, pauses in silence and ends in silence.
 */

const root = mkdtempSync(path.join(os.tmpdir(), 'rec-source-'));
const PF = 128;
const CH = 6;
const RECORDED = [0, 1, 3, 5];
const PERIODS = 100;
let plan: TakePlayPlan;

before(async () => {
  const dir = path.join(root, 'state', 'recordings', 'T-source');
  const w = new TakeWriter({
    dir,
    id: 'T-source',
    name: 'Source',
    layout: 'multi',
    format: { format: 'S16_LE', channels: CH, rate: 48000, periodFrames: PF },
    channels: RECORDED.map((ch) => ({ ch, name: `In ${ch + 1}` })),
    bufferS: 2,
    syncIntervalMs: 100,
    minFreeBytes: 0,
    maxFileBytes: 150_000,
  });
  for (let p = 0; p < PERIODS; p++) {
    w.period(patternBytes('S16_LE', CH, PF, p * PF), PF, BigInt(p * PF), 0n, false);
    if (p % 16 === 15) await sleep(5);
  }
  await w.stop('stopped');
  const lib = new TakeLibrary(new RecordDrives({ dir: 'auto', drives: [path.join(root, 'none')], stateDir: path.join(root, 'state') }), { info: () => undefined, warn: () => undefined }, () => null);
  plan = await lib.playPlan((await lib.list())[0]!);
});
after(() => rmSync(root, { recursive: true, force: true }));

/** The sample the source must emit at take frame f, channel c. */
function want(f: number, c: number): number {
  return RECORDED.includes(c) ? leftAligned('S16_LE', f, c) >> 16 : 0;
}

/** Take frame a period starts at (from its channel 0), or null when it is silence. */
function frameOf(period: Buffer): number | null {
  const s = new Int16Array(period.buffer, period.byteOffset, period.length / 2);
  if (s.every((v) => v === 0)) return null;
  for (let f = 0; f < PERIODS * PF; f++) {
    let same = true;
    for (let i = 0; i < PF && same; i++) for (let c = 0; c < CH && same; c++) same = s[i * CH + c] === want(f + i, c);
    if (same) return f;
  }
  assert.fail(`a period that is neither silence nor the take: ${Array.from(s.subarray(0, 12))}`);
}

function play(src: TakeSource): { periods: Buffer[] } {
  const out = { periods: [] as Buffer[] };
  src.on('period', (d: Buffer) => out.periods.push(Buffer.from(d)));
  return out;
}

test('the take in two parts plays bit for bit, every input on its number, then ends in silence', async () => {
  assert.equal(plan.parts.length, 2, 'the take was split in two parts');
  assert.equal(plan.frames, PERIODS * PF);
  const src = new TakeSource(plan, PF);
  await src.open();
  let ended = 0;
  src.on('playback', () => ended++);
  const got = play(src);
  src.start();
  assert.deepEqual(src.snapshot().format, { format: 'S16_LE', channels: CH, rate: 48000, periodFrames: PF });
  await waitFor(() => ended === 1 && got.periods.length > PERIODS + src.underruns + 10, { timeoutMs: 10_000, what: 'the end of the take' });
  await src.stop();
  const frames = got.periods.map(frameOf);
  const heard = frames.filter((f): f is number => f !== null);
  assert.deepEqual(heard, Array.from({ length: PERIODS }, (_, i) => i * PF), 'every period of the take once, in order');
  assert.equal(src.playState, 'ended');
  assert.deepEqual(frames.slice(-5), [null, null, null, null, null], 'silence after the end');
});

test('a loop across the part boundary, a pause in silence, a seek', async () => {
  const boundary = plan.parts[1]!.startFrame;
  const src = new TakeSource(plan, PF, { startFrame: 0, playing: true });
  await src.open();
  const got = play(src);
  src.setLoop({ start: boundary - 5 * PF, end: boundary + 5 * PF });
  src.start();
  await waitFor(() => got.periods.length > 60, { timeoutMs: 10_000, what: '60 periods' });
  const looped = got.periods.map(frameOf).filter((f): f is number => f !== null);
  assert.ok(looped.length > 30);
  for (let i = 1; i < looped.length; i++) {
    const next = looped[i - 1]! + PF === boundary + 5 * PF ? boundary - 5 * PF : looped[i - 1]! + PF;
    assert.equal(looped[i], next, `period ${i} after ${looped[i - 1]}`);
  }
  src.pause();
  const mark = got.periods.length;
  await waitFor(() => got.periods.length > mark + 10, { timeoutMs: 5000, what: 'periods while paused' });
  assert.ok(got.periods.slice(mark + 1).every((p) => frameOf(p) === null), 'paused: silence');
  const at = src.position;
  src.setLoop(null);
  src.seek(20 * PF);
  src.resume();
  const mark2 = got.periods.length;
  await waitFor(() => got.periods.slice(mark2).some((p) => frameOf(p) !== null), { timeoutMs: 5000, what: 'audio after the seek' });
  assert.equal(got.periods.slice(mark2).map(frameOf).find((f) => f !== null), 20 * PF);
  assert.ok(at >= boundary - 5 * PF && at < boundary + 5 * PF, `the pause held the position inside the loop (${at})`);
  await src.stop();
});
