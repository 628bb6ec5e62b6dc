/**
 * Concealed losses as a listener hears them, from outside the jitter buffer:
 * which seqs are missing behind the newest one that arrived, and, at each
 * player tick, where play-out stands in seq terms. A seq still missing when
 * play-out reaches it was concealed; consecutive ones are one audible event.
 */

/** A seq jump beyond this is a new stretch of audio (the jitter buffer's own limit), not a gap. */
const MAX_GAP = 256;

export class PlayoutTracker {
  /** Runs of consecutive concealed seqs, and the seqs in them. */
  events = 0;
  packets = 0;
  private newest = -1;
  /** Seqs missing behind the newest, ascending. */
  private missing: number[] = [];
  private lastConcealed = -2;

  /** A packet arrived. A discontinuity starts a new stretch: nothing behind it is waited for. */
  arrived(seq: number, discontinuity: boolean): void {
    const d = (seq - this.newest) | 0;
    if (this.newest < 0 || discontinuity || d > MAX_GAP || d < -MAX_GAP) {
      this.missing = [];
      this.newest = seq;
    } else if (d > 0) {
      for (let k = 1; k < d; k++) this.missing.push(this.newest + k);
      this.newest = seq;
    } else if (d < 0) {
      const i = this.missing.indexOf(seq);
      if (i >= 0) this.missing.splice(i, 1); // late, but before its turn
    }
  }

  /**
   * After a pull: the buffer holds `bufferedFrames` ending with the newest
   * packet's slot, so play-out is at newest + 1 − buffered / packet frames.
   */
  played(bufferedFrames: number, packetFrames: number): void {
    if (this.newest < 0 || packetFrames <= 0) return;
    const playhead = this.newest + 1 - bufferedFrames / packetFrames;
    while (this.missing.length > 0 && this.missing[0]! < playhead) {
      const seq = this.missing.shift()!;
      if (seq !== this.lastConcealed + 1) this.events++;
      this.packets++;
      this.lastConcealed = seq;
    }
  }

  /** Zeroes the counts (a new window); what is missing stays missing. */
  reset(): void {
    this.events = 0;
    this.packets = 0;
  }
}
