import type { SampleFormat } from '../engine/sample-format';

export interface WavInfo {
  format: SampleFormat;
  channels: number;
  rate: number;
  /** The data chunk, whole frames only. */
  data: Buffer;
}

const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_IEEE_FLOAT = 3;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;

/** Parses a RIFF/WAVE file held in memory. Throws RangeError naming what is wrong and what is allowed. */
export function parseWav(buf: Buffer, name = 'WAV file'): WavInfo {
  if (buf.length < 12 || buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WAVE') {
    throw new RangeError(`${name}: not a RIFF/WAVE file`);
  }
  let fmt: { tag: number; channels: number; rate: number; bits: number; blockAlign: number } | null = null;
  let data: Buffer | null = null;
  for (let p = 12; p + 8 <= buf.length; ) {
    const id = buf.toString('latin1', p, p + 4);
    const size = buf.readUInt32LE(p + 4);
    const body = p + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + size > buf.length) throw new RangeError(`${name}: fmt chunk is ${size} bytes; at least 16 needed`);
      let tag = buf.readUInt16LE(body);
      if (tag === WAVE_FORMAT_EXTENSIBLE && size >= 40) tag = buf.readUInt16LE(body + 24);
      fmt = { tag, channels: buf.readUInt16LE(body + 2), rate: buf.readUInt32LE(body + 4), blockAlign: buf.readUInt16LE(body + 12), bits: buf.readUInt16LE(body + 14) };
    } else if (id === 'data') {
      data = buf.subarray(body, Math.min(buf.length, body + size));
    }
    p = body + size + (size & 1);
  }
  if (!fmt) throw new RangeError(`${name}: no fmt chunk`);
  if (!data) throw new RangeError(`${name}: no data chunk`);
  const format = wavSampleFormat(fmt, name);
  const frameBytes = fmt.blockAlign;
  const frames = Math.floor(data.length / frameBytes);
  if (frames === 0) throw new RangeError(`${name}: data chunk holds no whole frame`);
  return { format, channels: fmt.channels, rate: fmt.rate, data: data.subarray(0, frames * frameBytes) };
}

/** The sample format of a WAV fmt chunk (the format tag after WAVE_FORMAT_EXTENSIBLE), checked against what the box plays. Throws RangeError naming the problem. */
export function wavSampleFormat(fmt: { tag: number; channels: number; rate: number; blockAlign: number; bits: number }, name: string): SampleFormat {
  let format: SampleFormat;
  if (fmt.tag === WAVE_FORMAT_PCM && fmt.bits === 16) format = 'S16_LE';
  else if (fmt.tag === WAVE_FORMAT_PCM && fmt.bits === 24) format = 'S24_3LE';
  else if (fmt.tag === WAVE_FORMAT_PCM && fmt.bits === 32) format = 'S32_LE';
  else if (fmt.tag === WAVE_FORMAT_IEEE_FLOAT && fmt.bits === 32) format = 'FLOAT_LE';
  else throw new RangeError(`${name}: format tag ${fmt.tag} with ${fmt.bits} bits; allowed: PCM 16, 24 or 32 bit, or float 32 bit`);
  if (fmt.channels < 1 || fmt.channels > 64) throw new RangeError(`${name}: ${fmt.channels} channels; allowed: 1-64`);
  if (![44100, 48000, 96000].includes(fmt.rate)) throw new RangeError(`${name}: rate ${fmt.rate} Hz; allowed: 44100, 48000 or 96000`);
  const frameBytes = (fmt.bits / 8) * fmt.channels;
  if (fmt.blockAlign !== frameBytes) throw new RangeError(`${name}: block align ${fmt.blockAlign}; expected ${frameBytes} for ${fmt.channels} x ${fmt.bits} bit`);
  return format;
}

/** Builds a canonical WAV file (tests, the CLI listener). */
export function buildWav(format: SampleFormat, channels: number, rate: number, data: Uint8Array): Buffer {
  const bits = format === 'S16_LE' ? 16 : format === 'S24_3LE' ? 24 : 32;
  const tag = format === 'FLOAT_LE' ? WAVE_FORMAT_IEEE_FLOAT : WAVE_FORMAT_PCM;
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVE', 8, 'latin1');
  h.write('fmt ', 12, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(tag, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE((rate * channels * bits) / 8, 28);
  h.writeUInt16LE((channels * bits) / 8, 32);
  h.writeUInt16LE(bits, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}
