import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AudioRing } from '../../src/engine/audio-ring';
import { encodeSlot } from '../../src/engine/encode-kernels';
import { entryBytes, entryOffset, PACKET_HEADROOM } from '../../src/engine/encode-result';
import { CODEC_IDS, parsePacket } from '../../src/protocol';
import { configureLimiter, createLimiter, limit, RELEASE_SNAP } from '../../src/engine/limiter';
import { createMixState, floatToPcm16, renderMix, setMixTargets } from '../../src/engine/mix-kernel';

const RATE = 48000;
const FRAMES = 128;

/** Stereo 1 kHz sine, `periods` periods, peak `amplitude` (linear), starting at frame `start`. */
function sine(amplitude: number, periods: number, start = 0): Float32Array {
  const buf = new Float32Array(periods * FRAMES * 2);
  for (let f = 0; f < periods * FRAMES; f++) {
    const v = amplitude * Math.sin((2 * Math.PI * 1000 * (start + f)) / RATE);
    buf[2 * f] = v;
    buf[2 * f + 1] = -0.5 * v; // a different level on R shows the linked gain follows the louder side
  }
  return buf;
}

function bytesOf(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

test('a +12 dBFS burst is held at the −1 dBFS ceiling and reports 13 dB of gain reduction', () => {
  // Peak 10^(12/20) against a ceiling of 10^(−1/20): the needed gain is 10^(−13/20), i.e. 13 dB.
  // 1 kHz at 48 kHz puts a sample exactly on every crest (frame 12 of each 48), so every
  // 128-frame period hits the full peak and reports 13.000 dB (asserted within 0.01 dB).
  const lim = createLimiter(RATE);
  const ceiling = 10 ** (-1 / 20);
  const burst = sine(10 ** (12 / 20), 20);
  for (let p = 0; p < 20; p++) {
    const period = burst.subarray(p * FRAMES * 2, (p + 1) * FRAMES * 2);
    limit(period, FRAMES * 2, 2, lim);
    assert.ok(Math.abs(lim.gainReductionDb - 13) < 0.01, `period ${p}: ${lim.gainReductionDb} dB`);
  }
  let peak = 0;
  for (const v of burst) peak = Math.max(peak, Math.abs(v));
  assert.ok(peak <= ceiling + 1e-6, `peak ${peak} above ceiling ${ceiling}`);
  // Held, not just squashed: the crests land on the ceiling (instant attack, exact gain).
  assert.ok(peak > ceiling - 1e-6, `peak ${peak} well under the ceiling`);
});

test('linked channels: L and R get the same gain, so their ratio is unchanged', () => {
  const lim = createLimiter(RATE);
  const buf = sine(4, 4);
  limit(buf, buf.length, 2, lim);
  for (let f = 0; f < 4 * FRAMES; f++) {
    if (buf[2 * f] !== 0) assert.ok(Math.abs(buf[2 * f + 1]! / buf[2 * f]! - -0.5) < 1e-6, `frame ${f}`);
  }
});

test('a signal that never exceeds the ceiling passes bit-identical and reports 0 dB', () => {
  const lim = createLimiter(RATE);
  const buf = sine(10 ** (-1.01 / 20), 50);
  // Add some odd float values to be sure nothing is touched, not even rounded.
  buf[5] = 1e-30;
  buf[6] = -0;
  buf[7] = 0.1;
  const before = Buffer.from(bytesOf(buf));
  for (let p = 0; p < 50; p++) {
    limit(buf.subarray(p * FRAMES * 2, (p + 1) * FRAMES * 2), FRAMES * 2, 2, lim);
    assert.equal(lim.gainReductionDb, 0);
    assert.equal(lim.gain, 1);
  }
  assert.ok(bytesOf(buf).equals(before));
});

test('release recovers toward 1.0 with the configured time constant, then passes bit-identical again', () => {
  const lim = createLimiter(RATE); // 50 ms: 2400 frames
  const burst = sine(10 ** (12 / 20), 1);
  limit(burst, burst.length, 2, lim);
  // The period ended somewhere on the sine; take the gain it left and let silence release it.
  const g0 = lim.gain;
  assert.ok(g0 < 10 ** (-12 / 20));
  const silence = new Float32Array(2400 * 2);
  limit(silence, silence.length, 2, lim);
  // After one time constant the remaining reduction is 1/e of what it was.
  const want = 1 - (1 - g0) / Math.E;
  assert.ok(Math.abs(lim.gain - want) < 1e-9, `gain ${lim.gain}, expected ${want}`);
  assert.ok(lim.gainReductionDb > 0, 'still reports the release tail');
  // 1 − g falls below RELEASE_SNAP after ln((1 − g0) / 1e-6) time constants; 2 s is ample.
  assert.ok(Math.log((1 - g0) / RELEASE_SNAP) * 0.05 < 2);
  const tail = new Float32Array(RATE * 2 * 2);
  limit(tail, tail.length, 2, lim);
  assert.equal(lim.gain, 1);
  const quiet = sine(0.5, 4);
  const before = Buffer.from(bytesOf(quiet));
  limit(quiet, quiet.length, 2, lim);
  assert.ok(bytesOf(quiet).equals(before));
  assert.equal(lim.gainReductionDb, 0);
});

test('the 50 ms release is a time constant: the gain is back at exactly 1.0 (bit-identical again) after 50 ms × ln(reduction / 1e-6), 0.47 s after 0.1 dB, 0.58 s after 1 dB, 0.66 s after 6 dB, 0.69 s after 20 dB', () => {
  const frame = new Float32Array(2);
  for (const [reductionDb, wantMs] of [[0.1, 470], [1, 580], [6, 660], [20, 690]] as const) {
    const lim = createLimiter(RATE); // −1 dBFS, 50 ms
    // One frame reductionDb over the ceiling takes the gain to exactly ceiling / peak (instant attack).
    frame[0] = frame[1] = lim.ceiling * 10 ** (reductionDb / 20);
    limit(frame, 2, 2, lim);
    const g0 = lim.gain;
    assert.ok(Math.abs(-20 * Math.log10(g0) - reductionDb) < 1e-6, `reduction ${-20 * Math.log10(g0)} dB`);
    // Then a quiet signal, frame by frame, until the gain is exactly 1.
    let frames = 0;
    while (lim.gain !== 1) {
      frame[0] = 0.25;
      frame[1] = -0.25;
      limit(frame, 2, 2, lim);
      frames++;
      assert.ok(frames < RATE * 2, 'released within 2 s');
    }
    const formula = Math.log((1 - g0) / RELEASE_SNAP) * 0.05 * RATE;
    assert.ok(Math.abs(frames - formula) <= 1, `${reductionDb} dB: gain 1.0 after ${frames} frames; formula ${formula.toFixed(1)}`);
    assert.equal(Math.round((frames * 1000) / RATE / 10) * 10, wantMs, `${reductionDb} dB: ${((frames * 1000) / RATE).toFixed(1)} ms`);
    // From then on the quiet signal passes bit-identical.
    const quiet = sine(0.5, 2);
    const before = Buffer.from(bytesOf(quiet));
    limit(quiet, quiet.length, 2, lim);
    assert.ok(bytesOf(quiet).equals(before));
  }
});

test('the ceiling and release are configurable; a box maximum is passed as the lower ceiling', () => {
  const clientCeilingDb = -1;
  const boxMaxDb = -6;
  const lim = createLimiter(RATE, { ceilingDb: Math.min(clientCeilingDb, boxMaxDb), releaseMs: 10 });
  assert.ok(Math.abs(lim.releaseCoef - Math.exp(-1 / (0.01 * RATE))) < 1e-15);
  const buf = sine(1, 4);
  limit(buf, buf.length, 2, lim);
  let peak = 0;
  for (const v of buf) peak = Math.max(peak, Math.abs(v));
  assert.ok(peak <= 10 ** (-6 / 20) + 1e-6);
  assert.ok(Math.abs(lim.gainReductionDb - 6) < 0.01);
  configureLimiter(lim, { enabled: false });
  const loud = sine(4, 1);
  const before = Buffer.from(bytesOf(loud));
  limit(loud, loud.length, 2, lim);
  assert.ok(bytesOf(loud).equals(before), 'disabled: untouched');
  assert.equal(lim.gainReductionDb, 0);
  assert.throws(() => configureLimiter(lim, { ceilingDb: 0.5 }), RangeError);
  assert.throws(() => configureLimiter(lim, { releaseMs: 0 }), RangeError);
  assert.throws(() => limit(loud, 3, 2, lim), RangeError);
});

test('an S16 channel through a unity mix, the limiter and floatToPcm16 matches the pcm16 encoder byte for byte', () => {
  // Every S16 value, one full-scale ramp per slot; −32768 and 32767 are below a 0 dBFS ceiling
  // only with the limiter set to 0 dB, so use that (the −1 dB default would, rightly, act on them).
  const frames = 4096;
  const ring = new AudioRing({ channels: 2, periodFrames: frames, rate: RATE, slotCount: 16 });
  for (let i = 0; i < 65536; i++) {
    ring.samples[i * 2] = (i - 32768) << 16;
    ring.samples[i * 2 + 1] = 0x7fff0000; // a loud channel left out of the mix
  }
  for (let s = 0; s < 16; s++) ring.writeHeader(s, s, BigInt(s * frames), 0n, 0);
  const state = createMixState(2);
  setMixTargets(state, { channels: [{ gainDb: 0, pan: 0, mute: false, solo: false }], masterDb: 0, output: 'mono' });
  const lim = createLimiter(RATE, { ceilingDb: 0 });
  const out = new Float32Array(frames);
  const pcm = new Int16Array(frames);
  renderMix(ring, 15, state, out); // fade-in period
  for (let slot = 0; slot < 16; slot++) {
    renderMix(ring, slot, state, out);
    limit(out, frames, 1, lim);
    assert.equal(lim.gainReductionDb, 0);
    floatToPcm16(out, frames, pcm);
    const packed = encodeSlot(ring, slot, Int32Array.from([7, CODEC_IDS.pcm16, 1, 0]));
    const v = new DataView(packed);
    const pkt = parsePacket(entryBytes(packed, 0));
    assert.ok(entryOffset(v, 0) >= PACKET_HEADROOM);
    assert.ok(Buffer.from(pcm.buffer).equals(Buffer.from(pkt.payload)), `slot ${slot}`);
  }
});

test('a mix is rounded, raw channels are truncated: an S32 sample through a unity mix can be one LSB above the raw pcm16 channel', () => {
  const frames = 4;
  const ring = new AudioRing({ channels: 1, periodFrames: frames, rate: RATE, slotCount: 2 });
  // Top 16 bits 0x1234 with the rest below, at, and above half an LSB of pcm16; and a negative value.
  const values = [0x12347fff, 0x12348000, 0x1234c000, -0x1234c000];
  for (let s = 0; s < 2; s++) {
    ring.samples.set(values, s * frames);
    ring.writeHeader(s, s, BigInt(s * frames), 0n, 0);
  }
  const state = createMixState(1);
  setMixTargets(state, { channels: [{ gainDb: 0, pan: 0, mute: false, solo: false }], masterDb: 0, output: 'mono' });
  const out = new Float32Array(frames);
  renderMix(ring, 0, state, out); // fade-in period
  renderMix(ring, 1, state, out);
  const mixed = new Int16Array(frames);
  floatToPcm16(out, frames, mixed);
  const packed = encodeSlot(ring, 1, Int32Array.from([7, CODEC_IDS.pcm16, 1, 0]));
  const v = new DataView(packed);
  const raw = parsePacket(new Uint8Array(packed, v.getUint32(8, true), v.getUint32(12, true))).payload;
  const rawSamples = Array.from({ length: frames }, (_, i) => (raw[2 * i]! | (raw[2 * i + 1]! << 8)) << 16 >> 16);
  assert.deepEqual(rawSamples, [0x1234, 0x1234, 0x1234, -0x1235], 'raw: truncated (toward minus infinity)');
  assert.deepEqual(Array.from(mixed), [0x1234, 0x1234, 0x1235, -0x1235], 'mix: rounded to nearest, ties to even');
});

test('10 000 limit calls on a limiting signal allocate nothing measurable (heap grows < 1 MB)', () => {
  const lim = createLimiter(RATE);
  const src = sine(4, 1);
  const buf = new Float32Array(src.length);
  for (let i = 0; i < 2000; i++) {
    buf.set(src);
    limit(buf, buf.length, 2, lim);
  }
  (globalThis as { gc?: () => void }).gc?.();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 10000; i++) {
    buf.set(src);
    limit(buf, buf.length, 2, lim);
  }
  const grown = process.memoryUsage().heapUsed - before;
  assert.ok(grown < 1024 * 1024, `heap grew ${grown} bytes`);
});

test('limit speed for stereo 128-frame periods (diagnostic only, not asserted)', (t) => {
  const lim = createLimiter(RATE);
  const quiet = sine(0.5, 1);
  const loud = sine(4, 1);
  const buf = new Float32Array(quiet.length);
  const measure = (src: Float32Array): number => {
    for (let i = 0; i < 2000; i++) {
      buf.set(src);
      limit(buf, buf.length, 2, lim);
    }
    const n = 20000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      buf.set(src);
      limit(buf, buf.length, 2, lim);
    }
    return Number(process.hrtime.bigint() - t0) / (n * FRAMES);
  };
  const passNs = measure(quiet);
  const limitNs = measure(loud);
  t.diagnostic(`limit stereo: ${passNs.toFixed(2)} ns per frame passing through, ${limitNs.toFixed(2)} ns limiting (incl. a 1 KB copy per period)`);
  assert.ok(Number.isFinite(passNs));
});
