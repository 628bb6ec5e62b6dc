/**
 * The wifi bench's own definitions, on made-up inputs: a concealed loss (a
 * seq play-out passed before it came; consecutive ones are one event) and the
 * time a jitter buffer's target takes to come back down after a stall.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PlayoutTracker } from '../../bench/playout-tracker';
import { stallOutcomes, targetAt } from '../../bench/stall-recovery';

const FRAMES = 128;

describe('PlayoutTracker', () => {
  test('a gap filled before its turn is no loss; one play-out passes is, and a run of them is one event', () => {
    const t = new PlayoutTracker();
    for (const seq of [10, 11, 13]) t.arrived(seq, false); // 12 missing
    t.arrived(12, false); // late, but 4 packets are still buffered: before its turn
    t.played(4 * FRAMES, FRAMES);
    assert.deepEqual([t.events, t.packets], [0, 0]);

    for (const seq of [14, 18, 19]) t.arrived(seq, false); // 15, 16, 17 missing
    t.played(4 * FRAMES, FRAMES); // play-out at 16: 15 has had its turn
    assert.deepEqual([t.events, t.packets], [1, 1]);
    t.played(1 * FRAMES, FRAMES); // at 19: 16 and 17 too, the same run
    assert.deepEqual([t.events, t.packets], [1, 3]);
    t.arrived(16, false); // after its turn: stays a loss
    assert.deepEqual([t.events, t.packets], [1, 3]);

    t.arrived(21, false); // 20 missing
    t.played(0, FRAMES); // ran dry: everything up to 21 has had its turn
    assert.deepEqual([t.events, t.packets], [2, 4]);
  });

  test('a discontinuity or a jump starts a new stretch: nothing behind it is a loss', () => {
    const t = new PlayoutTracker();
    t.arrived(1, false);
    t.arrived(5, true);
    t.arrived(5000, false);
    t.played(0, FRAMES);
    assert.deepEqual([t.events, t.packets], [0, 0]);
  });

  test('reset zeroes the counts but keeps what is missing', () => {
    const t = new PlayoutTracker();
    t.arrived(1, false);
    t.arrived(3, false);
    t.reset();
    t.played(0, FRAMES);
    assert.deepEqual([t.events, t.packets], [1, 1]);
  });
});

describe('stall recovery', () => {
  // Target 10 ms, 30 ms after an underrun at 1.05 s, shrinking 1 ms per 2 s from 5 s on.
  const steps: [number, number][] = [[0, 10], [1050, 30], ...Array.from({ length: 20 }, (_, i): [number, number] => [5000 + 2000 * i, 29 - i])];
  const listener = { label: 'l0', fromMs: 0, toMs: 60_000, targetSteps: steps };

  test('the target as a step function', () => {
    assert.equal(targetAt(steps, 500), 10);
    assert.equal(targetAt(steps, 1050), 30);
    assert.equal(targetAt(steps, 6999), 29);
    assert.equal(targetAt(steps, -5), 10);
  });

  test('from the stall end until the target is within 2 ms of where it stood when the stall began', () => {
    const [o] = stallOutcomes(listener, [{ atMs: 1000, durationMs: 200, held: 40 }]);
    // Back to 12 ms (= 10 + 2) at the step of 12: 5000 + 2000 * 17 ms.
    assert.deepEqual(o, { listener: 'l0', atS: 1, durationMs: 200, held: 40, preTargetMs: 10, peakTargetMs: 30, recoveryS: (39_000 - 1200) / 1000 });
  });

  test('a stall the target did not move for recovers at once; one it never comes back from within the window is null', () => {
    const [absorbed] = stallOutcomes(listener, [{ atMs: 400, durationMs: 150, held: 10 }]);
    assert.equal(absorbed!.recoveryS, 0);
    const [stuck] = stallOutcomes({ ...listener, toMs: 20_000, targetSteps: steps.slice(0, 5) }, [{ atMs: 1000, durationMs: 200, held: 40 }]);
    assert.equal(stuck!.recoveryS, null);
    assert.equal(stuck!.peakTargetMs, 30);
  });

  test('only stalls over 100 ms that began in the window count', () => {
    assert.deepEqual(
      stallOutcomes(listener, [
        { atMs: 2000, durationMs: 100, held: 5 },
        { atMs: -10, durationMs: 300, held: 5 },
        { atMs: 61_000, durationMs: 300, held: 5 },
      ]),
      [],
    );
  });
});
