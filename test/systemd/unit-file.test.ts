import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, removeTempDirs, writeTempFile } from '../helpers/service-process';
import { NODE_FLAGS } from '../../bench/service-process';

/**
 * systemd/stagebox.service, checked by systemd's own tools (systemd 252 in
 * Debian 12). systemd cannot run as PID 1 here, so the unit is verified and
 * scored, not started: the sandbox and scheduling settings are not exercised.
 */

const UNIT = path.join(REPO_ROOT, 'systemd', 'stagebox.service');
/** Where the unit expects the service; verify needs ExecStart's binary to exist. */
const INSTALLED_EXEC = `ExecStart=/usr/bin/node ${NODE_FLAGS.join(' ')} /usr/lib/stagebox/bin/stagebox.js --config /etc/stagebox/stagebox.json`;

/**
 * A copy of the unit whose ExecStart runs this checkout (this node, this
 * bin/stagebox.js, the overlay's config): everything else is byte-identical.
 */
function checkoutCopy(): string {
  const text = readFileSync(UNIT, 'utf8');
  assert.ok(text.includes(`\n${INSTALLED_EXEC}\n`), `the unit runs the installed service: ${INSTALLED_EXEC}`);
  const exec = `ExecStart=${process.execPath} ${NODE_FLAGS.join(' ')} ${path.join(REPO_ROOT, 'bin', 'stagebox.js')} --config ${path.join(REPO_ROOT, 'rootfs-overlay', 'etc', 'stagebox', 'stagebox.json')}`;
  const file = writeTempFile('stagebox.service', text.replace(INSTALLED_EXEC, exec));
  return file;
}

test('the unit, make run and the bench start node with the same V8 flags (what is benched is what ships)', () => {
  assert.ok(readFileSync(UNIT, 'utf8').includes(`\n${INSTALLED_EXEC}\n`));
  const makefile = readFileSync(path.join(REPO_ROOT, 'Makefile'), 'utf8');
  assert.ok(makefile.includes(`\tnode ${NODE_FLAGS.join(' ')} bin/stagebox.js\n`), 'make run passes the flags');
});

test('systemd-analyze verify finds nothing to say about the unit', () => {
  const copy = checkoutCopy();
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', copy], { encoding: 'utf8' });
  removeTempDirs();
  assert.equal(r.error, undefined, 'systemd-analyze runs (Debian package systemd)');
  assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'no warnings');
  assert.equal(r.status, 0);
});

test('systemd-analyze security scores the unit\'s exposure at 2.5 or lower', () => {
  const copy = checkoutCopy();
  const r = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', copy], { encoding: 'utf8' });
  removeTempDirs();
  const m = /Overall exposure level for stagebox\.service: (\d+(?:\.\d+)?)/.exec(r.stdout);
  assert.ok(m, `an exposure line in: ${r.stdout.slice(-500)}${r.stderr}`);
  const score = Number(m[1]);
  assert.ok(score <= 2.5, `exposure ${score} > 2.5; failing items:\n${r.stdout.split('\n').filter((l) => l.startsWith('✗')).join('\n')}`);
});

test('the unit is Type=notify with a watchdog, restart on failure with a burst limit, reload by SIGHUP, an unprivileged audio user and RT scheduling', () => {
  const text = readFileSync(UNIT, 'utf8');
  const keys = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^(\w+)=(.*)$/.exec(line);
    if (m) keys.set(m[1]!, [...(keys.get(m[1]!) ?? []), m[2]!]);
  }
  const one = (k: string): string | undefined => keys.get(k)?.[0];
  assert.equal(one('Type'), 'notify');
  assert.equal(one('NotifyAccess'), 'main');
  assert.equal(one('WatchdogSec'), '5s');
  assert.equal(one('Restart'), 'on-failure');
  assert.equal(one('StartLimitBurst'), '5');
  assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.equal(one('DynamicUser'), 'yes');
  assert.equal(one('SupplementaryGroups'), 'audio');
  assert.equal(one('StateDirectory'), 'stagebox');
  assert.equal(one('ConfigurationDirectory'), 'stagebox');
  assert.equal(one('CPUSchedulingPolicy'), 'fifo');
  assert.equal(one('CPUSchedulingPriority'), '10');
  assert.equal(one('LimitRTPRIO'), '10');
  assert.equal(one('CapabilityBoundingSet'), '');
});
