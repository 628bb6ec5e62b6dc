import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/service-process';
import { readInstallList } from './install-list';

/**
 * `make deb` for this machine's architecture, installed here with the real
 * dpkg (the tests run as root in a container without systemd as PID 1, so the
 * postinst enables the unit but starts nothing), then purged. Whatever
 * happens, the package and its user are removed at the end.
 */

const ARCH = spawnSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).stdout.trim();
const VERSION = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const DEB = path.join(REPO_ROOT, 'build', `stagebox_${VERSION}_${ARCH}.deb`);
const WANTS = '/etc/systemd/system/multi-user.target.wants/stagebox.service';
const CONFIG = '/etc/stagebox/stagebox.json';

function run(cmd: string, args: string[], timeout = 120_000): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd: REPO_ROOT, encoding: 'utf8', timeout });
}
function ok(cmd: string, args: string[], timeout?: number): string {
  const r = run(cmd, args, timeout);
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}
const installed = (): boolean => run('dpkg-query', ['-W', '-f', '${Status}', 'stagebox']).stdout === 'install ok installed';
const userExists = (): boolean => run('getent', ['passwd', 'stagebox']).status === 0;

describe('make deb', () => {
  before(() => {
    assert.equal(process.getuid?.(), 0, 'dpkg -i needs root');
    assert.ok(!installed() && !userExists(), 'a stagebox package or user is already on this machine; this test would remove it');
    ok('make', ['--no-print-directory', 'deb'], 600_000);
  });
  after(() => {
    if (run('dpkg-query', ['-W', 'stagebox']).status === 0) run('dpkg', ['--purge', 'stagebox']);
    if (userExists()) run('userdel', ['stagebox']);
    rmSync('/var/lib/private/stagebox', { recursive: true, force: true });
  });

  test('the control file declares Node.js 20, libasound2 and every /etc file as a conffile', () => {
    const depends = ok('dpkg-deb', ['-f', DEB, 'Depends']);
    assert.match(depends, /(^|, )nodejs \(>= 20\)(,|$)/m);
    assert.match(depends, /libasound2 \(>= [^)]+\)/);
    assert.equal(ok('dpkg-deb', ['-f', DEB, 'Architecture']).trim(), ARCH);
    const conffiles = ok('dpkg-deb', ['--info', DEB, 'conffiles']).trim().split('\n').sort();
    const etc = readInstallList().filter((e) => e.target.startsWith('/etc/')).map((e) => e.target).sort();
    assert.deepEqual(conffiles, etc);
    assert.ok(conffiles.includes(CONFIG));
  });

  test('installs, creates the user in audio, enables the unit, keeps an edited config, and purges clean', (t) => {
    // Debian 12's own nodejs is 18; this machine's comes from NodeSource as a package.
    const node = run('dpkg-query', ['-W', '-f', '${Version}', 'nodejs']).stdout;
    const nodeOk = node !== '' && run('dpkg', ['--compare-versions', node, 'ge', '20']).status === 0;
    if (!nodeOk) t.diagnostic(`nodejs package here: "${node}" (not >= 20): installing with --force-depends for the nodejs dependency only`);
    ok('dpkg', [...(nodeOk ? [] : ['--force-depends']), '-i', DEB]);
    assert.ok(installed(), 'dpkg does not list stagebox as installed');

    for (const e of readInstallList()) assert.ok(existsSync(e.target), `${e.target} is missing after dpkg -i`);
    assert.equal(ok('node', ['/usr/lib/stagebox/bin/stagebox.js', '--version']).trim(), VERSION);

    const registered = ok('dpkg-query', ['-W', '-f', '${Conffiles}', 'stagebox']);
    assert.match(registered, new RegExp(`^ ${CONFIG} [0-9a-f]{32}$`, 'm'));

    const [, , uid, , , home, shell] = ok('getent', ['passwd', 'stagebox']).trim().split(':');
    assert.ok(Number(uid) > 0 && Number(uid) < 1000, `uid ${uid} is not a system uid`);
    assert.equal(home, '/var/lib/stagebox');
    assert.equal(shell, '/usr/sbin/nologin');
    assert.ok(ok('id', ['-nG', 'stagebox']).trim().split(' ').includes('audio'), 'stagebox is not in group audio');

    assert.ok(lstatSync(WANTS).isSymbolicLink(), `${WANTS} is not a symlink`);
    assert.equal(readlinkSync(WANTS), '/lib/systemd/system/stagebox.service');

    // An admin's edit survives a reinstall (dpkg keeps a changed conffile whose packaged version did not change).
    const edited = `${JSON.stringify({ server: { port: 5199 } })}\n`;
    writeFileSync(CONFIG, edited);
    ok('dpkg', [...(nodeOk ? [] : ['--force-depends']), '-i', DEB]);
    assert.equal(readFileSync(CONFIG, 'utf8'), edited);
    assert.ok(ok('id', ['-nG', 'stagebox']).trim().split(' ').includes('audio'), 'reinstall dropped group audio');

    // Some state, where systemd (DynamicUser=yes) would keep it.
    mkdirSync('/var/lib/private/stagebox', { recursive: true });
    writeFileSync('/var/lib/private/stagebox/state.json', '{}');

    ok('dpkg', ['--purge', 'stagebox']);
    assert.equal(run('dpkg-query', ['-W', 'stagebox']).status, 1, 'dpkg still knows the package after purge');
    for (const e of readInstallList()) assert.ok(!existsSync(e.target), `${e.target} is left after purge`);
    for (const p of ['/usr/lib/stagebox', '/etc/stagebox', WANTS, '/var/lib/private/stagebox', '/var/lib/stagebox']) {
      assert.ok(!existsSync(p) && run('test', ['-L', p]).status !== 0, `${p} is left after purge`);
    }
    assert.ok(!userExists(), 'user stagebox is left after purge');
    assert.notEqual(run('getent', ['group', 'stagebox']).status, 0, 'group stagebox is left after purge');
  });

  test('refuses an architecture it cannot build, and node_modules built for another one', () => {
    const armhf = run('make', ['--no-print-directory', 'deb', 'DEB_ARCH=armhf'], 300_000);
    assert.equal(armhf.status, 2);
    assert.match(armhf.stderr, new RegExp(`make deb: DEB_ARCH=armhf is not supported; allowed: ${ARCH} \\(this machine\\) or arm64`));

    // This machine's addons in an arm64 package: the ELF check names the file.
    const wrong = run('sh', ['packaging/deb/build-deb.sh', '--arch', 'arm64', '--node-modules', 'build/prod/node_modules', '--dist', 'build/dist', '--out', 'build/test-wrong-arch']);
    const wrongDeb = path.join(REPO_ROOT, 'build', 'test-wrong-arch', `stagebox_${VERSION}_arm64.deb`);
    const built = existsSync(wrongDeb);
    rmSync(path.join(REPO_ROOT, 'build', 'test-wrong-arch'), { recursive: true, force: true });
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /\.node: ELF machine 62, but a arm64 package needs 183/);
    assert.ok(!built, 'a package was written despite the refusal');
  });
});
