/**
 * The box's clock as seen from the client (docs/protocol.md §8): each pong
 * gives a round trip and an offset; the offset of the ping with the smallest
 * round trip in the last 30 s is the one trusted (its error is at most half
 * that round trip). Portable.
 */
import type { BoxMessage } from '../protocol/messages.js';

const OFFSET_WINDOW_MS = 30000;

export class ClockSync {
  /** Last ping round trip, ms. */
  rtt: number | null = null;
  private offsets: { at: number; rtt: number; offset: number }[] = [];

  /** A new connection: old estimates say nothing about its path. */
  reset(): void {
    this.offsets = [];
    this.rtt = null;
  }

  /** A `pong` arrived at `now` (client clock, ms); ignored unless it carries `t` and `boxNs`. */
  onPong(msg: BoxMessage, now: number): void {
    const t = msg.t;
    if (typeof t !== 'number' || typeof msg.boxNs !== 'string') return;
    const rtt = now - t;
    this.rtt = rtt;
    const boxMs = Number(BigInt(msg.boxNs)) / 1e6;
    this.offsets.push({ at: now, rtt, offset: boxMs - (t + rtt / 2) });
    while (this.offsets.length > 0 && now - this.offsets[0]!.at > OFFSET_WINDOW_MS) this.offsets.shift();
  }

  /** The trusted estimate: box ms − client ms, and the round trip it came from; null before a pong. */
  best(): { rtt: number; offset: number } | null {
    let best: { rtt: number; offset: number } | null = null;
    for (const o of this.offsets) if (!best || o.rtt < best.rtt) best = o;
    return best && { rtt: best.rtt, offset: best.offset };
  }

  /** A box clock reading (ns, as in captureNs) on the client clock (ms), once a pong has given the offset. */
  boxToClientMs(boxNs: bigint | number): number | null {
    const best = this.best();
    return best ? Number(boxNs) / 1e6 - best.offset : null;
  }
}
