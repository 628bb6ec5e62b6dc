import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { Probe, SystemCollector, loadPct, mountHolding, parseProcStat, parseThrottled } from '../../src/health/system-collector';
import { waitFor } from '../helpers/wait';

const quietLog = { warn: () => undefined };

/** The kernel's CPU time counters summed over every core, in ticks (/proc/stat). */
function cpuTicks(): number {
  return parseProcStat(readFileSync('/proc/stat', 'utf8'))!.total.total;
}

/** CPU time this process has used, user plus system, in ticks (/proc/self/stat fields 14 and 15). */
function ownCpuTicks(): number {
  const text = readFileSync('/proc/self/stat', 'utf8');
  // The command name (field 2) is in parentheses and may contain spaces; the fields after it are plain.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

describe('SystemCollector', () => {
  test('one real sample has CPU load per core, memory, the disk holding the state dir and the network interfaces', async () => {
    const c = new SystemCollector({ intervalS: 1, stateDir: os.tmpdir(), log: quietLog });
    await c.sampleNow();
    // The second sample's load is the share between the two readings: wait until the kernel has counted more ticks.
    const ticksBefore = cpuTicks();
    await waitFor(() => cpuTicks() > ticksBefore, { timeoutMs: 5000, intervalMs: 10, what: 'the kernel\'s CPU tick counters to advance' });
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
    let answer = (): void => undefined;
    // The call is out until the test answers it.
    const p = new Probe('slow', () => {
      calls++;
      return new Promise<number>((resolve) => (answer = () => resolve(calls)));
    });
    const stats = { skippedCalls: 0, failedCalls: 0 };
    const first = p.run(stats, () => undefined);
    await p.run(stats, () => undefined);
    assert.equal(stats.skippedCalls, 1);
    answer();
    await first;
    assert.equal(calls, 1);
    assert.equal(p.value, 1);
    const second = p.run(stats, () => undefined);
    answer();
    await second;
    assert.equal(calls, 2, 'runs again once the first returned');
    assert.equal(p.value, 2);
  });

  test('a call with no answer within 10 s fails this round, and is not started again until it returns (mocked clock)', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let calls = 0;
    let answer = (): void => undefined;
    const p = new Probe('hung', () => {
      calls++;
      return new Promise<number>((resolve) => (answer = () => resolve(7)));
    });
    const stats = { skippedCalls: 0, failedCalls: 0 };
    const errors: string[] = [];
    const onError = (name: string, err: Error): void => void errors.push(`${name}: ${err.message}`);
    let settled = false;
    const round = p.run(stats, onError).then(() => (settled = true));
    t.mock.timers.tick(9_999);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, false, 'still waiting at 9.999 s');
    t.mock.timers.tick(1);
    await round;
    assert.deepEqual(errors, ['hung: no answer within 10000 ms (still running; not restarted until it returns)']);
    assert.equal(stats.failedCalls, 1);
    await p.run(stats, onError);
    assert.deepEqual([calls, stats.skippedCalls], [1, 1], 'the next round is skipped while the call is still out');
    answer();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(p.value, 7, 'a late answer still counts');
    const next = p.run(stats, onError);
    answer();
    await next;
    assert.equal(calls, 2, 'started again once the hung call returned');
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
    // Busy until this process has used 30 ticks (0.3 s at USER_HZ 100) of CPU time, however long that takes on a loaded machine.
    const own = ownCpuTicks();
    const deadline = performance.now() + 20_000;
    while (ownCpuTicks() < own + 30) {
      for (let i = 0; i < 100_000; i++) Math.sqrt(Math.random());
      assert.ok(performance.now() < deadline, 'this process got no 0.3 s of CPU within 20 s');
    }
    await c.sampleNow();
    const cpu = c.latest().cpu!;
    assert.equal(cpu.coresPct.length, os.cpus().length);
    assert.ok(cpu.loadPct > 0 && cpu.loadPct <= 100, `load ${cpu.loadPct}`);
    assert.ok(Math.max(...cpu.coresPct) >= 30, `one core was kept busy: ${cpu.coresPct.join(', ')}`);
  });
});
