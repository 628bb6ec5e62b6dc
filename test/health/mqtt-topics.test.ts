import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { Mosquitto } from '../helpers/mosquitto';
import { MqttWatch } from '../helpers/mqtt-watch';
import { StreamClient } from '../helpers/stream-client';
import { HA_ENTITIES } from '../../src/health/ha-discovery';

/**
 * The topic contract of docs/mqtt.md against a real Mosquitto broker on a
 * loopback port, the real service as a child process, and a real MQTT client.
 */

let broker: Mosquitto;
const watches: MqttWatch[] = [];

before(async () => {
  broker = await Mosquitto.create();
  await broker.start();
});

after(async () => {
  for (const w of watches) await w.close().catch(() => undefined);
  await stopAllServices();
  await broker.remove();
});

async function watch(topics: string[]): Promise<MqttWatch> {
  const w = await MqttWatch.open(broker.url, topics);
  watches.push(w);
  return w;
}

function mqttConfig(deviceId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    capture: { device: 'test-signal', channels: 4 },
    health: { systemIntervalS: 1 },
    mqtt: { url: broker.url, deviceId, healthIntervalS: 1, clientsMinIntervalMs: 100, reconnectInitialMs: 200, reconnectMaxMs: 1000, ...extra },
  };
}

async function startBox(deviceId: string, extra: Record<string, unknown> = {}): Promise<ServiceProcess> {
  const svc = await startService({ label: deviceId, config: mqttConfig(deviceId, extra) });
  await svc.waitForLog((l) => l.msg === 'MQTT: connected', 10000, '"MQTT: connected"');
  return svc;
}

function isNum(v: unknown): boolean {
  return typeof v === 'number' && Number.isFinite(v);
}

describe('MQTT topics on a real Mosquitto broker', () => {
  test('status is a retained "online" and health a retained JSON snapshot with every documented field and type', async () => {
    await startBox('box-health');
    const w = await watch(['stagebox/box-health/#']);
    const status = await w.waitFor('stagebox/box-health/status', (p) => p === 'online');
    assert.equal(status.retain, true, 'status is retained');
    const h = await w.waitFor('stagebox/box-health/health', (_p, m) => m.retain);
    const j = JSON.parse(h.payload) as Record<string, any>;
    assert.ok(!Number.isNaN(Date.parse(j.ts)) && /^\d{4}-\d\d-\d\dT/.test(j.ts), `ts is ISO 8601: ${j.ts}`);
    assert.ok(isNum(j.uptimeS), 'uptimeS');
    assert.equal(typeof j.version, 'string');
    assert.ok(j.cpu.loadPct === null || isNum(j.cpu.loadPct), 'cpu.loadPct');
    assert.ok(j.cpu.tempC === null || isNum(j.cpu.tempC), 'cpu.tempC is a number or null');
    assert.ok(j.mem.usedPct === null || isNum(j.mem.usedPct), 'mem.usedPct');
    assert.ok(['running', 'no-device', 'error'].includes(j.audio.state), `audio.state ${j.audio.state}`);
    assert.equal(j.audio.device, 'test-signal');
    assert.equal(j.audio.channels, 4);
    assert.equal(j.audio.rate, 48000);
    assert.equal(j.audio.periodFrames, 128);
    assert.ok(isNum(j.audio.xruns), 'audio.xruns');
    assert.ok(isNum(j.pool.size), 'pool.size');
    assert.equal(j.clients.count, 0);
    assert.equal(j.clients.maxLatencyMs, null, 'no clients: no latency');
    assert.equal(j.clients.drops, 0);
    // The system figures arrive once the collector has sampled (1 s here).
    const later = await w.waitFor('stagebox/box-health/health', (p) => (JSON.parse(p) as { cpu: { loadPct: unknown } }).cpu.loadPct !== null);
    const k = JSON.parse(later.payload) as Record<string, any>;
    assert.ok(isNum(k.cpu.loadPct) && k.cpu.loadPct >= 0 && k.cpu.loadPct <= 100, `cpu.loadPct ${k.cpu.loadPct}`);
    assert.ok(Array.isArray(k.cpu.coresPct) && k.cpu.coresPct.length >= 1, 'per-core load');
    assert.ok(isNum(k.mem.usedPct) && k.mem.usedPct > 0 && k.mem.usedPct <= 100, `mem.usedPct ${k.mem.usedPct}`);
    assert.ok(k.disk && isNum(k.disk.usedPct) && typeof k.disk.mount === 'string', `disk of the state dir: ${JSON.stringify(k.disk)}`);
  });

  test('a stream client joining sends a client-joined event and a retained clients list with it; leaving removes it', async () => {
    const svc = await startBox('box-clients');
    const w = await watch(['stagebox/box-clients/#']);
    await w.waitFor('stagebox/box-clients/clients', (p) => p === '[]');
    const t0 = performance.now();
    const phone = await StreamClient.open(svc.port, 'phone-anna', { name: 'Anna' });
    await phone.subscribe([0, 1], 'pcm16');
    const joined = await w.waitFor('stagebox/box-clients/event', (p) => (JSON.parse(p) as { type: string }).type === 'client-joined', 15000, t0);
    assert.equal(joined.retain, false, 'events are not retained');
    const ev = JSON.parse(joined.payload) as Record<string, unknown>;
    assert.equal(ev.id, 'phone-anna');
    assert.equal(ev.name, 'Anna');
    assert.equal(typeof ev.ts, 'string');
    const list = await w.waitFor('stagebox/box-clients/clients', (p) => (JSON.parse(p) as { id: string; codec: string | null }[]).some((c) => c.id === 'phone-anna' && c.codec === 'pcm16'), 15000, t0);
    // Live deliveries carry retain=0 (MQTT 3.1.1 §3.3.1.3); a new subscriber shows it was retained.
    const fresh = await watch(['stagebox/box-clients/clients']);
    const kept = await fresh.waitFor('stagebox/box-clients/clients');
    assert.equal(kept.retain, true, 'the client list is retained');
    assert.ok(kept.payload.includes('phone-anna'), kept.payload);
    const entry = (JSON.parse(list.payload) as Record<string, unknown>[]).find((c) => c.id === 'phone-anna')!;
    assert.equal(entry.name, 'Anna');
    assert.equal(entry.mode, 'channels');
    assert.match(String(entry.address), /^127\.0\.0\.1/);
    for (const k of ['rttMs', 'playbackBufferMs', 'latencyMs', 'drops', 'bytesSent']) assert.ok(k in entry, `client entry has ${k}`);
    const t1 = performance.now();
    phone.close();
    await w.waitFor('stagebox/box-clients/event', (p) => {
      const e = JSON.parse(p) as { type: string; id: string };
      return e.type === 'client-left' && e.id === 'phone-anna';
    }, 15000, t1);
    await w.waitFor('stagebox/box-clients/clients', (p) => p === '[]', 15000, t1);
  });

  test('the health snapshot counts clients and the bytes sent to them', async () => {
    const svc = await startBox('box-bytes');
    const phone = await StreamClient.open(svc.port, 'phone-bytes');
    await phone.subscribe([0], 'pcm16');
    await phone.waitForPackets(200, 10000);
    const w = await watch(['stagebox/box-bytes/health']);
    const h = await w.waitFor('stagebox/box-bytes/health', (p) => {
      const j = JSON.parse(p) as { clients: { count: number; bytesSent: number } };
      return j.clients.count === 1 && j.clients.bytesSent > 0;
    });
    assert.ok(h.payload.length > 0);
    phone.close();
  });

  test('Home Assistant discovery: one retained config per entity, all on one device with the status topic as availability', async () => {
    await startBox('box-ha');
    const w = await watch(['homeassistant/+/box-ha/+/config']);
    for (const e of HA_ENTITIES) {
      const topic = `homeassistant/${e.component}/box-ha/${e.key}/config`;
      const m = await w.waitFor(topic, (p) => p.length > 0);
      assert.equal(m.retain, true, `${topic} is retained`);
      const c = JSON.parse(m.payload) as Record<string, any>;
      assert.equal(c.state_topic, 'stagebox/box-ha/health');
      assert.equal(c.availability_topic, 'stagebox/box-ha/status');
      assert.equal(c.payload_available, 'online');
      assert.equal(c.payload_not_available, 'offline');
      assert.equal(c.unique_id, `stagebox_box-ha_${e.key}`);
      assert.deepEqual(c.device.identifiers, ['stagebox_box-ha']);
    }
  });

  test('turning Home Assistant discovery off removes the configs (empty retained payloads)', async () => {
    const first = await startBox('box-ha-off');
    const w = await watch(['homeassistant/+/box-ha-off/+/config']);
    await w.waitFor(`homeassistant/sensor/box-ha-off/cpu_load/config`, (p) => p.length > 0);
    await first.stop();
    const t0 = performance.now();
    await startBox('box-ha-off', { homeAssistant: { enabled: false } });
    for (const e of HA_ENTITIES) await w.waitFor(`homeassistant/${e.component}/box-ha-off/${e.key}/config`, (p) => p === '', 15000, t0);
    // A new subscriber gets no retained config for this box: the broker has forgotten them.
    const fresh = await watch(['homeassistant/+/box-ha-off/+/config', 'stagebox/box-ha-off/status']);
    await fresh.waitFor('stagebox/box-ha-off/status', (p) => p === 'online');
    const leftovers = fresh.messages.filter((m) => m.topic.startsWith('homeassistant/'));
    assert.deepEqual(leftovers.map((m) => m.topic), [], 'no retained discovery config is left');
  });

  test('a graceful stop publishes a retained "offline" before the service exits', async () => {
    const svc = await startBox('box-stop');
    const w = await watch(['stagebox/box-stop/status']);
    await w.waitFor('stagebox/box-stop/status', (p) => p === 'online');
    const t0 = performance.now();
    const r = await svc.stop();
    assert.equal(r.code, 0, svc.describe());
    assert.equal(r.killed, false);
    const off = await w.waitFor('stagebox/box-stop/status', (p) => p === 'offline', 5000, t0);
    assert.ok(off);
    // Retained: a new subscriber reads "offline".
    const fresh = await watch(['stagebox/box-stop/status']);
    const m = await fresh.waitFor('stagebox/box-stop/status');
    assert.equal(m.payload, 'offline');
    assert.equal(m.retain, true);
  });

  test('after SIGKILL the broker publishes the last will: a retained "offline"', async () => {
    const svc = await startBox('box-kill');
    const w = await watch(['stagebox/box-kill/status']);
    await w.waitFor('stagebox/box-kill/status', (p) => p === 'online');
    const t0 = performance.now();
    svc.proc.kill('SIGKILL');
    await svc.waitForExit(5000);
    await w.waitFor('stagebox/box-kill/status', (p) => p === 'offline', 15000, t0);
    const fresh = await watch(['stagebox/box-kill/status']);
    const m = await fresh.waitFor('stagebox/box-kill/status');
    assert.equal(m.payload, 'offline');
    assert.equal(m.retain, true);
  });
});
