/**
 * A WAV file written as the audio arrives: a header with zero sizes first,
 * the samples appended in order, and the sizes filled in by finish(), so the
 * file is valid once the recording stops (Ctrl-C, --seconds). The header is
 * the repository's canonical one (src/capture/wav-file.ts buildWav).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { buildWav } from '../capture/wav-file';

/** RIFF sizes are 32-bit. */
const MAX_DATA_BYTES = 0xffffffff - 36;

export class WavWriter {
  readonly bytesPerSample: 2 | 3;
  private dataBytes = 0;
  private chain: Promise<void>;
  private failure: Error | null = null;
  private done = false;

  private constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    readonly bits: 16 | 24,
    readonly channels: number,
    readonly rate: number,
  ) {
    this.bytesPerSample = bits === 24 ? 3 : 2;
    this.chain = this.write(this.header(), 0);
  }

  /** Creates (or truncates) `path`. */
  static async create(path: string, bits: 16 | 24, channels: number, rate: number): Promise<WavWriter> {
    const fh = await open(path, 'w');
    return new WavWriter(fh, path, bits, channels, rate);
  }

  get frames(): number {
    return this.dataBytes / (this.bytesPerSample * this.channels);
  }

  /** Appends interleaved float samples in [-1, 1), rounded to the file's bits (exact for pcm16/pcm24 input). */
  append(samples: Float32Array, fromFrame = 0, frames = samples.length / this.channels - fromFrame): void {
    this.appendBytes(encodePcm(samples, this.bits, fromFrame * this.channels, frames * this.channels));
  }

  /** Appends `frames` frames of silence. */
  appendSilence(frames: number): void {
    this.appendBytes(new Uint8Array(frames * this.channels * this.bytesPerSample));
  }

  private appendBytes(bytes: Uint8Array): void {
    if (this.done) throw new Error(`${this.path}: the recording is already finished`);
    if (this.failure) throw this.failure;
    if (this.dataBytes + bytes.length > MAX_DATA_BYTES) throw new RangeError(`${this.path}: a WAV file holds at most 4 GiB of samples; stop the recording earlier (--seconds)`);
    const at = 44 + this.dataBytes;
    this.dataBytes += bytes.length;
    this.chain = this.chain.then(() => this.write(bytes, at));
  }

  private header(): Uint8Array {
    const h = buildWav(this.bits === 24 ? 'S24_3LE' : 'S16_LE', this.channels, this.rate, new Uint8Array(0));
    h.writeUInt32LE(36 + this.dataBytes, 4);
    h.writeUInt32LE(this.dataBytes, 40);
    return h;
  }

  private async write(bytes: Uint8Array, position: number): Promise<void> {
    if (this.failure) return;
    try {
      await this.fh.write(bytes, 0, bytes.length, position);
    } catch (err) {
      this.failure = new Error(`${this.path}: write failed: ${(err as Error).message}`);
    }
  }

  /** Waits for every write, fills in the sizes and closes the file. Rejects if any write failed. */
  async finish(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.chain;
    await this.write(this.header(), 0);
    await this.fh.close();
    if (this.failure) throw this.failure;
  }
}

/**
 * Interleaved floats in [-1, 1) → little-endian signed 16- or 24-bit PCM, `count` samples from `from`. Rounds to
 * the nearest step, so samples that came from pcm16/pcm24 come back bit-exact.
 */
export function encodePcm(samples: Float32Array, bits: 16 | 24, from = 0, count = samples.length - from): Uint8Array {
  if (bits === 16) {
    const out = new Uint8Array(count * 2);
    for (let i = 0, o = 0; i < count; i++, o += 2) {
      const v = clampInt(Math.round(samples[from + i]! * 32768), 32767);
      out[o] = v & 0xff;
      out[o + 1] = (v >> 8) & 0xff;
    }
    return out;
  }
  const out = new Uint8Array(count * 3);
  for (let i = 0, o = 0; i < count; i++, o += 3) {
    const v = clampInt(Math.round(samples[from + i]! * 8388608), 8388607);
    out[o] = v & 0xff;
    out[o + 1] = (v >> 8) & 0xff;
    out[o + 2] = (v >> 16) & 0xff;
  }
  return out;
}

function clampInt(v: number, max: number): number {
  return v > max ? max : v < -max - 1 ? -max - 1 : v;
}
