import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ControlRateLimiter, FLOOD_WINDOW_MS, type RateVerdict } from '../../src/control/control-rate-limiter';

/**
 * The rate rule of docs/protocol.md section 3 on an injected clock: the box's
 * defaults (50 messages/s, burst 100), so a flood is more than 100 messages
 * dropped within one second.
 */

const RATE = 50;
const BURST = 100;

interface Run {
  verdicts: Record<RateVerdict, number>;
  /** Time of the first 'flood', ms from the start; null if none. */
  floodAtMs: number | null;
  /** 1-based index of the message that was the flood. */
  floodAtMessage: number | null;
}

/** Sends `perSecond` messages a second, evenly paced, for `seconds`, stopping at the first flood verdict. */
function paced(perSecond: number, seconds: number): Run {
  const lim = new ControlRateLimiter(RATE, BURST, 0);
  const run: Run = { verdicts: { pass: 0, drop: 0, flood: 0 }, floodAtMs: null, floodAtMessage: null };
  const n = Math.round(perSecond * seconds);
  for (let i = 0; i < n; i++) {
    const t = (i * 1000) / perSecond;
    const v = lim.take(t);
    run.verdicts[v]++;
    if (v === 'flood') {
      run.floodAtMs = t;
      run.floodAtMessage = i + 1;
      break;
    }
  }
  return run;
}

/** `n` messages at the same instant. */
function burst(n: number): Run {
  const lim = new ControlRateLimiter(RATE, BURST, 0);
  const run: Run = { verdicts: { pass: 0, drop: 0, flood: 0 }, floodAtMs: null, floodAtMessage: null };
  for (let i = 0; i < n; i++) {
    const v = lim.take(5);
    run.verdicts[v]++;
    if (v === 'flood') {
      run.floodAtMs = 5;
      run.floodAtMessage = i + 1;
      break;
    }
  }
  return run;
}

describe('control rate limiter', () => {
  test('the flood threshold is twice the rate: more than 100 drops within one second at 50 messages/s', () => {
    assert.equal(new ControlRateLimiter(RATE, BURST, 0).floodDrops, 100);
    assert.equal(FLOOD_WINDOW_MS, 1000);
  });

  test('a paced flood of 5000 messages/s is a flood within a tenth of a second (one message every 20 ms gets through and changes nothing)', () => {
    const r = paced(5000, 3);
    assert.ok(r.floodAtMs !== null, `no flood in 3 s: ${JSON.stringify(r)}`);
    assert.equal(r.verdicts.drop, 100, 'the 101st drop within the second is the flood');
    assert.ok(r.verdicts.pass >= BURST, JSON.stringify(r));
    assert.ok(r.floodAtMs < 100, `flood detected after ${r.floodAtMs} ms`);
  });

  test('a burst of 2000 at once: 100 pass (the bucket), 100 are dropped, the 201st message is the flood', () => {
    const r = burst(2000);
    assert.deepEqual(r.verdicts, { pass: 100, drop: 100, flood: 1 });
    assert.equal(r.floodAtMessage, 201);
  });

  test('a burst of 200 at once (the bucket plus 100) is dropped in part but is not a flood', () => {
    assert.deepEqual(burst(200).verdicts, { pass: 100, drop: 100, flood: 0 });
  });

  test('just under the rate (45 messages/s for a minute) every message passes', () => {
    assert.deepEqual(paced(45, 60).verdicts, { pass: 2700, drop: 0, flood: 0 });
  });

  test('twice the rate (100 messages/s for a minute) is rate-limited but never a flood', () => {
    const r = paced(100, 60);
    assert.equal(r.verdicts.flood, 0);
    assert.ok(r.verdicts.drop > 2800, `drops: ${r.verdicts.drop}`);
  });

  test('a paced flood just over three times the rate (160 messages/s) is a flood after a burst and a second or two', () => {
    const r = paced(160, 10);
    assert.ok(r.floodAtMs !== null, JSON.stringify(r));
    assert.ok(r.floodAtMs > 1000 && r.floodAtMs < 3000, `flood at ${r.floodAtMs} ms`);
  });

  test('drops spread out over time are forgotten: 100 dropped every 1.1 s never make a flood', () => {
    const lim = new ControlRateLimiter(RATE, BURST, 0);
    const verdicts: Record<RateVerdict, number> = { pass: 0, drop: 0, flood: 0 };
    for (let round = 0; round < 20; round++) {
      const t = round * 1100;
      // Whatever the bucket refilled since the last round passes; then exactly 100 are dropped.
      let v: RateVerdict;
      while ((v = lim.take(t)) === 'pass') verdicts.pass++;
      verdicts[v]++;
      for (let i = 1; i < 100; i++) verdicts[lim.take(t)]++;
    }
    assert.deepEqual({ drop: verdicts.drop, flood: verdicts.flood }, { drop: 2000, flood: 0 });
  });
});
