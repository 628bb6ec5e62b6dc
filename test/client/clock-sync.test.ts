import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ClockSync } from '../../src/client/clock-sync';

describe('the client library\'s clock sync', () => {
  test('the offset comes from the pong with the smallest round trip of the last 30 s', () => {
    const c = new ClockSync();
    assert.equal(c.boxToClientMs(5_000_000n), null, 'no estimate before a pong');
    // Box clock = client clock + 1000 ms. A fast pong (rtt 2) and a slow, asymmetric one (rtt 40).
    c.onPong({ type: 'pong', t: 100, boxNs: String(1101 * 1e6) }, 102);
    c.onPong({ type: 'pong', t: 200, boxNs: String(1235 * 1e6) }, 240);
    assert.equal(c.rtt, 40);
    assert.deepEqual(c.best(), { rtt: 2, offset: 1000 });
    assert.equal(c.boxToClientMs(2_000_000_000n), 1000);
    // 30 s later the fast one has aged out.
    c.onPong({ type: 'pong', t: 40_000, boxNs: String(41_010 * 1e6) }, 40_020);
    assert.deepEqual(c.best(), { rtt: 20, offset: 1000 });
    c.reset();
    assert.equal(c.best(), null);
  });

  test('a pong without t or boxNs teaches nothing', () => {
    const c = new ClockSync();
    c.onPong({ type: 'pong', id: 1 }, 10);
    c.onPong({ type: 'pong', t: 5, boxNs: 7 }, 10);
    assert.equal(c.best(), null);
  });
});
