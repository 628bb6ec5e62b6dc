import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/service-process';

/**
 * src/ reads from the bottom up: each folder is a layer and may import only
 * from its own folder and from layers below it (docs/architecture.md,
 * "Layers"). An import that runs upward, or sideways into another folder of
 * the same rank, fails here with the file and the import.
 */

const SRC = path.join(REPO_ROOT, 'src');

/** Rank of each layer; higher ranks may import lower ones. */
const RANK: Readonly<Record<string, number>> = {
  protocol: 0,
  logging: 0,
  metrics: 0,
  engine: 1,
  client: 1,
  config: 2,
  state: 3,
  pool: 4,
  capture: 5,
  transport: 6,
  recording: 7,
  control: 8,
  health: 9,
  web: 9,
  discovery: 9,
  listen: 10,
  appliance: 11,
};

/** Portable layers (the browser build imports them): no Node built-ins, no npm packages. */
const PORTABLE = new Set(['protocol', 'client']);

function layerOf(file: string): string {
  const rel = path.relative(SRC, file).split(path.sep);
  // src/main.ts only starts the appliance; "../protocol" names the folder (its index).
  return rel.length === 1 && RANK[rel[0]!] === undefined ? 'appliance' : rel[0]!;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|\brequire\(\s*['"]([^'"]+)['"]\s*\)/g;

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

test('every folder of src/ has a rank', () => {
  const folders = readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  assert.deepEqual(folders.filter((f) => RANK[f] === undefined), [], 'new folders need a rank in this test and a line in docs/architecture.md');
});

test('no import runs upward or sideways between layers', () => {
  const problems: string[] = [];
  for (const file of sources(SRC)) {
    const from = layerOf(file);
    for (const spec of importsOf(file)) {
      if (!spec.startsWith('.')) continue;
      const target = path.resolve(path.dirname(file), spec);
      const to = layerOf(target);
      if (to === from) continue;
      if (RANK[to]! >= RANK[from]!) problems.push(`${path.relative(REPO_ROOT, file)} (${from}, rank ${RANK[from]}) imports ${spec} (${to}, rank ${RANK[to]})`);
    }
  }
  assert.deepEqual(problems, []);
});

test('the portable layers import no Node built-in and no npm package', () => {
  const problems: string[] = [];
  for (const file of sources(SRC)) {
    if (!PORTABLE.has(layerOf(file))) continue;
    for (const spec of importsOf(file)) {
      if (spec.startsWith('.')) {
        const to = layerOf(path.resolve(path.dirname(file), spec));
        if (!PORTABLE.has(to)) problems.push(`${path.relative(REPO_ROOT, file)} imports ${spec} (${to}, not portable)`);
        if (!spec.endsWith('.js')) problems.push(`${path.relative(REPO_ROOT, file)} imports ${spec} without the .js suffix the browser needs`);
      } else problems.push(`${path.relative(REPO_ROOT, file)} imports ${spec}`);
    }
  }
  assert.deepEqual(problems, []);
});

test('every relative import and require names a file that exists (a moved module leaves no dangling path)', () => {
  const problems: string[] = [];
  for (const file of sources(SRC)) {
    for (const spec of importsOf(file)) {
      if (!spec.startsWith('.')) continue;
      const base = path.resolve(path.dirname(file), spec.replace(/\.js$/, ''));
      // A data file is required from where the compiled module runs (dist/src/...), one folder deeper.
      const fromDist = path.resolve(path.join(REPO_ROOT, 'dist', path.relative(REPO_ROOT, path.dirname(file))), spec);
      const found = [`${base}.ts`, path.join(base, 'index.ts')].some(existsSync) || (spec.endsWith('.json') && existsSync(fromDist));
      if (!found) problems.push(`${path.relative(REPO_ROOT, file)}: ${spec}`);
    }
  }
  assert.deepEqual(problems, []);
});
