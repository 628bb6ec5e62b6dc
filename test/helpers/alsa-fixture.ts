import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsConstants, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inflateSync } from 'node:zlib';
import type { ParsedPacket } from '../../src/protocol';

/**
 * Real ALSA without hardware: alsa-lib's `file` PCM plugin replays its infile
 * as a capture device, bit-exact. The file holds a self-identifying pattern:
 * every sample says which frame and channel it belongs to, so a received
 * packet can be checked without assuming the service delivered every period.
 *
 * Pattern (period P = 65536 frames; f is taken mod P):
 *   hi16(f, c) = (f * 31 + c * 1009) mod 65536        (31 is odd: a permutation of f)
 *   lo(f, c)   = a 32-bit hash of (f mod P, c), masked to the low bits
 *   S16_LE : sample = hi16                               (16 bits)
 *   S24_3LE: sample = hi16 << 8  | lo & 0xff             (24 bits)
 *   S32_LE : sample = hi16 << 16 | lo & 0xffff           (32 bits)
 * so the top 16 bits of every format identify (f mod P, c) and every lower
 * bit is a hash: a byte-order, shift or channel-mapping bug changes values.
 */

export type FixtureFormat = 'S16_LE' | 'S24_3LE' | 'S32_LE';
export type WireCodec = 'pcm16' | 'pcm24' | 'deflate';

export const PATTERN_FRAMES = 65536;
export const BITS: Readonly<Record<FixtureFormat, number>> = { S16_LE: 16, S24_3LE: 24, S32_LE: 32 };
export const BYTES: Readonly<Record<FixtureFormat, number>> = { S16_LE: 2, S24_3LE: 3, S32_LE: 4 };

const MUL = 31;
const CH_STEP = 1009;
/** Inverse of 31 modulo 65536. */
const MUL_INV = (() => {
  for (let x = 1; x < 65536; x += 2) if ((x * MUL) % 65536 === 1) return x;
  throw new Error('31 has no inverse mod 65536');
})();

function hash32(f: number, c: number): number {
  let h = Math.imul((f & 0xffff) + 1, 0x9e3779b1) ^ Math.imul(c + 1, 0x85ebca6b);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function hi16(f: number, c: number): number {
  return ((f % PATTERN_FRAMES) * MUL + c * CH_STEP) & 0xffff;
}

/** The sample at (frame f, channel c) left-aligned in an Int32, as the service holds it internally. */
export function leftAligned(format: FixtureFormat, f: number, c: number): number {
  const h = hi16(f, c);
  switch (format) {
    case 'S16_LE':
      return (h << 16) | 0;
    case 'S24_3LE':
      return (h << 16) | ((hash32(f, c) & 0xff) << 8);
    case 'S32_LE':
      return (h << 16) | (hash32(f, c) & 0xffff);
  }
}

/** The signed value the wire carries for (f, c): pcm16 = top 16 bits, pcm24 = top 24 bits. */
export function expectedWire(format: FixtureFormat, codec: 'pcm16' | 'pcm24', f: number, c: number): number {
  const v = leftAligned(format, f, c);
  return codec === 'pcm16' ? v >> 16 : v >> 8;
}

/** Frame index (mod P) whose channel `c` carries top-16 bits `top16`. */
export function frameFromTop16(top16: number, c: number): number {
  return (((((top16 - c * CH_STEP) % 65536) + 65536) % 65536) * MUL_INV) % 65536;
}

/** Raw file bytes of `frames` frames of `channels` channels, starting at frame `start`. */
export function patternBytes(format: FixtureFormat, channels: number, frames: number, start = 0): Buffer {
  const bps = BYTES[format];
  const buf = Buffer.alloc(frames * channels * bps);
  let o = 0;
  for (let i = 0; i < frames; i++) {
    const f = start + i;
    for (let c = 0; c < channels; c++) {
      const v = leftAligned(format, f, c);
      if (format === 'S16_LE') buf.writeInt16LE(v >> 16, o);
      else if (format === 'S24_3LE') buf.writeIntLE(v >> 8, o, 3);
      else buf.writeInt32LE(v, o);
      o += bps;
    }
  }
  return buf;
}

export interface AlsaFixture {
  dir: string;
  /** The FIFO the `file` plugin reads as its infile. */
  infile: string;
  asoundrc: string;
  /** Env for the service: ALSA_CONFIG_PATH with the fixture's asoundrc. */
  env: { ALSA_CONFIG_PATH: string };
  pcmName: string;
  format: FixtureFormat;
  channels: number;
  periodFrames: number;
  /** Periods written into the FIFO so far. */
  readonly periodsWritten: number;
  /** Starts (or resumes) feeding the pattern in real time, from where it stopped. */
  start(): void;
  /** Stops feeding: the device then delivers nothing (its reads block). */
  pause(): void;
  /** Stops feeding, closes the FIFO and removes the temp dir. Call after the service has exited. */
  remove(): void;
}

/**
 * A temp dir with a FIFO as the infile of a `file` PCM named `pcmName`, and a
 * feeder that writes the pattern into it one whole period per write (atomic:
 * a period is at most PIPE_BUF = 4096 bytes here), paced in real time.
 *
 * Why a FIFO and not a regular file: with alsa-lib 1.2.8 the file plugin
 * replays a regular infile as fast as it is read, and at its end keeps
 * returning full-length reads that leave the caller's buffer untouched (no
 * short read, no error), so a capture program sees its last buffer forever.
 * A FIFO paces the device: a read blocks until the feeder wrote a period.
 * The fixture holds the FIFO open read-write, so the service's open never
 * blocks and never sees end-of-file while the fixture lives.
 */
export function makeAlsaFixture(opts: {
  format: FixtureFormat;
  channels: number;
  periodFrames: number;
  pcmName?: string;
  /** What to replay instead of the pattern: raw frames in `format`, looped; its frame count a multiple of periodFrames. */
  cycle?: Buffer;
}): AlsaFixture {
  const { format, channels, periodFrames } = opts;
  const frameBytes = channels * BYTES[format];
  const periodBytes = periodFrames * frameBytes;
  if (periodBytes > 4096) throw new RangeError(`fixture period is ${periodBytes} bytes; FIFO writes are atomic only up to 4096 (PIPE_BUF)`);
  const cycleFrames = opts.cycle ? opts.cycle.length / frameBytes : PATTERN_FRAMES;
  if (!Number.isInteger(cycleFrames) || cycleFrames % periodFrames !== 0) throw new RangeError(`periodFrames ${periodFrames} must divide the cycle's ${cycleFrames} frames`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stagebox-alsa-'));
  const pcmName = opts.pcmName ?? 'sbreplay';
  const infile = path.join(dir, 'in.fifo');
  execFileSync('mkfifo', [infile]);
  const asoundrc = path.join(dir, 'asoundrc');
  writeFileSync(
    asoundrc,
    `pcm.${pcmName} {\n  type file\n  slave.pcm "null"\n  file "/dev/null"\n  infile "${infile}"\n  format "raw"\n}\n`,
  );
  // One whole cycle, sliced period by period.
  const cycle = opts.cycle ?? patternBytes(format, channels, PATTERN_FRAMES);
  const fd = openSync(infile, fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
  let written = 0;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  const periodMs = (periodFrames / 48000) * 1000;
  let t0 = 0;
  let base = 0;
  const tick = (): void => {
    const due = base + Math.floor((performance.now() - t0) / periodMs);
    while (written < due) {
      const off = ((written * periodFrames) % cycleFrames) * frameBytes;
      try {
        writeSync(fd, cycle, off, periodBytes);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          // The pipe is full (the device is not reading): restart the schedule from here.
          base = written;
          t0 = performance.now();
          return;
        }
        throw err;
      }
      written++;
    }
  };
  return {
    dir,
    infile,
    asoundrc,
    env: { ALSA_CONFIG_PATH: `/usr/share/alsa/alsa.conf:${asoundrc}` },
    pcmName,
    format,
    channels,
    periodFrames,
    get periodsWritten() {
      return written;
    },
    start() {
      if (timer || closed) return;
      t0 = performance.now();
      base = written;
      timer = setInterval(tick, 5);
    },
    pause() {
      if (timer) clearInterval(timer);
      timer = null;
    },
    remove() {
      this.pause();
      if (!closed) closeSync(fd);
      closed = true;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A sine tone: frequency (Hz, a whole number so one second loops seamlessly) and peak level (dBFS). */
export interface Tone {
  hz: number;
  peakDb: number;
}

/** One second at 48 kHz of a tone per channel, as raw `format` frames: a fixture `cycle` that loops without a click. */
export function toneBytes(format: FixtureFormat, tones: readonly Tone[]): Buffer {
  const frames = 48000;
  const bps = BYTES[format];
  const buf = Buffer.alloc(frames * tones.length * bps);
  const full = 2 ** (BITS[format] - 1) - 1;
  let o = 0;
  for (let f = 0; f < frames; f++) {
    for (const t of tones) {
      const v = Math.round(full * 10 ** (t.peakDb / 20) * Math.sin((2 * Math.PI * t.hz * f) / frames));
      if (format === 'S16_LE') buf.writeInt16LE(v, o);
      else if (format === 'S24_3LE') buf.writeIntLE(v, o, 3);
      else buf.writeInt32LE(v, o);
      o += bps;
    }
  }
  return buf;
}

/** Decodes a pcm16/pcm24 payload into signed integers (interleaved). */
export function decodePayload(codec: 'pcm16' | 'pcm24', payload: Uint8Array): Int32Array {
  const b = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  if (codec === 'pcm16') {
    const out = new Int32Array(b.length >> 1);
    for (let i = 0; i < out.length; i++) out[i] = b.readInt16LE(i * 2);
    return out;
  }
  const out = new Int32Array(Math.floor(b.length / 3));
  for (let i = 0; i < out.length; i++) out[i] = b.readIntLE(i * 3, 3);
  return out;
}

export interface PatternCheck {
  /** Packets whose every sample matched. */
  checked: number;
  /** Consecutive-seq pairs without the discontinuity flag whose frames were contiguous too. */
  contiguousPairs: number;
  problems: string[];
}

/**
 * Checks every packet against the pattern: channel list as subscribed, payload
 * size, every sample of every carried channel equal to the pattern at the
 * frame recovered from the packet's first sample. For consecutive seq numbers
 * without the discontinuity flag, the frames and samplePos must continue too.
 */
export function checkPackets(
  packets: readonly ParsedPacket[],
  format: FixtureFormat,
  codec: WireCodec,
  channels: readonly number[],
  periodFrames: number,
  opts: { contiguity?: boolean } = {},
): PatternCheck {
  const contiguity = opts.contiguity ?? true;
  const problems: string[] = [];
  let checked = 0;
  let contiguousPairs = 0;
  type Prev = { seq: number; f0: number; frames: number; samplePos: bigint };
  let prev: Prev | null = null;
  const wire: 'pcm16' | 'pcm24' = codec === 'pcm24' ? 'pcm24' : 'pcm16';
  for (const p of packets) {
    const where = `packet seq ${p.seq} (samplePos ${p.samplePos})`;
    if (p.codec !== codec) {
      problems.push(`${where}: codec ${p.codec}, expected ${codec}`);
      prev = null;
      continue;
    }
    if (p.channels.join(',') !== channels.join(',')) {
      problems.push(`${where}: channels [${p.channels}], expected [${channels}]`);
      prev = null;
      continue;
    }
    if (p.rate !== 48000) {
      problems.push(`${where}: rate ${p.rate}, expected 48000`);
      prev = null;
      continue;
    }
    if (p.frames !== periodFrames) {
      problems.push(`${where}: ${p.frames} frames, expected ${periodFrames}`);
      prev = null;
      continue;
    }
    let payload = p.payload;
    if (codec === 'deflate') {
      try {
        payload = inflateSync(p.payload);
      } catch (err) {
        problems.push(`${where}: deflate payload does not inflate: ${(err as Error).message}`);
        prev = null;
        continue;
      }
    }
    const bytesPer = wire === 'pcm16' ? 2 : 3;
    const n = channels.length;
    if (payload.length !== p.frames * n * bytesPer) {
      problems.push(`${where}: payload ${payload.length} bytes, expected ${p.frames} x ${n} x ${bytesPer}`);
      prev = null;
      continue;
    }
    const samples = decodePayload(wire, payload);
    const first = samples[0]!;
    const top16 = wire === 'pcm16' ? first & 0xffff : (first >> 8) & 0xffff;
    const f0 = frameFromTop16(top16, channels[0]!);
    let bad = 0;
    let firstBad = '';
    for (let i = 0; i < p.frames; i++) {
      for (let k = 0; k < n; k++) {
        const got = samples[i * n + k]!;
        const want = expectedWire(format, wire, f0 + i, channels[k]!);
        if (got !== want) {
          if (bad++ === 0) firstBad = `frame +${i} channel ${channels[k]}: got ${got} (0x${(got >>> 0).toString(16)}), expected ${want} (0x${(want >>> 0).toString(16)})`;
        }
      }
    }
    if (bad > 0) {
      problems.push(`${where}: ${bad} of ${p.frames * n} samples differ from the source (frame ${f0} mod ${PATTERN_FRAMES}); first: ${firstBad}`);
      prev = null;
      continue;
    }
    checked++;
    if (contiguity && prev && p.seq === ((prev.seq + 1) >>> 0) && (p.flags & 1) === 0) {
      const wantF0: number = (prev.f0 + prev.frames) % PATTERN_FRAMES;
      if (f0 !== wantF0) problems.push(`${where}: follows seq ${prev.seq} without the discontinuity flag, but starts at frame ${f0}; expected ${wantF0}`);
      else if (p.samplePos !== prev.samplePos + BigInt(prev.frames)) problems.push(`${where}: samplePos ${p.samplePos} after ${prev.samplePos} + ${prev.frames}`);
      else contiguousPairs++;
    }
    prev = { seq: p.seq, f0, frames: p.frames, samplePos: p.samplePos };
  }
  return { checked, contiguousPairs, problems };
}
