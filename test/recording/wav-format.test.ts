import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SampleFormat } from '../../src/engine/sample-format';
import { HEADER_SCAN_BYTES, parseWavHeader, trailerChunks, WavHeader, type FileMarker, type WavMeta } from '../../src/recording/wav-format';
import { ffprobe, soxInfo, soxSamples } from '../helpers/audio-tools';

/**
 * The take file format, read back by sox and ffprobe: every sample, the
 * BWF metadata, the markers, and the switch to RF64 (at a lowered
 * threshold with real audio, and past 4 GiB with a sparse file).
 */

const dir = mkdtempSync(path.join(os.tmpdir(), 'rec-wav-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function meta(format: SampleFormat, channels: number, extra: Partial<WavMeta> = {}): WavMeta {
  return {
    format,
    channels,
    rate: 48000,
    startedAt: new Date(2026, 10, 25, 21, 7, 12, 500),
    takeId: '2026-11-25_210712_Show',
    takeName: 'Show',
    trackNames: Array.from({ length: channels }, (_, i) => ['Kick', 'Snare <top> & "bottom"', 'Vox'][i] ?? `Input ${i + 1}`),
    inputs: Array.from({ length: channels }, (_, i) => i + 1),
    captureNs: 123456789012345n,
    samplePos: 4096n,
    part: 1,
    ...extra,
  };
}

/** Interleaved samples: distinct per frame and channel, full scale both ways. */
function samples(bits: number, channels: number, frames: number): number[] {
  const max = 2 ** (bits - 1);
  const out: number[] = [];
  for (let f = 0; f < frames; f++) for (let c = 0; c < channels; c++) out.push((((f * 7919 + c * 104729) % (2 * max)) - max) | 0);
  return out;
}

function encode(bits: number, values: number[]): Buffer {
  const bps = bits / 8;
  const b = Buffer.alloc(values.length * bps);
  values.forEach((v, i) => b.writeIntLE(v, i * bps, bps));
  return b;
}

function writeTake(name: string, h: WavHeader, data: Buffer, markers: FileMarker[] = []): string {
  const file = path.join(dir, name);
  const trailer = trailerChunks(markers, data.length);
  writeFileSync(file, Buffer.concat([Buffer.from(h.sized(data.length, trailer.length)), data, trailer]));
  return file;
}

describe('take files read back by sox and ffprobe', () => {
  for (const [format, bits, channels] of [['S16_LE', 16, 2], ['S24_3LE', 24, 3], ['S32_LE', 32, 1], ['S24_3LE', 24, 1]] as const) {
    test(`${format}, ${channels} channel(s): every sample, the rate, the width and the length`, () => {
      const frames = 4801; // odd: a 24-bit mono data chunk of odd size needs its pad byte
      const values = samples(bits, channels, frames);
      const file = writeTake(`${format}-${channels}.wav`, new WavHeader(meta(format, channels)), encode(bits, values), [{ frame: 100, label: 'a' }]);
      const info = soxInfo(file);
      assert.deepEqual([info.channels, info.rate, info.bits, info.samples], [channels, 48000, bits, frames]);
      assert.deepEqual(Array.from(soxSamples(file, bits)), values);
      const probe = ffprobe(file);
      assert.equal(probe.streams[0]!.channels, channels);
      assert.equal(probe.streams[0]!.sample_rate, '48000');
      assert.equal(probe.streams[0]!.codec_name, `pcm_s${bits}le`);
      assert.equal(Number(probe.format.duration), Number((frames / 48000).toFixed(6)));
    });
  }

  test('FLOAT_LE: sox reads 32-bit float (it calls that 25 bits of precision)', () => {
    const frames = 480;
    const data = Buffer.alloc(frames * 2 * 4);
    for (let i = 0; i < frames * 2; i++) data.writeFloatLE(Math.sin(i / 10) * 0.5, i * 4);
    const file = writeTake('float.wav', new WavHeader(meta('FLOAT_LE', 2)), data);
    const info = soxInfo(file);
    assert.deepEqual([info.channels, info.bits, info.samples, info.encoding], [2, 25, frames, '32-bit Floating Point PCM']);
  });

  test('BWF metadata: ffprobe shows the bext fields (description, originator, take id, date, time reference) and LIST INFO', () => {
    const m = meta('S24_3LE', 3);
    const file = writeTake('meta.wav', new WavHeader(m), encode(24, samples(24, 3, 48)));
    const tags = ffprobe(file).format.tags!;
    assert.equal(tags.comment, 'Show (inputs 1,2,3)');
    assert.equal(tags.encoded_by, 'stagebox');
    assert.equal(tags.originator_reference, '2026-11-25_210712_Show');
    assert.equal(tags.date, '2026-11-25');
    assert.equal(tags.creation_time, '21:07:12');
    // Samples since local midnight of the first sample: 21:07:12.500 at 48 kHz.
    assert.equal(tags.time_reference, String((((21 * 60 + 7) * 60 + 12) * 1000 + 500) * 48));
    assert.equal(tags.title, 'Show');
    assert.match(tags.coding_history!, /^A=PCM,F=48000,W=24,M=multitrack,T=stagebox take 2026-11-25_210712_Show/);
  });

  test('iXML: the track names (escaped), the capture ns and the sample position', () => {
    const file = writeTake('ixml.wav', new WavHeader(meta('S24_3LE', 3)), encode(24, samples(24, 3, 10)));
    const bytes = readFileSync(file);
    const layout = parseWavHeader(bytes.subarray(0, HEADER_SCAN_BYTES), bytes.length, 'ixml.wav');
    assert.deepEqual(layout.trackNames, ['Kick', 'Snare <top> & "bottom"', 'Vox']);
    const text = bytes.toString('utf8');
    assert.match(text, /<NAME>Snare &lt;top&gt; &amp; &quot;bottom&quot;<\/NAME>/);
    assert.match(text, /captureNs=123456789012345 samplePos=4096/);
  });

  test('markers: a cue chunk with labels, which ffprobe shows as chapters', () => {
    const frames = 48000;
    const file = writeTake('cue.wav', new WavHeader(meta('S16_LE', 1)), encode(16, samples(16, 1, frames)), [
      { frame: 12000, label: 'verse' },
      { frame: 36000, label: 'chorus' },
    ]);
    const chapters = ffprobe(file).chapters.map((c) => [Number(c.start_time), c.tags?.title]);
    assert.deepEqual(chapters, [
      [0.25, 'verse'],
      [0.75, 'chorus'],
    ]);
    // Chunks after the audio do not count as audio.
    assert.equal(soxInfo(file).samples, frames);
  });

  test('RF64: past the RIFF limit (lowered here) the file becomes RF64 in place, and sox and ffprobe read every sample', () => {
    const values = samples(24, 2, 20000);
    const data = encode(24, values);
    const h = new WavHeader(meta('S24_3LE', 2), 64 * 1024);
    const headerBefore = Buffer.from(h.sized(0));
    const file = writeTake('rf64.wav', h, data, [{ frame: 10000, label: 'half' }]);
    assert.equal(h.isRf64, true);
    const bytes = readFileSync(file);
    assert.equal(bytes.toString('latin1', 0, 4), 'RF64');
    assert.equal(bytes.toString('latin1', 12, 16), 'ds64');
    // The audio did not move: the JUNK chunk became ds64 in place.
    assert.equal(h.dataOffset, headerBefore.length);
    assert.deepEqual([soxInfo(file).samples, soxInfo(file).channels], [20000, 2]);
    assert.deepEqual(Array.from(soxSamples(file, 24)), values);
    assert.equal(Number(ffprobe(file).format.duration), Number((20000 / 48000).toFixed(6)));
    assert.equal(ffprobe(file).chapters[0]!.tags?.title, 'half');
    assert.equal(parseWavHeader(bytes.subarray(0, HEADER_SCAN_BYTES), bytes.length, 'rf64.wav').container, 'RF64');
  });

  // sox reads RF64 (the test above) but walks the whole file to do it: a minute for these 4.4 GB, so only ffprobe here.
  test('RF64 past 4 GiB (a sparse file): ffprobe and the box read the declared length', () => {
    const h = new WavHeader(meta('S24_3LE', 32));
    const frames = 48000 * 60 * 16; // 16 minutes of 32 channels: 4.4 GB
    const bytes = frames * h.blockAlign;
    assert.ok(bytes > 2 ** 32);
    const file = path.join(dir, 'big.wav');
    const fd = openSync(file, 'w');
    const head = h.sized(bytes);
    writeSync(fd, head, 0, head.length, 0);
    ftruncateSync(fd, h.dataOffset + bytes);
    closeSync(fd);
    assert.equal(h.isRf64, true);
    assert.equal(Number(ffprobe(file).format.duration), 960);
    const headBuf = Buffer.alloc(HEADER_SCAN_BYTES);
    const rfd = openSync(file, 'r');
    readSync(rfd, headBuf, 0, headBuf.length, 0);
    closeSync(rfd);
    assert.equal(parseWavHeader(headBuf, h.dataOffset + bytes, 'big.wav').frames, frames);
    rmSync(file);
  });
});

describe('parseWavHeader refuses what it cannot play, naming the file and the problem', () => {
  const good = (): Buffer => Buffer.concat([Buffer.from(new WavHeader(meta('S16_LE', 1)).sized(4)), Buffer.alloc(4)]);
  const cases: [string, () => Buffer, RegExp][] = [
    ['an MP3 renamed .wav', () => Buffer.from('ID3\x03\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00 more mp3 bytes', 'latin1'), /^x\.wav: not a RIFF\/WAVE or RF64 file$/],
    ['an empty file', () => Buffer.alloc(0), /^x\.wav: not a RIFF\/WAVE or RF64 file$/],
    [
      '8-bit audio',
      () => {
        const b = good();
        b.writeUInt16LE(8, 20 + 14 + 28 + 8);
        return b;
      },
      /^x\.wav: format tag 1 with 8 bits; allowed: PCM 16, 24 or 32 bit, or float 32 bit$/,
    ],
    ['no data chunk', () => good().subarray(0, 100), /^x\.wav: no data chunk within the first 100 bytes$/],
  ];
  for (const [what, make, message] of cases) {
    test(what, () => {
      const b = make();
      assert.throws(() => parseWavHeader(b, b.length, 'x.wav'), (err: Error) => err instanceof RangeError && message.test(err.message));
    });
  }

  test('a header declaring more audio than the file holds is cut to what is there', () => {
    const h = new WavHeader(meta('S16_LE', 2));
    const head = Buffer.from(h.sized(4000));
    const layout = parseWavHeader(head, head.length + 1000, 'short.wav');
    assert.equal(layout.frames, 250);
  });
});
