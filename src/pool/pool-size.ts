import { availableParallelism } from 'node:os';

/**
 * Resolves pool.size once at start: "auto" leaves the main thread (capture and
 * network) its own core, and never goes below one worker.
 */
export function resolvePoolSize(size: 'auto' | number, cores = availableParallelism()): number {
  if (size !== 'auto') return size;
  return Math.max(1, cores - 1);
}
