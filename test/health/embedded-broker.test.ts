import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { startService, stopAllServices } from '../helpers/service-process';
import { StreamClient } from '../helpers/stream-client';
import { getStatus } from '../helpers/http-client';

/**
 * With no mqtt.url the service runs its own broker and publishes there, so
 * `mosquitto_sub` shows the box at once; a taken port is logged and the
 * service runs on without MQTT.
 */

const servers: net.Server[] = [];
after(async () => {
  await stopAllServices();
  for (const s of servers) s.close();
});

function mosquittoSub(port: number, topic: string, count: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-t', topic, '-v', '-C', String(count), '-W', '15'], { timeout: 20000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`mosquitto_sub: ${err.message}; stdout ${stdout}; stderr ${stderr}`));
      else resolve(stdout);
    });
  });
}

describe('embedded MQTT broker', () => {
  test('with no mqtt.url, mosquitto_sub on the embedded broker sees the box online with its health', async () => {
    const svc = await startService({ label: 'embedded', config: { capture: { device: 'test-signal', channels: 2 }, mqtt: { deviceId: 'box-embedded' } } });
    const line = await svc.waitForLog((l) => l.msg === 'embedded MQTT broker listening', 10000, 'the embedded broker line');
    const port = Number(line.port);
    assert.ok(port > 0);
    await svc.waitForLog((l) => l.msg === 'MQTT: connected', 10000, '"MQTT: connected"');
    // Retained: status and health are there for a subscriber that comes later.
    const out = await mosquittoSub(port, 'stagebox/#', 3); // status, health and clients, retained, in any order
    assert.match(out, /^stagebox\/box-embedded\/status online$/m);
    const health = /^stagebox\/box-embedded\/health (.*)$/m.exec(out);
    assert.ok(health, `health line in: ${out}`);
    assert.equal((JSON.parse(health[1]!) as { audio: { device: string } }).audio.device, 'test-signal');
  });

  test('a taken broker port is logged clearly and the service streams on without MQTT', async () => {
    const blocker = net.createServer();
    servers.push(blocker);
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const port = (blocker.address() as net.AddressInfo).port;
    const svc = await startService({ label: 'port-taken', config: { capture: { device: 'test-signal', channels: 2 }, mqtt: { embeddedBroker: { host: '127.0.0.1', port } } } });
    const line = await svc.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('embedded MQTT broker cannot listen'), 10000, 'the port-taken line');
    assert.equal(line.level, 50);
    assert.ok(String(line.msg).includes(`127.0.0.1:${port}`), String(line.msg));
    assert.match(String(line.err), /EADDRINUSE/);
    const phone = await StreamClient.open(svc.port, 'phone-noport');
    await phone.subscribe([0], 'pcm16');
    await phone.waitForPackets(50, 10000);
    const st = (await getStatus(svc.port)) as unknown as { mqtt: { connected: boolean } };
    assert.equal(st.mqtt.connected, false);
    phone.close();
  });

  test('mqtt.embeddedBroker.enabled false: no broker, and the service says health is not published', async () => {
    const svc = await startService({ label: 'no-broker', config: { capture: { device: 'test-signal', channels: 2 }, mqtt: { embeddedBroker: { enabled: false } } } });
    await svc.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('MQTT: no mqtt.url and the embedded broker is off'), 10000, 'the broker-off line');
    assert.ok(!svc.logs.some((l) => l.msg === 'embedded MQTT broker listening'));
  });
});
