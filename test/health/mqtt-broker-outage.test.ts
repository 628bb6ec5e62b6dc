import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startService, stopAllServices } from '../helpers/service-process';
import { Mosquitto } from '../helpers/mosquitto';
import { MqttWatch } from '../helpers/mqtt-watch';
import { StreamClient, describeSeqGaps, firstSeqGap } from '../helpers/stream-client';
import { waitFor } from '../helpers/wait';

/**
 * A broker that is down, or dies, never touches audio: the service keeps
 * streaming, retries with backoff, and publishes the current state as soon
 * as the broker is back.
 */

const brokers: Mosquitto[] = [];
const watches: MqttWatch[] = [];

after(async () => {
  for (const w of watches) await w.close().catch(() => undefined);
  await stopAllServices();
  for (const b of brokers) await b.remove();
});

async function broker(): Promise<Mosquitto> {
  const b = await Mosquitto.create();
  brokers.push(b);
  return b;
}

function config(b: Mosquitto, deviceId: string): Record<string, unknown> {
  return {
    capture: { device: 'test-signal', channels: 4 },
    mqtt: { url: b.url, deviceId, healthIntervalS: 1, reconnectInitialMs: 200, reconnectMaxMs: 1000 },
  };
}

describe('broker outages', () => {
  test('a broker that is down at start: the service runs, retries, and publishes online and health once the broker starts', async () => {
    const b = await broker();
    const svc = await startService({ label: 'late-broker', config: config(b, 'box-late') });
    await svc.waitForLog((l) => l.msg === 'MQTT: broker unreachable; retrying', 10000, 'a retry log line');
    // Audio is unaffected meanwhile.
    const phone = await StreamClient.open(svc.port, 'phone-late');
    await phone.subscribe([0], 'pcm16');
    await phone.waitForPackets(50, 10000);
    await b.start();
    await svc.waitForLog((l) => l.msg === 'MQTT: connected', 15000, '"MQTT: connected" after the broker started');
    const w = await MqttWatch.open(b.url, ['stagebox/box-late/#']);
    watches.push(w);
    assert.equal((await w.waitFor('stagebox/box-late/status')).payload, 'online');
    const h = JSON.parse((await w.waitFor('stagebox/box-late/health')).payload) as { clients: { count: number } };
    assert.equal(h.clients.count, 1);
    phone.close();
  });

  test('a broker killed mid-run: audio to a connected client continues without a gap, and the service reconnects when the broker returns', async () => {
    const b = await broker();
    await b.start();
    const svc = await startService({ label: 'dying-broker', config: config(b, 'box-outage') });
    await svc.waitForLog((l) => l.msg === 'MQTT: connected', 10000, '"MQTT: connected"');
    const phone = await StreamClient.open(svc.port, 'phone-outage');
    await phone.subscribe([0, 1], 'pcm16');
    await phone.waitForPackets(100, 10000);
    const before = phone.packets.length;

    await b.kill();
    await svc.waitForLog((l) => l.msg === 'MQTT: broker connection lost; reconnecting', 10000, 'the connection-lost log line');
    // The outage lasts until the service has failed to reconnect twice and well over a thousand packets went out.
    const retries = (): number => svc.logs.filter((l) => l.msg === 'MQTT: broker unreachable; retrying').length;
    await waitFor(() => retries() >= 2 && phone.packets.length - before > 1000, {
      timeoutMs: 15000,
      what: 'two failed reconnects and 1000 packets while the broker is down',
      describe: () => `${retries()} failed reconnects, ${phone.packets.length - before} packets`,
    });
    await b.start();
    const reconnected = await svc.waitForLog((l) => l.msg === 'MQTT: reconnected; publishing the current state', 15000, 'the reconnect log line');
    assert.ok(reconnected);
    const w = await MqttWatch.open(b.url, ['stagebox/box-outage/#']);
    watches.push(w);
    // Mosquitto ran without persistence: what it holds now was published after the reconnect.
    assert.equal((await w.waitFor('stagebox/box-outage/status')).payload, 'online');
    await w.waitFor('stagebox/box-outage/health');
    await w.waitFor('stagebox/box-outage/clients', (p) => p.includes('phone-outage'));

    const n = phone.packets.length;
    await waitFor(() => phone.packets.length > n + 100, { timeoutMs: 10000, what: 'audio still flowing after the reconnect' });
    assert.equal(firstSeqGap(phone.packets), -1, `seq gaps: ${describeSeqGaps(phone.packets)}`);
    assert.equal(phone.closeInfo, null, 'the stream client stayed connected');
    phone.close();
  });
});
