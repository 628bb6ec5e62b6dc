/**
 * Fixed-bucket latency histogram with no allocation per sample: 1 µs buckets
 * up to 2 ms, 100 µs buckets up to 100 ms, then one overflow bucket.
 * Values are milliseconds.
 */
const FINE_US = 2000;
const COARSE_STEP_US = 100;
const COARSE_END_US = 100_000;
const COARSE = (COARSE_END_US - FINE_US) / COARSE_STEP_US;
const BUCKETS = FINE_US + COARSE + 1;

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  private n = 0;
  private max = 0;

  record(ms: number): void {
    const us = ms * 1000;
    let b: number;
    if (!(us > 0)) b = 0;
    else if (us < FINE_US) b = us | 0;
    else if (us < COARSE_END_US) b = FINE_US + (((us - FINE_US) / COARSE_STEP_US) | 0);
    else b = BUCKETS - 1;
    this.counts[b]!++;
    this.n++;
    if (ms > this.max) this.max = ms;
  }

  get count(): number {
    return this.n;
  }

  /** Upper edge of the bucket holding quantile q (0..1), never above the largest value recorded, ms. */
  quantile(q: number): number {
    if (this.n === 0) return 0;
    const target = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.counts[b]!;
      if (seen >= target) {
        if (b < FINE_US) return Math.min(this.max, (b + 1) / 1000);
        if (b < BUCKETS - 1) return Math.min(this.max, (FINE_US + (b - FINE_US + 1) * COARSE_STEP_US) / 1000);
        return this.max;
      }
    }
    return this.max;
  }

  summary(): LatencySummary {
    return { count: this.n, p50Ms: this.quantile(0.5), p99Ms: this.quantile(0.99), p999Ms: this.quantile(0.999), maxMs: this.max };
  }

  reset(): void {
    this.counts.fill(0);
    this.n = 0;
    this.max = 0;
  }
}
