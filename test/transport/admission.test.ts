import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { StreamClient, describeSeqGaps, firstSeqGap } from '../helpers/stream-client';
import { RawWsClient } from '../helpers/raw-ws';
import { getStatus, type Status } from '../helpers/http-client';
import { waitFor } from '../helpers/wait';

/**
 * Connections that never say hello must not lock musicians out. They are
 * held open by real sockets: WebSockets that did the upgrade and then say
 * nothing (RawWsClient), and plain TCP connections that never even send an
 * HTTP request. Different "hosts" are source addresses in 127.0.0.0/8, which
 * all reach the box over loopback.
 */

after(() => stopAllServices());

function startBox(label: string, stream: Record<string, unknown>): Promise<ServiceProcess> {
  return startService({ label, config: { capture: { device: 'test-signal', channels: 4, rate: 48000, periodFrames: 128 }, stream } });
}

/** Opens `n` silent WebSockets, spread round-robin over `addresses`, one after the other (each upgrade completes first). */
async function openSilent(port: number, n: number, addresses: string[]): Promise<RawWsClient[]> {
  const out: RawWsClient[] = [];
  for (let i = 0; i < n; i++) out.push(await RawWsClient.connect(port, 5000, addresses[i % addresses.length]));
  return out;
}

/** A real client says hello, subscribes and gets `packets` periods in a row. */
async function streams(port: number, id: string, packets: number, localAddress?: string): Promise<StreamClient> {
  const c = await StreamClient.open(port, id, { ...(localAddress ? { localAddress } : {}) });
  await c.subscribe([0, 3], 'pcm16');
  await c.waitForPackets(packets, 15000);
  assert.equal(firstSeqGap(c.packets), -1, `${id}: seq gaps: ${describeSeqGaps(c.packets)}`);
  assert.equal(c.closeInfo, null);
  return c;
}

const closeFrameOf = (c: RawWsClient) => c.waitForCloseFrame(5000);

describe('admission: connections without hello', () => {
  test('300 silent WebSockets neither count against stream.maxClients nor keep real clients from connecting and streaming', async () => {
    // Hello timeout far beyond the test: the silent sockets stay until the box makes room.
    const svc = await startBox('admission-300', { maxClients: 3, helloTimeoutMs: 60000 });
    const hosts = Array.from({ length: 10 }, (_, i) => `127.0.0.${i + 2}`);
    const silent = await openSilent(svc.port, 300, hosts);
    const real = [];
    for (let i = 1; i <= 3; i++) real.push(await streams(svc.port, `musician-${i}`, 100));
    const status: Status = await getStatus(svc.port);
    assert.deepEqual(
      status.clients.map((c) => c.clientId).sort(),
      ['musician-1', 'musician-2', 'musician-3'],
      'the three real clients fill stream.maxClients 3; no silent socket is listed or counted',
    );
    // 128 pending at most: each of the 172 silent ones beyond it made room, and so did the first real client
    // (its hello then freed a place, which the next real clients took without closing anyone).
    assert.deepEqual(status.server.handshakes, { pending: 127, maxPending: 128, maxPendingPerAddress: 32, evicted: 173 });
    // The oldest went first, with 4013; the newest 127 are still open and were sent nothing.
    for (const c of silent.slice(0, 173)) {
      assert.deepEqual(await closeFrameOf(c), { code: 4013, reason: 'too many connections without hello (128); closed the oldest' });
    }
    for (const [i, c] of silent.slice(173).entries()) {
      assert.equal(c.frames.length, 0, `silent socket ${173 + i} got frames: ${c.describe()}`);
      assert.equal(c.ended, false, `silent socket ${173 + i} was closed`);
    }
    // The real clients streamed on meanwhile.
    for (const c of real) {
      await c.waitForPackets(c.packetCount + 50, 10000);
      assert.equal(firstSeqGap(c.packets), -1, `${c.label}: seq gaps: ${describeSeqGaps(c.packets)}`);
      c.close();
    }
    for (const c of silent) c.destroy();
  });

  test('stream.maxPendingPerAddress: the oldest connection of a crowded address is closed with 4013, other addresses keep theirs', async () => {
    const svc = await startBox('admission-per-address', { maxPendingPerAddress: 4, helloTimeoutMs: 60000 });
    const crowd = await openSilent(svc.port, 10, ['127.0.0.2']);
    const others = await openSilent(svc.port, 3, ['127.0.0.3']);
    for (const c of crowd.slice(0, 6)) {
      assert.deepEqual(await closeFrameOf(c), { code: 4013, reason: 'too many connections without hello from 127.0.0.2 (4); closed the oldest' });
    }
    // A real client from the crowded address gets in too: its hello comes before anyone else from there arrives.
    const real = await streams(svc.port, 'same-host-musician', 100, '127.0.0.2');
    assert.deepEqual(await closeFrameOf(crowd[6]!), { code: 4013, reason: 'too many connections without hello from 127.0.0.2 (4); closed the oldest' });
    for (const c of [...crowd.slice(7), ...others]) {
      assert.equal(c.frames.length, 0, `a silent socket that kept its place got frames: ${c.describe()}`);
      assert.equal(c.ended, false);
    }
    const status = await getStatus(svc.port);
    assert.deepEqual(status.server.handshakes, { pending: 6, maxPending: 128, maxPendingPerAddress: 4, evicted: 7 });
    assert.deepEqual(status.clients.map((c) => c.clientId), ['same-host-musician']);
    real.close();
    for (const c of [...crowd, ...others]) c.destroy();
  });

  test('300 idle TCP connections (no HTTP request at all) held open while a real client connects and streams starve no one', async () => {
    // The hello timeout is 1 s here (5 s by default): the hold below lasts several times that, as an
    // outside report's 20 s did against the default, without making the test take 20 s.
    const svc = await startBox('admission-idle-tcp', { helloTimeoutMs: 1000 });
    const idle: net.Socket[] = [];
    let closedIdle = 0;
    for (let i = 0; i < 300; i++) {
      const s = net.connect({ host: '127.0.0.1', port: svc.port, localAddress: `127.0.0.${2 + (i % 10)}` });
      s.on('error', () => undefined);
      s.on('close', () => closedIdle++);
      idle.push(s);
    }
    await waitFor(() => idle.every((s) => !s.connecting), { timeoutMs: 10000, what: '300 idle TCP connections to be established' });
    // 750 periods are 2 s of real-time audio: the real client streams while the idle connections are held.
    const real = await streams(svc.port, 'idle-tcp-musician', 750);
    const late = await streams(svc.port, 'late-musician', 100);
    assert.equal(closedIdle, 0, 'the box closes no idle TCP connection within seconds (Node closes them after its 60 s headers timeout)');
    const status = await getStatus(svc.port);
    assert.equal(status.server.handshakes.pending, 0, 'idle TCP connections are not WebSockets: they take nothing from the handshake budget');
    assert.deepEqual(status.clients.map((c) => c.clientId).sort(), ['idle-tcp-musician', 'late-musician']);
    real.close();
    late.close();
    for (const s of idle) s.destroy();
  });
});
