/**
 * Network profiles of the impaired-network harness: named JSON files in
 * bench/net-profiles/ (every key: bench/net-profiles/README.md), parsed by one
 * strict schema, and turned into nh-impair's arguments.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { describeIssues } from '../../src/config/config-errors';

/** dist/bench/net/ → repo root. */
export const PROFILES_DIR = path.resolve(__dirname, '..', '..', '..', 'bench', 'net-profiles');

const MAX_MS = 600_000;
const QUANTILE_KEY = /^p(\d{1,2}(\.\d+)?)$/;
const QUANTILE_RULE = 'min, max or pN for a quantile (0 < N < 100, e.g. p50, p99.9)';

/**
 * A distribution of milliseconds given by its quantiles: { min, p50, p99, max }.
 * Piecewise linear between them; min defaults to 0, max is required.
 */
const quantilesSchema = z
  .record(z.number().finite().min(0).max(MAX_MS))
  .superRefine((q, ctx) => {
    for (const key of Object.keys(q)) {
      const m = QUANTILE_KEY.exec(key);
      const n = m ? Number(m[1]) : NaN;
      if (key !== 'min' && key !== 'max' && !(n > 0 && n < 100)) ctx.addIssue({ code: 'custom', path: [key], message: `a key of ${QUANTILE_RULE}` });
    }
    if (q.max === undefined) {
      ctx.addIssue({ code: 'custom', path: ['max'], message: 'a number of ms >= 0 (max is required)' });
      return;
    }
    // Quantiles may not fall: p99 below the median is no distribution.
    let prev: [string, number] | null = null;
    for (const [key] of knotsOf(q)) {
      const v = q[key]!;
      if (prev && v < prev[1]) ctx.addIssue({ code: 'custom', path: [key], message: `a number >= ${prev[0]} (${prev[1]}): quantiles may not fall` });
      prev = [key, v];
    }
  });
type Quantiles = z.infer<typeof quantilesSchema>;

/** The keys of a quantile object in quantile order, each with its u in [0, 1]; min is u = 0 even when absent. */
function knotsOf(q: Quantiles): [string, number][] {
  const out: [string, number][] = [];
  if (q.min !== undefined) out.push(['min', 0]);
  for (const key of Object.keys(q)) {
    const m = QUANTILE_KEY.exec(key);
    if (m) out.push([key, Number(m[1]) / 100]);
  }
  out.sort((a, b) => a[1] - b[1]);
  if (q.max !== undefined) out.push(['max', 1]);
  return out;
}

const lossSchema = z
  .object({
    rate: z.number().min(0).lt(1).describe('Fraction of packets lost, 0 up to (not including) 1.'),
    meanBurst: z.number().min(1).max(1000).default(1).describe('Mean length of a run of lost packets (Gilbert-Elliott), >= 1.'),
    maxBurst: z.number().int().min(1).max(1000).optional().describe('Longest run of lost packets; absent: unbounded.'),
  })
  .strict()
  .superRefine((l, ctx) => {
    if (l.maxBurst !== undefined && l.maxBurst < l.meanBurst) {
      ctx.addIssue({ code: 'custom', path: ['maxBurst'], message: `an integer >= meanBurst (${l.meanBurst})` });
    }
  });

const directionSchema = z
  .object({
    delayMs: z.number().min(0).max(10_000).default(0).describe('Fixed one-way delay, ms.'),
    jitterMs: quantilesSchema.optional().describe('Extra delay per packet on top of delayMs, by quantile, ms.'),
    loss: lossSchema.optional(),
  })
  .strict()
  .default({});

const windowsSchema = z
  .object({
    intervalMs: quantilesSchema.describe('Time from the start of one window to the start of the next, by quantile, ms.'),
    durationMs: quantilesSchema.describe('Length of a window, by quantile, ms.'),
  })
  .strict()
  .superRefine((w, ctx) => {
    const min = w.intervalMs.min ?? 0;
    if (w.durationMs.max !== undefined && min < w.durationMs.max) {
      ctx.addIssue({ code: 'custom', path: ['intervalMs', 'min'], message: `a number >= durationMs.max (${w.durationMs.max}), so that one window ends before the next begins` });
    }
  });

export const profileSchema = z
  .object({
    description: z.string().min(1).max(500),
    source: z.string().min(1).max(500).optional(),
    down: directionSchema.describe('Towards the listener.'),
    up: directionSchema.describe('Towards the box.'),
    stalls: windowsSchema.optional().describe('Windows in which the link sends nothing either way.'),
    powerSave: windowsSchema.optional().describe('Windows in which the access point holds what goes to a sleeping phone.'),
  })
  .strict();

export type NetProfile = z.infer<typeof profileSchema>;
export type DirectionProfile = NetProfile['down'];

const KNOWN_KEYS: Record<string, string> = {
  '': 'description, source, down, up, stalls, powerSave',
  down: 'delayMs, jitterMs, loss',
  up: 'delayMs, jitterMs, loss',
  loss: 'rate, meanBurst, maxBurst',
  stalls: 'intervalMs, durationMs',
  powerSave: 'intervalMs, durationMs',
};

function knownKeys(at: readonly (string | number)[]): string {
  const last = at.length === 0 ? '' : String(at[at.length - 1]);
  return `allowed: ${KNOWN_KEYS[last] ?? QUANTILE_RULE}`;
}

/** Parses a profile; throws one line per problem (`<source>: <key>: got <value>; allowed: <rule>`). */
export function parseProfile(raw: unknown, source: string): NetProfile {
  const r = profileSchema.safeParse(raw);
  if (!r.success) throw new Error(describeIssues(source, raw, r.error, knownKeys));
  return r.data;
}

/** Names of the profiles in bench/net-profiles/, sorted. */
export function profileNames(dir = PROFILES_DIR): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/** Reads and parses bench/net-profiles/<name>.json; the errors name the file. */
export function loadProfile(name: string, dir = PROFILES_DIR): NetProfile {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw new Error(`network profile "${name}": allowed: a file name of bench/net-profiles/ (lower-case letters, digits and "-")`);
  const file = path.join(dir, `${name}.json`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new Error(`network profile "${name}": there is no ${file}; allowed: ${profileNames(dir).join(', ')}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not JSON: ${(err as Error).message}`);
  }
  return parseProfile(raw, file);
}

/** nh-impair's form of a distribution: "u:v/u:v/...", u from 0 to 1. */
function knots(q: Quantiles): string {
  const list = knotsOf(q);
  if (list[0]![1] !== 0) list.unshift(['min', 0]);
  return list.map(([key, u]) => `${u}:${key === 'min' && q.min === undefined ? 0 : q[key]}`).join('/');
}

function directionArg(d: DirectionProfile): string {
  const parts = [`delay=${d.delayMs}`];
  if (d.jitterMs) parts.push(`jitter=${knots(d.jitterMs)}`);
  if (d.loss && d.loss.rate > 0) {
    parts.push(`loss=${d.loss.rate}`, `burst=${d.loss.meanBurst}`);
    if (d.loss.maxBurst !== undefined) parts.push(`maxburst=${d.loss.maxBurst}`);
  }
  return parts.join(',');
}

/** The model options of nh-impair for a profile (links, seed and limits are the caller's). */
export function impairArgs(p: NetProfile): string[] {
  const args = ['--down', directionArg(p.down), '--up', directionArg(p.up)];
  if (p.stalls) args.push('--stalls', `interval=${knots(p.stalls.intervalMs)},duration=${knots(p.stalls.durationMs)}`);
  if (p.powerSave) args.push('--power-save', `interval=${knots(p.powerSave.intervalMs)},duration=${knots(p.powerSave.durationMs)}`);
  return args;
}
