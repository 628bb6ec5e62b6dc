import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { StreamClient, describeSeqGaps, firstSeqGap } from '../helpers/stream-client';
import { RawWsClient, OPCODE } from '../helpers/raw-ws';
import { getStatus, type Status } from '../helpers/http-client';
import { waitFor } from '../helpers/wait';

/**
 * Heartbeat: the box pings every stream.heartbeatIntervalMs and closes a
 * client it has heard nothing from (no frame, no pong) for
 * stream.heartbeatTimeoutMs with 4009. The ws library answers pings by
 * itself, so the silent client is a raw TCP WebSocket client that never does.
 */

let svc: ServiceProcess;

before(async () => {
  svc = await startService({
    label: 'heartbeat',
    config: {
      capture: { device: 'test-signal', channels: 4, rate: 48000, periodFrames: 128 },
      stream: { heartbeatIntervalMs: 200, heartbeatTimeoutMs: 600 },
    },
  });
});
after(() => stopAllServices());

describe('heartbeat', () => {
  test('a client that answers pings stays connected and streaming across many heartbeat intervals', async () => {
    const c = await StreamClient.open(svc.port, 'answers-pings');
    let pings = 0;
    c.ws.on('ping', () => pings++);
    await c.subscribe([2], 'pcm16');
    const from = c.packets.length;
    // Ten heartbeat intervals, more than three heartbeat timeouts; the client sends nothing itself.
    await waitFor(() => pings >= 10, { timeoutMs: 15000, what: '10 pings from the box', describe: () => `${pings} pings` });
    assert.equal(c.closeInfo, null, `closed: ${JSON.stringify(c.closeInfo)}`);
    const seen = c.packetsFrom(from);
    assert.ok(seen.length > 0);
    assert.equal(firstSeqGap(seen), -1, describeSeqGaps(seen));
    const status = await getStatus(svc.port);
    assert.ok(status.clients.some((x) => x.clientId === 'answers-pings'), JSON.stringify(status.clients));
    c.close();
  });

  test('a client that never answers pings is closed with 4009 after stream.heartbeatTimeoutMs, and others stay', async () => {
    const other = await StreamClient.open(svc.port, 'bystander');
    await other.subscribe([0], 'pcm16');
    const from = other.packets.length;
    const raw = await RawWsClient.connect(svc.port);
    raw.sendText({ type: 'hello', protocol: 1, clientId: 'mute' });
    await raw.until(() => raw.texts().find((m) => m.type === 'welcome'), 5000, 'welcome');
    const close = await raw.waitForCloseFrame(10000);
    assert.equal(close.code, 4009, `close frame: ${JSON.stringify(close)}`);
    assert.ok(raw.frames.some((f) => f.opcode === OPCODE.ping), `the box pinged before giving up; frames: ${raw.describe()}`);
    let last: Status | undefined;
    await waitFor(
      async () => {
        last = await getStatus(svc.port);
        return !last.clients.some((x) => x.clientId === 'mute');
      },
      { timeoutMs: 5000, what: 'the mute client to leave /api/status', describe: () => JSON.stringify(last?.clients) },
    );
    raw.destroy();
    await other.waitForPackets(other.packetCount + 20, 5000);
    assert.equal(other.closeInfo, null, `bystander closed: ${JSON.stringify(other.closeInfo)}`);
    assert.equal(firstSeqGap(other.packetsFrom(from)), -1, describeSeqGaps(other.packetsFrom(from)));
    other.close();
  });

  test('a client that sends control messages but never answers pings is not closed while it keeps talking', async () => {
    // "no frame/pong": any frame from the client counts as heard. The client talks at the box's own pace: after
    // each heartbeat ping (which it never answers) it sends a control message, for ten heartbeat intervals,
    // more than three heartbeat timeouts.
    const raw = await RawWsClient.connect(svc.port);
    raw.sendText({ type: 'hello', protocol: 1, clientId: 'chatty' });
    await raw.until(() => raw.texts().find((m) => m.type === 'welcome'), 5000, 'welcome');
    const pings = (): number => raw.frames.filter((f) => f.opcode === OPCODE.ping).length;
    const closed = (): boolean => raw.frames.some((f) => f.opcode === OPCODE.close);
    for (let i = 0; i < 10 && !closed(); i++) {
      await raw.until(() => (pings() > i || closed() ? true : undefined), 5000, `heartbeat ping ${i + 1}`);
      raw.sendText({ type: 'ping', id: i });
      await raw.until(() => (raw.texts().some((m) => m.type === 'pong' && m.id === i) || closed() ? true : undefined), 5000, `pong ${i}`);
    }
    assert.equal(raw.frames.find((f) => f.opcode === OPCODE.close), undefined, `closed while talking: ${raw.describe()}`);
    assert.ok(pings() >= 10, `${pings()} heartbeat pings`);
    raw.destroy();
  });
});
