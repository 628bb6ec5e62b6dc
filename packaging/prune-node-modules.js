#!/usr/bin/env node
'use strict';
// stagebox: removes from an installed node_modules what the service never
// runs, for packaging/install-tree.sh (make install, make deb, the Yocto
// recipe's do_install):
//  - packages only the addon build needs (node-gyp and what nothing else
//    uses): whatever the service's dependencies do not reach in this tree
//    (packaging/runtime-packages.js), however npm laid it out;
//  - platform packages for another system, CPU or C library (their package.json
//    "os", "cpu", "libc"): npm.bbclass installs every one (its local registry
//    does not tell npm their platform), and an addon for another CPU would
//    fail Yocto's QA (arch) and never load;
//  - scripts for any interpreter but node (`#!/bin/bash` release helpers, git
//    hooks, test scripts): the service only loads JavaScript and addons, and an
//    executable `#!/bin/bash` would need bash on the image (Yocto QA file-rdeps).
//
// usage: prune-node-modules.js --package package.json [--cpu ARCH] [--libc glibc|musl] NODE_MODULES_DIR
//   --package: the service's package.json (its dependencies are the roots)
//   --cpu: the target's Node.js arch (x64, arm64...; default this machine's)

const fs = require('node:fs');
const path = require('node:path');
const { reachablePackages } = require('./runtime-packages.js');

/**
 * The interpreter a script names, with `/usr/bin/env` looked through
 * (`#!/usr/bin/env -S node --flag` -> `node`).
 * @param {string} line the first line of a file, starting with `#!`
 * @returns {string} the interpreter's basename
 */
function interpreterOf(line) {
  const words = line.slice(2).trim().split(/\s+/);
  let i = 0;
  if (path.basename(words[0] ?? '') === 'env') {
    i = 1;
    while (words[i]?.startsWith('-')) i++;
  }
  return path.basename(words[i] ?? '');
}

/** The first line of a file when it starts with `#!`, else null. */
function shebangOf(file) {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(256);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    if (n < 2 || buf[0] !== 0x23 || buf[1] !== 0x21) return null;
    return buf.subarray(0, n).toString('latin1').split('\n')[0];
  } finally {
    fs.closeSync(fd);
  }
}

/** process.arch's values: what npm's "cpu" fields name. */
const NODE_ARCHES = ['arm', 'arm64', 'ia32', 'loong64', 'mips', 'mipsel', 'ppc', 'ppc64', 'riscv64', 's390', 's390x', 'x64'];

/** npm's rule for "os"/"cpu"/"libc": a list of allowed values, or of "!value" exclusions. */
function platformAllows(list, value) {
  if (list === undefined) return true;
  const values = Array.isArray(list) ? list : [list];
  if (values.includes(`!${value}`)) return false;
  const allowed = values.filter((v) => !v.startsWith('!'));
  return allowed.length === 0 || allowed.includes(value);
}

/** Every package directory in a node_modules tree, nested ones included. */
function* packageDirs(nodeModules) {
  for (const e of fs.readdirSync(nodeModules, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name.startsWith('.')) continue;
    const dirs = e.name.startsWith('@')
      ? fs.readdirSync(path.join(nodeModules, e.name), { withFileTypes: true }).filter((s) => s.isDirectory()).map((s) => path.join(nodeModules, e.name, s.name))
      : [path.join(nodeModules, e.name)];
    for (const dir of dirs) {
      yield dir;
      if (fs.existsSync(path.join(dir, 'node_modules'))) yield* packageDirs(path.join(dir, 'node_modules'));
    }
  }
}

function* filesUnder(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* filesUnder(p);
    else if (e.isFile()) yield p;
  }
}

const readManifest = (dir) => {
  const file = path.join(dir, 'package.json');
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : null;
};

/**
 * @param {object} manifest the service's package.json (parsed)
 * @param {string} nodeModules the installed node_modules directory
 * @param {{ cpu?: string, libc?: string }} [target] the Node.js arch and C library the tree is for
 *   (default this machine's arch, glibc: poky's and Debian's)
 * @returns {{ platform: string[], packages: string[], scripts: string[] }} what was removed, relative to nodeModules
 */
function pruneNodeModules(manifest, nodeModules, target = {}) {
  const cpu = target.cpu ?? process.arch;
  const libc = target.libc ?? 'glibc';
  // Locations as in a lockfile: node_modules/a/node_modules/b, whatever the directory is called.
  const locationOf = (dir) => `node_modules/${path.relative(nodeModules, dir)}`;
  const dirs = [...packageDirs(nodeModules)];
  const otherTarget = new Set(dirs.filter((dir) => {
    const pkg = readManifest(dir);
    return pkg && !(platformAllows(pkg.os, 'linux') && platformAllows(pkg.cpu, cpu) && platformAllows(pkg.libc, libc));
  }).map(locationOf));
  // Another target's package counts as absent: it is an optional dependency.
  const lookup = (location) => {
    if (location === '') return manifest;
    if (otherTarget.has(location)) return null;
    return readManifest(path.join(nodeModules, location.slice('node_modules/'.length)));
  };
  // Throws before anything is removed when the tree is not whole.
  const keep = reachablePackages(lookup);
  const platform = [];
  const packages = [];
  for (const dir of dirs) {
    const location = locationOf(dir);
    if (keep.has(location) || !fs.existsSync(dir)) continue;
    fs.rmSync(dir, { recursive: true, force: true });
    (otherTarget.has(location) ? platform : packages).push(path.relative(nodeModules, dir));
  }
  const scripts = [];
  for (const file of filesUnder(nodeModules)) {
    const line = shebangOf(file);
    if (line !== null && interpreterOf(line) !== 'node') {
      fs.rmSync(file);
      scripts.push(path.relative(nodeModules, file));
    }
  }
  return { platform, packages, scripts };
}

module.exports = { pruneNodeModules, interpreterOf };

if (require.main === module) {
  const usage = 'usage: prune-node-modules.js --package package.json [--cpu ARCH] [--libc glibc|musl] NODE_MODULES_DIR';
  const fail = (msg) => {
    process.stderr.write(`prune-node-modules.js: ${msg}\n${usage}\n`);
    process.exit(2);
  };
  const args = process.argv.slice(2);
  const opts = {};
  while (args.length > 1 && args[0].startsWith('--')) {
    const [flag, value] = args.splice(0, 2);
    if (!['--package', '--cpu', '--libc'].includes(flag)) fail(`unknown option ${flag}; allowed: --package --cpu --libc`);
    opts[flag.slice(2)] = value;
  }
  if (args.length !== 1 || !opts.package) fail('wants --package and one node_modules directory');
  if (opts.libc !== undefined && !['glibc', 'musl'].includes(opts.libc)) fail(`--libc ${opts.libc}; allowed: glibc, musl`);
  if (opts.cpu !== undefined && !NODE_ARCHES.includes(opts.cpu)) fail(`--cpu ${opts.cpu}; allowed: ${NODE_ARCHES.join(', ')} (Node.js names, as npm.bbclass's NPM_ARCH)`);
  const dir = args[0];
  if (!fs.existsSync(opts.package)) fail(`--package ${opts.package}: no such file`);
  if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) fail(`${dir}: no such directory`);
  const manifest = JSON.parse(fs.readFileSync(opts.package, 'utf8'));
  let removed;
  try {
    removed = pruneNodeModules(manifest, dir, { cpu: opts.cpu, libc: opts.libc });
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    process.stderr.write(`prune-node-modules.js: ${dir}: ${err.message}\n`);
    process.exit(1);
  }
  const { packages, platform, scripts } = removed;
  process.stdout.write(`prune-node-modules.js: removed ${packages.length} build-only packages, ${platform.length} platform packages for other targets, ${scripts.length} scripts for other interpreters\n`);
}
