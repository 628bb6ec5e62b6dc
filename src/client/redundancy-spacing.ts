/**
 * Chooses the datagram redundancy spacing from the loss bursts this client
 * sees. A copy d packets back repairs a burst of up to d lost datagrams, but
 * arrives d periods after the packet would have: only a buffer that holds d
 * periods can play it. So d is the shortest that covers most lost packets,
 * and no longer than the jitter buffer can wait for.
 *
 * Wi-Fi loses in bursts whose length depends on the venue (one datagram on a
 * quiet office network, four or more in a crowded hall; BENCHMARKS.md "Wi-Fi
 * over UDP"), so no fixed spacing suits every room.
 */
import { MAX_SPACING } from '../protocol/datagram.js';

/** Bursts older than this are forgotten: the room changes when the audience comes in. */
export const SPACING_WINDOW_MS = 30_000;
/** Share of lost packets the chosen spacing should be able to repair. */
const COVER = 0.9;
/** Fewer bursts than this in the window say nothing about the room: keep the spacing. */
const MIN_BURSTS = 3;
/** A new choice must hold for this many looks in a row before the box is asked for it. */
const STEADY_LOOKS = 2;
/** Bursts remembered (a ring): more than a minute of the worst room's. */
const RING = 256;

const MIN_SPACING = 1;

export class SpacingChooser {
  private readonly at = new Float64Array(RING);
  private readonly len = new Uint8Array(RING);
  private head = 0;
  private count = 0;
  private current: number;
  private candidate = 0;
  private candidateLooks = 0;

  constructor(initial = MIN_SPACING) {
    this.current = clampSpacing(initial);
  }

  get spacing(): number {
    return this.current;
  }

  /** `lost` datagrams in a row went missing (seen as a gap in the primary seqs), at `nowMs`. */
  noteBurst(lost: number, nowMs: number): void {
    if (!(lost >= 1)) return;
    this.at[this.head] = nowMs;
    this.len[this.head] = Math.min(255, lost);
    this.head = (this.head + 1) % RING;
    if (this.count < RING) this.count++;
  }

  /**
   * Looks at the last SPACING_WINDOW_MS; returns the spacing to ask for when
   * it should change, or null to keep it. `bufferPeriods`: how many periods
   * the jitter buffer holds (its target over the period), or null when it is
   * not known (no buffer in this client: the caller plays what arrives).
   */
  look(nowMs: number, bufferPeriods: number | null): number | null {
    const want = this.choose(nowMs, bufferPeriods);
    if (want === this.current) {
      this.candidateLooks = 0;
      return null;
    }
    if (want !== this.candidate) {
      this.candidate = want;
      this.candidateLooks = 0;
    }
    if (++this.candidateLooks < STEADY_LOOKS) return null;
    this.current = want;
    this.candidateLooks = 0;
    return want;
  }

  /** The spacing the recent bursts call for, capped by the buffer. */
  choose(nowMs: number, bufferPeriods: number | null): number {
    const lostBy = new Array<number>(MAX_SPACING + 2).fill(0);
    let bursts = 0;
    let lost = 0;
    for (let i = 0; i < this.count; i++) {
      const k = (this.head - 1 - i + RING) % RING;
      if (nowMs - this.at[k]! > SPACING_WINDOW_MS) break;
      const n = this.len[k]!;
      lostBy[Math.min(n, MAX_SPACING + 1)]! += n;
      lost += n;
      bursts++;
    }
    if (bursts < MIN_BURSTS) return this.current;
    let d = MIN_SPACING;
    let covered = lostBy[1]!;
    while (d < MAX_SPACING && covered < COVER * lost) {
      d++;
      covered += lostBy[d]!;
    }
    // A copy is d periods late; one period more than the buffer holds lets the buffer grow to meet it when
    // that pays (it sees repaired packets as late ones), without the spacing running ahead of it.
    const cap = bufferPeriods === null ? MAX_SPACING : Math.max(MIN_SPACING, Math.floor(bufferPeriods) + 1);
    return Math.min(d, cap);
  }
}

export function clampSpacing(d: number): number {
  return Math.max(MIN_SPACING, Math.min(MAX_SPACING, Math.round(d)));
}
