import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Mosquitto } from '../helpers/mosquitto';
import { MqttWatch } from '../helpers/mqtt-watch';
import { api } from '../helpers/recording-api';
import { startService, stopAllServices } from '../helpers/service-process';

/**
 * Recording on the MQTT contract (docs/mqtt.md), through a real Mosquitto:
 * the health snapshot's `recording`, the events of a take, and Home
 * Assistant's "Recording" binary sensor.
 */

let broker: Mosquitto;
let watch: MqttWatch;
const root = mkdtempSync(path.join(os.tmpdir(), 'rec-mqtt-'));

before(async () => {
  broker = await Mosquitto.create();
  await broker.start();
});

after(async () => {
  await watch?.close().catch(() => undefined);
  await stopAllServices();
  await broker.remove();
  rmSync(root, { recursive: true, force: true });
});

test('a take on MQTT: health.recording while it runs, recording-started and -stopped events, the Home Assistant binary sensor', async () => {
  const svc = await startService({
    label: 'rec-mqtt',
    config: {
      capture: { device: 'test-signal', channels: 4 },
      admin: { token: 'mqtt-token' },
      recording: { drives: [root] },
      mqtt: { url: broker.url, deviceId: 'rec-box', healthIntervalS: 1 },
    },
  });
  await svc.waitForLog((l) => l.msg === 'MQTT: connected', 10_000, '"MQTT: connected"');
  watch = await MqttWatch.open(broker.url, ['stagebox/rec-box/#', 'homeassistant/+/rec-box/+/config']);

  const sensor = await watch.waitFor('homeassistant/binary_sensor/rec-box/recording/config', (p) => p.length > 0);
  const config = JSON.parse(sensor.payload) as Record<string, unknown>;
  assert.equal(config.name, 'Recording');
  assert.equal(config.state_topic, 'stagebox/rec-box/health');
  assert.equal(config.value_template, "{{ 'ON' if value_json.recording and value_json.recording.active else 'OFF' }}");
  assert.equal(config.device_class, 'running');
  assert.deepEqual([config.payload_on, config.payload_off], ['ON', 'OFF']);
  const left = JSON.parse((await watch.waitFor('homeassistant/sensor/rec-box/recording_time_left/config', (p) => p.length > 0)).payload) as Record<string, unknown>;
  assert.deepEqual([left.unit_of_measurement, left.device_class], ['s', 'duration']);

  // The drive's free space is known once the recorder has looked (it does not hold up the start).
  const idle = await watch.waitFor('stagebox/rec-box/health', (p) => typeof (JSON.parse(p) as { recording?: { freeBytes: unknown } }).recording?.freeBytes === 'number');
  const r0 = (JSON.parse(idle.payload) as { recording: Record<string, unknown> }).recording;
  assert.equal(r0.active, false);
  assert.equal(r0.writeErrors, 0);
  assert.ok(typeof r0.freeBytes === 'number' && typeof r0.secondsLeft === 'number', JSON.stringify(r0));

  const t0 = performance.now();
  const start = await api(svc.port, 'POST', '/api/recordings', { token: 'mqtt-token', body: { name: 'On air' } });
  assert.equal(start.status, 201);
  const id = start.json<{ take: { id: string } }>().take.id;
  const ev = await watch.waitFor('stagebox/rec-box/event', (p) => p.includes('"recording-started"'), 10_000, t0);
  assert.deepEqual(Object.keys(JSON.parse(ev.payload)).sort(), ['channels', 'drive', 'take', 'ts', 'type']);
  const running = await watch.waitFor('stagebox/rec-box/health', (p) => (JSON.parse(p) as { recording: { active: boolean; seconds: number } }).recording.seconds > 0, 10_000, t0);
  const r1 = (JSON.parse(running.payload) as { recording: Record<string, unknown> }).recording;
  assert.deepEqual([r1.active, r1.take, r1.playing, r1.lastError], [true, id, null, null]);

  const t1 = performance.now();
  assert.equal((await api(svc.port, 'POST', '/api/recordings/stop', { token: 'mqtt-token' })).status, 200);
  const stopped = JSON.parse((await watch.waitFor('stagebox/rec-box/event', (p) => p.includes('"recording-stopped"'), 10_000, t1)).payload) as Record<string, unknown>;
  assert.deepEqual([stopped.take, stopped.reason], [id, 'stopped']);
  assert.ok((stopped.seconds as number) > 0);
  await watch.waitFor('stagebox/rec-box/health', (p) => !(JSON.parse(p) as { recording: { active: boolean } }).recording.active, 10_000, t1);
});
