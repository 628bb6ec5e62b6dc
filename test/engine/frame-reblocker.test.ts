import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameReblocker, type PeriodSamples } from '../../src/engine/frame-reblocker';

const RATE = 48000;

interface Emitted {
  samples: Int16Array;
  samplePos: bigint;
  captureNs: bigint;
  /** Index of the push() during which the frame was emitted. */
  push: number;
}

/** A deterministic Int16 stream where sample i (interleaved) is distinct from its neighbours. */
function streamSample(i: number): number {
  return ((i * 7919 + 13) % 65535) - 32767; // -32767…32767: what Float32 in [-1, 1] maps to
}

/** Capture time of stream frame f for a stream starting at t0 (what a period header would carry). */
function periodCaptureNs(t0: bigint, frame: number): bigint {
  return t0 + BigInt(Math.round((frame * 1e9) / RATE));
}

interface RunResult {
  frames: Emitted[];
  emittedPerPush: number[];
}

/**
 * Feeds `periods` periods of `periodFrames` frames of the test stream, in
 * `kind` samples, each from a different offset of a larger buffer, and
 * records every emitted frame (copied, as the ring slot is reused).
 */
function run(channels: number, periodFrames: number, frameFrames: number, periods: number, kind: 'i16' | 'f32' | 'i32' = 'i16'): RunResult {
  const frames: Emitted[] = [];
  const emittedPerPush: number[] = [];
  let pushIndex = 0;
  const rb = new FrameReblocker({ channels, frameFrames, rate: RATE, slots: 3 }, (f) => {
    frames.push({
      samples: f.samples.slice(),
      samplePos: f.samplePos,
      captureNs: f.captureNs,
      push: pushIndex,
    });
  });
  const startPos = 1000n;
  const t0 = 5_000_000_000n;
  const per = periodFrames * channels;
  const offset = 3; // the period sits inside a larger buffer
  const buf: PeriodSamples =
    kind === 'i16' ? new Int16Array(per + offset + 5) : kind === 'f32' ? new Float32Array(per + offset + 5) : new Int32Array(per + offset + 5);
  for (let p = 0; p < periods; p++) {
    for (let i = 0; i < per; i++) {
      const v = streamSample(p * per + i);
      buf[offset + i] = kind === 'i16' ? v : kind === 'f32' ? v / 32767 : v * 65536 + 0x1234;
    }
    pushIndex = p;
    const firstFrame = p * periodFrames;
    emittedPerPush.push(rb.push(buf, periodFrames, startPos + BigInt(firstFrame), periodCaptureNs(t0, firstFrame), offset));
  }
  return { frames, emittedPerPush };
}

function checkStream(channels: number, periodFrames: number, frameFrames: number, periods: number, kind: 'i16' | 'f32' | 'i32' = 'i16'): void {
  const { frames, emittedPerPush } = run(channels, periodFrames, frameFrames, periods, kind);
  const total = periods * periodFrames;
  assert.equal(frames.length, Math.floor(total / frameFrames), 'every complete frame is emitted');
  for (let n = 0; n < frames.length; n++) {
    const f = frames[n]!;
    const first = n * frameFrames; // stream frame index of this frame's first frame
    // Samples: exactly the input stream, in order.
    assert.equal(f.samples.length, frameFrames * channels);
    for (let i = 0; i < f.samples.length; i++) {
      if (f.samples[i] !== streamSample(first * channels + i)) {
        assert.fail(`frame ${n} sample ${i}: got ${f.samples[i]}, expected ${streamSample(first * channels + i)}`);
      }
    }
    // First-sample position and capture time: from the period that holds the first sample, plus its offset there.
    assert.equal(f.samplePos, 1000n + BigInt(first), `frame ${n} samplePos`);
    const period = Math.floor(first / periodFrames);
    const k = first - period * periodFrames;
    const expectedNs = periodCaptureNs(5_000_000_000n, period * periodFrames) + BigInt(Math.round((k * 1e9) / RATE));
    assert.equal(f.captureNs, expectedNs, `frame ${n} captureNs`);
    // Emitted during the push that delivered its last sample: never earlier (incomplete), never later (delayed).
    const lastFrame = first + frameFrames - 1;
    assert.equal(f.push, Math.floor(lastFrame / periodFrames), `frame ${n} emitted in the push holding its last sample`);
  }
  // After each push exactly the frames completed so far have been emitted.
  let emitted = 0;
  for (let p = 0; p < periods; p++) {
    emitted += emittedPerPush[p]!;
    assert.equal(emitted, Math.floor(((p + 1) * periodFrames) / frameFrames), `frames emitted after push ${p}`);
  }
}

describe('FrameReblocker', () => {
  test('128-frame periods become 5 ms (240-frame) stereo frames equal to the input stream, with first-sample positions and capture times', () => {
    checkStream(2, 128, 240, 40);
  });

  test('128-frame periods become 2.5 ms (120-frame) frames exactly', () => {
    checkStream(2, 128, 120, 40);
  });

  test('128-frame periods become 10 ms (480-frame) frames exactly', () => {
    checkStream(2, 128, 480, 40);
  });

  test('a period larger than the frame (1024 into 120) emits every frame it completes, in order', () => {
    checkStream(2, 1024, 120, 5);
    const { emittedPerPush } = run(2, 1024, 120, 3);
    assert.deepEqual(emittedPerPush, [8, 9, 8]);
  });

  test('other period sizes (32, 100, 240, 1000) and mono re-block exactly', () => {
    checkStream(2, 32, 240, 50);
    checkStream(2, 100, 240, 30);
    checkStream(2, 240, 240, 6);
    checkStream(1, 1000, 480, 5);
  });

  test('Float32 and left-aligned Int32 periods convert to the same Int16 frames', () => {
    checkStream(2, 128, 240, 20, 'f32');
    checkStream(2, 128, 240, 20, 'i32');
  });

  test('nothing is emitted before a frame is complete', () => {
    const seen: bigint[] = [];
    const rb = new FrameReblocker({ channels: 2, frameFrames: 240, rate: RATE }, (f) => seen.push(f.samplePos));
    const period = new Int16Array(128 * 2);
    assert.equal(rb.push(period, 128, 0n, 0n), 0);
    assert.equal(seen.length, 0);
    assert.equal(rb.pendingFrames, 128);
    assert.equal(rb.push(period, 111, 128n, 1n), 0, '239 frames: still one short');
    assert.equal(seen.length, 0);
    assert.equal(rb.push(period, 1, 239n, 2n), 1, 'the 240th frame completes it');
    assert.deepEqual(seen, [0n]);
    assert.equal(rb.pendingFrames, 0);
  });

  test('a frame is emitted in the middle of the push that completes it, before the rest of the period is copied', () => {
    const rb = new FrameReblocker({ channels: 1, frameFrames: 120, rate: RATE }, () => {
      pendingAtEmit.push(rb.pendingFrames);
    });
    const pendingAtEmit: number[] = [];
    rb.push(new Int16Array(128), 128, 0n, 0n);
    // At the moment frame 0 is handed over, none of the 8 remaining frames of the period are in the next frame yet.
    assert.deepEqual(pendingAtEmit, [0]);
    assert.equal(rb.pendingFrames, 8);
  });

  test('the emitted samples are ring slots allocated once and reused in turn', () => {
    const slots: number[] = [];
    const buffers = new Set<ArrayBufferLike>();
    const rb = new FrameReblocker({ channels: 2, frameFrames: 120, rate: RATE, slots: 3 }, (f) => {
      slots.push(f.slot);
      buffers.add(f.samples.buffer);
    });
    for (let p = 0; p < 10; p++) rb.push(new Int16Array(256), 128, BigInt(p * 128), 0n);
    assert.deepEqual(slots, [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]);
    assert.equal(buffers.size, 1);
    assert.equal(rb.ring.length, 3 * 120 * 2);
  });

  test('a samplePos gap discards the partial frame and the next frame starts at the new period', () => {
    const got: Array<[bigint, bigint, number]> = [];
    const rb = new FrameReblocker({ channels: 1, frameFrames: 240, rate: RATE }, (f) => got.push([f.samplePos, f.captureNs, f.samples[0]!]));
    const a = new Int16Array(128).fill(1);
    const b = new Int16Array(128).fill(2);
    rb.push(a, 128, 0n, 100n);
    rb.push(b, 128, 500n, 900n); // expected 128: gap
    assert.equal(rb.discardedFrames, 1);
    assert.deepEqual(got, []);
    rb.push(b, 128, 628n, 1000n);
    assert.deepEqual(got, [[500n, 900n, 2]]);
  });

  test('bad options and a period that does not fit its source are RangeErrors naming the value', () => {
    assert.throws(
      () => new FrameReblocker({ channels: 0, frameFrames: 240, rate: RATE }, () => {}),
      { name: 'RangeError', message: 'frame reblocker: channels 0 is not allowed; allowed: integers 1–64' },
    );
    assert.throws(
      () => new FrameReblocker({ channels: 2, frameFrames: 2.5, rate: RATE }, () => {}),
      { name: 'RangeError', message: 'frame reblocker: frameFrames 2.5 is not allowed; allowed: integers 1–48000' },
    );
    const rb = new FrameReblocker({ channels: 2, frameFrames: 240, rate: RATE }, () => {});
    assert.throws(() => rb.push(new Int16Array(255), 128, 0n, 0n), {
      name: 'RangeError',
      message: 'frame reblocker: 128 frames × 2 channels from sample 0 do not fit a source of 255 samples',
    });
  });
});
