/**
 * Network profiles (bench/net-profiles/): the schema refuses what cannot be
 * meant, naming the key, the value and what is allowed; the shipped profiles
 * parse; and the model they drive (nh-impair, run in virtual time with
 * --simulate, no namespaces needed) is deterministic from its seed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { impairReportSchema, type ImpairReport } from '../../bench/net/impair-report';
import { IMPAIR_BIN } from '../../bench/net/net-harness';
import { impairArgs, loadProfile, parseProfile, profileNames } from '../../bench/net/net-profile';

function refusal(raw: unknown): string {
  try {
    parseProfile(raw, 'p.json');
  } catch (err) {
    return (err as Error).message;
  }
  assert.fail('the profile was accepted');
}

describe('profile validation', () => {
  test('an unknown key is refused, naming it and the keys allowed there', () => {
    assert.equal(refusal({ description: 'x', dwn: {} }), 'p.json: unknown key "dwn" (got {}); allowed: description, source, down, up, stalls, powerSave');
    assert.equal(refusal({ description: 'x', down: { jiter: { max: 1 } } }), 'p.json: unknown key "down.jiter" (got {"max":1}); allowed: delayMs, jitterMs, loss');
    assert.equal(refusal({ description: 'x', up: { loss: { rate: 0.1, burst: 2 } } }), 'p.json: unknown key "up.loss.burst" (got 2); allowed: rate, meanBurst, maxBurst');
    assert.equal(
      refusal({ description: 'x', down: { jitterMs: { median: 1, max: 2 } } }),
      'p.json: down.jitterMs.median: got 1; allowed: a key of min, max or pN for a quantile (0 < N < 100, e.g. p50, p99.9)',
    );
  });

  test('a loss rate of 1 or more is refused', () => {
    assert.equal(refusal({ description: 'x', down: { loss: { rate: 1.5 } } }), 'p.json: down.loss.rate: got 1.5; allowed: a number < 1');
    assert.equal(refusal({ description: 'x', down: { loss: { rate: 1 } } }), 'p.json: down.loss.rate: got 1; allowed: a number < 1');
  });

  test('a negative delay is refused', () => {
    assert.equal(refusal({ description: 'x', up: { delayMs: -1 } }), 'p.json: up.delayMs: got -1; allowed: a number >= 0');
    assert.equal(refusal({ description: 'x', up: { jitterMs: { p50: -2, max: 3 } } }), 'p.json: up.jitterMs.p50: got -2; allowed: a number >= 0');
  });

  test('quantiles that fall (p99 below the median) are refused', () => {
    assert.equal(
      refusal({ description: 'x', down: { jitterMs: { p50: 4, p99: 2, max: 10 } } }),
      'p.json: down.jitterMs.p99: got 2; allowed: a number >= p50 (4): quantiles may not fall',
    );
    assert.equal(
      refusal({ description: 'x', down: { jitterMs: { min: 5, p50: 4, max: 10 } } }),
      'p.json: down.jitterMs.p50: got 4; allowed: a number >= min (5): quantiles may not fall',
    );
  });

  test('a distribution without its max is refused', () => {
    assert.equal(refusal({ description: 'x', down: { jitterMs: { p50: 1 } } }), 'p.json: down.jitterMs.max: got nothing; allowed: a number of ms >= 0 (max is required)');
  });

  test('windows that could overlap, and a longest burst below the mean, are refused', () => {
    assert.equal(
      refusal({ description: 'x', stalls: { intervalMs: { min: 50, max: 500 }, durationMs: { min: 10, max: 100 } } }),
      'p.json: stalls.intervalMs.min: got 50; allowed: a number >= durationMs.max (100), so that one window ends before the next begins',
    );
    assert.equal(refusal({ description: 'x', down: { loss: { rate: 0.1, meanBurst: 3, maxBurst: 2 } } }), 'p.json: down.loss.maxBurst: got 2; allowed: an integer >= meanBurst (3)');
  });

  test('every problem gets its own line', () => {
    assert.equal(
      refusal({ down: { delayMs: 'x' } }),
      ['p.json: description: got nothing; allowed: a string', 'p.json: down.delayMs: got "x"; allowed: a number'].join('\n'),
    );
  });

  test('a profile name that is not a file says which ones are', () => {
    assert.throws(() => loadProfile('nope'), (err: Error) => err.message.includes('there is no ') && err.message.endsWith(`allowed: ${profileNames().join(', ')}`));
    assert.throws(() => loadProfile('../etc'), /^Error: network profile "\.\.\/etc": allowed: a file name of bench\/net-profiles\//);
  });
});

describe('shipped profiles', () => {
  test('lan, office-wifi, busy-venue and phone-powersave are there and parse', () => {
    for (const name of ['lan', 'office-wifi', 'busy-venue', 'phone-powersave']) assert.ok(profileNames().includes(name), name);
    for (const name of profileNames()) loadProfile(name);
  });

  test('a profile becomes nh-impair options: quantiles as u:v knots from 0 to 1', () => {
    assert.deepEqual(impairArgs(loadProfile('lan')), ['--down', 'delay=0', '--up', 'delay=0']);
    const busy = impairArgs(loadProfile('busy-venue'));
    assert.deepEqual(busy.slice(0, 2), ['--down', 'delay=1.5,jitter=0:0/0.5:1.5/0.9:4/0.99:10/1:30,loss=0.01,burst=2,maxburst=4']);
    assert.deepEqual(busy.slice(4), ['--stalls', 'interval=0:10000/0.5:20000/1:30000,duration=0:100/1:300']);
  });
});

/** nh-impair's model in virtual time: `pps` packets/s each way for `seconds`. */
function simulate(profile: string, seed: number, seconds = 60, pps = 375): ImpairReport {
  const r = spawnSync(IMPAIR_BIN, ['--simulate', String(pps), '--seed', String(seed), '--max-seconds', String(seconds), ...impairArgs(loadProfile(profile))], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return impairReportSchema.parse(JSON.parse(r.stdout));
}

describe('the model (nh-impair --simulate)', { skip: existsSync(IMPAIR_BIN) ? false : `${IMPAIR_BIN} is not built (make build)` }, () => {
  test('the same seed gives the same report, another seed another', () => {
    assert.deepEqual(simulate('busy-venue', 7), simulate('busy-venue', 7));
    assert.notDeepEqual(simulate('busy-venue', 7).links[0]!.down.dropBursts, simulate('busy-venue', 8).links[0]!.down.dropBursts);
  });

  test('busy-venue: about 1 % loss in bursts of at most 4, stalls of 100-300 ms about every 20 s', () => {
    const d = simulate('busy-venue', 1, 600).links[0]!.down;
    const rate = d.dropped / d.packets;
    assert.ok(rate > 0.007 && rate < 0.013, `loss ${rate}`);
    assert.equal(d.longestDropBurst, 4);
    assert.deepEqual(d.dropBursts.slice(4), [0, 0, 0, 0]);
    assert.ok(d.stalls.length >= 20 && d.stalls.length <= 40, `${d.stalls.length} stalls in 10 min`);
    for (const s of d.stalls) assert.ok(s.durationMs >= 100 && s.durationMs <= 300, `stall of ${s.durationMs} ms`);
  });

  test('phone-powersave holds only what goes to the phone', () => {
    const l = simulate('phone-powersave', 1, 10).links[0]!;
    assert.ok(l.down.holds.count > 30 && l.down.holds.held > 0, JSON.stringify(l.down.holds));
    assert.deepEqual(l.up.holds, { count: 0, held: 0, meanDurationMs: 0, maxDurationMs: 0 });
    assert.ok(l.down.delayMs.p99 > 30 && l.up.delayMs.p99 < 30, `down p99 ${l.down.delayMs.p99}, up p99 ${l.up.delayMs.p99}`);
  });

  test('bad options are refused with what is allowed', () => {
    const run = (...args: string[]): { status: number | null; stderr: string } => {
      const r = spawnSync(IMPAIR_BIN, args, { encoding: 'utf8' });
      return { status: r.status, stderr: r.stderr };
    };
    assert.deepEqual(run('--down', 'loss=2'), { status: 2, stderr: 'nh-impair: --down loss: got "2"; allowed: a number from 0 to 0.999\n' });
    assert.deepEqual(run('--up', 'lag=3'), { status: 2, stderr: 'nh-impair: --up: unknown key "lag"; allowed: delay, jitter, loss, burst, maxburst\n' });
    assert.deepEqual(run('--down', 'jitter=0:5/1:2'), {
      status: 2,
      stderr: 'nh-impair: --down jitter: "0:5/1:2" is not a distribution; allowed: u:v/u:v/... with u rising from 0 to 1 and v >= 0 not falling\n',
    });
  });
});

describe('harness-cli', () => {
  const CLI = path.join(__dirname, '..', '..', 'bench', 'net', 'harness-cli.js');
  const cli = (...args: string[]): { status: number | null; stderr: string; stdout: string } => {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
    return { status: r.status, stderr: r.stderr, stdout: r.stdout };
  };

  test('bad arguments and bad profiles stop it before anything is set up (exit 2)', () => {
    assert.deepEqual(cli('--profile', 'lan', '--listeners', '17'), { status: 2, stdout: '', stderr: 'harness-cli: --listeners: got "17"; allowed: an integer 1-16\n' });
    assert.deepEqual(cli('--profile', 'lan', '--speed', '3'), {
      status: 2,
      stdout: '',
      stderr: 'harness-cli: unknown option "--speed"; allowed: --profile, --listeners, --seed, --seconds, --simulate, --help\n',
    });
    assert.deepEqual(cli('--seconds', '5'), { status: 2, stdout: '', stderr: 'harness-cli: --profile is required\n' });
    const none = cli('--profile', 'moon');
    assert.equal(none.status, 2);
    assert.match(none.stderr, /^harness-cli: network profile "moon": there is no .*moon\.json; allowed: busy-venue, lan, office-wifi, phone-powersave\n$/);
  });

  test('--simulate prints the report of the model run on a profile', { skip: existsSync(IMPAIR_BIN) ? false : `${IMPAIR_BIN} is not built (make build)` }, () => {
    const r = cli('--profile', 'office-wifi', '--simulate', '375', '--seconds', '30');
    assert.equal(r.status, 0, r.stderr);
    const report = impairReportSchema.parse(JSON.parse(r.stdout));
    assert.equal(report.simulated, true);
    assert.equal(report.links.length, 1);
    assert.ok(report.links[0]!.down.packets >= 11249, `${report.links[0]!.down.packets} packets in 30 s at 375/s`);
  });
});
