'use strict';
// stagebox: which installed packages the service loads at run time.
// `npm ci --omit=dev` also installs what only the build needs: alsa-capture
// lists node-gyp as a dependency (it compiles the addon at install time), and
// node-gyp brings 74 more (lockfile entries) and its Python gyp. The installed tree
// (packaging/prune-node-modules.js) and the Yocto recipe's licence list
// (packaging/yocto-licenses.js) both take what is reachable from the service's
// dependencies without passing through a build tool.

/**
 * Packages that only build the native addons. An edge to one of these is not
 * followed: nothing reaches them at run time (the addons are compiled by then).
 */
const BUILD_TOOLS = new Set(['node-gyp']);

/**
 * Where Node's resolution finds `name` when required from the package at
 * location `from` (`node_modules/a/node_modules/b`, '' for the root): its own
 * node_modules, then each enclosing package's, then the root's.
 * @param {(location: string) => object | null} lookup the manifest at a location, or null
 * @returns {string | null} the location, or null when nothing is there
 */
function resolveFrom(lookup, from, name) {
  let base = from;
  for (;;) {
    const location = base === '' ? `node_modules/${name}` : `${base}/node_modules/${name}`;
    if (lookup(location)) return location;
    if (base === '') return null;
    const up = base.lastIndexOf('/node_modules/');
    base = up < 0 ? '' : base.slice(0, up);
  }
}

/**
 * The locations of every package reachable from the root's dependencies
 * without passing through a build tool. Dependencies, optional dependencies
 * and peers count when installed; a missing optional one or peer is a
 * platform package for another target or a peer nobody asked for.
 * @param {(location: string) => object | null} lookup the package manifest at a location
 *   ('' is the root), or null when no package is there
 * @param {Set<string>} [buildTools] names whose edges are not followed (default BUILD_TOOLS)
 * @returns {Set<string>}
 * @throws {RangeError} when a required dependency is nowhere above its dependent
 */
function reachablePackages(lookup, buildTools = BUILD_TOOLS) {
  const seen = new Set();
  const queue = [''];
  while (queue.length > 0) {
    const location = queue.pop();
    const manifest = lookup(location);
    const optional = manifest.optionalDependencies ?? {};
    const peers = manifest.peerDependencies ?? {};
    for (const name of Object.keys({ ...manifest.dependencies, ...optional, ...peers })) {
      if (buildTools.has(name)) continue;
      const found = resolveFrom(lookup, location, name);
      if (found === null) {
        if (name in optional || name in peers) continue;
        throw new RangeError(`${location || 'the root package'} depends on ${name}, which no node_modules above it has`);
      }
      if (!seen.has(found)) {
        seen.add(found);
        queue.push(found);
      }
    }
  }
  return seen;
}

/**
 * The lockfile keys of the production packages the service loads, in
 * lockfile order. A file: dependency is a link in node_modules and an entry
 * at its directory; installed as a copy, its dependencies resolve from the link.
 * @param {{ packages: Record<string, object> }} lock a parsed package-lock.json (v2/v3)
 * @returns {string[]}
 */
function runtimePackages(lock) {
  const packages = lock.packages;
  if (!packages || !packages['']) {
    throw new RangeError('package-lock.json: no "packages" with a root entry ""; allowed: lockfileVersion 2 or 3');
  }
  const lookup = (key) => {
    const entry = packages[key];
    if (!entry || entry.dev) return null;
    return entry.link ? packages[entry.resolved] ?? {} : entry;
  };
  const seen = reachablePackages(lookup);
  return Object.keys(packages).filter((k) => seen.has(k));
}

module.exports = { BUILD_TOOLS, reachablePackages, runtimePackages };
