#!/usr/bin/env node
'use strict';
// stagebox: writes the Yocto recipe's npm-shrinkwrap.json from package-lock.json
// (`make yocto-shrinkwrap`). BitBake's npmsw:// fetcher needs what this repo's
// lockfile leaves out or spells differently:
//  - a "resolved" URL on every registry package: the lockfile has none
//    (.npmrc omit-lockfile-registry-resolved), and npmsw skips entries without;
//  - local packages as "file:<dir>": npm writes the file: dependency as a link
//    entry plus an entry keyed by its directory, neither of which npmsw reads.
// Everything else (versions, integrity, dev/optional flags) is copied as is.

const fs = require('node:fs');

const REGISTRY = 'https://registry.npmjs.org';

/** The registry tarball URL npm itself would record for name@version. */
function registryUrl(name, version) {
  const base = name.startsWith('@') ? name.split('/')[1] : name;
  return `${REGISTRY}/${name}/-/${base}-${version}.tgz`;
}

/**
 * @param {object} lock a parsed package-lock.json, lockfileVersion 2 or 3
 * @returns {object} the shrinkwrap for npmsw://
 */
function toShrinkwrap(lock) {
  if (!(lock.lockfileVersion >= 2) || typeof lock.packages !== 'object') {
    throw new RangeError(`package-lock.json: lockfileVersion ${lock.lockfileVersion}; allowed: 2 or 3 (with "packages")`);
  }
  const packages = {};
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (key === '') {
      packages[key] = entry;
    } else if (!key.startsWith('node_modules/') && !key.includes('/node_modules/')) {
      // The directory of a local package: folded into its link below.
      continue;
    } else if (entry.link) {
      const local = lock.packages[entry.resolved];
      if (!local) throw new RangeError(`package-lock.json: ${key} links to ${entry.resolved}, which has no entry`);
      const { name: _name, version: _version, ...rest } = local;
      packages[key] = { version: `file:${entry.resolved}`, ...rest };
    } else {
      if (!entry.version || !entry.integrity) {
        throw new RangeError(`package-lock.json: ${key} has no version or integrity: ${JSON.stringify(entry)}`);
      }
      const name = entry.name ?? key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
      packages[key] = { ...entry, resolved: entry.resolved ?? registryUrl(name, entry.version) };
    }
  }
  return { name: lock.name, version: lock.version, lockfileVersion: lock.lockfileVersion, requires: true, packages };
}

module.exports = { toShrinkwrap, registryUrl };

if (require.main === module) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: yocto-shrinkwrap.js package-lock.json > npm-shrinkwrap.json\n');
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify(toShrinkwrap(JSON.parse(fs.readFileSync(file, 'utf8'))), null, 2)}\n`);
}
