/**
 * The PR-SCTP rule of RFC 3758 §3.5 for werift's SCTP association, which gets
 * it wrong (werift 0.24.4 and 0.25.2, a port of aiortc's `_maybe_abandon`):
 * `!!chunk.maxRetransmits` is false for 0, so a `maxRetransmits: 0` channel
 * retransmits every lost chunk until it is acknowledged (a reliable channel,
 * whose retransmissions after a Wi-Fi stall go out before newer audio); and
 * the chunks it marks abandoned are found by chunk type (the first DATA chunk
 * queued, not the one given) and walked back to the previous message's last
 * fragment. This replaces the method on one association instance (nothing
 * global), as aiortc does it: a chunk sent more than maxRetransmits times is
 * abandoned with every fragment of its message, and the FORWARD-TSN that
 * werift then sends tells the browser to skip it.
 * test/transport/webrtc-chromium.test.ts proves it under loss against Chromium.
 */

const LAST_FRAG = 0x01;
const FIRST_FRAG = 0x02;

/** The fields of werift's DataChunk that the rule reads and writes. */
interface SentChunk {
  flags: number;
  sentCount: number;
  maxRetransmits?: number;
  expiry?: number;
  abandoned: boolean;
  retransmit: boolean;
}

/** The part of werift's SCTP association that the rule replaces. */
export interface AbandoningAssociation {
  sentQueue: SentChunk[];
  maybeAbandon(chunk: SentChunk): boolean;
}

const FIXED = Symbol('stagebox.prSctpFixed');

function maybeAbandon(this: AbandoningAssociation, chunk: SentChunk): boolean {
  if (chunk.abandoned) return true;
  const overRetransmits = chunk.maxRetransmits !== undefined && chunk.sentCount > chunk.maxRetransmits;
  // werift stores expiry as Date.now() + lifetime / 1000 (ms + s): kept as it
  // compares it, since the audio channel never sets a lifetime.
  const expired = !!chunk.expiry && chunk.expiry < Date.now() / 1000;
  if (!overRetransmits && !expired) return false;
  const queue = this.sentQueue;
  const at = queue.indexOf(chunk);
  if (at < 0) {
    chunk.abandoned = true;
    chunk.retransmit = false;
    return true;
  }
  for (let i = at; i >= 0; i--) {
    queue[i]!.abandoned = true;
    queue[i]!.retransmit = false;
    if (queue[i]!.flags & FIRST_FRAG) break;
  }
  for (let i = at; i < queue.length; i++) {
    queue[i]!.abandoned = true;
    queue[i]!.retransmit = false;
    if (queue[i]!.flags & LAST_FRAG) break;
  }
  return true;
}

/**
 * Gives `association` the RFC 3758 abandon rule; idempotent. Throws a
 * TypeError when the association lacks the method or queue it replaces (a
 * werift upgrade that changed them must be looked at, not run unreliably).
 */
export function enforcePartialReliability(association: unknown): void {
  const a = association as Partial<AbandoningAssociation> & { [FIXED]?: true };
  if (typeof a?.maybeAbandon !== 'function' || !Array.isArray(a.sentQueue)) {
    throw new TypeError('werift SCTP association has no maybeAbandon() or sentQueue; the PR-SCTP fix (src/transport/sctp-partial-reliability.ts) must be revisited for this werift version');
  }
  if (a[FIXED]) return;
  a.maybeAbandon = maybeAbandon;
  a[FIXED] = true;
}
