/**
 * Channel lists the bench clients subscribe to. Every generator is
 * deterministic so two bench runs load the service identically.
 */
import { seededRandom } from './seeded-random';

/**
 * `count` pairwise different sets of `size` channels out of `total`, each in
 * ascending order. Different membership (not just order) makes every client
 * a distinct output the service must encode separately. The list for a
 * smaller count is a prefix of the list for a larger one, which lets the
 * ramp add clients step by step.
 */
export function distinctSubsets(count: number, size: number, total: number, seed = 0x5b0c_2024): number[][] {
  if (!Number.isInteger(size) || size < 1 || size > total) throw new RangeError(`subset size: got ${size}; allowed: 1-${total}`);
  const rand = seededRandom(seed);
  const pool = Array.from({ length: total }, (_, i) => i);
  const seen = new Set<string>();
  const sets: number[][] = [];
  // C(32,16) is ~6e8, so collisions are rare; the cap only guards tiny spaces.
  const maxAttempts = count * 20 + 100;
  for (let attempt = 0; sets.length < count && attempt < maxAttempts; attempt++) {
    // Partial Fisher-Yates: the first `size` slots become a uniform random subset.
    for (let k = 0; k < size; k++) {
      const j = k + Math.floor(rand() * (total - k));
      const t = pool[k]!;
      pool[k] = pool[j]!;
      pool[j] = t;
    }
    const set = pool.slice(0, size).sort((a, b) => a - b);
    const key = set.join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    sets.push(set);
  }
  if (sets.length < count) throw new RangeError(`only ${sets.length} distinct ${size}-of-${total} channel sets found; ${count} asked`);
  return sets;
}

/** All `total` channels starting at `start`: same membership, a distinct order (so a distinct output). */
export function rotation(start: number, total: number): number[] {
  return Array.from({ length: total }, (_, k) => (start + k) % total);
}

/** Channels 0..size-1: what every client of the shared ramp wants. */
export function firstChannels(size: number): number[] {
  return Array.from({ length: size }, (_, k) => k);
}
