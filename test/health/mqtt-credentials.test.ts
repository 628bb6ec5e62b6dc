import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startService, stopAllServices, writeTempFile } from '../helpers/service-process';
import { Mosquitto } from '../helpers/mosquitto';
import { MqttWatch } from '../helpers/mqtt-watch';

/**
 * The broker login comes from a credentials file, never the main config; a
 * refused login is logged clearly, without the password.
 */

const USER = { username: 'stagebox', password: 'pw-Zq81-never-print-me' };
let broker: Mosquitto | null = null;
const watches: MqttWatch[] = [];

after(async () => {
  for (const w of watches) await w.close().catch(() => undefined);
  await stopAllServices();
  await broker?.remove();
});

async function passwordBroker(): Promise<Mosquitto> {
  if (!broker) {
    broker = await Mosquitto.create({ user: USER });
    await broker.start();
  }
  return broker;
}

describe('MQTT credentials file', () => {
  test('the login from mqtt.credentialsFile is accepted by a broker that refuses anonymous clients', async () => {
    const b = await passwordBroker();
    const creds = writeTempFile('mqtt-credentials.json', JSON.stringify(USER));
    const svc = await startService({
      label: 'creds-ok',
      config: { capture: { device: 'test-signal', channels: 2 }, mqtt: { url: b.url, deviceId: 'box-login', credentialsFile: creds } },
    });
    await svc.waitForLog((l) => l.msg === 'MQTT: connected', 10000, '"MQTT: connected"');
    const w = await MqttWatch.open(b.url, ['stagebox/box-login/status'], USER);
    watches.push(w);
    assert.equal((await w.waitFor('stagebox/box-login/status')).payload, 'online');
    const all = JSON.stringify(svc.logs) + svc.stderr;
    assert.ok(!all.includes(USER.password), 'the password appears nowhere in the output');
  });

  test('a wrong password is logged as a refused login naming the user, never showing the password, and the service streams on', async () => {
    const b = await passwordBroker();
    const wrong = 'wrong-Yx42-secret-value';
    const creds = writeTempFile('mqtt-credentials.json', JSON.stringify({ username: USER.username, password: wrong }));
    const svc = await startService({
      label: 'creds-bad',
      config: { capture: { device: 'test-signal', channels: 2 }, mqtt: { url: b.url, deviceId: 'box-badlogin', credentialsFile: creds, reconnectInitialMs: 200, reconnectMaxMs: 400 } },
    });
    const line = await svc.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('MQTT: the broker refused the login'), 10000, 'the refused-login log line');
    assert.match(String(line.msg), /user "stagebox"/);
    assert.equal(line.level, 50, 'logged as an error');
    // It keeps trying (with backoff) and keeps logging it.
    await svc.waitForLog((l) => l.msg === 'MQTT: broker unreachable; retrying' && Number(l.attempt) >= 2, 10000, 'a second attempt');
    const all = JSON.stringify(svc.logs) + svc.stderr;
    assert.ok(!all.includes(wrong), 'the wrong password appears nowhere in the output');
    assert.ok(!all.includes(USER.password));
  });

  test('--print-config shows the credentials file path but no password', async () => {
    const creds = writeTempFile('mqtt-credentials.json', JSON.stringify(USER));
    const cfg = writeTempFile('stagebox.json', JSON.stringify({ mqtt: { url: 'mqtt://127.0.0.1:1', credentialsFile: creds } }));
    const { runCli } = await import('../helpers/service-process');
    const r = await runCli(['--config', cfg, '--print-config']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes(creds));
    assert.ok(!r.stdout.includes(USER.password));
  });
});
