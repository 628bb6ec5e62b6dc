/**
 * A werift DTLS fix (werift 0.24.4 and 0.25.2): its Finished record, the
 * first of epoch 1, takes the next sequence number of the handshake's
 * counter, and only then is the counter reset to 0 for epoch 1. The
 * application-data record that counts up to that number again reaches the
 * browser as a replay (RFC 6347 §4.1.2.6) and is dropped. With a reliable
 * channel SCTP sends it again; on the audio channel (maxRetransmits 0) it
 * is one AUDIO datagram lost on every connection (in Chromium, the second).
 * Moving the counter far past anything the handshake used, as DTLS
 * connects and before any application data, avoids the collision; sequence
 * numbers are 48-bit, so the jump costs nothing.
 */

/** Far beyond the records of any handshake, retransmitted flights included. */
const SKIP = 1 << 20;

interface DtlsTransportLike {
  onStateChange: { subscribe(fn: (state: string) => void): unknown };
  dtls?: { dtls?: { recordSequenceNumber?: number } };
}

/**
 * Arranges the jump on werift's RTCDtlsTransport when it connects. Throws a
 * TypeError if the transport lacks what it needs (a werift upgrade to look at).
 */
export function skipHandshakeSequenceNumbers(dtlsTransport: unknown): void {
  const t = dtlsTransport as Partial<DtlsTransportLike> | undefined;
  if (typeof t?.onStateChange?.subscribe !== 'function') {
    throw new TypeError('werift RTCDtlsTransport has no onStateChange; the DTLS sequence fix (src/transport/dtls-record-sequence.ts) must be revisited for this werift version');
  }
  t.onStateChange.subscribe((state) => {
    if (state !== 'connected') return;
    const context = t.dtls?.dtls;
    if (typeof context?.recordSequenceNumber !== 'number') {
      throw new TypeError('werift DTLS context has no recordSequenceNumber; the DTLS sequence fix (src/transport/dtls-record-sequence.ts) must be revisited for this werift version');
    }
    context.recordSequenceNumber += SKIP;
  });
}
