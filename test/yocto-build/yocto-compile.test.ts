import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, closeSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/service-process';
import { configureMainPackage, npmPack, startLocalRegistry, unpackAndPatch, type LocalRegistry } from './npm-bbclass';
import { INTERPRETERS, RECIPE_DIR, recipePatches, recipeRdepends } from '../packaging/recipe';
import { makePythonWithoutDistutils, REMOVED_IN_312 } from './python-without-distutils';

/**
 * The recipe's do_compile, reproduced outside BitBake: scarthgap's Python is
 * 3.12, which has no distutils, and node-gyp 9 (what alsa-capture asks for)
 * runs a gyp that imports it. This builds the addons the way npm.bbclass
 * (poky scarthgap) does (./npm-bbclass.ts): the shrinkwrap's packages in a
 * local registry, the main package packed, `npm install <tarball>` global
 * with the class's configuration (npm.bbclass's config file: global into a
 * prefix, only=production, arch, release, nodedir, python; its arguments
 * target_arch, build-from-source, legacy-peer-deps; the recipe's EXTRA_OENPM
 * --cpu and --os; HOME in a scratch directory), with Node 20's own npm 10 and
 * the build's python3 on PATH. npm reads no shrinkwrap from a file tarball and
 * no overrides outside the root project (a global install has none): every
 * range resolves against the registry, and alsa-capture asks for node-gyp
 * ^9.3.0 unless the recipe's patch changes that. The class's registry does not
 * tell npm which platform a package is for, so npm installs every
 * @napi-rs/nice-* prebuilt: the recipe's do_install (packaging/install-tree.sh)
 * must leave only the target's, or QA (arch) fails.
 * Differences, and why: the fetched tarballs come from npm's cache (filled by
 * npm ci), other CPUs' prebuilts are missing from it, and the registry is
 * served on loopback (BitBake's fetch and oe-npm-cache cannot run here); the
 * build is for this machine, not cross (the question is Python, not the
 * compiler; `make check-arm64` cross-builds); do_install's tsc output is an
 * empty stand-in (node_modules is what is checked).
 * The Python is Debian's 3.11 with distutils, setuptools and _distutils_hack
 * out of its reach; the control shows that this is enough to break gyp 9.
 */

const GYP9 = path.join(REPO_ROOT, 'build', 'fixtures', 'node-gyp-9.4.1');
/** npm 10.8.2, the npm Node 20 (scarthgap's nodejs-native) bundles, unpacked by `make yocto-fixtures`. */
const NPM10 = path.join(REPO_ROOT, 'build', 'fixtures', 'npm-10.8.2', 'bin', 'npm-cli.js');
const SHRINKWRAP = path.join(RECIPE_DIR, 'stagebox', 'npm-shrinkwrap.json');
const NPM_ARCH = process.arch;
/** e_machine of this machine's ELF files (the target here). */
const ELF_MACHINE: Record<string, number> = { x64: 62, arm64: 183 };
const NODE_PREFIX = path.dirname(path.dirname(process.execPath));

let work = '';
let python = '';

interface Run {
  status: number | null;
  out: string;
}

/** Process groups still running (npm, node-gyp, make, the compilers): ended, and the scratch removed, if this file is stopped. */
const running = new Set<number>();
function cleanUp(): void {
  for (const pgid of running) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (work !== '') rmSync(work, { recursive: true, force: true });
}
process.once('exit', cleanUp);
process.once('SIGTERM', () => {
  cleanUp();
  process.exit(143);
});

/** Runs a command to its end (async, so test timeouts still work), stdout and stderr together. */
function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    // A process group of its own, so a timeout ends what it started too.
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    if (child.pid !== undefined) running.add(child.pid);
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), opts.timeoutMs);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      if (child.pid !== undefined) running.delete(child.pid);
      resolve({ status, out });
    });
  });
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : e.isFile() ? [p] : [];
  });
}

function head(file: string, bytes: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    return buf.subarray(0, readSync(fd, buf, 0, bytes, 0));
  } finally {
    closeSync(fd);
  }
}

describe("the recipe's addon builds with a Python that has no distutils (scarthgap's python3-native is 3.12)", () => {
  before(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'stagebox-yocto-compile-'));
    python = makePythonWithoutDistutils(path.join(work, 'python'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  test('the stand-in Python is 3.11 and cannot import distutils, setuptools, _distutils_hack or what else 3.12 removed', () => {
    const version = spawnSync(python, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2], sys.prefix)'], { encoding: 'utf8' });
    assert.equal(version.status, 0, version.stderr);
    assert.equal(version.stdout.trim(), `3.11 ${path.join(work, 'python')}`);
    for (const mod of [...REMOVED_IN_312, 'setuptools', '_distutils_hack']) {
      const r = spawnSync(python, ['-c', `import ${mod}`], { encoding: 'utf8' });
      assert.equal(r.status, 1, `import ${mod} succeeded`);
      assert.equal(r.stderr.trim().split('\n').pop(), `ModuleNotFoundError: No module named '${mod}'`);
    }
  });

  test("control: node-gyp 9.4.1's gyp (alsa-capture's own dependency) stops on it with ModuleNotFoundError: distutils", async () => {
    assert.ok(existsSync(path.join(GYP9, 'gyp', 'gyp_main.py')), `${GYP9} is missing: run \`make yocto-fixtures\` (make test does)`);
    const addon = path.join(work, 'control-sd-notify');
    cpSync(path.join(REPO_ROOT, 'native', 'sd-notify'), addon, { recursive: true, filter: (src) => path.basename(src) !== 'build' });
    const r = await run(python, [path.join(GYP9, 'gyp', 'gyp_main.py'), 'binding.gyp', '-f', 'make', '--depth', '.', '--generator-output', 'build'], { cwd: addon, timeoutMs: 60_000 });
    assert.notEqual(r.status, 0, `gyp 9 ran without distutils:\n${r.out}`);
    assert.match(r.out, /from distutils\.version import StrictVersion\n/);
    assert.equal(r.out.trim().split('\n').pop(), "ModuleNotFoundError: No module named 'distutils'");
  });

  describe('do_configure, do_compile and do_install as npm.bbclass and the recipe run them', () => {
    let registry: LocalRegistry | undefined;
    let modules = '';
    let destdir = '';
    const lib = (): string => path.join(destdir, 'usr', 'lib', 'stagebox');

    before(async () => {
      assert.ok(existsSync(NPM10), `${NPM10} is missing: run \`make yocto-fixtures\` (make test does)`);
      // ${S}: what SRC_URI unpacks that npm reads, and the shrinkwrap npmsw:// copies in.
      const s = path.join(work, 'S');
      mkdirSync(s);
      for (const f of ['package.json', 'bin', 'native/sd-notify']) {
        cpSync(path.join(REPO_ROOT, f), path.join(s, f), { recursive: true, filter: (src) => !/\/native\/sd-notify\/build$/.test(src) });
      }
      cpSync(SHRINKWRAP, path.join(s, 'npm-shrinkwrap.json'));
      const scratch = path.join(work, 'scratch');
      mkdirSync(scratch);
      const npmCache = execFileSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).trim();
      const unavailable = unpackAndPatch(s, npmCache, recipePatches());
      const sw = JSON.parse(readFileSync(SHRINKWRAP, 'utf8')) as { packages: Record<string, { optional?: boolean }> };
      const missing = unavailable.filter((k) => !sw.packages[k]?.optional);
      assert.deepEqual(missing, [], `not in npm's cache (${npmCache}): run npm ci (make test does)`);
      registry = await startLocalRegistry(s, scratch, unavailable);
      const npmPackage = path.join(work, 'npm-package');
      configureMainPackage(s, npmPackage, scratch);

      const npmBuild = path.join(work, 'npm-build');
      const home = path.join(work, 'home');
      mkdirSync(home);
      // npm.bbclass npm_global_configs + do_compile's configs, as NpmEnvironment
      // writes them; the registry and a fresh cache replace the cache it fills.
      const userConfig = path.join(work, 'npmrc');
      writeFileSync(userConfig, [
        `registry=${registry.url}`, 'proxy=http://invalid', 'noproxy=127.0.0.1', 'fund=false', 'audit=false', `cache=${path.join(work, 'npm-cache')}`,
        'only=production', 'loglevel=verbose', 'global=true', `prefix=${npmBuild}`,
        `arch=${NPM_ARCH}`, 'release=true', `nodedir=${NODE_PREFIX}`, `python=${python}`, '',
      ].join('\n'));
      const tarball = npmPack(npmPackage, scratch);
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        NPM_CONFIG_USERCONFIG: userConfig,
        NPM_CONFIG_GLOBALCONFIG: '/dev/null',
        HOME: home,
        // python3-native is the build's python3; two make jobs keep libopus's build short here.
        PATH: `${path.dirname(python)}:${process.env.PATH}`,
        JOBS: '2',
      };
      for (const k of Object.keys(env)) if (/^npm_/i.test(k) && !k.startsWith('NPM_CONFIG_')) delete env[k];
      const r = await run(process.execPath, [NPM10, 'install', tarball, `--cpu=${NPM_ARCH}`, '--os=linux', `--target_arch=${NPM_ARCH}`, '--build-from-source=true', '--legacy-peer-deps=true'], { cwd: home, env, timeoutMs: 1_100_000 });
      assert.equal(r.status, 0, `npm install failed:\n${r.out.split('\n').filter((l) => !/ (silly|http|timing) /.test(l)).slice(-80).join('\n')}`);
      modules = path.join(npmBuild, 'lib', 'node_modules', 'stagebox', 'node_modules');

      // do_install: the recipe's install-tree.sh call; tsc's output is not built here.
      const dist = path.join(work, 'tsc-dist');
      mkdirSync(path.join(dist, 'src'), { recursive: true });
      mkdirSync(path.join(dist, 'web'), { recursive: true });
      destdir = path.join(work, 'image');
      const install = await run('sh', [path.join(REPO_ROOT, 'packaging', 'install-tree.sh'), '--list', path.join(REPO_ROOT, 'packaging', 'install-files.txt'),
        '--src', REPO_ROOT, '--dist', dist, '--node-modules', modules, '--destdir', destdir, '--prefix', '/usr', '--unitdir', '/usr/lib/systemd/system',
        '--npm-arch', NPM_ARCH, '--libc', 'glibc'], { cwd: work, timeoutMs: 120_000 });
      assert.equal(install.status, 0, `do_install failed:\n${install.out}`);
    }, { timeout: 1_200_000 });
    after(() => registry?.close());

    test('npm installs node-gyp 10 or later (the patch makes alsa-capture ask for it) and builds the three addons, each loadable', () => {
      const gyp = JSON.parse(readFileSync(path.join(modules, 'node-gyp', 'package.json'), 'utf8')) as { version: string };
      assert.ok(Number(gyp.version.split('.')[0]) >= 10, `node-gyp ${gyp.version} was installed; gyp before 10 imports distutils`);
      const addons = [
        path.join(modules, 'alsa-capture', 'build', 'Release', 'capture.node'),
        path.join(modules, 'stagebox-sd-notify', 'build', 'Release', 'sd_notify.node'),
        ...readdirSync(path.join(modules, '@discordjs', 'opus', 'prebuild')).map((d) => path.join(modules, '@discordjs', 'opus', 'prebuild', d, 'opus.node')),
      ];
      assert.equal(addons.length, 3, `addons: ${addons}`);
      for (const a of addons) {
        assert.ok(existsSync(a), `not built: ${a}`);
        const load = spawnSync(process.execPath, ['-e', 'require(process.argv[1])', a], { encoding: 'utf8' });
        assert.equal(load.status, 0, `${a} does not load: ${load.stderr}`);
      }
    });

    test('gyp ran under the Python without distutils for every addon, from the node-gyp each build uses', () => {
      const runs = readFileSync(path.join(work, 'python', 'invocations.jsonl'), 'utf8').trim().split('\n')
        .map((l) => JSON.parse(l) as { cwd: string; argv: string[] })
        .filter((i) => i.argv[0]?.endsWith('/gyp/gyp_main.py'));
      // `node-gyp rebuild` (alsa-capture, stagebox-sd-notify) finds the tree's node-gyp first on PATH.
      for (const pkg of ['alsa-capture', 'stagebox-sd-notify']) {
        const gypRun = runs.find((i) => i.cwd === path.join(modules, pkg));
        assert.ok(gypRun, `gyp did not run for ${pkg} under ${python}: ${JSON.stringify(runs)}`);
        assert.equal(gypRun.argv[0], path.join(modules, 'node-gyp', 'gyp', 'gyp_main.py'), `${pkg} was configured by another node-gyp`);
      }
      // node-pre-gyp (@discordjs/opus) takes npm's own node-gyp.
      const opus = runs.find((i) => i.cwd === path.join(modules, '@discordjs', 'opus'));
      assert.ok(opus, `gyp did not run for @discordjs/opus under ${python}: ${JSON.stringify(runs)}`);
      assert.equal(opus.argv[0], path.join(path.dirname(path.dirname(NPM10)), 'node_modules', 'node-gyp', 'gyp', 'gyp_main.py'));
    });

    test('npm asks the registry for every platform package of @napi-rs/nice, so do_install has to leave only the target\'s', () => {
      const asked = registry!.requested.filter((u) => u.startsWith('/@napi-rs/nice-')).length;
      const platforms = Object.keys((JSON.parse(readFileSync(SHRINKWRAP, 'utf8')) as { packages: Record<string, unknown> }).packages).filter((k) => k.startsWith('node_modules/@napi-rs/nice-')).length;
      assert.equal(asked, platforms, `npm fetched ${asked} of the ${platforms} @napi-rs/nice-* packages: ${registry!.requested}`);
      assert.deepEqual(readdirSync(path.join(lib(), 'node_modules', '@napi-rs')).sort(), ['nice', `nice-linux-${NPM_ARCH}-gnu`]);
    });

    test('every addon the image gets is an ELF file for the target (QA arch), and no build scratch is left', () => {
      const nodes = walk(path.join(lib(), 'node_modules')).filter((f) => f.endsWith('.node'));
      assert.equal(nodes.length, 4, `addons installed: ${nodes}`);
      for (const f of nodes) {
        const h = head(f, 20);
        assert.equal(h.subarray(0, 4).toString('latin1'), '\x7fELF', `${f} is not an ELF file`);
        assert.equal(h.readUInt16LE(18), ELF_MACHINE[NPM_ARCH], `${f}: ELF machine ${h.readUInt16LE(18)}, the target's is ${ELF_MACHINE[NPM_ARCH]}`);
        assert.equal(statSync(f).mode & 0o777, 0o755, `${f} mode`);
      }
      assert.deepEqual(walk(path.join(lib(), 'node_modules')).filter((f) => /\/obj\.target\/|\/build-tmp-|\.o$|\.a$/.test(f)), []);
      assert.ok(!existsSync(path.join(lib(), 'node_modules', 'node-gyp')), 'node-gyp, a build tool, was installed');
    });

    test('no installed file needs an interpreter the image lacks (QA file-rdeps): executable scripts run only what RDEPENDS provides', () => {
      const rdepends = recipeRdepends();
      assert.ok(!rdepends.includes('bash'), 'the image is not meant to need bash');
      const provided = new Set(['/bin/sh', 'sh', ...rdepends.flatMap((p) => INTERPRETERS[p] ?? [])]);
      const scripts = walk(destdir).filter((f) => head(f, 2).toString('latin1') === '#!');
      assert.ok(scripts.some((f) => f.endsWith('/bin/stagebox.js')), 'bin/stagebox.js has its #! line');
      for (const f of scripts) {
        const words = head(f, 256).toString('latin1').split('\n')[0]!.slice(2).trim().split(/\s+/);
        const needs = words[0] === '/usr/bin/env' ? words.slice(1).find((w) => !w.startsWith('-'))! : words[0]!;
        const rel = path.relative(destdir, f);
        if ((statSync(f).mode & 0o111) !== 0) {
          assert.ok(provided.has(needs), `${rel} is executable and needs ${needs}; RDEPENDS (${rdepends.join(' ')}) provide ${[...provided].join(' ')}`);
        } else {
          // Never run, but not shipped either when it is a script for something else (prune-node-modules.js).
          assert.equal(needs, 'node', `${rel} is a script for ${needs}`);
        }
      }
    });

    test('every dependency of package.json loads from the installed tree (nothing the service needs was pruned)', () => {
      const deps = Object.keys((JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies);
      // import() takes CommonJS and ES modules alike, resolved from the installed tree.
      const r = spawnSync(process.execPath, ['-e', '(async () => { for (const d of process.argv.slice(1)) await import(d); })().catch((e) => { console.error(e); process.exit(1); })', ...deps], { cwd: lib(), encoding: 'utf8', env: { ...process.env, NODE_PATH: '' } });
      assert.equal(r.status, 0, r.stderr);
    });
  });
});
