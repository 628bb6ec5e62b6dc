/**
 * Bounded waiting. Every wait in these tests ends: either the condition holds
 * or the test fails with a message saying what was awaited.
 *
 * The timers and the clock are taken when this module loads, so these waits
 * keep running on real time while a test drives its code under node:test's
 * mock timers (which replace the global setTimeout and Date, not
 * performance.now()).
 */
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
const now = (): number => performance.now();

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => realSetTimeout(resolve, ms));
}

/** Resolves with `p`, or rejects after `ms` with "timed out after ms: what". */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = realSetTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => realClearTimeout(timer));
}

/**
 * Polls `check` until it returns a value other than undefined/false; resolves
 * with that value. Fails after `timeoutMs`, naming `what` and the last value
 * seen by `describe` (if given) so a failure says where things stood.
 */
export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  opts: { timeoutMs: number; what: string; intervalMs?: number; describe?: () => string },
): Promise<T> {
  const deadline = now() + opts.timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
      lastErr = undefined;
    } catch (err) {
      lastErr = err;
    }
    if (now() >= deadline) {
      const extra = opts.describe ? `; last state: ${opts.describe()}` : '';
      const errText = lastErr ? `; last error: ${(lastErr as Error).message}` : '';
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${extra}${errText}`);
    }
    await sleep(opts.intervalMs ?? 50);
  }
}
