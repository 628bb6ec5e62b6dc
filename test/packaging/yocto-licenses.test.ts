import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/service-process';
import { bbVars, RECIPE_DIR, recipeFile } from './recipe';

/**
 * The recipe's licence declaration (stagebox-licenses.inc, `make
 * yocto-licenses`): the service and every npm module it ships, from the
 * lockfile, in the names poky's common-licenses has, and never stale.
 */

const INC = path.join(RECIPE_DIR, 'stagebox-licenses.inc');
const gen = require(path.join(REPO_ROOT, 'packaging', 'yocto-licenses.js')) as {
  renderInc(lock: unknown, nodeModules: string): string;
  toBitbake(spdx: unknown, where: string): { expr: string; names: string[] };
  recipePackage(key: string): string;
  COMMON_LICENSES: Record<string, string>;
  BUNDLED: Record<string, { file: string; license: string }[]>;
};
const { runtimePackages } = require(path.join(REPO_ROOT, 'packaging', 'runtime-packages.js')) as { runtimePackages(lock: unknown): string[] };

interface LockEntry {
  license?: string;
  link?: boolean;
  resolved?: string;
  os?: string[];
  libc?: string[];
  dev?: boolean;
}
const lock = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };

describe('stagebox-licenses.inc', () => {
  test('is what `make yocto-licenses` writes from the current lockfile and node_modules (not stale)', () => {
    assert.equal(readFileSync(INC, 'utf8'), gen.renderInc(lock, path.join(REPO_ROOT, 'node_modules')));
  });

  test('the recipe takes LICENSE and LIC_FILES_CHKSUM from it and sets neither itself', () => {
    const text = readFileSync(recipeFile(), 'utf8');
    assert.match(text, /^require stagebox-licenses\.inc$/m);
    assert.ok(!bbVars(recipeFile()).has('LICENSE') && !bbVars(recipeFile()).has('LIC_FILES_CHKSUM'), 'the recipe sets LICENSE or LIC_FILES_CHKSUM');
  });

  test('LICENSE lists exactly the licences of the service, the modules it ships and what their addons bundle', () => {
    const inc = bbVars(INC);
    const want = new Set<string>(gen.toBitbake(lock.packages['']!.license, 'package.json').names);
    const shipped = runtimePackages(lock);
    for (const key of shipped) {
      const e = lock.packages[key]!.link ? lock.packages[lock.packages[key]!.resolved!]! : lock.packages[key]!;
      if (e.os && !e.os.includes('linux')) continue;
      if (e.libc && !e.libc.includes('glibc')) continue;
      for (const n of gen.toBitbake(e.license, key).names) want.add(n);
      for (const b of gen.BUNDLED[key] ?? []) want.add(b.license);
    }
    assert.deepEqual(inc.get('LICENSE')!.split(' & '), [...want].sort());
    for (const n of want) assert.ok(n in gen.COMMON_LICENSES, `${n} is not one of poky's common licences known here`);
    // Build tools are not shipped, so not declared.
    assert.ok(!shipped.includes('node_modules/node-gyp'), 'node-gyp is counted as shipped');
    assert.ok(!readFileSync(INC, 'utf8').includes('node_modules/node-gyp/'), 'node-gyp is declared');
  });

  test('one LICENSE:${PN}-<module> per shipped module, named as recipetool names them, and a checksum for each', () => {
    const text = readFileSync(INC, 'utf8');
    const perModule = [...text.matchAll(/^LICENSE:(\$\{PN\}-\S+) = "([^"]+)"$/gm)].map((m) => m[1]);
    const shipped = runtimePackages(lock).filter((k) => {
      const e = lock.packages[k]!.link ? lock.packages[lock.packages[k]!.resolved!]! : lock.packages[k]!;
      return !(e.os && !e.os.includes('linux')) && !(e.libc && !e.libc.includes('glibc'));
    });
    assert.deepEqual(perModule, shipped.map((k) => gen.recipePackage(k)));
    assert.equal(gen.recipePackage('node_modules/@discordjs/opus'), '${PN}-discordjs-opus');
    assert.equal(gen.recipePackage('node_modules/a/node_modules/string_decoder'), '${PN}-a-stringdecoder');
    assert.match(text, /^LICENSE:\$\{PN\}-discordjs-opus = "MIT & BSD-3-Clause"$/m, 'libopus (BSD-3-Clause) is compiled into opus.node');
    const chksums = bbVars(INC).get('LIC_FILES_CHKSUM')!.split(/\s+/).filter(Boolean);
    for (const c of chksums) assert.match(c, /^file:\/\/(\$\{COMMON_LICENSE_DIR\}\/[\w.-]+|node_modules\/\S+);md5=[0-9a-f]{32}$/, c);
    // Every module is covered by a licence file of its own or by poky's text of its licence.
    for (const k of shipped) {
      const own = chksums.some((c) => c.startsWith(`file://${k}/`) && !c.slice(`file://${k}/`.length).includes('node_modules/'));
      const e = lock.packages[k]!.link ? lock.packages[lock.packages[k]!.resolved!]! : lock.packages[k]!;
      const common = gen.toBitbake(e.license, k).names.every((n) => chksums.some((c) => c.startsWith(`file://\${COMMON_LICENSE_DIR}/${n};`)));
      assert.ok(own || common, `${k}: no licence file checksum`);
    }
  });

  test('the generator refuses a licence poky has no text for, and a module without one, naming the module', () => {
    assert.deepEqual(gen.toBitbake('(MIT OR Apache-2.0) AND ISC', 'x'), { expr: '(MIT | Apache-2.0) & ISC', names: ['MIT', 'Apache-2.0', 'ISC'] });
    const known = Object.keys(gen.COMMON_LICENSES).join(', ');
    assert.throws(() => gen.toBitbake('WTFPL', 'package-lock.json node_modules/x'), {
      name: 'RangeError',
      message: `package-lock.json node_modules/x: license WTFPL: WTFPL is not one of poky's common licences known here (${known}); add its md5 from poky's meta/files/common-licenses to COMMON_LICENSES in packaging/yocto-licenses.js`,
    });
    assert.throws(() => gen.toBitbake(undefined, 'package-lock.json node_modules/y'), {
      name: 'RangeError',
      message: `package-lock.json node_modules/y: license undefined; allowed: an SPDX expression of ${known}`,
    });
  });
});
