/**
 * The send pool's main-thread-or-workers decision for one kind of work
 * (channel outputs, personal mixes), from measured cost rather than a fixed
 * threshold (docs/architecture.md, "Pool or main thread?"):
 *
 * - it learns the main-thread cost per unit of work from inline periods,
 *   after WARMUP_PERIODS that run before V8 has optimised the kernels;
 * - a period runs inline while `work × cost` fits the budget it is given;
 * - it comes back from the pool only below RETURN_SHARE of the budget
 *   (hysteresis: a load near the budget would otherwise flip every period),
 *   and while pooled it re-measures one period in PROBE_EVERY inline, so one
 *   slow period (GC, a busy core) cannot banish a load to the pool for good.
 */

/** While pooled, every this many periods one runs inline to re-measure its cost. */
const PROBE_EVERY = 256;
/** Weight of the newest sample in the cost average (probes are rare, so they count more). */
const COST_EWMA = 0.05;
const PROBE_EWMA = 0.3;
/** The first inline periods run before V8 has optimised the kernels and cost many times their steady price. */
const WARMUP_PERIODS = 200;
/** Back from the pool only below this share of the budget. */
const RETURN_SHARE = 0.7;

export class InlineDecider {
  /** EWMA of inline ms per unit of work; 0 until measured. */
  private cost = 0;
  private warmupLeft = WARMUP_PERIODS;
  private pooled = false;
  private sinceProbe = 0;
  private probing = false;

  /** Measured main-thread cost per unit of work, ms (0 until measured). */
  get costMsPerWork(): number {
    return this.cost;
  }

  /** Predicted main-thread time for `work`, ms (0 until measured). */
  predictMs(work: number): number {
    return work * this.cost;
  }

  /** Whether a period of `work` runs inline, given `budgetMs` of main-thread time for it. */
  inline(work: number, budgetMs: number): boolean {
    this.probing = false;
    if (this.warmupLeft > 0 || this.cost === 0) return true;
    this.pooled = work * this.cost > budgetMs * (this.pooled ? RETURN_SHARE : 1);
    if (!this.pooled) return true;
    if (++this.sinceProbe >= PROBE_EVERY) {
      this.sinceProbe = 0;
      this.probing = true;
      return true;
    }
    return false;
  }

  /** Records an inline period of `work` that took `ms` on the main thread. */
  learn(ms: number, work: number): void {
    if (work <= 0) return;
    if (this.warmupLeft > 0) {
      this.warmupLeft--;
      return;
    }
    const sample = ms / work;
    const alpha = this.probing ? PROBE_EWMA : COST_EWMA;
    this.cost = this.cost === 0 ? sample : this.cost + alpha * (sample - this.cost);
  }
}
