/**
 * Calls `tick` once per period on an absolute schedule, so timer lateness
 * never accumulates into drift. Node timers have 1 ms granularity: a tick may
 * be up to ~1 ms late, never early. If the loop was held up for more than
 * `maxCatchUp` periods, the schedule jumps ahead instead of bursting stale
 * periods: the source plays on later. Its samples are its own (a file, a
 * generated tone), so none is lost and the next period follows the last one
 * without a discontinuity; only its arrival is late (the capture jitter shows it).
 */
export class RealtimePacer {
  private timer: NodeJS.Timeout | null = null;
  private nextDue = 0;

  constructor(
    private readonly periodMs: number,
    private readonly tick: () => void,
    private readonly maxCatchUp = 4,
  ) {}

  start(): void {
    if (this.timer) return;
    this.nextDue = performance.now() + this.periodMs;
    this.schedule();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private readonly run = (): void => {
    this.timer = null;
    const now = performance.now();
    let due = Math.floor((now - this.nextDue) / this.periodMs) + 1;
    if (due > this.maxCatchUp) {
      this.nextDue += (due - 1) * this.periodMs;
      due = 1;
    }
    for (let i = 0; i < due; i++) {
      this.tick();
      this.nextDue += this.periodMs;
    }
    this.schedule();
  };

  private schedule(): void {
    this.timer = setTimeout(this.run, Math.max(0, this.nextDue - performance.now()));
  }
}
