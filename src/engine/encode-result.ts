/**
 * The layout of one encode result: the ArrayBuffer an encoder (channel
 * outputs, pcm mixes, Opus mixes) returns for one period, on the main thread
 * or moved back from a pool worker. This module is the one owner of that
 * layout; encoders write it, the transport's fan-out reads it.
 *
 *   [count: u32] then count × [outputId: u32, byteOffset: u32, byteLength: u32]
 *   then the packets, each 4-aligned and preceded by at least PACKET_HEADROOM
 *   free bytes, so the transport can frame a packet in place without a copy.
 * All little-endian. Several entries may share an output id (Opus mixes that
 * complete two frames in a period); their order is the send order.
 */

/** Free bytes before each packet: the largest WebSocket frame header (10), rounded up to 4-byte alignment. */
export const PACKET_HEADROOM = 12;
const ENTRY_BYTES = 12;

export function align4(n: number): number {
  return (n + 3) & ~3;
}

/** Byte offset of the first packet's headroom in a result of `count` packets. */
export function firstPacketAt(count: number): number {
  return align4(4 + count * ENTRY_BYTES) + PACKET_HEADROOM;
}

/** Bytes a packet of `len` bytes takes in a result, its alignment and the next packet's headroom included. */
export function packetSpan(len: number): number {
  return align4(len) + PACKET_HEADROOM;
}

export function writeCount(view: DataView, count: number): void {
  view.setUint32(0, count, true);
}

/** Writes index entry `i`. */
export function writeEntry(view: DataView, i: number, outputId: number, byteOffset: number, byteLength: number): void {
  const e = 4 + i * ENTRY_BYTES;
  view.setUint32(e, outputId, true);
  view.setUint32(e + 4, byteOffset, true);
  view.setUint32(e + 8, byteLength, true);
}

export function resultCount(view: DataView): number {
  return view.getUint32(0, true);
}

export function entryOutput(view: DataView, i: number): number {
  return view.getUint32(4 + i * ENTRY_BYTES, true);
}

export function entryOffset(view: DataView, i: number): number {
  return view.getUint32(8 + i * ENTRY_BYTES, true);
}

export function entryLength(view: DataView, i: number): number {
  return view.getUint32(12 + i * ENTRY_BYTES, true);
}

/** Packet `i` of a result, as a view into it (tests and tools; fan-out frames in place instead). */
export function entryBytes(result: ArrayBuffer, i: number): Uint8Array {
  const view = new DataView(result);
  return new Uint8Array(result, entryOffset(view, i), entryLength(view, i));
}
