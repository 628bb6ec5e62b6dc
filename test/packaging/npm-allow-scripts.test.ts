import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/service-process';

/**
 * package.json's allowScripts (npm 11's install-script policy) covers every
 * dependency that runs an install script, in the form npm matches: a registry
 * package by its name, a local directory by the spec npm writes for it
 * (`file:../native/sd-notify`, relative to node_modules). A local package's
 * name never matches: the policy said `stagebox-sd-notify` and every `npm ci`
 * warned "sd-notify@0.1.0 has install scripts not covered by allowScripts".
 */

interface LockEntry {
  dev?: boolean;
  link?: boolean;
  resolved?: string;
  hasInstallScript?: boolean;
}
const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { allowScripts: Record<string, boolean> };
const lock = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };

describe('allowScripts', () => {
  test('names every production package with an install script in the form npm matches, and nothing else', () => {
    const want: string[] = [];
    for (const [key, e] of Object.entries(lock.packages)) {
      if (!key.startsWith('node_modules/') || e.dev) continue;
      if (e.link) {
        if (lock.packages[e.resolved!]?.hasInstallScript) want.push(`file:../${e.resolved}`);
      } else if (e.hasInstallScript) {
        want.push(key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length));
      }
    }
    assert.deepEqual(Object.keys(pkg.allowScripts).sort(), [...new Set(want)].sort());
    assert.ok(Object.values(pkg.allowScripts).every((v) => v === true));
  });

  test('npm finds no install script it was not told about (what `npm ci` warns of)', (t) => {
    const r = spawnSync('npm', ['install-scripts', 'ls', '--json'], { cwd: REPO_ROOT, encoding: 'utf8' });
    if (r.status !== 0 && /Unknown command: "install-scripts"/.test(r.stderr)) {
      const v = spawnSync('npm', ['--version'], { encoding: 'utf8' }).stdout.trim();
      t.skip(`npm ${v} has no allowScripts (it runs every install script and warns of none)`);
      return;
    }
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { allowScripts: [] });
  });
});
