import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from '../../src/control/token-bucket';

/**
 * The control-message rate limit on its own. Time is an argument of the
 * bucket (ms, as performance.now() gives it), so every case runs on a clock
 * of its own and no case waits. Rates and times are chosen so the refill is
 * exact in binary floating point (8 per second: one token every 125 ms).
 */

/** Takes at `now` `n` times; how many were allowed. */
function takeMany(b: TokenBucket, now: number, n: number): number {
  let ok = 0;
  for (let i = 0; i < n; i++) if (b.take(now)) ok++;
  return ok;
}

describe('TokenBucket', () => {
  test('a new bucket allows a burst of exactly `burst` messages at one instant, then refuses', () => {
    const b = new TokenBucket(8, 5, 1000);
    assert.equal(takeMany(b, 1000, 5), 5);
    assert.equal(b.take(1000), false);
  });

  test('an empty bucket refills at ratePerSecond: one token 1/rate s later, none before', () => {
    const b = new TokenBucket(8, 2, 0);
    assert.equal(takeMany(b, 0, 3), 2);
    assert.equal(b.take(124), false, '124 ms is less than one token at 8/s');
    assert.equal(b.take(125), true, '125 ms after the last take: one token');
    assert.equal(b.take(125), false);
    assert.equal(takeMany(b, 375, 3), 2, '250 ms: two tokens');
  });

  test('a refused take does not lose the part of a token refilled so far', () => {
    const b = new TokenBucket(8, 1, 0);
    assert.equal(b.take(0), true);
    assert.equal(b.take(62.5), false, 'half a token');
    assert.equal(b.take(125), true, 'the two halves make one');
  });

  test('a long quiet spell refills to `burst` and no further', () => {
    const b = new TokenBucket(8, 4, 0);
    assert.equal(takeMany(b, 0, 4), 4);
    assert.equal(takeMany(b, 3_600_000, 10), 4, 'an hour later: the burst, not 28800 tokens');
  });

  test('a sender at twice the rate gets exactly the rate through once its burst is spent', () => {
    const b = new TokenBucket(8, 3, 0);
    let allowed = 0;
    // 10 s of a message every 62.5 ms (16 per second).
    for (let i = 0; i <= 160; i++) if (b.take(i * 62.5)) allowed++;
    assert.equal(allowed, 3 + 8 * 10, 'the burst, then 8 per second for 10 s');
  });

  test('without a clock argument it runs on performance.now(): a bucket of one refuses the second message at once', () => {
    const b = new TokenBucket(1, 1);
    assert.equal(b.take(), true);
    // Refilling one token at 1 per second takes a second; this line runs within microseconds.
    assert.equal(b.take(), false);
  });
});
