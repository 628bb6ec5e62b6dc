/**
 * Which arrival gap an audible event fell in (the wifi scenario's listeners,
 * bench/wifi-listener.ts), so that events no buffer of the listener's size
 * could have avoided are told apart from the rest.
 */

/** An arrival gap this long or longer is a stall (issue #12's figure). */
export const STALL_MS = 100;

/**
 * Tells an audible event that no buffer of the listener's size could have
 * avoided from one it could: the arrival gap it fell in, as the replay tool
 * does (bench/jitter/replay.ts). A gap is a pause in arrivals of more than
 * 1.5 packets; an event belongs to the gap open at its pull, or to the last
 * gap if that ended within a player tick and a packet before (the underrun
 * shows at the pull after the buffer ran dry). A gap counts as long when it
 * outlasted the target the buffer had when it began.
 */
export class ArrivalGaps {
  private lastArrival = -1;
  private periodMs = 2.67;
  private targetNow = 0;
  private targetAtLast = 0;
  private last: { start: number; end: number; target: number } | null = null;

  arrived(t: number, periodMs: number): void {
    this.periodMs = periodMs;
    if (this.lastArrival >= 0 && t - this.lastArrival > 1.5 * periodMs) this.last = { start: this.lastArrival, end: t, target: this.targetAtLast };
    this.lastArrival = t;
    this.targetAtLast = this.targetNow;
  }

  target(ms: number): void {
    this.targetNow = ms;
  }

  /** The arrival gap an event at `t` falls in: its length so far (0: none) and whether it outlasted the target it began with. */
  gapAt(t: number): { ms: number; long: boolean } {
    if (this.lastArrival < 0) return NO_GAP;
    const open = t - this.lastArrival;
    const isOpen = open > 1.5 * this.periodMs;
    if (isOpen && open > this.targetAtLast) return { ms: open, long: true };
    const g = this.last;
    if (g && t <= g.end + this.periodMs + PLAYER_TICK_SLACK_MS) return { ms: g.end - g.start, long: g.end - g.start > g.target };
    return isOpen ? { ms: open, long: false } : NO_GAP;
  }
}

const NO_GAP = { ms: 0, long: false } as const;

/** The bench's player ticks every 5 ms and runs late at p99 by a few more (bench/README.md, playerTickP99Ms). */
const PLAYER_TICK_SLACK_MS = 10;
