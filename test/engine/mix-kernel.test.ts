import { test } from 'node:test';
import { GCProfiler } from 'node:v8';
import assert from 'node:assert/strict';
import { AudioRing } from '../../src/engine/audio-ring';
import {
  createMixState,
  floatToPcm16,
  floatToPcm24,
  mixCostWork,
  renderMix,
  setMixTargets,
  type ChannelMixParams,
  type MixParams,
  type MixState,
} from '../../src/engine/mix-kernel';
import { createLimiter, limit } from '../../src/engine/limiter';

const RATE = 48000;
const FRAMES = 128;

// ---------------------------------------------------------------- helpers

function ch(gainDb = 0, pan = 0, mute = false, solo = false): ChannelMixParams {
  return { gainDb, pan, mute, solo };
}

function mix(channels: ChannelMixParams[], output: 'stereo' | 'mono' = 'stereo', masterDb = 0): MixParams {
  return { channels, masterDb, output };
}

/** A ring whose every slot holds, per channel, the same constant (float value × 2^31). */
function dcRing(values: number[], slotCount = 2): AudioRing {
  const ring = new AudioRing({ channels: values.length, periodFrames: FRAMES, rate: RATE, slotCount });
  for (let i = 0; i < ring.samples.length; i++) ring.samples[i] = Math.round(values[i % values.length]! * 2147483648);
  return ring;
}

/** Renders `periods` periods of slot 0 so every ramp has finished; returns the last output. */
function settle(ring: AudioRing, state: MixState, periods = 2): Float32Array {
  const out = new Float32Array(FRAMES * 2);
  for (let p = 0; p < periods; p++) renderMix(ring, 0, state, out);
  return out;
}

function rmsDb(x: ArrayLike<number>, start: number, step: number, count: number): number {
  let sum = 0;
  for (let i = 0, j = start; i < count; i++, j += step) sum += x[j]! * x[j]!;
  return 10 * Math.log10(sum / count);
}

// ---------------------------------------------------------------- gain

// The brief quoted −9.0309 dBFS for "−6 dB"; that figure belongs to a gain of exactly ½
// (20·log10 ½ = −6.0206 dB). A gainDb of −6 gives −3.0103 − 6 = −9.0103 dBFS. Both are asserted.
for (const [gainDb, wantDb] of [
  [-6, 20 * Math.log10(Math.SQRT1_2) - 6],
  [20 * Math.log10(0.5), 20 * Math.log10(Math.SQRT1_2 * 0.5)],
] as const) {
  test(`gainDb ${gainDb.toFixed(4)} on a full-scale sine gives ${wantDb.toFixed(4)} dBFS RMS within 0.01 dB, mono and hard-left stereo`, () => {
    // 1 kHz at 48 kHz is 48 samples a cycle, so 3 periods of 128 frames hold exactly 8 cycles
    // and the discrete RMS equals the continuous one (full-scale sine: 1/√2, −3.0103 dBFS).
    const slots = 4;
    const ring = new AudioRing({ channels: 2, periodFrames: FRAMES, rate: RATE, slotCount: slots });
    for (let n = 0; n < slots * FRAMES; n++) {
      ring.samples[n * 2] = Math.round(2147483647 * Math.sin((2 * Math.PI * 1000 * n) / RATE));
      ring.samples[n * 2 + 1] = 0x40000000; // a loud channel at −Infinity that must not leak in
    }
    for (const [output, pan] of [['mono', 0], ['stereo', -1]] as const) {
      const state = createMixState(2);
      setMixTargets(state, mix([ch(gainDb, pan), ch(-Infinity)], output));
      const outCh = output === 'mono' ? 1 : 2;
      const out = new Float32Array(slots * FRAMES * outCh);
      for (let s = 0; s < slots; s++) renderMix(ring, s, state, out.subarray(s * FRAMES * outCh));
      // Period 0 is the fade-in ramp from silence; measure periods 1..3.
      const got = rmsDb(out, FRAMES * outCh, outCh, 3 * FRAMES);
      assert.ok(Math.abs(got - wantDb) < 0.01, `${output}: RMS ${got.toFixed(4)} dBFS, expected ${wantDb.toFixed(4)}`);
      if (output === 'stereo') assert.equal(rmsDb(out, FRAMES * 2 + 1, 2, 3 * FRAMES), -Infinity, 'hard left leaves R silent');
    }
  });
}

// ---------------------------------------------------------------- pan law and mono rule

test('the pan law gives L/R gains 1/0 at −1, 0.7071/0.7071 (−3.0103 dB) at 0 and 0/1 at +1, within 1e-6', () => {
  const state = createMixState(3);
  setMixTargets(state, mix([ch(0, -1), ch(0, 0), ch(0, 1)]));
  const cases: [number, number, number][] = [
    [0, 1, 0],
    [1, Math.SQRT1_2, Math.SQRT1_2],
    [2, 0, 1],
  ];
  for (const [c, l, r] of cases) {
    assert.ok(Math.abs(state.tgtL[c]! - l) < 1e-6, `channel ${c} L ${state.tgtL[c]}`);
    assert.ok(Math.abs(state.tgtR[c]! - r) < 1e-6, `channel ${c} R ${state.tgtR[c]}`);
  }
  // The ends are exact, so a hard-panned channel costs nothing on the silent side.
  assert.equal(state.tgtL[0], 1);
  assert.equal(state.tgtR[0], 0);
  assert.equal(state.tgtL[2], 0);
  assert.equal(state.tgtR[2], 1);
  assert.ok(Math.abs(20 * Math.log10(state.tgtL[1]!) - -3.0103) < 1e-4);
  // Constant power across the range.
  for (let pan = -1; pan <= 1; pan += 0.125) {
    setMixTargets(state, mix([ch(0, pan)]));
    assert.ok(Math.abs(state.tgtL[0]! ** 2 + state.tgtR[0]! ** 2 - 1) < 1e-6, `L²+R² at pan ${pan}`);
  }
});

test('the rendered stereo output carries the panned gains', () => {
  const ring = dcRing([0.5, 0.25]);
  const state = createMixState(2);
  setMixTargets(state, mix([ch(0, 0), ch(0, 1)]));
  const out = settle(ring, state);
  for (let f = 0; f < FRAMES; f++) {
    assert.ok(Math.abs(out[2 * f]! - 0.5 * Math.SQRT1_2) < 1e-7);
    assert.ok(Math.abs(out[2 * f + 1]! - (0.5 * Math.SQRT1_2 + 0.25)) < 1e-7);
  }
});

test('mono output ignores pan, so a centred channel is at unity and a hard-panned one is not lost', () => {
  const ring = dcRing([0.5, 0.25, 0.125]);
  const state = createMixState(3);
  setMixTargets(state, mix([ch(0, 0), ch(0, -1), ch(0, 1)], 'mono'));
  assert.equal(state.outChannels, 1);
  const out = settle(ring, state);
  for (let f = 0; f < FRAMES; f++) assert.equal(out[f], 0.875);
  // Only `frames` samples are written in mono.
  assert.equal(out[FRAMES], 0);
});

test('masterDb scales every channel', () => {
  const ring = dcRing([0.5, 0.25]);
  const state = createMixState(2);
  setMixTargets(state, mix([ch(0), ch(0)], 'mono', 20 * Math.log10(0.5)));
  const out = settle(ring, state);
  assert.ok(Math.abs(out[0]! - 0.375) < 1e-7);
});

// ---------------------------------------------------------------- solo, mute, links, groups

test('solo leaves only the soloed channels audible, mute silences, and mute wins over solo', () => {
  // Distinct powers of two per channel, so the sum names exactly which channels are heard.
  const ring = dcRing([0.5, 0.25, 0.125, 0.0625]);
  const state = createMixState(4);
  const render = (params: ChannelMixParams[]): number => {
    setMixTargets(state, mix(params, 'mono'));
    return settle(ring, state)[0]!;
  };
  setMixTargets(state, mix([ch(), ch(), ch(), ch()], 'mono'));
  assert.equal(settle(ring, state)[0], 0.9375);
  assert.equal(render([ch(), ch(0, 0, false, true), ch(), ch()]), 0.25);
  assert.equal(mixCostWork(state), 1, 'only the soloed channel costs work once the ramp is done');
  assert.equal(render([ch(), ch(0, 0, false, true), ch(0, 0, false, true), ch()]), 0.375);
  assert.equal(render([ch(0, 0, true), ch(), ch(), ch()]), 0.4375);
  assert.equal(render([ch(), ch(0, 0, true, true), ch(), ch()]), 0, 'a muted solo still puts the mix in solo mode');
  assert.equal(mixCostWork(state), 0);
  assert.equal(render([ch(0, 0, true), ch(0, 0, true), ch(0, 0, false, true), ch(0, 0, true, false)]), 0.125);
});

test('a stereo-linked pair and a group move arrive as per-channel params and move together', () => {
  // Channels 0/1: a keyboard pair (linked, hard L/R). Channels 2/3: a drum group, centred.
  const ring = dcRing([0.5, 0.25, 0.125, 0.0625]);
  const state = createMixState(4);
  setMixTargets(state, mix([ch(0, -1), ch(0, 1), ch(0, 0), ch(0, 0)]));
  let out = settle(ring, state);
  const drums = (0.125 + 0.0625) * Math.SQRT1_2;
  assert.ok(Math.abs(out[0]! - (0.5 + drums)) < 1e-7);
  assert.ok(Math.abs(out[1]! - (0.25 + drums)) < 1e-7);
  // The pair moves by −6.0206 dB (×½) and the group by +6.0206 dB (×2), each as two equal per-channel changes.
  const half = 20 * Math.log10(0.5);
  setMixTargets(state, mix([ch(half, -1), ch(half, 1), ch(-half, 0), ch(-half, 0)]));
  out = settle(ring, state);
  assert.ok(Math.abs(out[0]! - (0.25 + 2 * drums)) < 1e-6);
  assert.ok(Math.abs(out[1]! - (0.125 + 2 * drums)) < 1e-6);
  assert.equal(state.tgtL[0], state.tgtR[1], 'the linked pair keeps mirror-image gains');
  assert.equal(state.tgtL[2], state.tgtL[3], 'the group members keep equal gains');
});

// ---------------------------------------------------------------- ramp

test('a step from 0 dB to −∞ ramps linearly across exactly one period, then stays at silence', () => {
  const ring = dcRing([0.5]);
  const state = createMixState(1);
  setMixTargets(state, mix([ch(0)], 'mono'));
  const out = settle(ring, state);
  assert.equal(out[FRAMES - 1], 0.5);
  setMixTargets(state, mix([ch(-Infinity)], 'mono'));
  assert.equal(mixCostWork(state), 1, 'still costs work while ramping out');
  renderMix(ring, 0, state, out);
  // Frame f carries gain 1 − (f+1)/FRAMES: one step below the old gain first, the new gain last.
  assert.ok(Math.abs(out[0]! - 0.5 * (1 - 1 / FRAMES)) < 1e-7, `first ${out[0]}`);
  assert.ok(Math.abs(out[FRAMES - 1]!) < 1e-7, `last ${out[FRAMES - 1]}`);
  for (let f = 1; f < FRAMES; f++) assert.ok(Math.abs(out[f - 1]! - out[f]! - 0.5 / FRAMES) < 1e-7, `step at frame ${f}`);
  assert.equal(state.curL[0], 0);
  assert.equal(mixCostWork(state), 0);
  out.fill(1);
  renderMix(ring, 0, state, out);
  for (let f = 0; f < FRAMES; f++) assert.equal(out[f], 0);
});

test('a new mix fades in from silence over its first period', () => {
  const ring = dcRing([0.5]);
  const state = createMixState(1);
  setMixTargets(state, mix([ch(0)], 'mono'));
  const out = new Float32Array(FRAMES);
  renderMix(ring, 0, state, out);
  assert.ok(Math.abs(out[0]! - 0.5 / FRAMES) < 1e-7);
  assert.equal(out[FRAMES - 1], 0.5);
});

test('out-of-range params and a short output buffer are refused with RangeError', () => {
  const state = createMixState(2);
  assert.throws(() => setMixTargets(state, mix([ch(10.5)])), RangeError);
  assert.throws(() => setMixTargets(state, mix([ch(Number.NaN)])), RangeError);
  assert.throws(() => setMixTargets(state, mix([ch(0, 1.5)])), RangeError);
  assert.throws(() => setMixTargets(state, mix([ch(), ch(), ch()])), RangeError);
  assert.throws(() => setMixTargets(state, mix([ch()], 'stereo', 11)), RangeError);
  setMixTargets(state, mix([ch()]));
  assert.throws(() => renderMix(dcRing([0.5, 0.5]), 0, state, new Float32Array(FRAMES)), RangeError);
});

test('ring channels beyond the params are silent and beyond maxChannels are not read', () => {
  const ring = dcRing([0.5, 0.25, 0.125]);
  const state = createMixState(2);
  setMixTargets(state, mix([ch(0)], 'mono'));
  assert.equal(settle(ring, state)[0], 0.5);
  assert.equal(mixCostWork(state), 1);
});

// ---------------------------------------------------------------- quantisation

test('floatToPcm16 rounds to nearest (ties to even), clips, and maps NaN to 0', () => {
  const src = Float32Array.from([0, 1, -1, 1.5, -1.5, 0.5 / 32768, 1.5 / 32768, -0.5 / 32768, -1.5 / 32768, 0.4 / 32768, 0.6 / 32768, 32766.5 / 32768, Number.NaN, Infinity, -Infinity]);
  const dst = new Int16Array(src.length);
  floatToPcm16(src, src.length, dst);
  assert.deepEqual(Array.from(dst), [0, 32767, -32768, 32767, -32768, 0, 2, 0, -2, 0, 1, 32766, 0, 32767, -32768]);
});

test('floatToPcm24 writes little-endian 3-byte samples with the same rounding and clipping', () => {
  const src = Float32Array.from([0, 1, -1, 0.5 / 8388608, 1.5 / 8388608, -1 / 8388608, 0x123456 / 8388608, Number.NaN]);
  const dst = new Uint8Array(2 + src.length * 3);
  floatToPcm24(src, src.length, dst, 2);
  const read = (i: number): number => ((dst[2 + i * 3]! | (dst[3 + i * 3]! << 8) | (dst[4 + i * 3]! << 16)) << 8) >> 8;
  assert.deepEqual(Array.from(src, (_, i) => read(i)), [0, 8388607, -8388608, 0, 2, -1, 0x123456, 0]);
  assert.equal(dst[0], 0);
  assert.equal(dst[1], 0);
});

test('every S16 and S24 sample survives a unity mix and floatToPcm16/24 bit for bit', () => {
  // All 65536 S16 values, and a sweep of S24 values including both extremes.
  const ring16 = new AudioRing({ channels: 1, periodFrames: 65536, rate: RATE, slotCount: 1 });
  for (let v = -32768; v < 32768; v++) ring16.samples[v + 32768] = v << 16;
  const ring24 = new AudioRing({ channels: 1, periodFrames: 65536, rate: RATE, slotCount: 1 });
  for (let i = 0; i < 65536; i++) ring24.samples[i] = (i === 0 ? -8388608 : i === 65535 ? 8388607 : (i - 32768) * 255 + (i % 7)) << 8;
  const state = createMixState(1);
  setMixTargets(state, mix([ch(0)], 'mono'));
  const out = new Float32Array(65536);
  for (const ring of [ring16, ring24]) {
    renderMix(ring, 0, state, out); // fade-in period
    renderMix(ring, 0, state, out);
    const p16 = new Int16Array(65536);
    floatToPcm16(out, 65536, p16);
    const p24 = new Uint8Array(65536 * 3);
    floatToPcm24(out, 65536, p24, 0);
    for (let i = 0; i < 65536; i++) {
      const s = ring.samples[i]!;
      if (ring === ring16) assert.equal(p16[i], s >> 16, `pcm16 of ${s >> 16}`);
      const v24 = ((p24[i * 3]! | (p24[i * 3 + 1]! << 8) | (p24[i * 3 + 2]! << 16)) << 8) >> 8;
      if (v24 !== s >> 8) assert.fail(`pcm24 of ${s >> 8} came back as ${v24}`);
    }
  }
});

// ---------------------------------------------------------------- allocation and speed

function gcIfExposed(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

test('10 000 renderMix + limit calls allocate nothing: heap grows < 1 MB and no young-generation GC runs', () => {
  const channels = 32;
  const ring = new AudioRing({ channels, periodFrames: FRAMES, rate: RATE, slotCount: 4 });
  for (let i = 0; i < ring.samples.length; i++) ring.samples[i] = (Math.imul(i, 2654435761) | 0) >> 2;
  const state = createMixState(channels);
  const lim = createLimiter(RATE);
  const out = new Float32Array(FRAMES * 2);
  const params = mix(Array.from({ length: channels }, (_, c) => ch(-6 + (c % 5), (c % 9) / 4 - 1)));
  const call = (i: number): void => {
    if (i % 100 === 0) setMixTargets(state, params); // keep some periods ramping
    renderMix(ring, i & 3, state, out);
    limit(out, FRAMES * 2, 2, lim);
  };
  // Warm up so JIT compilation (and boxed doubles in unoptimised code) is not counted.
  for (let i = 0; i < 2000; i++) call(i);
  gcIfExposed();
  // heapUsed is read after the loop WITHOUT a collection, so short-lived garbage still counts;
  // and since a scavenge is only ever triggered by allocation, any per-call garbage of
  // more than ~100 bytes shows up as at least one Scavenge in the profile.
  // A late JIT recompile (likely on a loaded machine) allocates on the heap too;
  // a real per-call allocation scavenges in every attempt, so one clean attempt of three is required.
  const attempts: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const profiler = new GCProfiler();
    profiler.start();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 10000; i++) call(i);
    const grown = process.memoryUsage().heapUsed - before;
    const young = profiler.stop().statistics.filter((s) => s.gcType === 'Scavenge' || s.gcType === 'MinorMarkSweep').length;
    if (grown < 1024 * 1024 && young === 0) return;
    attempts.push(`heap grew ${grown} bytes, ${young} young-generation collection(s)`);
  }
  assert.fail(`renderMix + limit allocate: ${attempts.join('; ')}`);
});

test('renderMix speed for 32 channels × 128 frames, stereo (diagnostic only, not asserted)', (t) => {
  const channels = 32;
  const ring = new AudioRing({ channels, periodFrames: FRAMES, rate: RATE, slotCount: 4 });
  for (let i = 0; i < ring.samples.length; i++) ring.samples[i] = (Math.imul(i, 2654435761) | 0) >> 2;
  const state = createMixState(channels);
  const out = new Float32Array(FRAMES * 2);
  const steady = mix(Array.from({ length: channels }, (_, c) => ch(-6, (c % 9) / 4 - 1)));
  const moved = mix(Array.from({ length: channels }, (_, c) => ch(-7, (c % 9) / 4 - 1)));
  const iterations = 20000;
  const measure = (ramp: boolean): number => {
    for (let i = 0; i < 2000; i++) renderMix(ring, i & 3, state, out);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) {
      if (ramp) setMixTargets(state, i & 1 ? steady : moved);
      renderMix(ring, i & 3, state, out);
    }
    return Number(process.hrtime.bigint() - t0) / (iterations * channels * FRAMES);
  };
  setMixTargets(state, steady);
  const steadyNs = measure(false);
  const rampNs = measure(true);
  t.diagnostic(`renderMix 32 ch × 128 frames stereo: ${steadyNs.toFixed(2)} ns per channel-frame steady, ${rampNs.toFixed(2)} ns ramping (incl. setMixTargets)`);
  assert.ok(Number.isFinite(steadyNs));
});
