/**
 * Splits work items over the pool's shards: heaviest first, each to the
 * least loaded shard (greedy longest-processing-time, within 4/3 of the best
 * split). Channel outputs and personal mixes are balanced the same way, each
 * item packed into its shard's Int32Array record by record.
 */
export interface Balanced {
  /** Non-empty shards, each the items' records back to back. */
  shards: Int32Array[];
  /** Sum of every item's weight. */
  total: number;
}

export function balance<T>(items: readonly T[], shardCount: number, weightOf: (item: T) => number, recordOf: (item: T) => readonly number[]): Balanced {
  const sorted = [...items].sort((a, b) => weightOf(b) - weightOf(a));
  const n = Math.min(Math.max(1, shardCount), Math.max(1, sorted.length));
  const buckets: number[][] = Array.from({ length: n }, () => []);
  const load = new Array<number>(n).fill(0);
  for (const item of sorted) {
    let best = 0;
    for (let i = 1; i < n; i++) if (load[i]! < load[best]!) best = i;
    buckets[best]!.push(...recordOf(item));
    load[best]! += weightOf(item);
  }
  return { shards: buckets.filter((b) => b.length > 0).map((b) => Int32Array.from(b)), total: load.reduce((a, b) => a + b, 0) };
}
