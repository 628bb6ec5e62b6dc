import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { Probe, SystemCollector, mountHolding, parseThrottled } from '../../src/health/system-collector';
import { sleep } from '../helpers/wait';

const quietLog = { warn: () => undefined };

describe('SystemCollector', () => {
  test('one real sample has CPU load per core, memory, the disk holding the state dir and the network interfaces', async () => {
    const c = new SystemCollector({ intervalS: 1, stateDir: os.tmpdir(), log: quietLog });
    await c.sampleNow();
    await sleep(300);
    await c.sampleNow();
    const s = c.latest();
    assert.ok(s.sampledAt && !Number.isNaN(Date.parse(s.sampledAt)));
    assert.ok(s.cpu, 'cpu');
    assert.ok(s.cpu.loadPct >= 0 && s.cpu.loadPct <= 100, `loadPct ${s.cpu.loadPct}`);
    assert.equal(s.cpu.coresPct.length, os.cpus().length);
    assert.ok(s.cpu.tempC === null || typeof s.cpu.tempC === 'number');
    assert.ok(s.mem && s.mem.totalBytes > 0 && s.mem.usedPct > 0 && s.mem.usedPct <= 100, JSON.stringify(s.mem));
    assert.ok(s.disk && s.disk.sizeBytes > 0, JSON.stringify(s.disk));
    assert.ok(os.tmpdir().startsWith(s.disk.mount), `${s.disk.mount} holds ${os.tmpdir()}`);
    assert.ok(Array.isArray(s.net));
    // Not a Raspberry Pi: no vcgencmd, so no throttle figures.
    assert.equal(s.throttle, null);
  });

  test('latest() before any sample is all null', () => {
    const c = new SystemCollector({ intervalS: 0, stateDir: '/', log: quietLog });
    c.start();
    const s = c.latest();
    assert.deepEqual([s.sampledAt, s.cpu, s.mem, s.disk, s.net, s.throttle], [null, null, null, null, null, null]);
    c.stop();
  });
});

describe('Probe: a slow call never overlaps itself', () => {
  test('a second run while the first call is out is skipped and counted; the call ran once', async () => {
    let calls = 0;
    const p = new Probe('slow', async () => {
      calls++;
      await sleep(200);
      return calls;
    });
    const stats = { skippedCalls: 0, failedCalls: 0 };
    const first = p.run(stats, () => undefined);
    await p.run(stats, () => undefined);
    assert.equal(stats.skippedCalls, 1);
    await first;
    assert.equal(calls, 1);
    assert.equal(p.value, 1);
    await p.run(stats, () => undefined);
    assert.equal(calls, 2, 'runs again once the first returned');
  });

  test('a failing call keeps the last value and reports the error', async () => {
    let fail = false;
    const p = new Probe('flaky', async () => {
      if (fail) throw new Error('boom');
      return 7;
    });
    const stats = { skippedCalls: 0, failedCalls: 0 };
    await p.run(stats, () => undefined);
    fail = true;
    const errors: string[] = [];
    await p.run(stats, (name, err) => errors.push(`${name}: ${err.message}`));
    assert.equal(p.value, 7);
    assert.equal(stats.failedCalls, 1);
    assert.deepEqual(errors, ['flaky: boom']);
  });
});

describe('mountHolding', () => {
  const mounts = [{ mount: '/' }, { mount: '/var' }, { mount: '/var/lib/stagebox' }, { mount: '/var/li' }];
  test('picks the longest mount that is a path prefix', () => {
    assert.equal(mountHolding(mounts, '/var/lib/stagebox/x')?.mount, '/var/lib/stagebox');
    assert.equal(mountHolding(mounts, '/var/lib/other')?.mount, '/var');
    assert.equal(mountHolding(mounts, '/etc')?.mount, '/');
  });
});

describe('parseThrottled', () => {
  test('decodes the Raspberry Pi firmware bits', () => {
    assert.deepEqual(parseThrottled('throttled=0x50005\n'), {
      raw: '0x50005',
      underVoltage: true,
      frequencyCapped: false,
      throttled: true,
      softTempLimit: false,
      underVoltageOccurred: true,
      throttledOccurred: true,
    });
    assert.equal(parseThrottled('throttled=0x0')?.underVoltage, false);
    assert.equal(parseThrottled('error'), null);
  });
});
