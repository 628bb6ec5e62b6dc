/** Capture sample formats the box reads (ALSA names); every one is converted once into left-aligned Int32. */
export const SAMPLE_FORMATS = ['S16_LE', 'S24_3LE', 'S32_LE', 'FLOAT_LE'] as const;
export type SampleFormat = (typeof SAMPLE_FORMATS)[number];

/** Bytes one sample of each capture format occupies. */
export const BYTES_PER_SAMPLE: Readonly<Record<SampleFormat, number>> = {
  S16_LE: 2,
  S24_3LE: 3,
  S32_LE: 4,
  FLOAT_LE: 4,
};

/**
 * Converts `samples` interleaved samples of `format` from `src` into `dst`
 * (Int32, left-aligned: the sample's most significant bit is bit 31), so that
 * every later stage handles one representation. Lossless for the integer
 * formats; float is clamped to [-1, 1] and NaN becomes 0.
 * Little-endian host assumed (x86-64, AArch64).
 */
export function toInt32(src: Uint8Array, format: SampleFormat, dst: Int32Array, dstOffset: number, samples: number): void {
  const off = src.byteOffset;
  switch (format) {
    case 'S16_LE': {
      if (off % 2 === 0) {
        const s = new Int16Array(src.buffer, off, samples);
        for (let i = 0; i < samples; i++) dst[dstOffset + i] = s[i]! << 16;
      } else {
        for (let i = 0, b = 0; i < samples; i++, b += 2) dst[dstOffset + i] = ((src[b]! | (src[b + 1]! << 8)) << 16);
      }
      return;
    }
    case 'S24_3LE': {
      for (let i = 0, b = 0; i < samples; i++, b += 3) {
        dst[dstOffset + i] = (src[b]! << 8) | (src[b + 1]! << 16) | (src[b + 2]! << 24);
      }
      return;
    }
    case 'S32_LE': {
      if (off % 4 === 0) {
        dst.set(new Int32Array(src.buffer, off, samples), dstOffset);
      } else {
        for (let i = 0, b = 0; i < samples; i++, b += 4) {
          dst[dstOffset + i] = src[b]! | (src[b + 1]! << 8) | (src[b + 2]! << 16) | (src[b + 3]! << 24);
        }
      }
      return;
    }
    case 'FLOAT_LE': {
      const f = off % 4 === 0 ? new Float32Array(src.buffer, off, samples) : new Float32Array(src.slice(0, samples * 4).buffer);
      for (let i = 0; i < samples; i++) {
        const x = f[i]!;
        dst[dstOffset + i] = x >= 1 ? 0x7fffffff : x <= -1 ? -0x80000000 : x === x ? Math.round(x * 2147483647) : 0;
      }
      return;
    }
  }
}
