import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/service-process';
import { readInstallList } from './install-list';
import { bbVars, LAYER, RECIPE_DIR, recipeFile, recipePatches } from './recipe';

/**
 * yocto/: what can be checked without network or BitBake. Every path the
 * recipes name exists, the recipe fetches what packaging/install-files.txt
 * installs and installs it with the same script and list, the kas files
 * parse (PyYAML, as kas itself reads them) into the structure kas wants, and
 * the recipe's shrinkwrap is package-lock.json's. Nothing here runs BitBake:
 * building needs the layers from the network (yocto/README.md);
 * test/yocto-build/yocto-compile.test.ts runs the recipe's npm build the way npm.bbclass does.
 */

const YOCTO = path.join(REPO_ROOT, 'yocto');
const read = (p: string): string => readFileSync(p, 'utf8');

/** The unit's state directory as systemd really keeps it: DynamicUser=yes puts it under /var/lib/private. */
function unitStateDir(): string {
  const unit = read(path.join(REPO_ROOT, 'systemd', 'stagebox.service'));
  const state = /^StateDirectory=(\S+)$/m.exec(unit)?.[1];
  assert.ok(state, 'the unit has no StateDirectory=');
  return /^DynamicUser=yes$/m.test(unit) ? `/var/lib/private/${state}` : `/var/lib/${state}`;
}

describe('meta-stagebox layer', () => {
  test('layer.conf: collection stagebox, compatible with scarthgap, depends on core and meta-oe', () => {
    const v = bbVars(path.join(LAYER, 'conf', 'layer.conf'));
    assert.equal(v.get('BBFILE_COLLECTIONS'), 'stagebox');
    assert.ok(v.get('LAYERSERIES_COMPAT_stagebox')!.split(/\s+/).includes('scarthgap'), `LAYERSERIES_COMPAT_stagebox = ${v.get('LAYERSERIES_COMPAT_stagebox')}`);
    assert.deepEqual(v.get('LAYERDEPENDS_stagebox')!.split(/\s+/).sort(), ['core', 'openembedded-layer']);
    // STAGEBOX_TOPDIR (the recipe's FILESEXTRAPATHS) is two levels above the layer: the repository root.
    assert.equal(v.get('STAGEBOX_TOPDIR'), "${@os.path.normpath(os.path.join(d.getVar('LAYERDIR'), '..', '..'))}");
    assert.equal(path.resolve(LAYER, '..', '..'), REPO_ROOT);
  });

  test('every file:// and npmsw:// path the service recipe names exists', () => {
    const file = recipeFile();
    const v = bbVars(file);
    const uris = v.get('SRC_URI')!.split(/\s+/).filter(Boolean);
    assert.ok(uris.length >= 10, `SRC_URI: ${uris}`);
    assert.match(read(file), /^FILESEXTRAPATHS:prepend := "\$\{STAGEBOX_TOPDIR\}:"$/m);
    const bpn = path.basename(file).split('_')[0]!;
    for (const uri of uris) {
      const [where] = uri.split(';');
      if (where!.startsWith('file://')) {
        const rel = where!.slice('file://'.length);
        // FILESPATH: STAGEBOX_TOPDIR first, then the recipe's own folders.
        const found = [REPO_ROOT, path.join(RECIPE_DIR, bpn), path.join(RECIPE_DIR, 'files')].some((d) => existsSync(path.join(d, rel)));
        assert.ok(found, `${uri}: ${rel} is neither in the repository nor beside the recipe`);
      } else if (where!.startsWith('npmsw://')) {
        const p = where!.slice('npmsw://'.length).replace('${THISDIR}', RECIPE_DIR).replace('${BPN}', bpn);
        assert.ok(existsSync(p), `${uri}: ${p} does not exist`);
      } else {
        assert.fail(`${uri}: only file:// and npmsw:// are expected (the sources are this repository)`);
      }
    }
  });

  test('the recipe fetches every source packaging/install-files.txt installs and installs them with the same script and list', () => {
    const file = recipeFile();
    const text = read(file);
    const fetched = bbVars(file).get('SRC_URI')!.split(/\s+/).filter((u) => u.startsWith('file://')).map((u) => u.slice(7).split(';')[0]!);
    for (const e of readInstallList()) {
      if (e.source.startsWith('@')) continue;
      assert.ok(fetched.some((f) => e.source === f || e.source.startsWith(`${f}/`)), `${e.source} (installed at ${e.target}) is not in the recipe's SRC_URI`);
    }
    for (const f of ['packaging/install-files.txt', 'packaging/install-tree.sh', 'tsconfig.build.json', 'tsconfig.web-client.json', 'package.json', 'package-lock.json', 'native/sd-notify']) {
      assert.ok(fetched.includes(f), `${f} is not in the recipe's SRC_URI`);
    }
    // What install-tree.sh runs beside itself ("$HERE/x"), and what those scripts require.
    const helpers = [...read(path.join(REPO_ROOT, 'packaging', 'install-tree.sh')).matchAll(/"\$HERE\/([\w.-]+)"/g)].map((m) => `packaging/${m[1]}`);
    assert.ok(helpers.includes('packaging/prune-node-modules.js'), `install-tree.sh runs: ${helpers}`);
    for (let i = 0; i < helpers.length; i++) {
      for (const m of read(path.join(REPO_ROOT, helpers[i]!)).matchAll(/require\('\.\/([\w.-]+)'\)/g)) {
        if (!helpers.includes(`packaging/${m[1]}`)) helpers.push(`packaging/${m[1]}`);
      }
    }
    for (const f of helpers) assert.ok(fetched.includes(f), `${f} (install-tree.sh needs it) is not in the recipe's SRC_URI`);
    const install = /^do_install\(\) \{\n([\s\S]*?)^\}/m.exec(text)?.[1];
    assert.ok(install, 'the recipe has no do_install()');
    assert.match(install, /sh \$\{S\}\/packaging\/install-tree\.sh --list \$\{S\}\/packaging\/install-files\.txt/);
    assert.match(install, /--node-modules \$\{NPM_BUILD\}\/lib\/node_modules\/\$\{BPN\}\/node_modules/);
    // npm installs every platform package of the shrinkwrap: the target's arch decides which stay.
    assert.match(install, /--npm-arch \$\{NPM_ARCH\} --libc \$\{TCLIBC\}/);
    assert.match(text, /^inherit npm systemd useradd features_check$/m);
    assert.match(text, /^SYSTEMD_SERVICE:\$\{PN\} = "stagebox\.service"$/m);
    assert.ok(readInstallList().some((e) => e.target.endsWith('/stagebox.service')), 'the list installs no stagebox.service');
  });

  test('the recipe needs the systemd distro feature and leaves nodejs to the npm class', () => {
    const v = bbVars(recipeFile());
    assert.equal(v.get('REQUIRED_DISTRO_FEATURES'), 'systemd');
    // npm.bbclass: RDEPENDS:${PN}:append:class-target = " nodejs".
    assert.ok(!(v.get('RDEPENDS:${PN}') ?? '').split(/\s+/).includes('nodejs'), `RDEPENDS:\${PN} = ${v.get('RDEPENDS:${PN}')}`);
  });

  test('DEPENDS has what the native builds need: alsa-lib for alsa-capture, and a distutils only if a node-gyp before 10 would run', () => {
    const depends = (bbVars(recipeFile()).get('DEPENDS') ?? '').split(/\s+/);
    assert.match(read(path.join(REPO_ROOT, 'node_modules', 'alsa-capture', 'binding.gyp')), /-lasound/);
    assert.ok(depends.includes('alsa-lib'), `alsa-capture links libasound; DEPENDS = ${depends}`);
    // gyp before node-gyp 10 imports distutils, which scarthgap's Python 3.12 lacks
    // (python3-setuptools-native would bring a stand-in). @discordjs/opus builds
    // with npm's own node-gyp (Node 20's npm 10: node-gyp 10).
    const sw = JSON.parse(read(path.join(RECIPE_DIR, 'stagebox', 'npm-shrinkwrap.json'))) as { packages: Record<string, { version?: string; dev?: boolean }> };
    const gyps = Object.entries(sw.packages).filter(([k, e]) => k.endsWith('node_modules/node-gyp') && !e.dev).map(([, e]) => e.version!);
    assert.ok(gyps.length > 0, 'the shrinkwrap has no node-gyp');
    const old = gyps.filter((v) => Number(v.split('.')[0]) < 10);
    assert.ok(old.length === 0 || depends.includes('python3-setuptools-native'), `node-gyp ${old} in the shrinkwrap needs distutils: add python3-setuptools-native to DEPENDS`);
  });

  test("every npm override of package.json is mirrored by a recipe patch that npm.bbclass's registry can resolve", () => {
    // npm.bbclass installs the package globally from a tarball: npm reads neither its
    // overrides nor its shrinkwrap's tree, and resolves each dependency's own range
    // against a registry holding only the shrinkwrap's versions.
    const overrides = (JSON.parse(read(path.join(REPO_ROOT, 'package.json'))) as { overrides?: Record<string, string> }).overrides ?? {};
    assert.deepEqual(Object.keys(overrides), ['node-gyp'], 'overrides checked here');
    const lock = JSON.parse(read(path.join(REPO_ROOT, 'package-lock.json'))) as { packages: Record<string, { version?: string; dev?: boolean; dependencies?: Record<string, string> }> };
    const patches = recipePatches();
    const scratch = mkdtempSync(path.join(os.tmpdir(), 'stagebox-patch-'));
    try {
      for (const [name, range] of Object.entries(overrides)) {
        const versions = Object.entries(lock.packages).filter(([k]) => k.endsWith(`node_modules/${name}`)).map(([, e]) => e.version!);
        for (const [key, entry] of Object.entries(lock.packages)) {
          if (entry.dev || !entry.dependencies?.[name]) continue;
          const files = patches.get(key) ?? [];
          assert.ok(files.length > 0, `${key} depends on ${name} ${entry.dependencies[name]}, which package.json overrides to ${range}: the recipe needs a patch (patchdir=${key})`);
          const dir = path.join(scratch, key);
          mkdirSync(dir, { recursive: true });
          cpSync(path.join(REPO_ROOT, key, 'package.json'), path.join(dir, 'package.json'));
          for (const f of files) {
            assert.match(read(f), /^Upstream-Status: \w+/m, `${path.basename(f)} has no Upstream-Status`);
            execFileSync('patch', ['-p1', '-s', '-d', dir, '-i', f]);
          }
          const patched = (JSON.parse(read(path.join(dir, 'package.json'))) as { dependencies: Record<string, string> }).dependencies[name];
          assert.equal(patched, range, `${key}: the patched range of ${name}`);
          // Caret ranges only: the lockfile's version must satisfy it or npm stops with ETARGET.
          const [maj, min, pat] = range.replace(/^\^/, '').split('.').map(Number);
          assert.match(range, /^\^\d+\.\d+\.\d+$/, `${range}: only caret ranges are checked here`);
          assert.ok(versions.some((v) => {
            const [a, b, c] = v.split('.').map(Number);
            return a === maj && (b! > min! || (b === min && c! >= pat!));
          }), `no ${name} in the lockfile (${versions}) satisfies ${range}`);
        }
      }
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  test('the image is read-only, its wks files exist and mount a state partition where the unit keeps its state', () => {
    const image = path.join(LAYER, 'recipes-core', 'images', 'stagebox-image.bb');
    const text = read(image);
    assert.match(text, /^IMAGE_FEATURES \+= "read-only-rootfs"$/m);
    const wksNames = [...text.matchAll(/^WKS_FILE(?::\w+)? = "([^"]+)"$/gm)].map((m) => m[1]!);
    assert.ok(wksNames.length >= 2, `WKS_FILE: ${wksNames}`);
    const stateDir = unitStateDir();
    assert.equal(stateDir, '/var/lib/private/stagebox');
    assert.match(read(path.join(REPO_ROOT, 'systemd', 'stagebox.service')), new RegExp(`^RequiresMountsFor=${stateDir}$`, 'm'));
    for (const name of wksNames) {
      const wks = path.join(LAYER, 'wic', name);
      assert.ok(existsSync(wks), `${name} is not in meta-stagebox/wic/`);
      const parts = read(wks).split('\n').filter((l) => l.startsWith('part '));
      assert.ok(parts.some((p) => p.startsWith('part / ')), `${name}: no root partition`);
      const state = parts.find((p) => p.startsWith(`part ${stateDir} `));
      assert.ok(state, `${name}: no partition mounted at ${stateDir}`);
      assert.match(state, /--label state .*--use-label/);
      assert.match(state, /x-systemd\.after=var-volatile-lib\.service/);
    }
    // The mount point and the symlink systemd expects are in the read-only root.
    assert.match(text, /install -d -m 0700 \$\{IMAGE_ROOTFS\}\/var\/lib\/private\n/);
    assert.match(text, /ln -sfn private\/stagebox \$\{IMAGE_ROOTFS\}\/var\/lib\/stagebox/);
  });
});

// --- the layer's own README ---------------------------------------------------

describe('meta-stagebox README', () => {
  const readmes = readdirSync(LAYER).filter((n) => /^readme/i.test(n)).sort();

  test("passes yocto-check-layer's test_readme (poky scarthgap checklayer/cases/common.py)", () => {
    assert.ok(readmes.length > 0, "Layer doesn't contain a README file.");
    const data = read(path.join(LAYER, readmes[0]!));
    assert.ok(data, 'Layer contains a README file but it is empty.');
    // A README that names another README skips the checks below: this one must not.
    assert.doesNotMatch(data, /README/i);
    assert.ok(data.toLowerCase().includes('maintainer'));
    assert.ok(data.toLowerCase().includes('patch'));
    assert.match(data, /^[^@]+@[^@]+/, 'an email address');
  });

  test('says what the layer is, its dependencies with their branches, how to build and who maintains it', () => {
    const data = read(path.join(LAYER, 'README.md'));
    const sections = [...data.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
    for (const want of ['Dependencies', 'Building', 'Contributing', 'Maintainers']) assert.ok(sections.includes(want), `no "## ${want}" in ${sections}`);
    assert.match(data.split('\n## ')[0]!, /stage box/, 'the introduction says what the layer is for');
    // Every layer the kas files take, with the same URL and branch.
    const kas = loadKas(path.join(YOCTO, 'kas', 'raspberrypi4-64.yml'));
    const deps = data.slice(data.indexOf('## Dependencies'), data.indexOf('## Building'));
    for (const [name, repo] of Object.entries(kas.repos ?? {})) {
      if (name === 'stagebox') continue;
      assert.ok(deps.includes(`URI: ${repo!.url}`), `the dependency ${name} (${repo!.url}) is not listed`);
      for (const layer of Object.keys(repo!.layers ?? {})) assert.ok(deps.includes(layer), `layer ${layer} of ${name} is not named`);
    }
    assert.equal([...deps.matchAll(/branch: (\S+)/g)].map((m) => m[1]).filter((b) => b !== 'scarthgap').length, 0, 'every branch is scarthgap');
    assert.match(data, /INIT_MANAGER = "systemd"/, "the systemd distro feature");
    assert.match(data.slice(data.indexOf('## Maintainers')), /\S+@\S+/);
    assert.equal(data.match(/<([^>]+@[^>]+)>/)?.[1], /^Maintainer: .*<(.+)>$/m.exec(read(path.join(REPO_ROOT, 'packaging', 'deb', 'control.in')))?.[1], 'the same maintainer address as the .deb');
  });
});

// --- kas -------------------------------------------------------------------

interface KasRepo {
  url?: string;
  branch?: string;
  layers?: Record<string, unknown>;
}
interface KasFile {
  header: { version: number; includes?: string[] };
  machine?: string;
  distro?: string;
  target?: string;
  repos?: Record<string, KasRepo | null>;
}

/** Parsed with Debian's PyYAML, the parser kas uses. */
function loadYaml(file: string): KasFile {
  const json = execFileSync('/usr/bin/python3', ['-c', 'import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))', file], { encoding: 'utf8' });
  return JSON.parse(json) as KasFile;
}

/** The file and its includes merged as kas does (later keys win, repos merged per key). */
function loadKas(file: string): KasFile {
  const own = loadYaml(file);
  let merged: KasFile = { header: own.header };
  for (const inc of own.header.includes ?? []) {
    // kas resolves a string include from the root of the file's repository.
    const p = path.join(REPO_ROOT, inc);
    assert.ok(existsSync(p), `${path.basename(file)} includes ${inc}, which does not exist`);
    const sub = loadKas(p);
    merged = { ...merged, ...sub, repos: { ...merged.repos, ...sub.repos } };
  }
  return { ...merged, ...own, header: own.header, repos: { ...merged.repos, ...own.repos } };
}

describe('kas files', () => {
  const machines: Record<string, string[]> = {
    'raspberrypi4-64.yml': ['poky', 'meta-openembedded', 'meta-raspberrypi', 'stagebox'],
    'raspberrypi5.yml': ['poky', 'meta-openembedded', 'meta-raspberrypi', 'stagebox'],
    'qemuarm64.yml': ['poky', 'meta-openembedded', 'stagebox'],
  };
  for (const [name, repos] of Object.entries(machines)) {
    test(`${name}: machine, target, scarthgap repos and every layer meta-stagebox depends on`, () => {
      const kas = loadKas(path.join(YOCTO, 'kas', name));
      assert.equal(kas.header.version, 14);
      assert.equal(kas.machine, name.replace(/\.yml$/, ''));
      assert.equal(kas.distro, 'poky');
      assert.equal(kas.target, 'stagebox-image');
      assert.deepEqual(Object.keys(kas.repos ?? {}).sort(), [...repos].sort());
      for (const [repo, spec] of Object.entries(kas.repos!)) {
        if (repo === 'stagebox') continue;
        assert.match(spec?.url ?? '', /^https:\/\/git\.(yoctoproject|openembedded)\.org\//, `${repo}.url`);
        assert.equal(spec?.branch, 'scarthgap', `${repo}.branch`);
      }
      // This repository's layer, at a path that holds it.
      const own = Object.keys(kas.repos!.stagebox?.layers ?? {});
      assert.deepEqual(own, ['yocto/meta-stagebox']);
      assert.ok(existsSync(path.join(REPO_ROOT, own[0]!, 'conf', 'layer.conf')));
      // LAYERDEPENDS: core is poky/meta, openembedded-layer is meta-openembedded/meta-oe.
      assert.ok(Object.keys(kas.repos!.poky?.layers ?? {}).includes('meta'), 'poky/meta (core) is not a layer');
      assert.ok(Object.keys(kas.repos!['meta-openembedded']?.layers ?? {}).includes('meta-oe'), 'meta-oe is not a layer');
    });
  }

  test('yocto/README.md gives the exact commands to get a pinned kas that reads these files (Debian 12 has kas 3.1)', () => {
    const readme = read(path.join(YOCTO, 'README.md'));
    // kas reads format 14 from 3.3 on (kas/__version__.py __file_version__).
    const minimum: Record<number, [number, number]> = { 14: [3, 3] };
    const formats = new Set(Object.keys(machines).map((n) => loadYaml(path.join(YOCTO, 'kas', n)).header.version));
    assert.deepEqual([...formats], [14]);
    const pins = [...readme.matchAll(/pip install kas==(\d+)\.(\d+)\.(\d+)/g)];
    assert.equal(pins.length, 1, 'one pinned pip install of kas');
    const [, maj, min, patch] = pins[0]!.map(Number);
    const [needMaj, needMin] = minimum[14]!;
    assert.ok(maj! > needMaj || (maj === needMaj && min! >= needMin), `kas ${maj}.${min} cannot read format 14`);
    const version = `${maj}.${min}.${patch}`;
    assert.match(readme, /python3 -m venv \S+/, 'in a virtual environment');
    assert.ok(readme.includes(`https://raw.githubusercontent.com/siemens/kas/${version}/kas-container`), `the container script pinned to ${version}`);
    assert.ok(readme.includes(`ghcr.io/siemens/kas/kas:${version}`), 'the container image named with its version');
    for (const n of Object.keys(machines)) assert.ok(readme.includes(n), `${n} is not in the build commands`);
  });

  test('every kas file in yocto/kas is one of the machines checked above or their common include', () => {
    assert.deepEqual(readdirSync(path.join(YOCTO, 'kas')).sort(), ['common.yml', ...Object.keys(machines)].sort());
  });
});

// --- shrinkwrap ------------------------------------------------------------

interface LockEntry {
  version?: string;
  integrity?: string;
  resolved?: string;
  link?: boolean;
  dev?: boolean;
  optional?: boolean;
  name?: string;
}

describe('npm-shrinkwrap.json of the recipe', () => {
  const lock = JSON.parse(read(path.join(REPO_ROOT, 'package-lock.json'))) as { packages: Record<string, LockEntry> };
  const swFile = path.join(RECIPE_DIR, 'stagebox', 'npm-shrinkwrap.json');
  const sw = JSON.parse(read(swFile)) as { lockfileVersion: number; packages: Record<string, LockEntry> };
  const gen = require(path.join(REPO_ROOT, 'packaging', 'yocto-shrinkwrap.js')) as { toShrinkwrap(l: unknown): unknown };

  test('has every package of package-lock.json with the same version, integrity and dev/optional flags', () => {
    assert.ok(sw.lockfileVersion >= 2, 'npm.bbclass needs lockfileVersion 2 or later');
    const installed = Object.keys(lock.packages).filter((k) => k === '' || k.startsWith('node_modules/') || k.includes('/node_modules/'));
    assert.deepEqual(Object.keys(sw.packages).sort(), installed.sort());
    assert.deepEqual(sw.packages[''], lock.packages['']);
    for (const key of installed.filter((k) => k !== '')) {
      const l = lock.packages[key]!;
      const s = sw.packages[key]!;
      if (l.link) {
        assert.equal(s.version, `file:${l.resolved}`, `${key}: a local package is fetched from its directory`);
        assert.ok(existsSync(path.join(REPO_ROOT, l.resolved!, 'package.json')), `${key}: ${l.resolved} has no package.json`);
        continue;
      }
      assert.equal(s.version, l.version, `${key}.version`);
      assert.equal(s.integrity, l.integrity, `${key}.integrity`);
      assert.equal(s.dev, l.dev, `${key}.dev`);
      assert.equal(s.optional, l.optional, `${key}.optional`);
      const name = l.name ?? key.slice(key.lastIndexOf('node_modules/') + 13);
      const base = name.split('/').pop();
      assert.equal(s.resolved, `https://registry.npmjs.org/${name}/-/${base}-${l.version}.tgz`, `${key}.resolved`);
    }
  });

  test('is what `make yocto-shrinkwrap` writes from the current lockfile (not stale)', () => {
    assert.equal(read(swFile), `${JSON.stringify(gen.toShrinkwrap(lock), null, 2)}\n`);
  });

  test('the generator refuses a lockfile before version 2 and a link to nowhere, naming them', () => {
    assert.throws(() => gen.toShrinkwrap({ lockfileVersion: 1, dependencies: {} }), {
      name: 'RangeError',
      message: 'package-lock.json: lockfileVersion 1; allowed: 2 or 3 (with "packages")',
    });
    assert.throws(() => gen.toShrinkwrap({ lockfileVersion: 3, packages: { '': {}, 'node_modules/x': { resolved: 'native/x', link: true } } }), {
      name: 'RangeError',
      message: 'package-lock.json: node_modules/x links to native/x, which has no entry',
    });
  });
});
