import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

/**
 * poky scarthgap's npm fetcher and npm.bbclass, the parts that decide what
 * `npm install` resolves and builds, reproduced for a test (BitBake cannot
 * run here):
 *  - do_unpack (npmsw://, dev=1): every shrinkwrap package unpacked at
 *    ${S}/<its key>, a file: package copied there; do_patch: the recipe's
 *    patches applied with their patchdir;
 *  - npm_pack: a directory as a tarball, with tar (scarthgap's exclude is
 *    "./node-modules", a typo: nested node_modules go into the tarball);
 *  - do_configure: every dependency (no dev, no bundled) is packed from ${S}
 *    into a local registry (oe.npm_registry.NpmRegistry): one packument per
 *    package.json name, with exactly the shrinkwrap's versions, each entry
 *    the fields as_manifest_entry copies (no os, cpu or peerDependencies);
 *    ${NPM_PACKAGE} is ${S} with exact dependency versions;
 *  - do_compile: `npm install <tarball of ${NPM_PACKAGE}>`, global.
 * The registry is served over loopback HTTP instead of being written into
 * npm's cache (oe-npm-cache): npm resolves from it the same way.
 */

export type ShrinkwrapEntry = Record<string, unknown> & {
  version?: string;
  integrity?: string;
  license?: string;
  dev?: boolean;
  inBundle?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
};
export interface Shrinkwrap {
  packages: Record<string, ShrinkwrapEntry>;
}

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

/** npm_pack (scarthgap): tar of `srcdir` as `package/`, fixed mtime. */
export function npmPack(srcdir: string, outdir: string): string {
  const pkg = readJson<{ name: string; version: string }>(path.join(srcdir, 'package.json'));
  mkdirSync(outdir, { recursive: true });
  const tarball = path.join(outdir, `${pkg.name.split('/').pop()}-${pkg.version}.tgz`);
  execFileSync('tar', ['czf', tarball, '--exclude', './node-modules', '--exclude-vcs', '--transform', 's,^\\./,package/,', '--mtime', '1985-10-26T08:15:00.000Z', '.'], { cwd: srcdir });
  return tarball;
}

/** bb.fetch2.npmsw.foreach_dependencies: [key, name, entry], dev ones only when `dev`. */
export function shrinkwrapDependencies(sw: Shrinkwrap, dev: boolean): [key: string, name: string, entry: ShrinkwrapEntry][] {
  return Object.entries(sw.packages)
    .filter(([key, e]) => key !== '' && (dev || !e.dev) && !e.inBundle)
    .map(([key, e]) => [key, key.split('node_modules/').pop()!, e]);
}

/** The file cacache (npm's cache) keeps a tarball of this integrity in, or null. */
function cachedTarball(npmCache: string, integrity: string | undefined): string | null {
  if (!integrity?.startsWith('sha512-')) return null;
  const hex = Buffer.from(integrity.slice('sha512-'.length), 'base64').toString('hex');
  const file = path.join(npmCache, '_cacache', 'content-v2', 'sha512', hex.slice(0, 2), hex.slice(2, 4), hex.slice(4));
  return existsSync(file) ? file : null;
}

/**
 * do_unpack and do_patch for ${S}, which already holds the recipe's file://
 * sources and npm-shrinkwrap.json. Registry tarballs come from npm's cache
 * (npm ci filled it).
 * @returns the shrinkwrap keys not in that cache (platform packages for other
 *   CPUs, never downloaded here): left out of ${S}
 */
export function unpackAndPatch(s: string, npmCache: string, patches: Map<string, string[]>): string[] {
  const sw = readJson<Shrinkwrap>(path.join(s, 'npm-shrinkwrap.json'));
  const unavailable: string[] = [];
  for (const [key, , entry] of shrinkwrapDependencies(sw, true)) {
    const dest = path.join(s, key);
    if (String(entry.version).startsWith('file:')) {
      cpSync(path.join(s, String(entry.version).slice('file:'.length)), dest, { recursive: true });
      continue;
    }
    const tarball = cachedTarball(npmCache, entry.integrity);
    if (tarball === null) {
      unavailable.push(key);
      continue;
    }
    mkdirSync(dest, { recursive: true });
    execFileSync('tar', ['--extract', '--gzip', `--file=${tarball}`, '--no-same-owner', '--delay-directory-restore', '--strip-components=1'], { cwd: dest });
    execFileSync('chmod', ['-R', '+X', dest]);
  }
  for (const [dir, files] of patches) {
    for (const p of files) execFileSync('patch', ['-p1', '-s', '-d', path.join(s, dir), '-i', p]);
  }
  return unavailable;
}

/** oe.npm_registry.PackageJson.as_manifest_entry. */
function manifestEntry(pkg: Record<string, unknown>, tarball: string): Record<string, unknown> {
  const entry: Record<string, unknown> = { name: pkg.name, description: pkg.description ?? '', version: pkg.version };
  for (const k of ['bin', 'man', 'scripts', 'directories', 'dependencies', 'devDependencies', 'optionalDependencies']) {
    if (k in pkg) entry[k] = pkg[k];
  }
  entry.license = pkg.license ?? 'unknown';
  entry.dist = { tarball };
  return entry;
}

export interface LocalRegistry {
  url: string;
  /** Tarballs npm asked for (served or not), as URL paths: what the install would unpack. */
  requested: string[];
  close(): Promise<void>;
}

/**
 * do_configure's local registry, from the packages unpacked in ${S}. A
 * dependency missing from ${S} (`unavailable`) gets its packument entry from
 * the shrinkwrap's fields and no tarball: npm sees it, and fails to fetch it
 * as it would fail an optional download.
 */
export async function startLocalRegistry(s: string, scratch: string, unavailable: string[]): Promise<LocalRegistry> {
  const sw = readJson<Shrinkwrap>(path.join(s, 'npm-shrinkwrap.json'));
  const packuments = new Map<string, { name: string; description: string; versions: Record<string, unknown> }>();
  const tarballs = new Map<string, string>();
  const requested: string[] = [];
  const server = createServer((req, res) => {
    const url = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    if (url.includes('/-/')) requested.push(url);
    const tgz = tarballs.get(url);
    const doc = packuments.get(url.slice(1));
    if (tgz) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(readFileSync(tgz));
    } else if (doc) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(doc));
    } else {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"not found"}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  let n = 0;
  for (const [key, name, entry] of shrinkwrapDependencies(sw, false)) {
    let tarball: string | null = null;
    let pkg: Record<string, unknown>;
    if (unavailable.includes(key)) {
      pkg = { name, version: entry.version, license: entry.license, dependencies: entry.dependencies, optionalDependencies: entry.optionalDependencies };
    } else {
      tarball = npmPack(path.join(s, key), path.join(scratch, `dep-${n++}`));
      pkg = readJson<Record<string, unknown>>(path.join(s, key, 'package.json'));
    }
    // add_pkg files a package under its package.json's name: an alias
    // (wrap-ansi-cjs = npm:wrap-ansi@7) adds a version to the real name's packument.
    const realName = String(pkg.name);
    const version = String(pkg.version);
    const url = `/${realName}/-/${realName.split('/').pop()}-${version}.tgz`;
    if (tarball !== null) tarballs.set(url, tarball);
    const doc = packuments.get(realName) ?? { name: realName, description: String(pkg.description ?? ''), versions: {} };
    doc.versions[version] = manifestEntry(pkg, `${base}${url}`);
    packuments.set(realName, doc);
  }
  return {
    url: `${base}/`,
    requested,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * do_configure's ${NPM_PACKAGE}: ${S} (its node_modules too: npm_pack's
 * exclude misses it) with exact dependency versions in its package.json and
 * the cached npm-shrinkwrap.json (the class writes it; npm reads no
 * shrinkwrap from a file tarball, so resolution is the registry's).
 */
export function configureMainPackage(s: string, npmPackage: string, scratch: string): void {
  const manifest = readJson<Record<string, unknown> & { dependencies: Record<string, string> }>(path.join(s, 'package.json'));
  const sw = readJson<Shrinkwrap>(path.join(s, 'npm-shrinkwrap.json'));
  const versions = new Map<string, string>();
  const packages: Record<string, ShrinkwrapEntry> = {};
  for (const [key, name, entry] of shrinkwrapDependencies(sw, false)) {
    const version = String(entry.version).startsWith('file:') ? readJson<{ version: string }>(path.join(s, key, 'package.json')).version : entry.version!;
    versions.set(name, version);
    packages[key] = { ...entry, version };
  }
  const { dependencies: _d, devDependencies: _dd, peerDependencies: _p, ...root } = sw.packages['']!;
  mkdirSync(npmPackage, { recursive: true });
  execFileSync('tar', ['xzf', npmPack(s, scratch), '--strip-components=1', '-C', npmPackage]);
  const { devDependencies: _dev, ...cached } = manifest;
  cached.dependencies = Object.fromEntries(Object.keys(manifest.dependencies).map((n) => [n, versions.get(n)!]));
  writeFileSync(path.join(npmPackage, 'package.json'), JSON.stringify(cached, null, 2));
  writeFileSync(path.join(npmPackage, 'npm-shrinkwrap.json'), JSON.stringify({ ...sw, packages: { '': { ...root, dependencies: Object.fromEntries(versions) }, ...packages } }, null, 2));
}
