import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseManifest, type TakeManifest } from '../../src/recording/take-manifest';
import { TakeWriter, type TakeEnd, type TakeWriterOptions } from '../../src/recording/take-writer';
import { extract } from '../../src/recording/take-writer-worker';
import { leftAligned, patternBytes } from '../helpers/alsa-fixture';
import { ffprobe, soxInfo, soxSamples } from '../helpers/audio-tools';
import { sleep, waitFor } from '../helpers/wait';

/**
 * The take writer with its real writer thread, fed synthetic periods the
 * way the period path feeds it. Every file is read back with sox.
 */

const root = mkdtempSync(path.join(os.tmpdir(), 'rec-writer-'));
after(() => rmSync(root, { recursive: true, force: true }));

const CHANNELS = 6;
const PF = 128;
const FORMAT = { format: 'S24_3LE' as const, channels: CHANNELS, rate: 48000, periodFrames: PF };
let n = 0;

function writer(opts: Partial<TakeWriterOptions> = {}): { w: TakeWriter; dir: string; ended: Promise<TakeEnd> } {
  const dir = path.join(root, `take-${++n}`);
  const w = new TakeWriter({
    dir,
    id: `take-${n}`,
    name: 'Test',
    layout: 'multi',
    format: FORMAT,
    channels: [0, 2, 5].map((ch) => ({ ch, name: ['Kick', 'Snare', 'Vox'][[0, 2, 5].indexOf(ch)]! })),
    bufferS: 2,
    syncIntervalMs: 200,
    minFreeBytes: 0,
    maxFileBytes: null,
    ...opts,
  });
  return { w, dir, ended: new Promise((r) => w.once('ended', r)) };
}

/** Pushes `periods` periods of the fixture pattern from frame `from`, in bursts the writer keeps up with. */
async function feed(w: TakeWriter, periods: number, from = 0, dropouts: readonly number[] = []): Promise<void> {
  for (let p = 0; p < periods; p++) {
    const f = from + p * PF;
    w.period(patternBytes('S24_3LE', CHANNELS, PF, f), PF, BigInt(f), 1000n + BigInt(f), dropouts.includes(p));
    if (p % 32 === 31) await sleep(5);
  }
}

/** The 24-bit value the pattern has at frame f, channel c. */
function expected(f: number, c: number): number {
  return leftAligned('S24_3LE', f, c) >> 8;
}

function checkChannels(file: string, channels: number[], frames: number, from = 0): void {
  const got = soxSamples(file, 24);
  assert.equal(got.length, frames * channels.length, `${file}: ${got.length / channels.length} frames, expected ${frames}`);
  for (let f = 0; f < frames; f++) {
    for (let k = 0; k < channels.length; k++) {
      const g = got[f * channels.length + k]!;
      const e = expected(from + f, channels[k]!);
      if (g !== e) assert.fail(`${path.basename(file)} frame ${f} channel ${channels[k]}: ${g}, expected ${e}`);
    }
  }
}

test('extract: every width, one channel or several, aligned or not, is a plain copy of the chosen samples', () => {
  for (const bps of [2, 3, 4]) {
    for (const channels of [[5], [0, 2, 7], [7, 6, 5, 4, 3, 2, 1, 0]]) {
      for (const shift of [0, 1]) {
        const frames = 37;
        const fb = 8 * bps;
        const src = new Uint8Array(new SharedArrayBuffer(frames * fb + 4), shift, frames * fb);
        for (let i = 0; i < src.length; i++) src[i] = (i * 131 + 7) & 0xff;
        const dst = new Uint8Array(frames * channels.length * bps);
        extract(src, fb, frames, channels, bps, dst);
        const want: number[] = [];
        for (let f = 0; f < frames; f++) for (const c of channels) for (let b = 0; b < bps; b++) want.push(src[f * fb + c * bps + b]!);
        assert.deepEqual(Array.from(dst), want, `bps ${bps}, channels ${channels}, offset ${shift}`);
      }
    }
  }
});

describe('take writer', () => {
  test('multi: the chosen channels in one file, sample for sample, with its markers (take.json and cue) and start facts', async () => {
    const { w, dir, ended } = writer();
    assert.deepEqual(await Promise.race([w.whenStarted(), feed(w, 1).then(() => w.whenStarted())]), ['Test.wav']);
    await feed(w, 187, PF);
    w.marker('verse');
    await feed(w, 187, 188 * PF);
    const end = await w.stop('stopped');
    assert.equal(end, await ended);
    assert.equal(end.error, null);
    assert.equal(end.reason, 'stopped');
    const m = end.manifest!;
    assert.equal(m.state, 'done');
    assert.equal(m.frames, 375 * PF);
    assert.deepEqual(m.files, [{ name: 'Test.wav', part: 1, startFrame: 0, channels: [0, 2, 5], frames: 375 * PF }]);
    assert.deepEqual(m.markers.map((k) => [k.frame, k.label, k.kind]), [[188 * PF, 'verse', 'marker']]);
    assert.equal(m.captureNs, '1000');
    assert.equal(m.samplePos, '0');
    assert.deepEqual(parseManifest(readFileSync(path.join(dir, 'take.json'), 'utf8'), 'take.json'), m);
    const file = path.join(dir, 'Test.wav');
    checkChannels(file, [0, 2, 5], 375 * PF);
    assert.deepEqual(ffprobe(file).chapters.map((c) => [Number(c.start_time), c.tags?.title]), [[Number(((188 * PF) / 48000).toFixed(6)), 'verse']]);
  });

  test('mono: one file per input, named by its number and the engineer\'s name', async () => {
    const { w, dir } = writer({ layout: 'mono' });
    await feed(w, 100);
    assert.deepEqual(await w.whenStarted(), ['01 Kick.wav', '03 Snare.wav', '06 Vox.wav']);
    const end = await w.stop('stopped');
    assert.equal(end.manifest!.frames, 100 * PF);
    checkChannels(path.join(dir, '01 Kick.wav'), [0], 100 * PF);
    checkChannels(path.join(dir, '03 Snare.wav'), [2], 100 * PF);
    checkChannels(path.join(dir, '06 Vox.wav'), [5], 100 * PF);
  });

  test('while it records, the files on the drive are valid WAVs up to the last flush (a power cut now loses at most syncIntervalMs)', async () => {
    const { w, dir } = writer({ syncIntervalMs: 100 });
    await feed(w, 400);
    await w.whenStarted();
    await waitFor(() => w.progress().durableFrames >= 400 * PF, { timeoutMs: 10_000, what: 'a flush of every frame pushed' });
    // The bytes on the drive right now, as a reader finds them after a power cut.
    const copy = path.join(root, `copy-${n}.wav`);
    copyFileSync(path.join(dir, 'Test.wav'), copy);
    const durable = w.progress().durableFrames;
    await w.stop('stopped');
    const frames = soxInfo(copy).samples;
    assert.ok(frames >= durable, `sox reads ${frames} frames of the live file; ${durable} were flushed`);
    checkChannels(copy, [0, 2, 5], frames);
    const live = JSON.parse(readFileSync(path.join(dir, 'take.json'), 'utf8')) as TakeManifest;
    assert.equal(live.state, 'done');
  });

  test('a filesystem with a file size limit (FAT): the take goes on in parts, each valid, together every frame', async () => {
    const { w, dir } = writer({ layout: 'multi', maxFileBytes: 300_000 });
    await feed(w, 700);
    const end = await w.stop('stopped');
    const m = end.manifest!;
    assert.ok(m.files.length >= 4, `${m.files.length} parts`);
    assert.deepEqual(m.files.map((f) => f.name).slice(0, 3), ['Test.wav', 'Test (2).wav', 'Test (3).wav']);
    let start = 0;
    for (const f of m.files) {
      assert.equal(f.startFrame, start);
      const file = path.join(dir, f.name);
      assert.ok(readFileSync(file).length <= 300_000, `${f.name} is within the limit`);
      checkChannels(file, [0, 2, 5], f.frames, start);
      start += f.frames;
    }
    assert.equal(start, 700 * PF);
    assert.equal(m.frames, 700 * PF);
  });

  test('a full buffer (the drive is slower than the audio): the take ends "drive too slow", every buffered period written, files valid', async () => {
    // A ring of 8 periods filled within one turn of the event loop: the writer thread cannot take any in between.
    const { w, dir, ended } = writer({ bufferS: 0.001 });
    for (let p = 0; p < 20; p++) w.period(patternBytes('S24_3LE', CHANNELS, PF, p * PF), PF, BigInt(p * PF), 0n, false);
    const end = await ended;
    assert.equal(end.reason, 'drive too slow');
    assert.match(end.error!, /^the write buffer \(0 s\) filled: .* takes less than 432000 bytes a second$/);
    assert.equal(end.manifest!.state, 'failed');
    assert.equal(end.manifest!.frames, 8 * PF);
    checkChannels(path.join(dir, 'Test.wav'), [0, 2, 5], 8 * PF);
  });

  test('audio lost by the capture (xrun) becomes a "dropout" marker where it happened, at most one a second', async () => {
    const { w } = writer();
    await feed(w, 500, 0, [60, 61, 300, 460]);
    const end = await w.stop('stopped');
    assert.deepEqual(end.manifest!.markers.map((k) => [k.frame, k.kind]), [
      [60 * PF, 'dropout'],
      [460 * PF, 'dropout'],
    ]);
  });

  test('a new capture format ends the take, saying so', async () => {
    const { w, ended } = writer();
    await feed(w, 10);
    await w.whenStarted();
    w.format({ ...FORMAT, channels: 8 });
    const end = await ended;
    assert.equal(end.reason, 'capture format changed (6 ch S24_3LE 48000 Hz to 8 ch S24_3LE 48000 Hz)');
    assert.equal(end.error, null);
    assert.equal(end.manifest!.frames, 10 * PF);
  });

  test('the next take uses the last one\'s ring again (memory holds one ring), with its counters cleared', async () => {
    const first = writer();
    await feed(first.w, 50);
    await first.w.stop('stopped');
    const second = writer({ reuse: first.w.buffers });
    assert.equal(second.w.buffers, first.w.buffers);
    assert.equal(second.w.progress().frames, 0);
    await feed(second.w, 30, 7 * PF);
    const end = await second.w.stop('stopped');
    assert.equal(end.manifest!.frames, 30 * PF);
    assert.equal(end.manifest!.samplePos, String(7 * PF));
    checkChannels(path.join(second.dir, 'Test.wav'), [0, 2, 5], 30 * PF, 7 * PF);
    const other = writer({ reuse: first.w.buffers, bufferS: 1 });
    assert.notEqual(other.w.buffers, first.w.buffers, 'another size: a ring of its own');
    await other.w.stop('stopped');
  });

  test('no audio at all: the take fails and leaves nothing behind', async () => {
    const { w, dir, ended } = writer({ firstPeriodTimeoutMs: 200 });
    await assert.rejects(w.whenStarted(), /^Error: no audio arrived from the capture$/);
    assert.equal((await ended).manifest, null);
    assert.equal(existsSync(dir), false);
  });

  test('a folder that cannot be made: the start fails with the path and errno, nothing else changes', async () => {
    const file = path.join(root, 'not-a-dir');
    writeFileSync(file, 'x');
    const { w } = writer({ dir: path.join(file, 'take') });
    await feed(w, 1);
    await assert.rejects(w.whenStarted(), (err: Error) => err.message.startsWith(`cannot create the take in ${path.join(file, 'take')}: ENOTDIR`));
    assert.equal(readFileSync(file, 'utf8'), 'x');
  });
});
