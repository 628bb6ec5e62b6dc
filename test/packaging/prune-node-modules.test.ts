import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/service-process';

/**
 * packaging/prune-node-modules.js on a small installed tree: what the service
 * never runs goes (build tools and what only they use, other targets'
 * platform packages, scripts for other interpreters); everything reachable
 * from the service's dependencies stays, wherever npm put it.
 */

const SCRIPT = path.join(REPO_ROOT, 'packaging', 'prune-node-modules.js');
const prune = require(SCRIPT) as {
  pruneNodeModules(manifest: object, nodeModules: string, target?: { cpu?: string; libc?: string }): { platform: string[]; packages: string[]; scripts: string[] };
  interpreterOf(line: string): string;
};

let dir = '';
let nm = '';

function pkg(rel: string, manifest: Record<string, unknown>, files: Record<string, string> = {}): void {
  const d = path.join(nm, rel);
  mkdirSync(d, { recursive: true });
  writeFileSync(path.join(d, 'package.json'), JSON.stringify({ version: '1.0.0', ...manifest }));
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(d, f)), { recursive: true });
    writeFileSync(path.join(d, f), text);
    chmodSync(path.join(d, f), 0o755);
  }
}

const SERVICE = { name: 'app', dependencies: { addon: '^1.0.0', lib: '^1.0.0' } };

describe('prune-node-modules.js', () => {
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'stagebox-prune-'));
    nm = path.join(dir, 'node_modules');
    // addon builds with node-gyp; node-gyp alone uses tar-ish and glob 10; lib uses glob 7, nested under it.
    pkg('addon', { name: 'addon', dependencies: { 'node-gyp': '^10.0.0', nan: '^2.0.0' } }, { 'build/Release/addon.node': 'ELF' });
    pkg('nan', { name: 'nan' });
    pkg('node-gyp', { name: 'node-gyp', dependencies: { 'tar-ish': '^1.0.0', glob: '^10.0.0' } }, { 'gyp/gyp_main.py': '#!/usr/bin/env python3\n' });
    pkg('tar-ish', { name: 'tar-ish' });
    pkg('glob', { name: 'glob', version: '10.0.0' });
    pkg('lib', { name: 'lib', dependencies: { glob: '^7.0.0' }, optionalDependencies: { 'lib-linux-x64': '1.0.0', 'lib-linux-arm64': '1.0.0', 'lib-linux-arm64-musl': '1.0.0', 'lib-darwin-arm64': '1.0.0' } }, {
      'cli.js': '#!/usr/bin/env node\nrequire("./")\n',
      'flagged.js': '#!/usr/bin/env -S node --no-warnings\n',
      'inc-version.sh': '#!/bin/bash\necho\n',
      '.husky/pre-commit': '#!/usr/bin/env sh\nnpm test\n',
      'test/run.sh': '#! /bin/sh\n',
    });
    pkg('lib/node_modules/glob', { name: 'glob', version: '7.0.0' });
    pkg('lib-linux-x64', { name: 'lib-linux-x64', os: ['linux'], cpu: ['x64'], libc: ['glibc'] });
    pkg('lib-linux-arm64', { name: 'lib-linux-arm64', os: ['linux'], cpu: ['arm64'], libc: ['glibc'] });
    pkg('lib-linux-arm64-musl', { name: 'lib-linux-arm64-musl', os: ['linux'], cpu: ['arm64'], libc: ['musl'] });
    pkg('lib-darwin-arm64', { name: 'lib-darwin-arm64', os: ['darwin'], cpu: ['arm64'] });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('removes build-only packages, other targets\' platform packages and scripts for other interpreters, and nothing else', () => {
    const removed = prune.pruneNodeModules(SERVICE, nm, { cpu: 'arm64', libc: 'glibc' });
    assert.deepEqual(removed.platform.sort(), ['lib-darwin-arm64', 'lib-linux-arm64-musl', 'lib-linux-x64']);
    assert.deepEqual(removed.packages.sort(), ['glob', 'node-gyp', 'tar-ish']);
    assert.deepEqual(removed.scripts.sort(), ['lib/.husky/pre-commit', 'lib/inc-version.sh', 'lib/test/run.sh']);
    for (const kept of ['addon/build/Release/addon.node', 'nan', 'lib/cli.js', 'lib/flagged.js', 'lib/node_modules/glob', 'lib-linux-arm64']) {
      assert.ok(existsSync(path.join(nm, kept)), `${kept} was removed`);
    }
  });

  test('the platform is the target\'s, not this machine\'s: a musl x64 target keeps only its own package', () => {
    const removed = prune.pruneNodeModules(SERVICE, nm, { cpu: 'x64', libc: 'musl' });
    assert.deepEqual(removed.platform.sort(), ['lib-darwin-arm64', 'lib-linux-arm64', 'lib-linux-arm64-musl', 'lib-linux-x64']);
  });

  test('a dependency missing from the tree stops it, naming both', () => {
    rmSync(path.join(nm, 'nan'), { recursive: true });
    assert.throws(() => prune.pruneNodeModules(SERVICE, nm, { cpu: 'arm64' }), {
      name: 'RangeError',
      message: 'node_modules/addon depends on nan, which no node_modules above it has',
    });
    assert.ok(existsSync(path.join(nm, 'node-gyp')), 'nothing is removed before the tree is known to be whole');
  });

  test('reads the interpreter through /usr/bin/env and its flags', () => {
    assert.equal(prune.interpreterOf('#!/usr/bin/env node'), 'node');
    assert.equal(prune.interpreterOf('#! /usr/bin/env -S node --flag'), 'node');
    assert.equal(prune.interpreterOf('#!/usr/bin/node'), 'node');
    assert.equal(prune.interpreterOf('#!/bin/bash -e'), 'bash');
    assert.equal(prune.interpreterOf('#!/usr/bin/env python3'), 'python3');
  });

  test('the command line refuses a bad option, CPU or C library and a missing tree, and changes nothing', () => {
    const pkgJson = path.join(dir, 'package.json');
    writeFileSync(pkgJson, JSON.stringify(SERVICE));
    const usage = 'usage: prune-node-modules.js --package package.json [--cpu ARCH] [--libc glibc|musl] NODE_MODULES_DIR';
    const cases: [string[], string][] = [
      [['--lock', pkgJson, nm], 'unknown option --lock; allowed: --package --cpu --libc'],
      [['--package', pkgJson, '--cpu', 'aarch64', nm], '--cpu aarch64; allowed: arm, arm64, ia32, loong64, mips, mipsel, ppc, ppc64, riscv64, s390, s390x, x64 (Node.js names, as npm.bbclass\'s NPM_ARCH)'],
      [['--package', pkgJson, '--libc', 'uclibc', nm], '--libc uclibc; allowed: glibc, musl'],
      [['--package', path.join(dir, 'nope.json'), nm], `--package ${path.join(dir, 'nope.json')}: no such file`],
      [['--package', pkgJson, path.join(dir, 'missing')], `${path.join(dir, 'missing')}: no such directory`],
      [[nm], 'wants --package and one node_modules directory'],
    ];
    for (const [args, message] of cases) {
      const r = spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8' });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr, `prune-node-modules.js: ${message}\n${usage}\n`);
    }
    assert.ok(existsSync(path.join(nm, 'node-gyp')) && existsSync(path.join(nm, 'lib', 'inc-version.sh')), 'a refused run removed something');
    const ok = spawnSync(process.execPath, [SCRIPT, '--package', pkgJson, '--cpu', 'arm64', nm], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, 'prune-node-modules.js: removed 3 build-only packages, 3 platform packages for other targets, 3 scripts for other interpreters\n');
  });
});
