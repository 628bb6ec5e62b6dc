/**
 * Audio over datagrams (docs/protocol.md §12): UDP for native apps and
 * `stagebox listen`, WebRTC data channels for browsers. The WebSocket stays
 * the control connection; a client that asked for `"transport":"udp"` binds a
 * UDP flow to its connection with the per-connection token from `welcome`,
 * and the box then sends its audio packets (the §5 format, unchanged) in
 * datagrams, each optionally carrying copies of the previous packets
 * (redundancy). Portable: no Node or DOM imports.
 *
 *  off size field
 *    0    2 magic "SU" (0x53 0x55)
 *    2    1 datagram version (1)
 *    3    1 kind (below)
 *    4    … body, by kind
 *
 * client → box (every one carries the connection's 16-byte token):
 *   BIND      (1)  token[16], clientMs f64                  28 bytes: "this address wants my audio"
 *   CONFIRM   (2)  token[16], nonce[16]                     36 bytes: "and I can receive here" (echoes CHALLENGE)
 *   KEEPALIVE (3)  token[16], clientMs f64                  28 bytes: the flow is alive; every second
 * box → client (never more bytes to an address than it received from it until that address is confirmed):
 *   CHALLENGE (129) nonce[16], clientMs f64                 28 bytes: answer to BIND from an unconfirmed address
 *   BOUND     (130) clientMs f64, boxNs u64                 20 bytes: the address is confirmed; audio follows
 *   PONG      (131) clientMs f64, boxNs u64                 20 bytes: answer to KEEPALIVE (round trip, box clock)
 *   AUDIO     (132) count u8, reserved u8 ×3, then count × (length u16, reserved u16, packet[length] padded to 4)
 *                   the newest packet first, then up to 3 earlier ones of the same stream (redundancy)
 */

export const DATAGRAM_MAGIC0 = 0x53;
export const DATAGRAM_MAGIC1 = 0x55;
export const DATAGRAM_VERSION = 1;
export const TOKEN_BYTES = 16;
export const NONCE_BYTES = 16;
/** Redundancy a client may ask for: copies of k earlier packets in each datagram. */
export const MAX_REDUNDANCY = 3;
/**
 * How far back the copies reach: packet n's datagram carries n − d, n − 2d, … (d = 1: the packets just
 * before). Wi-Fi loses datagrams in bursts; a copy d packets back repairs a burst of up to d with one copy,
 * at the cost of arriving d periods after its original (the jitter buffer must hold that much).
 */
export const MAX_SPACING = 8;

export const KIND = {
  BIND: 1,
  CONFIRM: 2,
  KEEPALIVE: 3,
  CHALLENGE: 129,
  BOUND: 130,
  PONG: 131,
  AUDIO: 132,
} as const;

export const BIND_BYTES = 4 + TOKEN_BYTES + 8;
export const CONFIRM_BYTES = 4 + TOKEN_BYTES + NONCE_BYTES;
export const KEEPALIVE_BYTES = BIND_BYTES;
export const CHALLENGE_BYTES = 4 + NONCE_BYTES + 8;
export const BOUND_BYTES = 4 + 8 + 8;
export const PONG_BYTES = BOUND_BYTES;
/** Fixed part of an AUDIO datagram, and of each packet in it. */
export const AUDIO_HEADER_BYTES = 8;
export const AUDIO_ENTRY_HEADER_BYTES = 4;

/** A datagram that breaks the format; the message names the field, the value and what is allowed. */
export class DatagramError extends RangeError {
  override name = 'DatagramError';
}

export type ClientDatagram =
  | { kind: typeof KIND.BIND; token: Uint8Array; clientMs: number }
  | { kind: typeof KIND.CONFIRM; token: Uint8Array; nonce: Uint8Array }
  | { kind: typeof KIND.KEEPALIVE; token: Uint8Array; clientMs: number };

export type BoxDatagram =
  | { kind: typeof KIND.CHALLENGE; nonce: Uint8Array; clientMs: number }
  | { kind: typeof KIND.BOUND; clientMs: number; boxNs: bigint }
  | { kind: typeof KIND.PONG; clientMs: number; boxNs: bigint }
  | { kind: typeof KIND.AUDIO; packets: Uint8Array[] };

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function start(bytes: Uint8Array, kind: number): DataView {
  const v = view(bytes);
  v.setUint8(0, DATAGRAM_MAGIC0);
  v.setUint8(1, DATAGRAM_MAGIC1);
  v.setUint8(2, DATAGRAM_VERSION);
  v.setUint8(3, kind);
  return v;
}

function checkToken(token: Uint8Array, what = 'token'): void {
  if (token.length !== TOKEN_BYTES) throw new DatagramError(`${what} is ${token.length} bytes; allowed: ${TOKEN_BYTES}`);
}

/** BIND or KEEPALIVE (same layout), 28 bytes. */
export function encodeTokenTime(kind: typeof KIND.BIND | typeof KIND.KEEPALIVE, token: Uint8Array, clientMs: number): Uint8Array {
  checkToken(token);
  const b = new Uint8Array(BIND_BYTES);
  const v = start(b, kind);
  b.set(token, 4);
  v.setFloat64(4 + TOKEN_BYTES, clientMs, true);
  return b;
}

export function encodeConfirm(token: Uint8Array, nonce: Uint8Array): Uint8Array {
  checkToken(token);
  if (nonce.length !== NONCE_BYTES) throw new DatagramError(`nonce is ${nonce.length} bytes; allowed: ${NONCE_BYTES}`);
  const b = new Uint8Array(CONFIRM_BYTES);
  start(b, KIND.CONFIRM);
  b.set(token, 4);
  b.set(nonce, 4 + TOKEN_BYTES);
  return b;
}

export function encodeChallenge(nonce: Uint8Array, clientMs: number): Uint8Array {
  const b = new Uint8Array(CHALLENGE_BYTES);
  const v = start(b, KIND.CHALLENGE);
  b.set(nonce, 4);
  v.setFloat64(4 + NONCE_BYTES, clientMs, true);
  return b;
}

/** BOUND or PONG (same layout), 20 bytes. */
export function encodeTimes(kind: typeof KIND.BOUND | typeof KIND.PONG, clientMs: number, boxNs: bigint): Uint8Array {
  const b = new Uint8Array(BOUND_BYTES);
  const v = start(b, kind);
  v.setFloat64(4, clientMs, true);
  v.setBigUint64(12, boxNs, true);
  return b;
}

/** Bytes an AUDIO datagram of the first `count` of these packets takes. */
export function audioDatagramBytes(packets: ArrayLike<{ length: number }>, count = packets.length): number {
  let n = AUDIO_HEADER_BYTES;
  for (let i = 0; i < count; i++) n += AUDIO_ENTRY_HEADER_BYTES + ((packets[i]!.length + 3) & ~3);
  return n;
}

/**
 * Writes an AUDIO datagram of `count` packets into `out` (at least
 * audioDatagramBytes long); returns its length. Packets newest first.
 */
export function writeAudioDatagram(out: Uint8Array, packets: readonly Uint8Array[], count = packets.length): number {
  if (count < 1 || count > MAX_REDUNDANCY + 1) throw new DatagramError(`audio datagram with ${count} packets; allowed: 1-${MAX_REDUNDANCY + 1}`);
  const v = start(out, KIND.AUDIO);
  v.setUint8(4, count);
  v.setUint8(5, 0);
  v.setUint16(6, 0, true);
  let at = AUDIO_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const p = packets[i]!;
    if (p.length > 0xffff) throw new DatagramError(`packet of ${p.length} bytes in an audio datagram; allowed: at most 65535`);
    v.setUint16(at, p.length, true);
    v.setUint16(at + 2, 0, true);
    out.set(p, at + AUDIO_ENTRY_HEADER_BYTES);
    const end = at + AUDIO_ENTRY_HEADER_BYTES + p.length;
    at = at + AUDIO_ENTRY_HEADER_BYTES + ((p.length + 3) & ~3);
    out.fill(0, end, at);
  }
  return at;
}

function header(bytes: Uint8Array): number {
  if (bytes.length < 4) throw new DatagramError(`datagram is ${bytes.length} bytes; at least 4 needed`);
  if (bytes[0] !== DATAGRAM_MAGIC0 || bytes[1] !== DATAGRAM_MAGIC1) throw new DatagramError(`datagram magic is 0x${hex(bytes[0]!)} 0x${hex(bytes[1]!)}; allowed: 0x53 0x55 ("SU")`);
  if (bytes[2] !== DATAGRAM_VERSION) throw new DatagramError(`datagram version is ${bytes[2]}; allowed: ${DATAGRAM_VERSION}`);
  return bytes[3]!;
}

function exact(bytes: Uint8Array, want: number, what: string): void {
  if (bytes.length !== want) throw new DatagramError(`${what} datagram is ${bytes.length} bytes; allowed: exactly ${want}`);
}

/** Parses what a client sends (the box's edge). Throws {@link DatagramError}. The views share `bytes`. */
export function parseClientDatagram(bytes: Uint8Array): ClientDatagram {
  const kind = header(bytes);
  const v = view(bytes);
  switch (kind) {
    case KIND.BIND:
    case KIND.KEEPALIVE:
      exact(bytes, BIND_BYTES, kind === KIND.BIND ? 'BIND' : 'KEEPALIVE');
      return { kind, token: bytes.subarray(4, 4 + TOKEN_BYTES), clientMs: v.getFloat64(4 + TOKEN_BYTES, true) };
    case KIND.CONFIRM:
      exact(bytes, CONFIRM_BYTES, 'CONFIRM');
      return { kind, token: bytes.subarray(4, 4 + TOKEN_BYTES), nonce: bytes.subarray(4 + TOKEN_BYTES, 4 + TOKEN_BYTES + NONCE_BYTES) };
    default:
      throw new DatagramError(`datagram kind ${kind} is not one a client sends; allowed: 1 (BIND), 2 (CONFIRM), 3 (KEEPALIVE)`);
  }
}

/** Parses what the box sends (the client's edge). Throws {@link DatagramError}. Packets are views into `bytes`. */
export function parseBoxDatagram(bytes: Uint8Array): BoxDatagram {
  const kind = header(bytes);
  const v = view(bytes);
  switch (kind) {
    case KIND.CHALLENGE:
      exact(bytes, CHALLENGE_BYTES, 'CHALLENGE');
      return { kind, nonce: bytes.subarray(4, 4 + NONCE_BYTES), clientMs: v.getFloat64(4 + NONCE_BYTES, true) };
    case KIND.BOUND:
    case KIND.PONG:
      exact(bytes, BOUND_BYTES, kind === KIND.BOUND ? 'BOUND' : 'PONG');
      return { kind, clientMs: v.getFloat64(4, true), boxNs: v.getBigUint64(12, true) };
    case KIND.AUDIO: {
      if (bytes.length < AUDIO_HEADER_BYTES) throw new DatagramError(`AUDIO datagram is ${bytes.length} bytes; at least ${AUDIO_HEADER_BYTES} needed`);
      const count = v.getUint8(4);
      if (count < 1 || count > MAX_REDUNDANCY + 1) throw new DatagramError(`AUDIO datagram holds ${count} packets; allowed: 1-${MAX_REDUNDANCY + 1}`);
      const packets: Uint8Array[] = [];
      let at = AUDIO_HEADER_BYTES;
      for (let i = 0; i < count; i++) {
        if (at + AUDIO_ENTRY_HEADER_BYTES > bytes.length) throw new DatagramError(`AUDIO datagram ends inside packet ${i} of ${count} (${bytes.length} bytes)`);
        const len = v.getUint16(at, true);
        const body = at + AUDIO_ENTRY_HEADER_BYTES;
        if (body + len > bytes.length) throw new DatagramError(`AUDIO datagram packet ${i} is ${len} bytes, but only ${bytes.length - body} follow`);
        packets.push(bytes.subarray(body, body + len));
        at = body + ((len + 3) & ~3);
      }
      return { kind, packets };
    }
    default:
      throw new DatagramError(`datagram kind ${kind} is not one the box sends; allowed: 129 (CHALLENGE), 130 (BOUND), 131 (PONG), 132 (AUDIO)`);
  }
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}

/** The token as `welcome` carries it: 32 lower-case hex digits. */
export function tokenToHex(token: Uint8Array): string {
  let s = '';
  for (const b of token) s += hex(b);
  return s;
}

/** Inverse of tokenToHex; throws {@link DatagramError} on anything but 32 hex digits. */
export function tokenFromHex(text: string): Uint8Array {
  if (!/^[0-9a-f]{32}$/.test(text)) throw new DatagramError(`udp token ${JSON.stringify(text.slice(0, 40))}; allowed: 32 lower-case hex digits`);
  const out = new Uint8Array(TOKEN_BYTES);
  for (let i = 0; i < TOKEN_BYTES; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out;
}
