// Binary audio packets (docs/protocol.md, section 5): the header, and the payload as Float32 samples in [-1, 1),
// interleaved frames x channels.
const CODECS = { 1: 'pcm16', 2: 'pcm24', 3: 'deflate', 4: 'opus' };

/** @returns {{codec: string, frames: number, seq: number, rate: number, channelCount: number, flags: number, channels: number[], payload: Uint8Array}} */
export function readPacketHeader(buf) {
  const v = new DataView(buf);
  if (buf.byteLength < 36 || v.getUint8(0) !== 0x53 || v.getUint8(1) !== 0x42) throw new Error(`not a stagebox packet (${buf.byteLength} bytes)`);
  const codec = CODECS[v.getUint8(3)];
  if (codec === undefined) throw new Error(`packet codec ${v.getUint8(3)} unknown; known: 1-4`);
  const headerBytes = v.getUint16(4, true);
  const channelCount = v.getUint8(32);
  if (headerBytes < 36 + channelCount || headerBytes > buf.byteLength) throw new Error(`packet headerBytes ${headerBytes} out of range for ${buf.byteLength} bytes`);
  return {
    codec,
    frames: v.getUint16(6, true),
    seq: v.getUint32(8, true),
    rate: v.getUint32(12, true),
    channelCount,
    flags: v.getUint8(33),
    channels: Array.from(new Uint8Array(buf, 36, channelCount)),
    payload: new Uint8Array(buf, headerBytes),
  };
}

/** pcm16 or pcm24 payload to floats. */
export function decodePcm(h, bytes = h.payload) {
  const n = h.frames * h.channelCount;
  const out = new Float32Array(n);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (h.codec === 'pcm24') {
    if (bytes.byteLength < n * 3) throw new Error(`pcm24 payload ${bytes.byteLength} bytes; expected ${n * 3}`);
    for (let i = 0; i < n; i++) out[i] = ((v.getUint8(i * 3) | (v.getUint8(i * 3 + 1) << 8) | (v.getInt8(i * 3 + 2) << 16)) / 8388608);
  } else {
    if (bytes.byteLength < n * 2) throw new Error(`pcm16 payload ${bytes.byteLength} bytes; expected ${n * 2}`);
    for (let i = 0; i < n; i++) out[i] = v.getInt16(i * 2, true) / 32768;
  }
  return out;
}

/** deflate payload (a zlib stream of the pcm16 bytes) to floats. */
export async function inflatePcm16(h) {
  const ds = new DecompressionStream('deflate');
  const raw = new Uint8Array(await new Response(new Blob([h.payload]).stream().pipeThrough(ds)).arrayBuffer());
  return decodePcm({ ...h, codec: 'pcm16' }, raw);
}
