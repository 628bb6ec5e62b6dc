import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { CaptureStatus } from '../../src/capture/capture-source';
import type { ServiceFigures } from '../../src/health/health-snapshot';
import { HealthWatcher, type HealthEvent } from '../../src/health/health-watcher';
import type { SystemSample } from '../../src/health/system-collector';
import type { SendPoolStats } from '../../src/pool/send-pool';
import type { ClientInfo } from '../../src/transport/client-connection';

/** Figures as plain data; each look reads the current values. */
function setup(): { f: ServiceFigures; sys: SystemSample; events: HealthEvent[]; lists: number[]; w: HealthWatcher } {
  const capture: CaptureStatus = {
    kind: 'alsa',
    state: 'running',
    device: 'hw:CARD=X32',
    format: { format: 'S32_LE', channels: 32, rate: 48000, periodFrames: 128 },
    xruns: 0,
    discardedPeriods: 0,
    reopenCount: 0,
    lastError: null,
    stuckReaders: 0,
  };
  const pool = { size: 1, deadlineMisses: 0, skippedPeriods: 0, utilization: 0 } as SendPoolStats;
  const f: ServiceFigures = {
    version: '0',
    uptimeS: 1,
    capture,
    periodFrames: 128,
    periods: 0,
    jitter: { count: 0, p50Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0 },
    pool,
    clients: [],
    bytesSent: 0,
    state: { dir: '/var/lib/stagebox', saving: true, error: null, since: null },
  };
  const sys: SystemSample = { sampledAt: null, cpu: null, mem: null, disk: null, net: null, throttle: null, skippedCalls: 0, failedCalls: 0 };
  const events: HealthEvent[] = [];
  const lists: number[] = [];
  const w = new HealthWatcher({ figures: () => f, system: () => sys, overloadCpuPct: 90 });
  w.on('event', (e: HealthEvent) => events.push(e));
  w.on('clients', (l: unknown[]) => lists.push(l.length));
  return { f, sys, events, lists, w };
}

function client(id: string | null, name = ''): ClientInfo {
  return {
    clientId: id,
    name,
    address: '10.0.0.2:5000',
    mode: null,
    codec: null,
    channels: [],
    limiterReductionDb: null,
    sentPackets: 0,
    bytesSent: 0,
    drops: 0,
    queued: 0,
    rttMs: 4,
    playbackBufferMs: 20,
    underruns: 0,
    connectedS: 0,
    recovered: null,
    concealed: null,
    transport: { asked: 'ws', now: 'ws', redundancy: 0, spacing: 1, where: null, datagrams: 0 },
  };
}

describe('HealthWatcher', () => {
  test('a device that stops running is reported lost, and found when it runs again', () => {
    const { f, events, w } = setup();
    w.captureChanged(f.capture, 0);
    w.captureChanged({ ...f.capture, state: 'retrying', lastError: 'no such device' }, 1000);
    w.captureChanged({ ...f.capture, state: 'running', reopenCount: 1, lastError: null }, 2000);
    assert.deepEqual(events.map((e) => e.type), ['device-lost', 'device-found']);
    assert.deepEqual(events[0], { type: 'device-lost', ts: new Date(1000).toISOString(), device: 'hw:CARD=X32', state: 'retrying', error: 'no such device' });
  });

  test('an outage shorter than a look is still reported as lost and found; a first start and a stop are neither', () => {
    const { f, events, w } = setup();
    w.captureChanged({ ...f.capture, state: 'starting' }, 0);
    w.captureChanged(f.capture, 10);
    w.look(100);
    w.captureChanged({ ...f.capture, state: 'retrying' }, 200);
    w.captureChanged({ ...f.capture, state: 'running', reopenCount: 1 }, 300);
    w.look(1100);
    w.captureChanged({ ...f.capture, state: 'stopped' }, 1200);
    assert.deepEqual(events.map((e) => e.type), ['device-lost', 'device-found']);
  });

  test('clients joining (after hello) and leaving are events; the list is emitted on each change only', () => {
    const { f, events, lists, w } = setup();
    w.look(0);
    f.clients = [client(null)];
    w.look(1000);
    f.clients = [client('p1', 'Anna')];
    w.look(2000);
    w.look(3000);
    f.clients = [];
    w.look(4000);
    assert.deepEqual(
      events.map((e) => [e.type, 'id' in e ? e.id : null]),
      [
        ['client-joined', 'p1'],
        ['client-left', 'p1'],
      ],
    );
    assert.deepEqual(lists, [0, 1, 1, 0], 'initial list, the helloless client, the hello, the leave');
  });

  test('xruns are reported at most once per 10 s, with the count since the last report', () => {
    const { f, events, w } = setup();
    w.look(0);
    f.capture = { ...f.capture, xruns: 2 };
    w.look(1000);
    f.capture = { ...f.capture, xruns: 5 };
    w.look(2000);
    w.look(11000);
    assert.deepEqual(
      events.map((e) => (e.type === 'xruns' ? [e.count, e.total] : e.type)),
      [
        [2, 2],
        [3, 5],
      ],
    );
  });

  test('a CPU load at the threshold is an overload, cleared after 10 s without a cause', () => {
    const { sys, events, w } = setup();
    w.look(0);
    sys.cpu = { loadPct: 95, coresPct: [95], tempC: null };
    sys.sampledAt = 'a';
    w.look(1000);
    sys.cpu = { loadPct: 20, coresPct: [20], tempC: null };
    sys.sampledAt = 'b';
    w.look(2000);
    w.look(12000);
    assert.deepEqual(events.map((e) => e.type), ['overload', 'overload-cleared']);
    const o = events[0] as Extract<HealthEvent, { type: 'overload' }>;
    assert.deepEqual(o.reasons, ['cpu 95% >= 90%']);
  });

  test('skipped periods are an overload', () => {
    const { f, events, w } = setup();
    w.look(0);
    f.pool = { ...f.pool, skippedPeriods: 1 };
    w.look(1000);
    assert.equal(events[0]?.type, 'overload');
  });
});
