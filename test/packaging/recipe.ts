import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/service-process';

/** yocto/meta-stagebox and the service recipe's folder, read without BitBake. */
export const LAYER = path.join(REPO_ROOT, 'yocto', 'meta-stagebox');
export const RECIPE_DIR = path.join(LAYER, 'recipes-stagebox', 'stagebox');

/** name -> value of `NAME = "..."` / `+=` assignments (joined), with line continuations folded. */
export function bbVars(file: string): Map<string, string> {
  const text = readFileSync(file, 'utf8').replace(/\\\n/g, ' ');
  const vars = new Map<string, string>();
  for (const m of text.matchAll(/^([A-Za-z0-9_:${}\-.]+)\s*(\?\?=|\?=|:=|\+=|=\+|\.=|=)\s*"([^"]*)"/gm)) {
    const [, name, op, value] = m;
    const prev = vars.get(name!);
    vars.set(name!, op === '+=' || op === '.=' || op === '=+' ? `${prev ?? ''} ${value}`.trim() : value!.trim());
  }
  return vars;
}

/** The one .bb of the service recipe. */
export function recipeFile(): string {
  const bbs = readdirSync(RECIPE_DIR).filter((n) => n.endsWith('.bb'));
  assert.equal(bbs.length, 1, `recipes in ${RECIPE_DIR}: ${bbs}`);
  return path.join(RECIPE_DIR, bbs[0]!);
}

/** The recipe's patches to npm dependencies (`file://X.patch;patchdir=node_modules/<dep>` in SRC_URI), by shrinkwrap key. */
export function recipePatches(): Map<string, string[]> {
  const patches = new Map<string, string[]>();
  for (const uri of (bbVars(recipeFile()).get('SRC_URI') ?? '').split(/\s+/)) {
    const m = /^file:\/\/([^;]+\.patch);(?:.*;)?patchdir=(node_modules\/[^;]+)/.exec(uri);
    if (m) patches.set(m[2]!, [...(patches.get(m[2]!) ?? []), path.join(RECIPE_DIR, 'stagebox', m[1]!)]);
  }
  return patches;
}

/**
 * What an interpreter on a `#!` line needs on the image, by the package that
 * provides it. /bin/sh is in every image, and Yocto's QA (file-rdeps) does
 * not follow `/usr/bin/env` to what it runs: the image must still have it.
 */
export const INTERPRETERS: Record<string, string[]> = {
  nodejs: ['/usr/bin/node', 'node'],
  bash: ['/bin/bash', 'bash'],
  'python3-core': ['/usr/bin/python3', 'python3'],
  perl: ['/usr/bin/perl', 'perl'],
};

/**
 * The recipe's runtime dependencies: RDEPENDS:${PN}, and nodejs, which
 * npm.bbclass appends.
 */
export function recipeRdepends(): string[] {
  const own = (bbVars(recipeFile()).get('RDEPENDS:${PN}') ?? '').split(/\s+/).filter(Boolean);
  return [...new Set([...own, 'nodejs'])];
}
