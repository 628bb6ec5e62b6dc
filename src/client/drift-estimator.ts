/**
 * Drift of the box's clock against the player's: from the lower envelope of (arrival − box time), one point per
 * second (the packet that crossed fastest), a least-squares line over the last 32 s. Allocates nothing.
 */
const POINTS = 32;
const WINDOW_MS = 1000;

export class DriftEstimator {
  private readonly xs = new Float64Array(POINTS);
  private readonly ys = new Float64Array(POINTS);
  private count = 0;
  private next = 0;
  private base = NaN;
  private winStart = NaN;
  private winMinY = Infinity;
  private winMinX = 0;
  /** Box clock rate relative to the player's, ppm (positive: the box runs fast); 0 until known. */
  ppm = 0;

  reset(): void {
    this.count = 0;
    this.next = 0;
    this.base = NaN;
    this.winStart = NaN;
    this.winMinY = Infinity;
  }

  /** One packet: its box time and arrival, both ms. */
  add(boxMs: number, arrivalMs: number): void {
    if (this.base !== this.base) {
      this.base = boxMs;
      this.winStart = arrivalMs;
    }
    const x = boxMs - this.base;
    const y = arrivalMs - x;
    if (y < this.winMinY) {
      this.winMinY = y;
      this.winMinX = x;
    }
    if (arrivalMs - this.winStart < WINDOW_MS) return;
    this.xs[this.next] = this.winMinX;
    this.ys[this.next] = this.winMinY;
    this.next = (this.next + 1) % POINTS;
    if (this.count < POINTS) this.count++;
    this.winStart = arrivalMs;
    this.winMinY = Infinity;
    if (this.count >= 4) this.ppm = -slope(this.xs, this.ys, this.count) * 1e6;
  }
}

/** Least-squares slope of y over x for the first `n` points. */
function slope(xs: Float64Array, ys: Float64Array, n: number): number {
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += xs[i]!;
    my += ys[i]!;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - mx;
    sxy += dx * (ys[i]! - my);
    sxx += dx * dx;
  }
  return sxx > 0 ? sxy / sxx : 0;
}
