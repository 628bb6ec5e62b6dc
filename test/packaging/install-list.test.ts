import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/service-process';
import { readInstallList } from './install-list';

/** The list itself, and packaging/install-tree.sh on inputs it must refuse. */

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? listFiles(p) : [p];
  });
}

test('every file under rootfs-overlay/ but its README is installed at its path under /', () => {
  const entries = readInstallList();
  const overlay = path.join(REPO_ROOT, 'rootfs-overlay');
  const files = listFiles(overlay).map((f) => path.relative(REPO_ROOT, f)).filter((f) => f !== 'rootfs-overlay/README.md');
  assert.ok(files.length >= 5, `overlay files: ${files}`);
  for (const f of files) {
    const e = entries.find((x) => x.source === f);
    assert.ok(e, `${f} has no line in packaging/install-files.txt`);
    assert.equal(e.target, `/${path.relative('rootfs-overlay', f)}`, f);
  }
});

test('every source the list names exists, and targets are absolute and unique', () => {
  const entries = readInstallList();
  const targets = new Set<string>();
  for (const e of entries) {
    assert.match(e.target, /^\//, `${e.source}: target ${e.target}`);
    assert.ok(!targets.has(e.target), `target ${e.target} twice`);
    targets.add(e.target);
    if (e.source.startsWith('@')) continue;
    const p = path.join(REPO_ROOT, e.source);
    assert.ok(existsSync(p), `${e.source} does not exist`);
    assert.equal(statSync(p).isDirectory(), e.kind === 'tree', `${e.source}: kind ${e.kind}`);
  }
  // The service, its unit, and the built parts the list names by placeholder.
  for (const t of ['/usr/lib/stagebox/bin/stagebox.js', '/lib/systemd/system/stagebox.service', '/usr/lib/stagebox/node_modules', '/usr/lib/stagebox/dist/src', '/usr/lib/stagebox/web']) {
    assert.ok(targets.has(t), `nothing installed at ${t}`);
  }
});

function runInstaller(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync('sh', [path.join(REPO_ROOT, 'packaging', 'install-tree.sh'), ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stderr: r.stderr };
}

test('install-tree.sh refuses a bad list line, a missing source and a relative prefix, naming each', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stagebox-install-list-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(path.join(dir, 'src'));
  writeFileSync(path.join(dir, 'src', 'a.txt'), 'a');
  const base = (list: string): string[] => ['--list', list, '--src', path.join(dir, 'src'), '--dist', dir, '--node-modules', dir, '--destdir', path.join(dir, 'out')];
  const write = (name: string, text: string): string => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  const three = runInstaller(base(write('three.txt', 'file 0644 a.txt\n')));
  assert.equal(three.status, 1);
  assert.match(three.stderr, /three\.txt: bad line: file 0644 a\.txt .*want: kind mode source target/);

  const kind = runInstaller(base(write('kind.txt', 'link 0644 a.txt /x\n')));
  assert.equal(kind.status, 1);
  assert.match(kind.stderr, /kind link; allowed: file, tree/);

  const missing = runInstaller(base(write('missing.txt', 'file 0644 b.txt /b\n')));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /missing\.txt: b\.txt: no such file/);

  const prefix = runInstaller([...base(write('ok.txt', 'file 0644 a.txt @PREFIX@/a\n')), '--prefix', 'usr']);
  assert.equal(prefix.status, 1);
  assert.match(prefix.stderr, /--prefix usr: must be an absolute path/);
  assert.ok(!existsSync(path.join(dir, 'out')), 'nothing may be installed after a refusal');

  // The same list with a good prefix installs, so the refusals above were about their inputs.
  const ok = runInstaller([...base(path.join(dir, 'ok.txt')), '--prefix', '/opt/sb']);
  assert.equal(ok.status, 0, ok.stderr);
  assert.ok(existsSync(path.join(dir, 'out', 'opt', 'sb', 'a')));
});
