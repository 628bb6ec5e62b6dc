import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/config-loader';
import { ConfigError } from '../../src/config/config-errors';
import { removeTempDirs, runCli, writeTempFile } from '../helpers/service-process';

/** discovery.* config: defaults, and every kind of bad instance name refused with the key, the value and the rule. */

after(() => removeTempDirs());

function load(discovery: unknown) {
  return loadConfig({ path: writeTempFile('stagebox.json', JSON.stringify({ discovery })), env: {} });
}

function refused(discovery: unknown): string {
  try {
    load(discovery);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message;
  }
  assert.fail(`discovery ${JSON.stringify(discovery)} was accepted`);
}

describe('discovery config', () => {
  test('defaults: on, named "stagebox"', () => {
    assert.deepEqual(load({}).config.discovery, { enabled: true, name: 'stagebox' });
  });

  test('a friendly name with spaces and non-ASCII letters is a valid DNS-SD instance name', () => {
    assert.equal(load({ name: 'Bühne links' }).config.discovery.name, 'Bühne links');
  });

  const bad: [string, unknown, string][] = [
    ['empty', '', '0 bytes of UTF-8'],
    ['64 bytes', 'x'.repeat(64), '64 bytes of UTF-8'],
    ['32 two-byte letters (64 bytes)', 'ü'.repeat(32), '64 bytes of UTF-8'],
    ['a dot', 'stage.box', 'a "."'],
    ['a control character', 'stage\u0007box', 'a control character'],
    ['leading space', ' stagebox', 'leading or trailing white space'],
    ['not a string', 42, 'a string'],
  ];
  for (const [what, name, problem] of bad) {
    test(`discovery.name ${what} is refused naming the key, the value and the rule`, () => {
      const msg = refused({ name });
      assert.ok(msg.includes('discovery.name: got '), msg);
      assert.ok(msg.includes(JSON.stringify(name).slice(0, 20)), `the value: ${msg}`);
      assert.ok(msg.includes(problem), `the problem (${problem}): ${msg}`);
      if (typeof name === 'string') assert.ok(msg.includes('a DNS-SD instance name: 1-63 bytes of UTF-8'), `the rule: ${msg}`);
    });
  }

  test('discovery.enabled must be a boolean; unknown keys are refused', () => {
    assert.match(refused({ enabled: 'yes' }), /discovery\.enabled: got "yes"; allowed: a boolean/);
    assert.match(refused({ interface: 'eth0' }), /unknown key "discovery\.interface"/);
  });

  test('through the binary: a bad name exits 2 before anything listens', async () => {
    const r = await runCli(['--config', writeTempFile('stagebox.json', JSON.stringify({ capture: { device: 'test-signal' }, server: { host: '127.0.0.1', port: 0 }, discovery: { name: 'a.b' } }))], {
      stopWhen: /"msg":"listening"/,
    });
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes('discovery.name: got "a.b"; allowed: a DNS-SD instance name'), r.stderr);
    assert.equal(r.stoppedEarly, false);
  });
});
