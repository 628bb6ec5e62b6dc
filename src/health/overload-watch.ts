import type { EventLog } from './event-log';

/** Counters that only grow (until a perf reset), read once a second. */
export interface OverloadCounters {
  /** Periods fanned out later than one period after they arrived (send-pool). */
  deadlineMisses: number;
  /** Periods dropped because the pool was a whole ring behind. */
  skippedPeriods: number;
  /** Capture overruns reported by the source. */
  xruns: number;
}

/**
 * Turns the audio path's trouble counters into events, one per burst rather
 * than one per miss: "overload" when the counters start moving (with the
 * first second's counts), "overload-ended" once they have stood still for
 * `quietChecks` checks (with the burst's totals and length). A sustained
 * overload thus costs two entries of the event log, not fifty.
 */
export class OverloadWatch {
  private last: OverloadCounters | null = null;
  private burst: { startedAt: number; totals: OverloadCounters; quiet: number } | null = null;

  /** `quietChecks`: checks without a new miss that end a burst (default 5, i.e. 5 s at one check a second). */
  constructor(
    private readonly events: EventLog,
    private readonly quietChecks = 5,
  ) {}

  /** Compares with the previous check; call about once a second, never from the audio path. */
  check(now: OverloadCounters, nowMs = Date.now()): void {
    const prev = this.last;
    this.last = { ...now };
    if (prev === null) return;
    const d: OverloadCounters = {
      deadlineMisses: delta(prev.deadlineMisses, now.deadlineMisses),
      skippedPeriods: delta(prev.skippedPeriods, now.skippedPeriods),
      xruns: delta(prev.xruns, now.xruns),
    };
    const any = d.deadlineMisses + d.skippedPeriods + d.xruns > 0;
    if (any && this.burst === null) {
      this.burst = { startedAt: nowMs, totals: d, quiet: 0 };
      this.events.add('overload', { ...d });
    } else if (any && this.burst !== null) {
      const t = this.burst.totals;
      t.deadlineMisses += d.deadlineMisses;
      t.skippedPeriods += d.skippedPeriods;
      t.xruns += d.xruns;
      this.burst.quiet = 0;
    } else if (this.burst !== null && ++this.burst.quiet >= this.quietChecks) {
      const b = this.burst;
      this.burst = null;
      this.events.add('overload-ended', { ...b.totals, durationS: Math.round((nowMs - b.startedAt) / 1000) });
    }
  }
}

/** Growth of a counter; a counter that went down was reset, so all of its new value is growth. */
function delta(prev: number, now: number): number {
  return now >= prev ? now - prev : now;
}
