import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { Probe, SystemCollector, loadPct, mountHolding, parseProcStat, parseThrottled } from '../../src/health/system-collector';
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

describe('CPU load from /proc/stat', () => {
  const stat = (cpu: string, ...cores: string[]) => [`cpu  ${cpu}`, ...cores.map((c, i) => `cpu${i} ${c}`), 'intr 1 2 3', 'ctxt 99'].join('\n');

  test('parses the total and each core; idle and iowait are idle, guest is not counted twice', () => {
    const p = parseProcStat(stat('100 0 50 800 50 0 0 0 30 0', '60 0 20 400 20 0 0 0 30 0', '40 0 30 400 30 0 0 0 0 0'));
    assert.deepEqual(p, { total: { busy: 150, total: 1000 }, cores: [{ busy: 80, total: 500 }, { busy: 70, total: 500 }] });
  });

  test('load is the busy share between two readings, and since boot without a previous one', () => {
    assert.equal(loadPct(undefined, { busy: 150, total: 1000 }), 15);
    assert.equal(loadPct({ busy: 150, total: 1000 }, { busy: 400, total: 1500 }), 50);
    assert.equal(loadPct({ busy: 150, total: 1000 }, { busy: 150, total: 1000 }), 0, 'no ticks elapsed');
  });

  test('text without a "cpu" line gives null (the probe reports it as a failed figure)', () => {
    assert.equal(parseProcStat('intr 1 2\nctxt 3\n'), null);
    assert.equal(parseProcStat('cpu  a b c d\n'), null);
  });

  test('two real samples a moment apart give a total and per-core load between 0 and 100 while a core is kept busy', async () => {
    const c = new SystemCollector({ intervalS: 0, stateDir: os.tmpdir(), log: quietLog });
    await c.sampleNow();
    const until = Date.now() + 300;
    while (Date.now() < until) Math.sqrt(Math.random());
    await c.sampleNow();
    const cpu = c.latest().cpu!;
    assert.equal(cpu.coresPct.length, os.cpus().length);
    assert.ok(cpu.loadPct > 0 && cpu.loadPct <= 100, `load ${cpu.loadPct}`);
    assert.ok(Math.max(...cpu.coresPct) >= 30, `one core was kept busy: ${cpu.coresPct.join(', ')}`);
  });
});
