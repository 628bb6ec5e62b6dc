import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, startService, stopAllServices } from '../helpers/service-process';
import { httpRequest } from '../helpers/http-client';
import { NotifySocket } from '../helpers/notify-socket';
import { readInstallList } from './install-list';

/**
 * `make install DESTDIR=<tmp>`: the real Makefile target (tsc of src/, npm ci
 * --omit=dev with native addons built, packaging/install-tree.sh), then the
 * staged tree is checked and the staged service started from it, away from
 * the repository.
 */

const LIB = 'usr/lib/stagebox';
let destdir = '';
const sockets: NotifySocket[] = [];

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    const st = statSync(p);
    return st.isDirectory() ? [p, ...walk(p)] : [p];
  });
}
const mode = (p: string): number => statSync(p).mode & 0o7777;

describe('make install', () => {
  before(() => {
    destdir = mkdtempSync(path.join(os.tmpdir(), 'stagebox-destdir-'));
    // make test builds build/prod first; run alone, the first run builds it (~1-2 min, over the 120 s file limit at load).
    const r = spawnSync('make', ['--no-print-directory', 'install', `DESTDIR=${destdir}`], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 600_000 });
    assert.equal(r.status, 0, `make install failed:\n${r.stdout}\n${r.stderr}`);
  });
  after(async () => {
    await stopAllServices();
    for (const s of sockets) s.close();
    rmSync(destdir, { recursive: true, force: true });
  });

  test('every entry of packaging/install-files.txt is at its target with its mode', () => {
    for (const e of readInstallList()) {
      const p = path.join(destdir, e.target);
      assert.ok(existsSync(p), `${e.target} (from ${e.source}) was not installed`);
      if (e.kind === 'file') {
        assert.ok(statSync(p).isFile(), e.target);
        assert.equal(mode(p).toString(8), Number.parseInt(e.mode, 8).toString(8), `${e.target} mode`);
      } else {
        for (const f of walk(p)) {
          const st = statSync(f);
          if (st.isDirectory()) assert.equal(mode(f).toString(8), '755', f);
          // node_modules: only the addons (shared objects) are executable.
          else if (e.mode === 'modules') assert.equal(mode(f).toString(8), f.endsWith('.node') ? '755' : '644', f);
          else assert.equal(mode(f).toString(8), Number.parseInt(e.mode, 8).toString(8), f);
        }
      }
    }
    assert.equal(readFileSync(path.join(destdir, 'lib/systemd/system/stagebox.service'), 'utf8'), readFileSync(path.join(REPO_ROOT, 'systemd/stagebox.service'), 'utf8'));
  });

  test('the web tree is installed whole, where the dashboard looks for it', () => {
    const src = walk(path.join(REPO_ROOT, 'web')).filter((f) => statSync(f).isFile()).map((f) => path.relative(REPO_ROOT, f)).sort();
    const got = walk(path.join(destdir, LIB, 'web')).filter((f) => statSync(f).isFile()).map((f) => path.relative(path.join(destdir, LIB), f)).sort();
    assert.deepEqual(got, src);
  });

  test('dist holds the service and the browser build of the client library only: no tests, benchmarks or source maps', () => {
    assert.deepEqual(readdirSync(path.join(destdir, LIB, 'dist')).sort(), ['src', 'web'], 'the service and the client library\'s browser build');
    const files = walk(path.join(destdir, LIB, 'dist')).filter((f) => statSync(f).isFile());
    assert.ok(files.some((f) => f.endsWith('/dist/src/main.js')));
    for (const f of files) {
      assert.match(f, /\.js$/, `${f} is not compiled JavaScript`);
      assert.doesNotMatch(f, /\.test\.js$|\/test\/|\/bench\//, f);
    }
  });

  test('node_modules is production only, with native addons built and no build scratch', () => {
    const nm = path.join(destdir, LIB, 'node_modules');
    const top = readdirSync(nm);
    for (const dev of ['typescript', 'playwright-core']) assert.ok(!top.includes(dev), `devDependency ${dev} was installed`);
    assert.ok(!top.includes('.bin'), 'node_modules/.bin is for development');
    // The file: dependency is a real directory, not a link back into a build dir.
    assert.ok(statSync(path.join(nm, 'stagebox-sd-notify')).isDirectory());
    const addons = walk(nm).filter((f) => f.endsWith('.node')).map((f) => path.relative(nm, f));
    for (const pkg of ['alsa-capture/', 'stagebox-sd-notify/', '@discordjs/opus/']) {
      assert.ok(addons.some((a) => a.startsWith(pkg)), `no built addon under ${pkg}: ${addons}`);
    }
    const scratch = walk(nm).filter((f) => /\/(build\/Release\/obj\.target|build-tmp-[^/]+|build\/Makefile)(\/|$)|\.o$|\.a$/.test(f));
    assert.deepEqual(scratch, [], 'node-gyp scratch left in node_modules');
    // What the service never runs: the build tool, and scripts for other interpreters.
    assert.ok(!top.includes('node-gyp'), 'node-gyp, a build tool, was installed');
    assert.ok(!existsSync(path.join(nm, 'pino', 'inc-version.sh')), 'pino/inc-version.sh (#!/bin/bash) was installed');
  });

  test('the staged service prints its version and serves the dashboard from the staged tree', async () => {
    const bin = path.join(destdir, LIB, 'bin', 'stagebox.js');
    const version = spawnSync(process.execPath, [bin, '--version'], { cwd: os.tmpdir(), encoding: 'utf8', timeout: 30_000 });
    assert.equal(version.status, 0, version.stderr);
    assert.equal(version.stdout.trim(), JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).version);

    // A notify socket makes the service load its sd-notify addon (READY=1), as under systemd.
    const notify = await NotifySocket.open();
    sockets.push(notify);
    const svc = await startService({ mainJs: bin, cwd: os.tmpdir(), label: 'staged', startTimeoutMs: 30_000, env: { NOTIFY_SOCKET: notify.address } });
    await notify.waitFor((m) => m.fields.READY === '1', 30_000, 'READY=1');
    const page = await httpRequest(svc.port, 'GET', '/');
    assert.equal(page.status, 200);
    const script = /<script src="(dashboard\.js[^"]*)"/.exec(page.body)?.[1];
    assert.ok(script, `no dashboard script in ${page.body}`);
    const js = await httpRequest(svc.port, 'GET', `/${script}`);
    assert.equal(js.status, 200);
    assert.equal(js.body, readFileSync(path.join(destdir, LIB, 'web', 'dashboard', 'dashboard.js'), 'utf8'));
    // The listener page and the client library's browser build it loads.
    const listen = await httpRequest(svc.port, 'GET', '/listen/');
    assert.equal(listen.status, 200, 'the listener page is served from the staged tree');
    const lib = await httpRequest(svc.port, 'GET', '/listen/client/index.js');
    assert.equal(lib.status, 200, 'the client library browser build is installed');
    assert.equal(lib.body, readFileSync(path.join(destdir, LIB, 'dist', 'web', 'client', 'index.js'), 'utf8'));
    assert.ok(!svc.logs.some((l) => /unreadable/.test(String(l.msg))), 'no part of the web tree is missing');
    // Its native addons were loaded from the staged tree, not from the repository.
    const maps = readFileSync(`/proc/${svc.proc.pid}/maps`, 'utf8');
    const addons = [...new Set(maps.split('\n').map((l) => l.split(/\s+/)[5] ?? '').filter((f) => f.endsWith('.node')))];
    assert.ok(addons.length >= 1, 'no native addon loaded');
    for (const a of addons) assert.ok(a.startsWith(`${destdir}/`), `${a} was loaded from outside the staged tree`);
  });
});
