import { test } from 'node:test';
import assert from 'node:assert/strict';
import { enforcePartialReliability } from '../../src/transport/sctp-partial-reliability';

/**
 * The abandon rule on the shape of werift's association (its sentQueue and
 * chunks as plain data); that it holds in a real connection under loss is
 * test/transport/webrtc-chromium.test.ts.
 */

const FIRST = 0x02;
const LAST = 0x01;

function chunk(flags: number, sentCount: number, maxRetransmits?: number) {
  return { flags, sentCount, maxRetransmits, expiry: undefined as number | undefined, abandoned: false, retransmit: true };
}

function association(queue: ReturnType<typeof chunk>[]) {
  return { sentQueue: queue, maybeAbandon: (_c: unknown): boolean => false };
}

test('a chunk of a maxRetransmits 0 message, sent once, is abandoned with every fragment of its message and nothing else', () => {
  const before = chunk(FIRST | LAST, 1, 0);
  const m = [chunk(FIRST, 1, 0), chunk(0, 1, 0), chunk(LAST, 1, 0)];
  const after = chunk(FIRST | LAST, 1, 0);
  const a = association([before, ...m, after]);
  enforcePartialReliability(a);
  assert.equal(a.maybeAbandon(m[1]!), true);
  assert.deepEqual(m.map((c) => [c.abandoned, c.retransmit]), [[true, false], [true, false], [true, false]]);
  assert.deepEqual([before.abandoned, after.abandoned], [false, false]);
});

test('a chunk not yet over its retransmissions, or of a reliable message, is kept', () => {
  const twice = chunk(FIRST | LAST, 1, 1);
  const reliable = chunk(FIRST | LAST, 5);
  const a = association([twice, reliable]);
  enforcePartialReliability(a);
  assert.equal(a.maybeAbandon(twice), false);
  assert.equal(a.maybeAbandon(reliable), false);
  twice.sentCount = 2;
  assert.equal(a.maybeAbandon(twice), true);
  assert.equal(reliable.abandoned, false);
});

test('an association without the method or queue it replaces is a TypeError naming the fix', () => {
  assert.throws(() => enforcePartialReliability({}), {
    name: 'TypeError',
    message: 'werift SCTP association has no maybeAbandon() or sentQueue; the PR-SCTP fix (src/transport/sctp-partial-reliability.ts) must be revisited for this werift version',
  });
});
