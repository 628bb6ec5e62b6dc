import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createBroker } from 'aedes';
import type Aedes from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { startService, stopAllServices } from '../helpers/service-process';
import { selfSignedCert } from '../helpers/mosquitto';
import { MqttWatch } from '../helpers/mqtt-watch';
import { StreamClient } from '../helpers/stream-client';

/**
 * mqtt.url with ws:// and wss://. Debian 12's Mosquitto 2.0.11 cannot open a
 * websockets listener on this machine ("Unable to start any listening
 * sockets" after a successful bind), so the broker here is a real aedes
 * behind a real ws server over HTTP and HTTPS (self-signed, trusted through
 * mqtt.caFile). The watcher reads the same broker over plain TCP, so what it
 * sees went through the WebSocket transport under test.
 */

const dir = mkdtempSync(path.join(os.tmpdir(), 'stagebox-mqtt-ws-'));
const cert = selfSignedCert(dir);
const closers: Array<() => Promise<void>> = [];
const watches: MqttWatch[] = [];

after(async () => {
  for (const w of watches) await w.close().catch(() => undefined);
  await stopAllServices();
  for (const c of closers.reverse()) await c().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

interface WsBroker {
  wsUrl: string;
  tcpUrl: string;
  /** WebSocket connections the broker has accepted, and their request paths. */
  paths: string[];
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

async function wsBroker(secure: boolean): Promise<WsBroker> {
  const aedes: Aedes = createBroker();
  closers.push(() => new Promise<void>((resolve) => aedes.close(() => resolve())));
  const tcpPort = await listen(net.createServer((sock) => aedes.handle(sock)));
  const web = secure ? https.createServer({ cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) }) : http.createServer();
  const paths: string[] = [];
  const wss = new WebSocketServer({ server: web });
  wss.on('connection', (ws, req) => {
    paths.push(req.url ?? '');
    aedes.handle(createWebSocketStream(ws) as unknown as net.Socket);
  });
  closers.push(async () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
  });
  const webPort = await listen(web);
  return { wsUrl: `${secure ? 'wss' : 'ws'}://127.0.0.1:${webPort}/mqtt`, tcpUrl: `mqtt://127.0.0.1:${tcpPort}`, paths };
}

describe('MQTT over WebSocket (ws://, wss://)', () => {
  for (const secure of [false, true]) {
    const scheme = secure ? 'wss' : 'ws';
    test(`with mqtt.url ${scheme}://… the retained status and a health document arrive over the WebSocket, and audio streams`, async () => {
      const b = await wsBroker(secure);
      const deviceId = `box-${scheme}`;
      const w = await MqttWatch.open(b.tcpUrl, [`stagebox/${deviceId}/status`, `stagebox/${deviceId}/health`]);
      watches.push(w);
      const svc = await startService({
        label: `mqtt-${scheme}`,
        config: {
          capture: { device: 'test-signal', channels: 2 },
          mqtt: { url: b.wsUrl, deviceId, healthIntervalS: 1, ...(secure ? { caFile: cert.certFile } : {}) },
        },
      });
      assert.equal((await w.waitFor(`stagebox/${deviceId}/status`, (p) => p === 'online')).retain, false, 'live delivery to a subscriber that was already there');
      const health = JSON.parse((await w.waitFor(`stagebox/${deviceId}/health`)).payload) as { audio: { state: string } };
      assert.equal(health.audio.state, 'running');
      assert.deepEqual(b.paths, ['/mqtt'], 'one WebSocket connection, on the URL\'s path');
      const phone = await StreamClient.open(svc.port, `phone-${scheme}`);
      await phone.subscribe([0, 1], 'pcm16');
      await phone.waitForPackets(50, 10000);
      phone.close();
    });
  }

  test('wss:// without mqtt.caFile refuses the self-signed certificate, logs it on retry, and the service streams on', async () => {
    const b = await wsBroker(true);
    const svc = await startService({
      label: 'mqtt-wss-untrusted',
      config: { capture: { device: 'test-signal', channels: 2 }, mqtt: { url: b.wsUrl, deviceId: 'box-wss-bad', reconnectInitialMs: 200, reconnectMaxMs: 400 } },
    });
    await svc.waitForLog((l) => l.msg === 'MQTT: broker unreachable; retrying' && /self[- ]signed/i.test(String(l.err)), 10000, 'a retry line naming the self-signed certificate');
    assert.ok(!svc.logs.some((l) => l.msg === 'MQTT: connected'));
    const phone = await StreamClient.open(svc.port, 'phone-wss-bad');
    await phone.subscribe([0], 'pcm16');
    await phone.waitForPackets(50, 10000);
    phone.close();
  });
});
