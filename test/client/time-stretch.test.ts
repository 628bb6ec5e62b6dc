import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PeriodSearch } from '../../src/client/period-search';
import { TimeStretcher } from '../../src/client/time-stretch';

/**
 * The time-stretcher on known signals in a ring: a splice that skips (accelerate) or repeats (expand) whole
 * periods of a held note must leave the same note, judged against the pure tone it should continue as.
 */

const RATE = 48000;
const CH = 2;
const CAP = 48000;

function ringOf(sample: (i: number, c: number) => number): Float32Array {
  const ring = new Float32Array(CAP * CH);
  for (let i = 0; i < CAP; i++) for (let c = 0; c < CH; c++) ring[i * CH + c] = sample(i, c);
  return ring;
}

const tone = (hz: number, amp = 0.5) => (i: number, c: number): number => amp * Math.sin((2 * Math.PI * hz * i) / RATE + 0.3 + c);

/**
 * Splices at `at` (sign +1 accelerate, -1 expand) and plays `len` frames from there. Returns the output and the lag.
 */
function splice(ring: Float32Array, at: number, sign: 1 | -1, lagMax: number, minScore: number, len: number): { out: Float32Array; lag: number; st: TimeStretcher } {
  const st = new TimeStretcher(ring, CAP, CH, RATE, new PeriodSearch(2000));
  const lag = st.plan(at, sign, st.lagMin, lagMax, minScore);
  const out = new Float32Array(len * CH);
  if (lag === 0) return { out, lag, st };
  st.start(at, sign, lag);
  let src = 0;
  for (let f = 0; f < len; f++) {
    if (st.active) {
      st.frame(out, f * CH);
      if (!st.active) src = st.next;
      continue;
    }
    for (let c = 0; c < CH; c++) out[f * CH + c] = ring[(src % CAP) * CH + c]!;
    src++;
  }
  return { out, lag, st };
}

/** Output power over error power against `want(f)` (output frame f), both channels, dB. */
function snrDb(out: Float32Array, want: (f: number, c: number) => number, from: number, to: number): number {
  let sig = 0;
  let err = 0;
  for (let f = from; f < to; f++) {
    for (let c = 0; c < CH; c++) {
      sig += want(f, c) ** 2;
      err += (out[f * CH + c]! - want(f, c)) ** 2;
    }
  }
  return 10 * Math.log10(sig / Math.max(err, 1e-30));
}

describe('time-stretch: held notes', () => {
  for (const [hz, sign] of [
    [997, 1],
    [997, -1],
    [110, 1],
    [110, -1],
  ] as const) {
    test(`${sign > 0 ? 'accelerate' : 'expand'} on a ${hz} Hz tone: the lag is a whole number of periods and the output stays within 30 dB of the tone it continues`, () => {
      const ring = ringOf(tone(hz));
      const at = 20000;
      const { out, lag } = splice(ring, at, sign, 720, 0.9, 1000);
      const period = RATE / hz;
      const periods = lag / period;
      assert.ok(lag > 0, 'a splice was found');
      assert.ok(Math.abs(periods - Math.round(periods)) * period < 1, `lag ${lag} frames is ${periods.toFixed(3)} periods`);
      // After the splice the output is the tone from at + sign × lag on; across it, the crossfade of two near-identical stretches.
      const want = (f: number, c: number): number => tone(hz)(at + sign * lag + f, c);
      const snr = snrDb(out, want, 0, 1000);
      assert.ok(snr >= 30, `${snr.toFixed(1)} dB against the tone`);
    });
  }

  test('the splice leaves no click: no step between neighbouring frames above the tone\'s own', () => {
    const hz = 441;
    const ring = ringOf(tone(hz));
    const { out } = splice(ring, 10000, 1, 720, 0.9, 600);
    let step = 0;
    for (let f = 1; f < 600; f++) for (let c = 0; c < CH; c++) step = Math.max(step, Math.abs(out[f * CH + c]! - out[(f - 1) * CH + c]!));
    const own = 0.5 * 2 * Math.sin((Math.PI * hz) / RATE);
    assert.ok(step <= 1.05 * own, `largest step ${step.toFixed(5)}, the tone's own ${own.toFixed(5)}`);
  });

  test('the lag stays within the range asked: a 110 Hz tone (436 frames) with at most 200 frames uses no whole period, and is refused at 0.9', () => {
    const ring = ringOf(tone(110));
    const st = new TimeStretcher(ring, CAP, CH, RATE, new PeriodSearch(2000));
    assert.equal(st.plan(20000, 1, st.lagMin, 200, 0.9), 0);
    const lag = st.plan(20000, 1, st.lagMin, 200, -1);
    assert.ok(lag >= st.lagMin && lag <= 200, `lag ${lag}`);
  });
});

describe('time-stretch: what it refuses', () => {
  /** Deterministic white noise. */
  const noise = (amp: number) => (i: number, c: number): number => {
    let h = Math.imul((i * 2 + c) ^ 0x5bd1e995, 0x27d4eb2d);
    h ^= h >>> 15;
    h = Math.imul(h, 0x85ebca6b);
    return amp * (((h ^ (h >>> 13)) >>> 0) / 2 ** 31 - 1);
  };

  test('loud noise matches itself nowhere: no splice at 0.6 or above', () => {
    const st = new TimeStretcher(ringOf(noise(0.5)), CAP, CH, RATE, new PeriodSearch(2000));
    assert.equal(st.plan(20000, 1, st.lagMin, st.lagMax, 0.6), 0);
    assert.equal(st.plan(20000, -1, st.lagMin, st.lagMax, 0.6), 0);
    assert.ok(st.lastScore < 0.6, `best score ${st.lastScore}`);
  });

  test('noise at -70 dBFS is spliced anyway: too quiet to hear', () => {
    const st = new TimeStretcher(ringOf(noise(0.0003)), CAP, CH, RATE, new PeriodSearch(2000));
    assert.ok(st.plan(20000, 1, st.lagMin, st.lagMax, 0.9) > 0);
  });

  test('a period search too small for the stretcher is a RangeError naming both sizes', () => {
    assert.throws(() => new TimeStretcher(new Float32Array(CAP * CH), CAP, CH, RATE, new PeriodSearch(100)), /the period search holds 100 frames; needs 816/);
  });
});
