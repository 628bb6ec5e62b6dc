import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AudioRing } from '../../src/engine/audio-ring';
import { LevelMeter } from '../../src/web/level-meter';
import { LiveFeed } from '../../src/web/live-feed';

/**
 * A viewer whose socket is backed up misses pushes instead of buffering
 * them. Real sockets on loopback take megabytes before they back up, so the
 * viewers here are stand-ins with a settable bufferedAmount, put straight
 * into the feed's set and pushed to by its own timer callbacks.
 */

interface FakeViewer {
  OPEN: 1;
  readyState: number;
  bufferedAmount: number;
  sent: string[];
  send(data: Buffer): void;
}

function fakeViewer(bufferedAmount: number): FakeViewer {
  return {
    OPEN: 1,
    readyState: 1,
    bufferedAmount,
    sent: [],
    send(data: Buffer) {
      this.sent.push(data.toString());
    },
  };
}

test('a viewer with more than maxBufferedBytes unsent is skipped (and counted); the others still get every push', () => {
  const ring = new AudioRing({ channels: 2, periodFrames: 32, rate: 48000, slotCount: 4 });
  const silent = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined };
  const feed = new LiveFeed({ maxViewers: 4, maxBufferedBytes: 1000 }, () => ({ ok: true }), new LevelMeter(() => ring, () => 0), silent);
  const fast = fakeViewer(0);
  const slow = fakeViewer(1001);
  const viewers = feed.viewers as unknown as Set<FakeViewer>;
  viewers.add(fast);
  viewers.add(slow);
  const internals = feed as unknown as { pushStatus(): void; collectLevels(): void };
  internals.pushStatus();
  for (let i = 0; i < 4; i++) internals.collectLevels();
  assert.deepEqual(fast.sent, ['{"type":"status","status":{"ok":true}}', '{"type":"levels","peakDb":[null,null]}']);
  assert.deepEqual(slow.sent, []);
  assert.equal(feed.snapshot().skippedPushes, 2);
  slow.bufferedAmount = 1000; // drained to the limit: pushes resume
  internals.pushStatus();
  assert.deepEqual(slow.sent, ['{"type":"status","status":{"ok":true}}']);
});
