import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Recorder } from '../../src/recording/recorder';
import { RecordDrives } from '../../src/recording/record-drives';
import { LINK_TTL_MS, RecordingControl } from '../../src/recording/recording-control';
import { RecordingError } from '../../src/recording/recording-error';
import type { Soundcheck } from '../../src/recording/soundcheck';
import { TakeLibrary } from '../../src/recording/take-library';
import type { TakeManifest } from '../../src/recording/take-manifest';
import { TakeWriter } from '../../src/recording/take-writer';
import { HEADER_SCAN_BYTES, parseWavHeader, writeSizes } from '../../src/recording/wav-format';
import { patternBytes } from '../helpers/alsa-fixture';
import { ffprobe, soxInfo } from '../helpers/audio-tools';
import { sleep } from '../helpers/wait';

/**
 * The take library on a state dir: listing (damaged takes too), the repair
 * of a take whose writer died, the checks before playback, and the signed
 * download links.
 */

const root = mkdtempSync(path.join(os.tmpdir(), 'rec-library-'));
after(() => rmSync(root, { recursive: true, force: true }));
const quiet = { info: () => undefined, warn: () => undefined };
const PF = 128;

function library(stateDir: string): TakeLibrary {
  return new TakeLibrary(new RecordDrives({ dir: 'auto', drives: [path.join(root, 'no-drives')], stateDir }), quiet, () => null);
}

/** A real take, written by the writer thread: 4 inputs of 6, `periods` periods, a marker in the middle. */
async function makeTake(stateDir: string, id: string, periods: number, layout: 'mono' | 'multi' = 'multi'): Promise<TakeManifest> {
  const w = new TakeWriter({
    dir: path.join(stateDir, 'recordings', id),
    id,
    name: 'Lib',
    layout,
    format: { format: 'S16_LE', channels: 6, rate: 48000, periodFrames: PF },
    channels: [0, 1, 3, 5].map((ch) => ({ ch, name: `In ${ch + 1}` })),
    bufferS: 2,
    syncIntervalMs: 100,
    minFreeBytes: 0,
    maxFileBytes: null,
  });
  for (let p = 0; p < periods; p++) {
    w.period(patternBytes('S16_LE', 6, PF, p * PF), PF, BigInt(p * PF), 0n, false);
    if (p === Math.floor(periods / 2)) w.marker('middle');
    if (p % 32 === 31) await sleep(5);
  }
  return (await w.stop('stopped')).manifest!;
}

describe('take library', () => {
  test('a damaged take.json is listed as damaged with its WAV files, and refused for playback with the reason', async () => {
    const state = path.join(root, 'damaged');
    const m = await makeTake(state, 'T-damaged', 20);
    writeFileSync(path.join(state, 'recordings', m.id, 'take.json'), '{"version": 2}');
    const [e] = await library(state).list();
    assert.equal(e!.manifest, null);
    assert.match(e!.damaged!, /take\.json: version: Invalid literal value, expected 1$/);
    assert.deepEqual(e!.wavFiles, ['Lib.wav']);
    await assert.rejects(library(state).playPlan(e!), (err: Error) => err instanceof RecordingError && err.code === 'bad-take' && /^take T-damaged cannot be played: .*take\.json: version/.test(err.message));
  });

  test('a take whose writer died is repaired when listed: every file cut to the frames all hold, sizes declared, markers appended, "recovered"', async () => {
    const state = path.join(root, 'repair');
    const m = await makeTake(state, 'T-crash', 200, 'mono');
    const dir = path.join(state, 'recordings', m.id);
    // As a SIGKILL leaves it: headers declare an earlier flush, files hold more (one file a half frame more), take.json says "recording".
    for (const f of m.files) {
      const file = path.join(dir, f.name);
      const bytes = readFileSync(file);
      const layout = parseWavHeader(bytes.subarray(0, HEADER_SCAN_BYTES), bytes.length, f.name);
      const head = Buffer.from(bytes.subarray(0, layout.dataOffset));
      // Cut the trailer (cue) the clean stop wrote, then declare only 50 periods.
      writeFileSync(file, Buffer.concat([head, bytes.subarray(layout.dataOffset, layout.dataOffset + 200 * PF * 2)]));
      writeSizes(head, layout.dataOffset, layout.blockAlign, 50 * PF * 2, 0, false);
      const now = readFileSync(file);
      head.copy(now, 0);
      writeFileSync(file, now);
    }
    appendFileSync(path.join(dir, m.files[0]!.name), Buffer.from([1]));
    writeFileSync(path.join(dir, 'take.json'), JSON.stringify({ ...m, state: 'recording', frames: 0, endedAt: null, endReason: null }));
    assert.equal(soxInfo(path.join(dir, m.files[1]!.name)).samples, 50 * PF, 'before the repair a reader sees the last flush');

    const [e] = await library(state).list();
    assert.equal(e!.manifest!.state, 'recovered');
    assert.equal(e!.manifest!.frames, 200 * PF);
    assert.match(e!.manifest!.endReason!, /^interrupted/);
    for (const f of e!.manifest!.files) {
      assert.equal(soxInfo(path.join(dir, f.name)).samples, 200 * PF, f.name);
      assert.deepEqual(ffprobe(path.join(dir, f.name)).chapters.map((c) => c.tags?.title), ['middle']);
    }
    assert.equal(JSON.parse(readFileSync(path.join(dir, 'take.json'), 'utf8')).state, 'recovered');
  });

  test('playback plan: parts back to back; a file that is not what take.json says is refused', async () => {
    const state = path.join(root, 'plan');
    const m = await makeTake(state, 'T-plan', 40);
    const lib = library(state);
    const plan = await lib.playPlan((await lib.list())[0]!);
    assert.deepEqual(
      { frames: plan.frames, sourceChannels: plan.sourceChannels, format: plan.format, parts: plan.parts.map((p) => [p.startFrame, p.frames, p.files.map((f) => f.channels)]) },
      { frames: 40 * PF, sourceChannels: 6, format: 'S16_LE', parts: [[0, 40 * PF, [[0, 1, 3, 5]]]] },
    );
    mkdirSync(path.join(state, 'recordings', 'T-plan'), { recursive: true });
    writeFileSync(path.join(state, 'recordings', 'T-plan', m.files[0]!.name), Buffer.alloc(10));
    await assert.rejects(lib.playPlan((await lib.list())[0]!), { name: 'Error', message: 'take T-plan cannot be played: Lib.wav: not a RIFF/WAVE or RF64 file' });
  });
});

test('signed download links: the one file, until they expire, and nothing else', () => {
  let now = 1_000_000;
  const c = new RecordingControl(null as unknown as Recorder, null as unknown as Soundcheck, () => now);
  const url = RecordingControl.fileUrl('2026-11-25_140000_Show', '01 Kick.wav');
  assert.equal(url, '/api/recordings/2026-11-25_140000_Show/files/01%20Kick.wav');
  const link = new URL(c.signedLink(url), 'http://box');
  const [expires, sig] = [link.searchParams.get('expires'), link.searchParams.get('sig')];
  assert.equal(link.pathname, url);
  assert.equal(Number(expires), now + LINK_TTL_MS);
  assert.equal(c.linkValid(url, expires, sig), true);
  assert.equal(c.linkValid(RecordingControl.fileUrl('2026-11-25_140000_Show', '02 Snare.wav'), expires, sig), false, 'another file');
  assert.equal(c.linkValid(url, String(Number(expires) + 1), sig), false, 'another expiry');
  assert.equal(c.linkValid(url, expires, sig!.replace(/^./, (ch) => (ch === '0' ? '1' : '0'))), false, 'a changed signature');
  assert.equal(c.linkValid(url, expires, null), false);
  assert.equal(c.linkValid(url, 'soon', sig), false);
  now += LINK_TTL_MS + 1;
  assert.equal(c.linkValid(url, expires, sig), false, 'expired');
  const other = new RecordingControl(null as unknown as Recorder, null as unknown as Soundcheck, () => 0);
  assert.equal(other.linkValid(url, expires, sig), false, 'another key (a restart)');
});
