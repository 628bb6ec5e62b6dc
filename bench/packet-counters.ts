const HALF_U32 = 0x8000_0000;

/**
 * What a bench client counts of the packets it receives, whatever it is (a
 * raw socket or the client library): the session sums these over the fleet.
 */
export class PacketCounters {
  packets = 0;
  lost = 0;
  discontinuities = 0;
  payloadBytes = 0;
  /** What the same audio would take as pcm16 (frames × channels × 2), for compressionRatio. */
  pcm16Bytes = 0;
  private lastSeq = -1;

  count(seq: number, discontinuity: boolean, payloadBytes: number, pcm16Bytes: number): void {
    if (this.lastSeq >= 0) {
      const gap = (seq - this.lastSeq - 1) >>> 0;
      // A "gap" of more than half the space is a reordered or repeated seq, not loss.
      if (gap !== 0 && gap < HALF_U32) this.lost += gap;
    }
    this.lastSeq = seq;
    if (discontinuity) this.discontinuities++;
    this.packets++;
    this.payloadBytes += payloadBytes;
    this.pcm16Bytes += pcm16Bytes;
  }

  /** Zeroes counters but keeps the last seq, so a gap straddling the reset still counts once. */
  resetStats(): void {
    this.packets = this.lost = this.discontinuities = this.payloadBytes = this.pcm16Bytes = 0;
  }
}
