#!/usr/bin/env node
'use strict';
// stagebox: writes the Yocto recipe's licence declaration, stagebox-licenses.inc
// (`make yocto-licenses`), for the service and every npm module it ships
// (packaging/runtime-packages.js: the production tree without build tools).
// It follows what poky's `recipetool create` writes for an npm project
// (scripts/lib/recipetool/create_npm.py, scarthgap):
//  - LIC_FILES_CHKSUM: each module's own licence file, by its path under ${S}
//    (npmsw:// unpacks the modules to ${S}/node_modules), with its md5; a
//    module without one, and a platform package (present only on its own CPU),
//    falls back to poky's text of its licence in ${COMMON_LICENSE_DIR};
//  - LICENSE: every licence, joined with &;
//  - LICENSE:${PN}-<module> per module, named as recipetool names them.
// The licence of each module is its package.json's (the lockfile's "license"),
// with SPDX's OR/AND written as BitBake's | and &.

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { runtimePackages } = require('./runtime-packages.js');

/** poky scarthgap meta/files/common-licenses: name -> md5 of the file (add a licence here from that folder). */
const COMMON_LICENSES = {
  '0BSD': 'f667a3c3830a55a17ec3067709f4526c',
  'Apache-2.0': '89aea4e17d99a7cacdbeed46a0096b10',
  'BSD-2-Clause': 'cb641bc04cda31daea161b1bc15da69f',
  'BSD-3-Clause': '550794465ba0ec5312d6919e203a55f9',
  'BlueOak-1.0.0': '95e9f67f2840df3a3a09a77ef3aea34b',
  'CC0-1.0': '0ceb3372c9595f0a8067e55da801e4a1',
  ISC: 'f3b90e78ea0cffb20bf5cca7947a896d',
  MIT: '0835ade698e0bcf8506ecda2f7b4f302',
  'MPL-2.0': '815ca599c9df247a0c7f619bab123dad',
  'Python-2.0': 'a5c8025e305fb49e6d405769358851f6',
  Unlicense: '7246f848faa4e9c9fc0ea91122d6e680',
};

/**
 * Code compiled into a module's addon under a licence of its own, which the
 * module's package.json does not name.
 */
const BUNDLED = {
  // libopus, built from the bundled sources into opus.node.
  'node_modules/@discordjs/opus': [{ file: 'deps/opus/COPYING', license: 'BSD-3-Clause' }],
};

/** recipetool's licence file patterns (create.py guess_license), at a module's top. */
const LICENSE_FILE = /^(.*licen[cs]e.*|copying.*|legal.*|copyright.*)$/i;
const NOT_A_LICENSE_FILE = /\.(html|js|json|svg|ts|go)$/;

/** bb.fetch2.npm.npm_package: the name recipetool derives a package name from. */
function npmPackage(name) {
  return name.replace(/\//g, '-').toLowerCase().replace(/[^-a-z0-9]/g, '').replace(/^-+|-+$/g, '');
}

/** `${PN}-a-b` for `node_modules/a/node_modules/b`, as create_npm.py's _handle_dependency. */
function recipePackage(key) {
  return `\${PN}${key.split('node_modules/').map(npmPackage).join('-')}`;
}

/**
 * An SPDX expression as BitBake writes it: OR -> |, AND -> &, every name one poky has.
 * @returns {{ expr: string, names: string[] }}
 */
function toBitbake(spdx, where) {
  if (typeof spdx !== 'string' || spdx.trim() === '') {
    throw new RangeError(`${where}: license ${JSON.stringify(spdx)}; allowed: an SPDX expression of ${Object.keys(COMMON_LICENSES).join(', ')}`);
  }
  const tokens = spdx.replace(/[()]/g, ' $& ').trim().split(/\s+/);
  const names = [];
  const out = tokens.map((t) => {
    if (t === 'OR') return '|';
    if (t === 'AND') return '&';
    if (t === '(' || t === ')') return t;
    if (!(t in COMMON_LICENSES)) {
      throw new RangeError(`${where}: license ${spdx}: ${t} is not one of poky's common licences known here (${Object.keys(COMMON_LICENSES).join(', ')}); add its md5 from poky's meta/files/common-licenses to COMMON_LICENSES in packaging/yocto-licenses.js`);
    }
    names.push(t);
    return t;
  });
  return { expr: out.join(' ').replace(/\( /g, '(').replace(/ \)/g, ')'), names };
}

const md5 = (file) => crypto.createHash('md5').update(fs.readFileSync(file)).digest('hex');

/** Shipped on a Linux image with glibc (poky's default); platform packages for other systems are not. */
function shippedOnLinux(entry) {
  if (entry.os && !entry.os.includes('linux')) return false;
  if (entry.libc && !entry.libc.includes('glibc')) return false;
  return true;
}

/**
 * @param {object} lock parsed package-lock.json
 * @param {string} nodeModules a node_modules installed from it (npm ci), for the licence files
 * @returns {{ license: string[], chksums: string[], modules: { pkg: string, key: string, license: string }[] }}
 */
function collectLicenses(lock, nodeModules) {
  const root = lock.packages[''];
  const common = new Set();
  const chksums = [];
  const all = new Set();
  const modules = [];
  const own = toBitbake(root.license, 'package.json');
  for (const n of own.names) { all.add(n); common.add(n); }

  const pkgNames = new Map();
  for (const key of runtimePackages(lock)) {
    const entry = lock.packages[key].link ? lock.packages[lock.packages[key].resolved] : lock.packages[key];
    if (!shippedOnLinux(entry)) continue;
    const { expr, names } = toBitbake(entry.license, `package-lock.json ${key}`);
    let license = expr;
    const dir = path.join(nodeModules, key.slice('node_modules/'.length));
    // A platform package is only in node_modules on its own CPU: poky's text keeps the list the same everywhere.
    const files = entry.cpu ? [] : licenseFiles(dir, key);
    for (const f of files) chksums.push(`file://${key}/${f};md5=${md5(path.join(dir, f))}`);
    if (files.length === 0) for (const n of names) common.add(n);
    for (const b of BUNDLED[key] ?? []) {
      const p = path.join(dir, b.file);
      if (!fs.existsSync(p)) throw new RangeError(`${key}: bundled licence file ${b.file} is missing from ${dir}`);
      chksums.push(`file://${key}/${b.file};md5=${md5(p)}`);
      names.push(...toBitbake(b.license, `${key}/${b.file}`).names);
      license = `${license.includes('|') ? `(${license})` : license} & ${b.license}`;
    }
    for (const n of names) all.add(n);
    const pkg = recipePackage(key);
    if (pkgNames.has(pkg)) throw new RangeError(`${key} and ${pkgNames.get(pkg)} both become the package name ${pkg}`);
    pkgNames.set(pkg, key);
    modules.push({ pkg, key, license });
  }
  const commonChksums = [...common].sort().map((n) => `file://\${COMMON_LICENSE_DIR}/${n};md5=${COMMON_LICENSES[n]}`);
  return { license: [...all].sort(), chksums: [...commonChksums, ...chksums], modules };
}

function licenseFiles(dir, key) {
  if (!fs.existsSync(path.join(dir, 'package.json'))) {
    throw new RangeError(`${key}: not installed at ${dir}; run npm ci first (make yocto-licenses reads the licence files in node_modules)`);
  }
  return fs.readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && LICENSE_FILE.test(e.name) && !NOT_A_LICENSE_FILE.test(e.name))
    .map((e) => e.name)
    .sort();
}

/** The text of stagebox-licenses.inc. */
function renderInc(lock, nodeModules) {
  const { license, chksums, modules } = collectLicenses(lock, nodeModules);
  const lines = [
    '# stagebox-licenses.inc: generated by `make yocto-licenses` (packaging/yocto-licenses.js)',
    '# from package-lock.json and the licence files in node_modules. Do not edit:',
    '# test/packaging/yocto-licenses.test.ts fails when it is stale.',
    `# The stagebox package ships the service and ${modules.length} npm modules (build-only ones`,
    '# such as node-gyp are not installed); recipetool-style checksums: each',
    "# module's own licence file where it has one, else poky's text of its licence.",
    `LICENSE = "${license.join(' & ')}"`,
    'LIC_FILES_CHKSUM = " \\',
    ...chksums.map((c) => `    ${c} \\`),
    '"',
    '',
    '# Per module, as recipetool writes them. Records only: the npm class installs',
    '# every module in ${PN}, whose LICENSE is the whole list above.',
    ...modules.map((m) => `LICENSE:${m.pkg} = "${m.license}"`),
    '',
  ];
  return lines.join('\n');
}

module.exports = { collectLicenses, renderInc, toBitbake, recipePackage, COMMON_LICENSES, BUNDLED };

if (require.main === module) {
  const [lockFile, nodeModules] = process.argv.slice(2);
  if (!lockFile || !nodeModules) {
    process.stderr.write('usage: yocto-licenses.js package-lock.json NODE_MODULES_DIR > stagebox-licenses.inc\n');
    process.exit(2);
  }
  process.stdout.write(renderInc(JSON.parse(fs.readFileSync(lockFile, 'utf8')), nodeModules));
}
