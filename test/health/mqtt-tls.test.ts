import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { startService, stopAllServices, writeTempFile } from '../helpers/service-process';
import { Mosquitto, selfSignedCert } from '../helpers/mosquitto';
import { waitFor } from '../helpers/wait';

/**
 * mqtts:// to a Mosquitto TLS listener with a self-signed certificate made by
 * openssl: trusted through mqtt.caFile, refused (and retried) without it.
 */

const dir = mkdtempSync(path.join(os.tmpdir(), 'stagebox-tls-'));
const cert = selfSignedCert(dir);
let broker: Mosquitto | null = null;
let lockedBroker: Mosquitto | null = null;
const USER = { username: 'stagebox-tls', password: 'pw-Tls-7731-never-print' };

after(async () => {
  await stopAllServices();
  await broker?.remove();
  await lockedBroker?.remove();
  rmSync(dir, { recursive: true, force: true });
});

async function tlsBroker(): Promise<Mosquitto> {
  if (!broker) {
    broker = await Mosquitto.create({ tls: cert });
    await broker.start();
  }
  return broker;
}

describe('MQTT over TLS (mqtts://)', () => {
  test('with mqtt.caFile naming the broker\'s certificate the service connects and publishes online', async () => {
    const b = await tlsBroker();
    assert.match(b.url, /^mqtts:\/\//);
    const svc = await startService({ label: 'tls-ok', config: { capture: { device: 'test-signal', channels: 2 }, mqtt: { url: b.url, deviceId: 'box-tls', caFile: cert.certFile } } });
    await svc.waitForLog((l) => l.msg === 'MQTT: connected', 10000, '"MQTT: connected"');
    const sub = mqtt.connect(b.url, { ca: [Buffer.from(require('node:fs').readFileSync(cert.certFile))], reconnectPeriod: 0 });
    sub.on('error', () => undefined);
    try {
      await waitFor(() => sub.connected, { timeoutMs: 10000, what: 'TLS subscriber connected' });
      let got: string | null = null;
      sub.on('message', (_t, p) => (got = p.toString()));
      await sub.subscribeAsync('stagebox/box-tls/status');
      await waitFor(() => got ?? undefined, { timeoutMs: 10000, what: 'retained status over TLS' });
      assert.equal(got, 'online');
    } finally {
      await sub.endAsync(true);
    }
  });

  test('without mqtt.caFile the self-signed certificate is refused: logged on each retry, the service streams on', async () => {
    const b = await tlsBroker();
    const svc = await startService({
      label: 'tls-untrusted',
      config: { capture: { device: 'test-signal', channels: 2 }, mqtt: { url: b.url, deviceId: 'box-tls-bad', reconnectInitialMs: 200, reconnectMaxMs: 400 } },
    });
    const line = await svc.waitForLog((l) => l.msg === 'MQTT: broker unreachable; retrying' && /self[- ]signed/i.test(String(l.err)), 10000, 'a retry line naming the self-signed certificate');
    assert.ok(line);
    assert.ok(!svc.logs.some((l) => l.msg === 'MQTT: connected'));
  });

  test('TLS and a password together: the login from the credentials file over mqtts:// is accepted, a wrong one is refused without showing it', async () => {
    lockedBroker = await Mosquitto.create({ tls: cert, user: USER });
    await lockedBroker.start();
    const url = lockedBroker.url;
    assert.match(url, /^mqtts:\/\//);
    const good = await startService({
      label: 'tls-login',
      config: { capture: { device: 'test-signal', channels: 2 }, mqtt: { url, deviceId: 'box-tls-login', caFile: cert.certFile, credentialsFile: writeTempFile('creds.json', JSON.stringify(USER)) } },
    });
    await good.waitForLog((l) => l.msg === 'MQTT: connected', 10000, '"MQTT: connected"');
    const sub = mqtt.connect(url, { ca: [require('node:fs').readFileSync(cert.certFile) as Buffer], ...USER, reconnectPeriod: 0 });
    sub.on('error', () => undefined);
    try {
      await waitFor(() => sub.connected, { timeoutMs: 10000, what: 'TLS + password subscriber connected' });
      let got: string | null = null;
      sub.on('message', (_t, p) => (got = p.toString()));
      await sub.subscribeAsync('stagebox/box-tls-login/status');
      await waitFor(() => got ?? undefined, { timeoutMs: 10000, what: 'retained status over TLS with a login' });
      assert.equal(got, 'online');
    } finally {
      await sub.endAsync(true);
    }
    const wrong = 'wrong-Tls-0042-secret';
    const bad = await startService({
      label: 'tls-badlogin',
      config: {
        capture: { device: 'test-signal', channels: 2 },
        mqtt: { url, deviceId: 'box-tls-badlogin', caFile: cert.certFile, credentialsFile: writeTempFile('creds.json', JSON.stringify({ ...USER, password: wrong })), reconnectInitialMs: 200, reconnectMaxMs: 400 },
      },
    });
    const line = await bad.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('MQTT: the broker refused the login'), 10000, 'the refused-login log line');
    assert.match(String(line.msg), /user "stagebox-tls"/);
    for (const svc of [good, bad]) {
      const all = JSON.stringify(svc.logs) + svc.stderr;
      assert.ok(!all.includes(wrong) && !all.includes(USER.password), 'no password appears in the output');
    }
  });
});
