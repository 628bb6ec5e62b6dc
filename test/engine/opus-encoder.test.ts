import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { OpusEncoder as NativeOpus } from '@discordjs/opus';
import { FrameReblocker } from '../../src/engine/frame-reblocker';
import { OPUS_LOOKAHEAD_FRAMES, OpusFrameEncoder, resolveOpusConfig, type OpusFrameMs } from '../../src/engine/opus-encoder';

const RATE = 48000;

/**
 * Interleaved stereo Int16 1 kHz tone at −6 dBFS. `right`: 'same' (the same sine, a centred mono
 * source), 'quadrature' (a cosine: 90° between the channels) or 'silent'.
 */
function stereoTone(frames: number, right: 'same' | 'quadrature' | 'silent' = 'same'): Int16Array {
  const a = 0.5 * 32767;
  const out = new Int16Array(frames * 2);
  for (let i = 0; i < frames; i++) {
    const ph = (2 * Math.PI * 1000 * i) / RATE;
    out[2 * i] = Math.round(a * Math.sin(ph));
    out[2 * i + 1] = right === 'same' ? out[2 * i]! : right === 'quadrature' ? Math.round(a * Math.cos(ph)) : 0;
  }
  return out;
}

/** Deterministic white noise at −12 dBFS peak, stereo interleaved: its autocorrelation has one peak, so the codec lag is unambiguous. */
function stereoNoise(frames: number): Int16Array {
  let x = 12345;
  const out = new Int16Array(frames * 2);
  for (let i = 0; i < out.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = ((x >>> 16) - 32768) >> 2;
  }
  return out;
}

/**
 * Encodes `pcm` the way the service will: 128-frame capture periods through
 * the re-blocker into `frameMs` frames, each encoded as soon as it is
 * emitted. Returns the packets.
 */
function encodeStream(pcm: Int16Array, frameMs: OpusFrameMs, bitrate: number, vbr = false): { packets: Buffer[]; enc: OpusFrameEncoder } {
  const enc = new OpusFrameEncoder({ rate: RATE, channels: 2, frameMs, bitrate, vbr });
  const packets: Buffer[] = [];
  const rb = new FrameReblocker({ channels: 2, frameFrames: enc.config.frameFrames, rate: RATE }, (f) => packets.push(enc.encode(f.samples)));
  const period = 128;
  const frames = pcm.length / 2;
  for (let p = 0; p * period < frames; p++) {
    const n = Math.min(period, frames - p * period);
    rb.push(pcm, n, BigInt(p * period), 0n, p * period * 2);
  }
  return { packets, enc };
}

/** Decodes packets with libopus's decoder (the same library), concatenated, interleaved stereo. */
function decodeAll(packets: Buffer[]): Int16Array {
  const dec = new NativeOpus(RATE, 2);
  const parts = packets.map((p) => dec.decode(p));
  const total = parts.reduce((n, b) => n + b.length, 0);
  const out = new Int16Array(total / 2);
  let o = 0;
  for (const b of parts) {
    out.set(new Int16Array(b.buffer, b.byteOffset, b.length / 2), o);
    o += b.length / 2;
  }
  return out;
}

/** Cross-correlation of decoded against input (both channels) for decoded lagging by `lag` frames. */
function xcorr(input: Int16Array, decoded: Int16Array, lag: number): number {
  let s = 0;
  for (let i = 0; i + (lag * 2) < decoded.length && i < input.length; i++) s += input[i]! * decoded[i + lag * 2]!;
  return s;
}

function bestLag(input: Int16Array, decoded: Int16Array, maxLag: number): number {
  let best = 0;
  let bestV = -Infinity;
  for (let lag = 0; lag <= maxLag; lag++) {
    const v = xcorr(input, decoded, lag);
    if (v > bestV) {
      bestV = v;
      best = lag;
    }
  }
  return best;
}

/** SNR in dB of one channel of decoded (shifted back by `lag` frames) against input, over frames [from, to). */
function snrDb(input: Int16Array, decoded: Int16Array, lag: number, from: number, to: number, channel: number): number {
  let sig = 0;
  let err = 0;
  for (let f = from; f < to; f++) {
    const x = input[2 * f + channel]!;
    const e = decoded[2 * (f + lag) + channel]! - x;
    sig += x * x;
    err += e * e;
  }
  return 10 * Math.log10(sig / err);
}

/** RMS of one channel over frames [from, to), in dBFS. */
function rmsDbfs(pcm: Int16Array, from: number, to: number, channel: number): number {
  let s = 0;
  for (let f = from; f < to; f++) s += pcm[2 * f + channel]! ** 2;
  return 10 * Math.log10(s / (to - from) / 32767 ** 2);
}

/** Encodes 1 s of `pcm` in 5 ms frames at 96 kb/s and decodes it; checks the lag; returns the decoded signal. */
function roundTrip5ms(pcm: Int16Array): Int16Array {
  const { packets } = encodeStream(pcm, 5, 96000);
  assert.equal(packets.length, 200);
  const decoded = decodeAll(packets);
  assert.equal(decoded.length, pcm.length);
  // A pure tone correlates with itself every 48 frames, so cross-correlation over one tone period
  // (lags 24 … 71) finds the lag only modulo 48; the noise test above pins it to 120 (2.5 ms).
  const lag = 24 + bestLag(pcm, decoded.subarray(24 * 2), 47);
  assert.equal(lag % 48, OPUS_LOOKAHEAD_FRAMES % 48, `lag ${lag} is the codec delay modulo the tone period`);
  return decoded;
}

// SNR window: skip the first 50 ms (encoder start-up) and stop where the delayed output ends.
const FROM = 2400;
const TO = RATE - OPUS_LOOKAHEAD_FRAMES;

describe('OpusFrameEncoder', () => {
  test('the decoded signal lags the input by exactly the restricted-low-delay lookahead (120 frames = 2.5 ms)', () => {
    const pcm = stereoNoise(RATE / 2);
    const { packets } = encodeStream(pcm, 5, 256000);
    const decoded = decodeAll(packets);
    // 480 frames of search: the lag of AUDIO/VOIP (312) would be found too, were it used.
    assert.equal(bestLag(pcm, decoded, 480), OPUS_LOOKAHEAD_FRAMES);
    assert.equal(OPUS_LOOKAHEAD_FRAMES, 120);
  });

  test('a 1 kHz −6 dBFS tone on both channels survives 5 ms frames at 96 kb/s with at least 35 dB SNR', (t) => {
    const pcm = stereoTone(RATE, 'same');
    const decoded = roundTrip5ms(pcm);
    const snr = [0, 1].map((c) => snrDb(pcm, decoded, OPUS_LOOKAHEAD_FRAMES, FROM, TO, c));
    t.diagnostic(`1 kHz tone L = R, 5 ms frames, 96 kb/s CBR: SNR L ${snr[0]!.toFixed(1)} dB, R ${snr[1]!.toFixed(1)} dB`);
    // Measured 42.6 dB on both channels (libopus 1.3.1, x86-64). Opus is perceptual: CELT codes each
    // band's energy and normalised shape, not the waveform, so even a pure tone comes back with noise
    // some 40 dB down. 35 dB leaves ~7 dB for libopus versions and CPU paths (SSE vs NEON, fixed vs
    // float); a broken path (wrong lag, byte offset, channel mix-up, clipping, wrong rate) gives < 10 dB.
    for (const s of snr) assert.ok(s >= 35, `SNR ${s.toFixed(1)} dB < 35 dB`);
  });

  test('a tone on the left channel only stays on the left: no channel swap or leak', (t) => {
    const pcm = stereoTone(RATE, 'silent');
    const decoded = roundTrip5ms(pcm);
    const snrL = snrDb(pcm, decoded, OPUS_LOOKAHEAD_FRAMES, FROM, TO, 0);
    const rightDbfs = rmsDbfs(decoded, FROM, TO, 1);
    t.diagnostic(`1 kHz tone L only: SNR L ${snrL.toFixed(1)} dB, R RMS ${rightDbfs.toFixed(1)} dBFS`);
    // Measured: L 44.9 dB (bound as above); R decodes to exact digital silence. Bound: R at least 50 dB below the −9 dBFS RMS tone.
    assert.ok(snrL >= 35, `SNR ${snrL.toFixed(1)} dB < 35 dB`);
    assert.ok(rightDbfs <= -59, `right channel at ${rightDbfs.toFixed(1)} dBFS`);
  });

  test('a 1 kHz tone 90° apart between the channels keeps at least 15 dB SNR in 5 ms frames (CELT stereo limit)', (t) => {
    const pcm = stereoTone(RATE, 'quadrature');
    const decoded = roundTrip5ms(pcm);
    const snr = [0, 1].map((c) => snrDb(pcm, decoded, OPUS_LOOKAHEAD_FRAMES, FROM, TO, c));
    t.diagnostic(`1 kHz tone L sin / R cos, 5 ms frames, 96 kb/s CBR: SNR L ${snr[0]!.toFixed(1)} dB, R ${snr[1]!.toFixed(1)} dB`);
    // Measured 19.7 dB, the same at 96, 128, 192 and 256 kb/s (42.6 dB with the channels in phase,
    // 28 dB in antiphase; 24.4 dB in 2.5 ms frames, 38–43 dB in 10 ms): with short frames CELT's joint
    // stereo coding keeps each band's level per channel but not the phase between channels, and bitrate
    // does not buy it back. Bound 15 dB: ~5 dB margin, and still far above a broken path.
    for (const s of snr) assert.ok(s >= 15, `SNR ${s.toFixed(1)} dB < 15 dB`);
  });

  for (const [frameMs, bytes] of [
    [2.5, 30],
    [5, 60],
    [10, 120],
  ] as const) {
    test(`${frameMs} ms frames encode, and at 96 kb/s CBR every packet is bitrate × frame / 8 = ${bytes} bytes`, () => {
      const pcm = stereoTone(RATE / 4);
      const { packets, enc } = encodeStream(pcm, frameMs, 96000);
      assert.equal(enc.config.frameFrames, (frameMs * RATE) / 1000);
      assert.equal(packets.length, RATE / 4 / enc.config.frameFrames);
      for (const p of packets) assert.equal(p.length, bytes);
      assert.equal(decodeAll(packets).length, pcm.length, 'every packet decodes to one full frame');
    });
  }

  test('with VBR the mean packet size stays within 25 % of the bitrate', () => {
    const { packets } = encodeStream(stereoNoise(RATE / 2), 5, 96000, true);
    const mean = packets.reduce((n, p) => n + p.length, 0) / packets.length;
    assert.ok(Math.abs(mean - 60) <= 15, `mean packet ${mean.toFixed(1)} bytes for a nominal 60`);
  });

  test('setBitrate applies from the next frame', () => {
    const enc = new OpusFrameEncoder({ rate: RATE, channels: 2, frameMs: 5 });
    const frame = stereoTone(240);
    assert.equal(enc.encode(frame).length, 60);
    enc.setBitrate(128000);
    assert.equal(enc.encode(frame).length, 80);
    assert.equal(enc.config.bitrate, 128000);
  });

  test('a frame that is a view at an offset into a larger buffer encodes the same as a copy of it', () => {
    const big = stereoNoise(2000);
    const view = big.subarray(2 * 333, 2 * (333 + 240));
    const a = new OpusFrameEncoder({ rate: RATE, channels: 2, frameMs: 5 });
    const b = new OpusFrameEncoder({ rate: RATE, channels: 2, frameMs: 5 });
    assert.deepEqual(a.encode(view), b.encode(view.slice()));
  });

  test('mono encodes at 48 kb/s by default', () => {
    const enc = new OpusFrameEncoder({ rate: RATE, channels: 1, frameMs: 10 });
    assert.equal(enc.config.bitrate, 48000);
    assert.equal(enc.encode(new Int16Array(480)).length, 60);
  });

  test('bad parameters are RangeErrors naming the value and what is allowed', () => {
    const ok = { rate: RATE, channels: 2, frameMs: 5 };
    assert.throws(() => new OpusFrameEncoder({ ...ok, rate: 44100 }), {
      name: 'RangeError',
      message:
        'opus: rate 44100 Hz is not supported; allowed: 48000 (set capture.rate to 48000; Opus does not encode 44.1 or 96 kHz and stagebox does not resample)',
    });
    assert.throws(() => resolveOpusConfig({ ...ok, rate: 96000 }), { name: 'RangeError', message: /^opus: rate 96000 Hz is not supported; allowed: 48000/ });
    assert.throws(() => new OpusFrameEncoder({ ...ok, channels: 3 }), {
      name: 'RangeError',
      message: 'opus: channels 3 is not supported; allowed: 1 or 2',
    });
    assert.throws(() => new OpusFrameEncoder({ ...ok, frameMs: 7 }), {
      name: 'RangeError',
      message: 'opus: frame 7 ms is not supported; allowed: 2.5, 5 or 10 ms',
    });
    assert.throws(() => new OpusFrameEncoder({ ...ok, frameMs: 20 }), {
      name: 'RangeError',
      message: 'opus: frame 20 ms is not supported; allowed: 2.5, 5 or 10 ms',
    });
    assert.throws(() => new OpusFrameEncoder({ ...ok, bitrate: 1000000 }), {
      name: 'RangeError',
      message: 'opus: bitrate 1000000 b/s is out of range; allowed: integers 6000–510000 b/s',
    });
    assert.throws(() => new OpusFrameEncoder({ ...ok, bitrate: 5999 }), {
      name: 'RangeError',
      message: 'opus: bitrate 5999 b/s is out of range; allowed: integers 6000–510000 b/s',
    });
    assert.throws(() => new OpusFrameEncoder({ ...ok, complexity: 11 }), {
      name: 'RangeError',
      message: 'opus: complexity 11 is out of range; allowed: integers 0–10',
    });
    const enc = new OpusFrameEncoder(ok);
    assert.throws(() => enc.setBitrate(1000000), {
      name: 'RangeError',
      message: 'opus: bitrate 1000000 b/s is out of range; allowed: integers 6000–510000 b/s',
    });
    // A wrong-sized frame would abort the process inside the binding; the wrapper refuses it first.
    assert.throws(() => enc.encode(new Int16Array(336 * 2)), {
      name: 'RangeError',
      message: 'opus: frame has 672 samples; allowed: exactly 480 (240 frames × 2 channels)',
    });
    assert.equal(enc.encode(new Int16Array(480)).length, 60, 'the encoder still works after refusing');
  });

  test('encode cost per 5 ms stereo frame at 96 kb/s (diagnostic)', (t) => {
    const pcm = stereoTone(RATE * 2);
    for (const complexity of [10, 5]) {
      const enc = new OpusFrameEncoder({ rate: RATE, channels: 2, frameMs: 5, complexity });
      const n = pcm.length / 480;
      for (let i = 0; i < 50; i++) enc.encode(pcm.subarray(i * 480, (i + 1) * 480)); // warm-up
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) enc.encode(pcm.subarray(i * 480, (i + 1) * 480));
      const us = Number(process.hrtime.bigint() - t0) / 1000 / n;
      t.diagnostic(`opus encode, 5 ms stereo frame, 96 kb/s CBR, complexity ${complexity}: ${us.toFixed(1)} µs/frame (${((us / 5000) * 100).toFixed(2)} % of one core per mix)`);
      assert.ok(us < 5000, 'encodes faster than real time');
    }
  });
});
