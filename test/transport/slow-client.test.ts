import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { StreamClient, describeSeqGaps, firstSeqGap } from '../helpers/stream-client';
import { getStatus, type Status } from '../helpers/http-client';
import { waitFor } from '../helpers/wait';

/**
 * One client stops reading its socket; the others must not notice. The slow
 * client subscribes to all 64 channels in pcm24 (about 9 MB/s) so the socket
 * buffers between it and the box fill within a second or two; the readers
 * take two channels each. A paused socket cannot read a close frame, so what
 * the box did to the slow client is read from /api/status and from the box's
 * own log ("client closed by box" with the close code).
 */

const CHANNELS = 64;
/** Periods the readers must receive after the slow client stopped reading (2 s at 48 kHz / 128). */
const READER_PERIODS = 750;

after(() => stopAllServices());

function startBox(stallTimeoutMs: number, label: string): Promise<ServiceProcess> {
  return startService({
    label,
    config: {
      capture: { device: 'test-signal', channels: CHANNELS, rate: 48000, periodFrames: 128 },
      stream: { stallTimeoutMs },
    },
  });
}

async function setUp(svc: ServiceProcess): Promise<{ slow: StreamClient; readers: StreamClient[] }> {
  const readers = [await StreamClient.open(svc.port, 'reader-1'), await StreamClient.open(svc.port, 'reader-2')];
  await readers[0]!.subscribe([0, 1], 'pcm16');
  await readers[1]!.subscribe([63, 10], 'pcm24');
  const slow = await StreamClient.open(svc.port, 'slow', { keepPackets: false });
  await slow.subscribe(Array.from({ length: CHANNELS }, (_, i) => i), 'pcm24');
  await slow.waitForPackets(5);
  // Stop reading: the kernel buffers fill, then the box's send queue for this client.
  (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  return { slow, readers };
}

function client(status: Status, id: string) {
  return status.clients.find((c) => c.clientId === id);
}

async function assertReadersUnaffected(svc: ServiceProcess, readers: StreamClient[], from: number[]): Promise<void> {
  await Promise.all(readers.map((r, i) => r.waitForPackets(from[i]! + READER_PERIODS, 15000)));
  const status = await getStatus(svc.port);
  readers.forEach((r, i) => {
    const seen = r.packetsFrom(from[i]!);
    assert.ok(seen.length >= READER_PERIODS);
    assert.equal(firstSeqGap(seen), -1, `${r.label}: seq gaps while another client was stalled: ${describeSeqGaps(seen)}`);
    assert.equal(r.closeInfo, null, `${r.label} was closed: ${JSON.stringify(r.closeInfo)}`);
    const info = client(status, r.label);
    assert.ok(info, `${r.label} missing from /api/status: ${JSON.stringify(status.clients)}`);
    assert.equal(info.drops, 0, `${r.label} drops: ${JSON.stringify(info)}`);
  });
}

describe('a client that stops reading', () => {
  test('loses packets itself (drops > 0 in /api/status) while the reading clients get every period with no gap and no drop', async () => {
    const svc = await startBox(60000, 'slow-drops');
    const { slow, readers } = await setUp(svc);
    const from = readers.map((r) => r.packets.length);
    let last: Status | undefined;
    const slowInfo = await waitFor(
      async () => {
        last = await getStatus(svc.port);
        const s = client(last, 'slow');
        return s && s.drops > 0 ? s : undefined;
      },
      { timeoutMs: 20000, intervalMs: 100, what: 'the slow client to show drops > 0 in /api/status', describe: () => JSON.stringify(last?.clients) },
    );
    assert.ok(slowInfo.drops > 0);
    await assertReadersUnaffected(svc, readers, from);
    const after = client(await getStatus(svc.port), 'slow');
    assert.ok(after, 'with stream.stallTimeoutMs 60000 the slow client is still connected');
    assert.ok(after.drops >= slowInfo.drops, 'drops only grow');
    slow.terminate();
    readers.forEach((r) => r.close());
  });

  test('is closed with 4008 after stream.stallTimeoutMs, and the reading clients stream on without a gap', async () => {
    const svc = await startBox(1000, 'slow-stall');
    const { slow, readers } = await setUp(svc);
    const from = readers.map((r) => r.packets.length);
    const closed = await svc.waitForLog((l) => l.msg === 'client closed by box' && l.clientId === 'slow', 30000, '"client closed by box" for the slow client');
    assert.equal(closed.code, 4008, `the box closed the slow client with ${String(closed.code)}: ${JSON.stringify(closed)}`);
    let last: Status | undefined;
    await waitFor(
      async () => {
        last = await getStatus(svc.port);
        return client(last, 'slow') === undefined && last.clients.length === 2;
      },
      { timeoutMs: 5000, what: 'the slow client to leave /api/status clients', describe: () => JSON.stringify(last?.clients) },
    );
    await assertReadersUnaffected(svc, readers, from);
    slow.terminate();
    readers.forEach((r) => r.close());
  });
});
