import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArrivalGaps } from '../../bench/arrival-gaps';

const PERIOD = 128_000 / 48_000;

/** The gap with its length rounded to 0.1 ms (the steps above are not exact in binary). */
function at(g: ArrivalGaps, t: number): { ms: number; long: boolean } {
  const r = g.gapAt(t);
  return { ms: Math.round(r.ms * 10) / 10, long: r.long };
}

/** Packets every period from `from` to `to` ms. */
function steady(g: ArrivalGaps, from: number, to: number): void {
  for (let t = from; t <= to; t += PERIOD) g.arrived(t, PERIOD);
}

test('no gap: an event while packets arrive on time is outside every gap', () => {
  const g = new ArrivalGaps();
  g.target(10);
  steady(g, 0, 100);
  assert.deepEqual(at(g, 101), { ms: 0, long: false });
});

test('an open gap longer than the target the buffer had when it began is long; a shorter one is not', () => {
  const g = new ArrivalGaps();
  g.target(10);
  steady(g, 0, 100);
  const last = 100 - (100 % PERIOD);
  assert.deepEqual(at(g, last + 8), { ms: 8, long: false });
  // The target rises after the gap began: the gap is judged by the target at its start.
  g.target(40);
  assert.deepEqual(at(g, last + 25), { ms: 25, long: true });
});

test('an event just after a gap ended belongs to it (the underrun shows at the pull after); later ones do not', () => {
  const g = new ArrivalGaps();
  g.target(10);
  steady(g, 0, 50);
  const before = 50 - (50 % PERIOD);
  g.arrived(before + 150, PERIOD); // a 150 ms stall ends
  assert.deepEqual(at(g, before + 155), { ms: 150, long: true });
  steady(g, before + 150 + PERIOD, before + 200);
  assert.deepEqual(at(g, before + 200), { ms: 0, long: false });
});

test('a gap shorter than the target is not long however late the event', () => {
  const g = new ArrivalGaps();
  g.target(30);
  steady(g, 0, 30);
  const before = 30 - (30 % PERIOD);
  g.arrived(before + 20, PERIOD);
  assert.deepEqual(at(g, before + 21), { ms: 20, long: false });
});
