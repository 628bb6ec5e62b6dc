import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildWav, parseWav } from '../../src/capture/wav-file';

test('a built WAV parses back to the same format, channels, rate and data', () => {
  for (const format of ['S16_LE', 'S24_3LE', 'S32_LE', 'FLOAT_LE'] as const) {
    const bytes = format === 'S16_LE' ? 2 : format === 'S24_3LE' ? 3 : 4;
    const data = Buffer.alloc(3 * 5 * bytes, 7);
    const info = parseWav(buildWav(format, 3, 96000, data));
    assert.deepEqual({ format: info.format, channels: info.channels, rate: info.rate }, { format, channels: 3, rate: 96000 });
    assert.deepEqual(info.data, data);
  }
});

test('a truncated last frame is cut off', () => {
  const wav = buildWav('S16_LE', 2, 48000, Buffer.alloc(10));
  assert.equal(parseWav(wav.subarray(0, wav.length - 1)).data.length, 8);
});

test('bad WAV files are rejected with what is wrong and what is allowed', () => {
  assert.throws(() => parseWav(Buffer.from('not a wav file at all')), { message: 'WAV file: not a RIFF/WAVE file' });
  const rate = buildWav('S16_LE', 2, 22050, Buffer.alloc(8));
  assert.throws(() => parseWav(rate), { message: 'WAV file: rate 22050 Hz; allowed: 44100, 48000 or 96000' });
  const bits8 = buildWav('S16_LE', 2, 48000, Buffer.alloc(8));
  bits8.writeUInt16LE(8, 34);
  bits8.writeUInt16LE(2, 32);
  assert.throws(() => parseWav(bits8), /format tag 1 with 8 bits; allowed: PCM 16, 24 or 32 bit, or float 32 bit/);
  const noData = buildWav('S16_LE', 2, 48000, Buffer.alloc(0));
  assert.throws(() => parseWav(noData), { message: 'WAV file: data chunk holds no whole frame' });
});
