import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { StreamClient } from '../helpers/stream-client';
import { getStatus, httpRequest, type Status } from '../helpers/http-client';
import { waitFor } from '../helpers/wait';

/** GET /api/status and POST /api/perf/reset on the stream port. */

let svc: ServiceProcess;
before(async () => {
  svc = await startService({ label: 'status', config: { capture: { device: 'test-signal', channels: 4, rate: 48000, periodFrames: 128 } } });
});
after(() => stopAllServices());

function assertKeys(obj: unknown, keys: string[], where: string): void {
  assert.ok(obj !== null && typeof obj === 'object', `${where} is not an object: ${JSON.stringify(obj)}`);
  for (const k of keys) assert.ok(k in (obj as object), `${where}.${k} missing: ${JSON.stringify(obj)}`);
}

describe('status API', () => {
  test('GET /api/status answers JSON with every documented field', async () => {
    const res = await httpRequest(svc.port, 'GET', '/api/status');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /application\/json/);
    const s = JSON.parse(res.body) as Record<string, unknown>;
    assertKeys(s, ['version', 'uptimeS', 'capture', 'pool', 'perf', 'clients'], 'status');
    assert.equal(s.version, '0.1.0');
    assertKeys(s.capture, ['kind', 'state', 'device', 'format', 'xruns', 'discardedPeriods', 'reopenCount', 'lastError', 'stuckReaders'], 'capture');
    const cap = s.capture as Record<string, unknown>;
    assert.equal(cap.kind, 'test-signal');
    assert.equal(cap.state, 'running');
    assert.deepEqual(cap.format, { format: 'S32_LE', channels: 4, rate: 48000, periodFrames: 128 });
    // (pool.inlineMaxWork of the draft contract is being replaced by pool.inlineMaxMs; not checked here.)
    assertKeys(s.pool, ['size', 'outputs', 'periods', 'inlinePeriods', 'pooledPeriods', 'skippedPeriods', 'deadlineMisses', 'encodeErrors', 'utilization', 'pending'], 'pool');
    const perf = s.perf as Record<string, unknown>;
    assertKeys(perf, ['serverLatency', 'captureBlock'], 'perf');
    assertKeys(perf.serverLatency, ['count', 'p50Ms', 'p99Ms', 'p999Ms', 'maxMs'], 'perf.serverLatency');
    assertKeys(perf.captureBlock, ['count', 'p50Ms', 'p99Ms', 'p999Ms', 'maxMs'], 'perf.captureBlock');
    assert.ok(Array.isArray(s.clients));
  });

  test('a subscribed client is listed with its clientId, name, address, codec, channels and growing sentPackets', async () => {
    const c = await StreamClient.open(svc.port, 'listed', { name: 'Bass player' });
    await c.subscribe([3, 1], 'deflate');
    await c.waitForPackets(10);
    const s1 = await getStatus(svc.port);
    const me = s1.clients.find((x) => x.clientId === 'listed');
    assert.ok(me, JSON.stringify(s1.clients));
    assertKeys(me, ['clientId', 'name', 'address', 'codec', 'channels', 'sentPackets', 'drops', 'queued', 'rttMs', 'playbackBufferMs', 'underruns'], 'client');
    assert.equal(me.name, 'Bass player');
    assert.equal(me.codec, 'deflate');
    assert.deepEqual(me.channels, [3, 1]);
    assert.match(me.address, /127\.0\.0\.1/);
    assert.equal(me.drops, 0);
    assert.ok(me.sentPackets >= 10);
    await c.waitForPackets(c.packetCount + 20);
    const again = (await getStatus(svc.port)).clients.find((x) => x.clientId === 'listed');
    assert.ok(again && again.sentPackets > me.sentPackets, 'sentPackets grows');
    c.close();
    await waitFor(async () => !(await getStatus(svc.port)).clients.some((x) => x.clientId === 'listed'), {
      timeoutMs: 5000,
      what: 'a closed client to leave /api/status',
    });
  });

  test('POST /api/perf/reset answers 204 and resets the latency histograms', async () => {
    const c = await StreamClient.open(svc.port, 'perf');
    await c.subscribe([0], 'pcm16');
    await c.waitForPackets(30);
    // Stop the audio so nothing new is measured between reset and read.
    c.send({ type: 'unsubscribe' });
    await c.waitForMessage('unsubscribed');
    const before = await getStatus(svc.port);
    const lat = (before.perf.serverLatency as { count: number }).count;
    assert.ok(lat > 0, `serverLatency.count before reset: ${lat}`);
    const res = await httpRequest(svc.port, 'POST', '/api/perf/reset');
    assert.equal(res.status, 204);
    assert.equal(res.body, '');
    const afterReset = await getStatus(svc.port);
    assert.equal((afterReset.perf.serverLatency as { count: number }).count, 0, JSON.stringify(afterReset.perf));
    assert.equal(afterReset.pool.deadlineMisses, 0);
    c.close();
  });

  test('a client report of its playback buffer and underruns shows in its status entry; a bad report changes nothing', async () => {
    const c = await StreamClient.open(svc.port, 'reporter');
    await c.subscribe([0], 'pcm16');
    c.send({ type: 'report', bufferMs: 12.5, underruns: 3 });
    let me: Awaited<ReturnType<typeof getStatus>>['clients'][number] | undefined;
    await waitFor(
      async () => {
        me = (await getStatus(svc.port)).clients.find((x) => x.clientId === 'reporter');
        return me?.playbackBufferMs === 12.5 && me.underruns === 3;
      },
      { timeoutMs: 5000, what: 'the report in /api/status', describe: () => JSON.stringify(me) },
    );
    const from = c.messages.length;
    c.send({ type: 'report', bufferMs: -1, underruns: 'many' });
    const err = await c.waitForMessage('error', { from });
    assert.equal(err.code, 'invalid-message');
    assert.equal(err.ref, 'report');
    assert.match(String(err.message), /bufferMs: got -1/);
    assert.match(String(err.message), /underruns: got "many"/);
    me = (await getStatus(svc.port)).clients.find((x) => x.clientId === 'reporter');
    assert.equal(me?.playbackBufferMs, 12.5);
    assert.equal(me?.underruns, 3);
    c.close();
  });

  test('with MQTT off, system carries the system collector\'s figures: cpu, mem, when they were sampled, and the interval', async () => {
    const own = await startService({ label: 'status-no-mqtt', config: { capture: { device: 'test-signal', channels: 2 }, mqtt: { enabled: false }, health: { systemIntervalS: 1 } } });
    let sys: Status['system'] = null;
    await waitFor(
      async () => {
        sys = (await getStatus(own.port)).system;
        return sys?.sampledAt && sys.cpu && sys.mem ? sys : undefined;
      },
      { timeoutMs: 10000, what: 'a system sample in /api/status', describe: () => JSON.stringify(sys) },
    );
    const s = sys!;
    assertKeys(s, ['sampledAt', 'intervalS', 'cpu', 'mem', 'disk', 'net', 'throttle', 'skippedCalls', 'failedCalls'], 'system');
    assert.equal(s.intervalS, 1);
    assert.ok(s.cpu!.loadPct >= 0 && s.cpu!.loadPct <= 100, JSON.stringify(s.cpu));
    assert.ok(s.mem!.usedPct > 0 && s.mem!.usedPct <= 100 && s.mem!.totalBytes > 0, JSON.stringify(s.mem));
    assert.ok(!Number.isNaN(Date.parse(s.sampledAt!)), s.sampledAt!);
    const mqtt = ((await getStatus(own.port)) as unknown as { mqtt: { enabled: boolean } }).mqtt;
    assert.equal(mqtt.enabled, false);
    await own.stop();
  });

  test('the box measures each client\'s round-trip time from its WebSocket pings', async () => {
    const c = await StreamClient.open(svc.port, 'rtt');
    let me: Awaited<ReturnType<typeof getStatus>>['clients'][number] | undefined;
    await waitFor(
      async () => {
        me = (await getStatus(svc.port)).clients.find((x) => x.clientId === 'rtt');
        return typeof me?.rttMs === 'number';
      },
      { timeoutMs: 8000, what: 'rttMs after the first heartbeat ping (every 2 s)', describe: () => JSON.stringify(me) },
    );
    assert.ok(me!.rttMs! >= 0 && me!.rttMs! < 1000, `rttMs on loopback: ${me!.rttMs}`);
    c.close();
  });
});
