/**
 * A congestion-window floor for the audio data channel's SCTP association
 * (werift 0.24.4). The box sends the audio at a fixed rate whatever the link
 * does, as it does over UDP: a lost datagram is lost, and what the sender may
 * not send yet is only late. werift's window follows RFC 4960 for bulk data:
 * each loss halves it (to 4 × 1200 bytes at the least), a retransmission
 * timeout (1 s at the least) drops it to 1200 bytes, and it grows only while
 * the sender keeps it full, which a fixed-rate stream never does. On the
 * `wifi` bench's lossy profiles the window therefore sat below what one
 * round trip of audio needs, the audio queued behind it and went out late or
 * was dropped at `maxBufferedBytes`: the page had 5-10× the underruns it had
 * over the WebSocket (BENCHMARKS.md). The floor is set per association
 * instance (nothing global). It bounds only what is in flight; what waits
 * to be sent is still bounded by `maxBufferedBytes`, so stale audio never
 * piles up behind it.
 */

/** The part of werift's SCTP association whose window this holds up. */
interface WindowedAssociation {
  cwnd: number;
}

const FLOORED = Symbol('stagebox.cwndFloor');

/**
 * Keeps `association.cwnd` at `floorBytes` or more; idempotent. Throws a
 * TypeError when the association has no numeric `cwnd` (a werift upgrade that
 * renamed it must be looked at).
 */
export function holdCongestionWindow(association: unknown, floorBytes: number): void {
  const a = association as Partial<WindowedAssociation> & { [FLOORED]?: true };
  if (typeof a?.cwnd !== 'number') {
    throw new TypeError('werift SCTP association has no numeric cwnd; the window floor (src/transport/sctp-audio-window.ts) must be revisited for this werift version');
  }
  if (!Number.isInteger(floorBytes) || floorBytes < 1) throw new RangeError(`cwnd floor is ${floorBytes}; allowed: a positive integer of bytes`);
  if (a[FLOORED]) return;
  let cwnd = Math.max(a.cwnd, floorBytes);
  Object.defineProperty(a, 'cwnd', {
    configurable: true,
    enumerable: true,
    get: () => cwnd,
    set: (v: number) => {
      cwnd = Math.max(v, floorBytes);
    },
  });
  a[FLOORED] = true;
}
