import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { AudioRing } from '../../src/engine/audio-ring';
import { LevelMeter } from '../../src/web/level-meter';
import { LiveFeed } from '../../src/web/live-feed';
import { waitFor, withTimeout } from '../helpers/wait';

/**
 * How often the dashboards' feed pushes, counted on a mocked clock: the
 * feed's setInterval timers run under node:test's mock timers and advance
 * only when the test ticks them, so "about once a second" becomes an exact
 * count per simulated second. Everything else is real: the feed's own
 * WebSocketServer behind a real HTTP server on loopback, a real `ws` client.
 */

const silent = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined };

interface Viewer {
  ws: WebSocket;
  types: string[];
}

let server: http.Server;
let feed: LiveFeed;
let meter: LevelMeter;

beforeEach(async () => {
  // Only setInterval: the feed's two timers. Sockets, and the waits in test/helpers, stay on real time.
  mock.timers.enable({ apis: ['setInterval'] });
  const ring = new AudioRing({ channels: 2, periodFrames: 128, rate: 48000, slotCount: 4 });
  meter = new LevelMeter(() => ring, () => 0);
  feed = new LiveFeed({ maxViewers: 4 }, () => ({ ok: true }), meter, silent);
  server = http.createServer();
  server.on('upgrade', feed.handleUpgrade);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

afterEach(async () => {
  await feed.stop();
  await new Promise((resolve) => server.close(resolve));
  mock.timers.reset();
});

async function viewer(): Promise<Viewer> {
  const ws = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/api/live`);
  const v: Viewer = { ws, types: [] };
  ws.on('message', (data) => v.types.push((JSON.parse(data.toString()) as { type: string }).type));
  await withTimeout(new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)), 5000, 'dashboard WebSocket open');
  return v;
}

/**
 * Resolves once everything the feed sent before this call has arrived: a ping's pong comes back on the same
 * TCP stream, behind every push the feed wrote before it handled the ping.
 */
async function received(v: Viewer): Promise<void> {
  await withTimeout(new Promise((resolve) => v.ws.once('pong', resolve).ping()), 5000, 'pong from the feed');
}

const count = (v: Viewer, type: string): number => v.types.filter((t) => t === type).length;

describe('live feed schedule (mocked clock)', () => {
  test('a new dashboard gets the status at once, then one status per second and ten level pushes per second', async () => {
    const v = await viewer();
    await received(v);
    assert.deepEqual(v.types, ['status'], 'the status at once, nothing else before the first tick');
    mock.timers.tick(999);
    await received(v);
    assert.equal(count(v, 'status'), 1, 'no second status before a second has passed');
    assert.equal(count(v, 'levels'), 9);
    mock.timers.tick(1);
    await received(v);
    assert.deepEqual([count(v, 'status'), count(v, 'levels')], [2, 10]);
    mock.timers.tick(2000);
    await received(v);
    assert.deepEqual([count(v, 'status'), count(v, 'levels')], [4, 30], 'three seconds: 1 + 3 status pushes, 30 level pushes');
    v.ws.close();
  });

  test('two dashboards share one schedule: the second gets its status at once and then the same pushes', async () => {
    const a = await viewer();
    mock.timers.tick(500);
    const b = await viewer();
    mock.timers.tick(500);
    await Promise.all([received(a), received(b)]);
    assert.deepEqual([count(a, 'status'), count(a, 'levels')], [2, 10]);
    assert.deepEqual([count(b, 'status'), count(b, 'levels')], [2, 5], 'its own status at once, then the shared tick at 1 s');
    a.ws.close();
    b.ws.close();
  });

  test('the level meter runs only while a dashboard watches: the timers stop with the last one', async () => {
    const collect = mock.method(meter, 'collect');
    mock.timers.tick(1000);
    assert.equal(collect.mock.callCount(), 0, 'nothing metered before a dashboard connects');
    const v = await viewer();
    mock.timers.tick(1000);
    assert.equal(collect.mock.callCount(), 40, 'a read of the ring every 25 ms');
    v.ws.close();
    await waitFor(() => feed.snapshot().viewers === 0, { timeoutMs: 5000, intervalMs: 5, what: 'the feed to see the dashboard leave' });
    mock.timers.tick(10_000);
    assert.equal(collect.mock.callCount(), 40, 'no reads after the last dashboard left');
  });
});
