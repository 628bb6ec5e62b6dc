import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseTrace } from '../../bench/jitter/arrival-trace';
import { syntheticTrace } from '../../bench/jitter/network-model';
import { replay } from '../../bench/jitter/replay';
import { makeSubject, pinnedSubject } from '../../bench/jitter/replay-subjects';

/**
 * The replay tool on a fixed synthetic trace: the shape of what it reports, not its numbers (those are the
 * bench's, recorded in BENCHMARKS.md).
 */

const REPLAY_JS = path.join(__dirname, '..', '..', 'bench', 'jitter-replay.js');
const trace = syntheticTrace({ profile: 'office-wifi', transport: 'tcp', seconds: 30, seed: 3 }).trace;

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [REPLAY_JS, ...args], { encoding: 'utf8', timeout: 120000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('jitter replay: what it reports', () => {
  for (const name of ['baseline', 'current'] as const) {
    test(`${name}: every figure is there and in range; the stalls in the trace are found and each has a recovery`, () => {
      const r = replay(trace, makeSubject(name, { rate: 48000, channels: 2 }));
      assert.equal(r.subject, name);
      assert.ok(r.minutes > 0.45 && r.minutes < 0.5, `${r.minutes} minutes counted`);
      for (const k of ['underrunsPerMin', 'concealedLossesPerMin', 'concealedMsPerMin', 'bufferP50Ms', 'bufferP99Ms', 'targetP50Ms', 'targetMaxMs', 'targetEndMs'] as const) {
        assert.ok(Number.isFinite(r[k]) && r[k] >= 0, `${k} ${r[k]}`);
      }
      assert.equal(r.audibleEventsPerMin, r.underrunsPerMin + r.concealedLossesPerMin);
      assert.ok(r.eventsOutsideStallsPerMin <= r.audibleEventsPerMin && r.eventsOutsideLongGapsPerMin <= r.audibleEventsPerMin);
      assert.ok(r.bufferP50Ms <= r.bufferP99Ms && r.targetP50Ms <= r.targetMaxMs);
      // Over tcp nothing is lost: every audible event is an underrun, and the trace's stalls (arrival gaps of 100 ms
      // or more) each made one.
      assert.equal(r.concealedLossesPerMin, 0);
      assert.ok(r.stalls.length >= 1, 'stalls found');
      assert.ok(r.underrunsPerMin * r.minutes >= r.stalls.length, `${r.underrunsPerMin * r.minutes} underruns, ${r.stalls.length} stalls`);
      for (const s of r.stalls) assert.ok(s.gapMs >= 100 && (s.recoverMs === null || s.recoverMs >= 0));
      assert.equal(r.notRecovered, r.stalls.filter((s) => s.recoverMs === null).length);
    });
  }

  test('the same trace replays the same, to the bit', () => {
    const a = replay(trace, makeSubject('current', { rate: 48000, channels: 2 }));
    const b = replay(trace, makeSubject('current', { rate: 48000, channels: 2 }));
    assert.deepEqual(a, b);
  });

  test('a timer-driven player (5 ms ticks) is replayed too', () => {
    const r = replay(trace, makeSubject('current', { rate: 48000, channels: 2 }), { playerTickMs: 5 });
    assert.ok(Number.isFinite(r.bufferP50Ms) && r.stalls.length >= 1);
  });
});

describe('jitter replay: the current buffer pinned at a fixed target', () => {
  const at = (ms: number, playerTickMs = 0) => replay(trace, pinnedSubject(ms, { rate: 48000, channels: 2 }), { playerTickMs });

  for (const tick of [0, 5]) {
    test(`player tick ${tick} ms: the target never moves, and a higher target has no more underruns than a lower one`, () => {
      const rs = [5, 8, 10, 15, 20, 30].map((ms) => ({ ms, r: at(ms, tick) }));
      for (const { ms, r } of rs) {
        assert.equal(r.subject, `fixed-${ms}`);
        assert.equal(r.targetP50Ms, ms);
        assert.equal(r.targetMaxMs, ms);
        assert.equal(r.targetEndMs, ms);
      }
      for (let k = 1; k < rs.length; k++) {
        const lo = rs[k - 1]!;
        const hi = rs[k]!;
        assert.ok(hi.r.underrunsPerMin <= lo.r.underrunsPerMin, `${hi.ms} ms: ${hi.r.underrunsPerMin} underruns/min; ${lo.ms} ms: ${lo.r.underrunsPerMin}`);
        assert.ok(hi.r.bufferP50Ms > lo.r.bufferP50Ms, `buffer p50 ${hi.r.bufferP50Ms} at ${hi.ms} ms, ${lo.r.bufferP50Ms} at ${lo.ms} ms`);
      }
      // The trace's stalls (100 ms and more) outlast every one of these targets: each is an underrun at any of them.
      const stalls = rs[rs.length - 1]!.r.stalls.length;
      assert.ok(stalls >= 1 && rs[rs.length - 1]!.r.underrunsPerMin * rs[rs.length - 1]!.r.minutes >= stalls);
    });
  }

  test("buffer p50 tracks the pinned target: below it by the wait for the next packet, within 6 ms", () => {
    for (const ms of [8, 12, 15, 25]) {
      for (const tick of [0, 5]) {
        const r = at(ms, tick);
        assert.ok(r.bufferP50Ms <= ms && r.bufferP50Ms >= ms - 6, `target ${ms} ms, tick ${tick} ms: buffer p50 ${r.bufferP50Ms} ms`);
      }
    }
  });

  test('a target outside the library buffer\'s minMs-maxMs is refused', () => {
    assert.throws(() => pinnedSubject(2, { rate: 48000, channels: 2 }), { name: 'RangeError', message: 'pinned target is 2 ms; allowed: 2.5-200' });
    assert.throws(() => pinnedSubject(201, { rate: 48000, channels: 2 }), { name: 'RangeError', message: 'pinned target is 201 ms; allowed: 2.5-200' });
  });
});

describe('jitter replay: the command', () => {
  test('synthetic traces: one table row per trace and buffer; --write-traces writes files it then replays as --trace', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'jb-replay-'));
    try {
      const r = run(['--profiles', 'lan', '--seconds', '5', '--write-traces', dir]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split('\n');
      assert.match(lines[0]!, /^trace +buffer +ev\/min/);
      assert.equal(lines.length, 3);
      assert.match(lines[1]!, /^lan\/tcp\/1 +baseline /);
      assert.match(lines[2]!, /^lan\/tcp\/1 +current /);
      assert.match(r.stderr, /lan\/tcp\/1: loopback-like/);
      assert.deepEqual(readdirSync(dir), ['lan-tcp-1.csv']);
      const file = path.join(dir, 'lan-tcp-1.csv');
      assert.equal(parseTrace(readFileSync(file, 'utf8'), file).seq.length, 1875);
      const j = run(['--trace', file, '--buffers', 'current', '--json']);
      assert.equal(j.code, 0, j.stderr);
      const rows = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.trace, 'lan-tcp-1.csv');
      assert.equal(rows[0]!.subject, 'current');
      assert.equal(typeof rows[0]!.bufferP50Ms, 'number');
      const f = run(['--trace', file, '--buffers', 'current', '--fixed-targets-ms', '8, 12.5']);
      assert.equal(f.code, 0, f.stderr);
      const fl = f.stdout.trim().split('\n');
      assert.equal(fl.length, 4);
      assert.match(fl[1]!, /^lan-tcp-1\.csv +current /);
      assert.match(fl[2]!, /^lan-tcp-1\.csv +fixed-8 .* 8\.0\/8\.0\/8\.0 /);
      assert.match(fl[3]!, /^lan-tcp-1\.csv +fixed-12\.5 .* 12\.5\/12\.5\/12\.5 /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const bad: [string, string[], RegExp][] = [
    ['an unknown profile', ['--profiles', 'moon'], /--profiles: unknown "moon"; allowed: lan, office-wifi, busy-venue, phone-powersave/],
    ['an unknown transport', ['--transport', 'pigeon'], /--transport: got "pigeon"; allowed: tcp, datagram or both/],
    ['too few seconds', ['--seconds', '1'], /--seconds: got "1"; allowed: a number 5-3600/],
    ['a fractional seed', ['--seed', '1.5'], /--seed: got "1.5"; allowed: an integer 0-4294967295/],
    ['an unknown buffer', ['--buffers', 'neteq'], /--buffers: unknown "neteq"; allowed: baseline, current/],
    ['a fixed target below the range', ['--fixed-targets-ms', '8,2'], /--fixed-targets-ms: got "2"; allowed: a number 2\.5-200/],
    ['a fixed target that is not a number', ['--fixed-targets-ms', '8,ten'], /--fixed-targets-ms: got "ten"; allowed: a number 2\.5-200/],
    ['an empty list of fixed targets', ['--fixed-targets-ms', ','], /--fixed-targets-ms: got an empty list; allowed: numbers 2\.5-200, comma-separated/],
    ['--trace with --profiles', ['--trace', 'x.csv', '--profiles', 'lan'], /--trace and synthetic options .* were both given; allowed: one or the other/],
    ['an unknown option', ['--fast'], /Unknown option '--fast'/],
  ];
  for (const [what, args, message] of bad) {
    test(`${what}: exit 2 naming it, with the usage`, () => {
      const r = run(args);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, message);
      assert.match(r.stderr, /Usage: node dist\/bench\/jitter-replay.js/);
    });
  }

  test('a trace file that is not one: exit 1 naming the file, the line and the field', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'jb-replay-'));
    try {
      const file = path.join(dir, 'bad.csv');
      writeFileSync(file, 'seq,capture_ms,arrival_ms,flags\n1,2,later,0\n');
      const r = run(['--trace', file]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `jitter-replay: ${file}: line 2: arrival_ms is "later"; allowed: a finite number of ms, 0 or more\n`);
      const missing = run(['--trace', path.join(dir, 'none.csv')]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /cannot read --trace .*none\.csv: ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
