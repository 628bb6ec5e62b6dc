import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/service-process';

/**
 * `make deb DEB_ARCH=arm64` (run by make check-arm64, after the arm64
 * node_modules exist): the package is arm64 throughout. It is not installed
 * here (this machine is amd64); test/packaging/deb-package.test.ts installs
 * the amd64 one, built from the same file list by the same script.
 */

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('make deb DEB_ARCH=arm64 builds an arm64 package whose native addons are all aarch64 and which holds the whole app', () => {
  const r = spawnSync('make', ['--no-print-directory', 'deb', 'DEB_ARCH=arm64'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 600_000 });
  assert.equal(r.status, 0, `make deb DEB_ARCH=arm64 failed: ${r.stderr.slice(-2000)}`);
  const debs = readdirSync(path.join(REPO_ROOT, 'build')).filter((f) => /^stagebox_.*_arm64\.deb$/.test(f));
  assert.equal(debs.length, 1, `one arm64 package in build/: ${debs.join(', ')}`);
  const deb = path.join(REPO_ROOT, 'build', debs[0]!);
  assert.equal(execFileSync('dpkg-deb', ['--field', deb, 'Architecture'], { encoding: 'utf8' }).trim(), 'arm64');
  const root = mkdtempSync(path.join(os.tmpdir(), 'stagebox-deb-arm64-'));
  dirs.push(root);
  execFileSync('dpkg-deb', ['-x', deb, root]);
  const lib = path.join(root, 'usr', 'lib', 'stagebox');
  const addons = execFileSync('find', [lib, '-name', '*.node'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  for (const name of ['capture.node', 'opus.node', 'sd_notify.node']) assert.ok(addons.some((a) => a.endsWith(`/${name}`)), `${name} in ${addons.join(', ')}`);
  for (const a of addons) assert.match(execFileSync('file', ['-L', a], { encoding: 'utf8' }), /ELF 64-bit LSB shared object, ARM aarch64/, a);
  for (const f of ['bin/stagebox.js', 'dist/src/main.js', 'dist/web/client/index.js', 'web/dashboard/index.html', 'web/listen/index.html']) {
    assert.ok(spawnSync('test', ['-f', path.join(lib, f)]).status === 0, `${f} is in the package`);
  }
  assert.ok(spawnSync('test', ['-f', path.join(root, 'lib', 'systemd', 'system', 'stagebox.service')]).status === 0, 'the unit is in the package');
});
