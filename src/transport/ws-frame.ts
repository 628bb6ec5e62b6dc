import { FLAG_DISCONTINUITY, OFFSET } from '../protocol/packet-header';

/**
 * Server-to-client WebSocket binary frame (RFC 6455 §5.2: FIN, opcode 2,
 * unmasked), built once per packet in the headroom the encoder left in front
 * of it, so every subscriber gets the same bytes with no copy and no
 * per-client allocation. Valid only while permessage-deflate is off.
 */
export function frameInPlace(ab: ArrayBuffer, offset: number, length: number): Buffer {
  const hdr = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const start = offset - hdr;
  if (start < 0) throw new RangeError(`packet at offset ${offset} has no room for a ${hdr}-byte frame header`);
  const b = new Uint8Array(ab, start, hdr);
  b[0] = 0x82;
  if (hdr === 2) b[1] = length;
  else if (hdr === 4) {
    b[1] = 126;
    b[2] = length >>> 8;
    b[3] = length & 0xff;
  } else {
    b[1] = 127;
    new DataView(ab, start + 2, 8).setBigUint64(0, BigInt(length), false);
  }
  return Buffer.from(ab, start, hdr + length);
}

/**
 * A copy of a framed packet (as frameInPlace returns it) with the
 * discontinuity flag set. The original is shared by every subscriber and is
 * never touched; the copy is for the one client whose queue dropped audio
 * before it (one copy per drop event, not per packet).
 */
export function withDiscontinuity(frame: Buffer): Buffer {
  const len7 = frame[1]! & 0x7f;
  const hdr = len7 < 126 ? 2 : len7 === 126 ? 4 : 10;
  const copy = Buffer.allocUnsafe(frame.length);
  frame.copy(copy);
  const at = hdr + OFFSET.flags;
  copy[at] = copy[at]! | FLAG_DISCONTINUITY;
  return copy;
}
