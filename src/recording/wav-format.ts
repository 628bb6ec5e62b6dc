import type { SampleFormat } from '../engine/sample-format';
import { wavSampleFormat } from '../capture/wav-file';
import { BYTES_PER_SAMPLE } from '../engine/sample-format';

/**
 * The take file format: Broadcast WAV (RIFF/WAVE with bext, iXML and LIST
 * INFO before the audio, cue markers after it) that turns itself into RF64
 * (EBU Tech 3306) once it passes 4 GiB. A JUNK chunk right after the WAVE id
 * reserves the room of RF64's ds64 chunk, so the switch rewrites the header
 * in place and never moves the audio. Every size the header holds can be
 * rewritten at any time with one write of the header: the writer does that
 * after each flush, so a file cut short (power cut, SIGKILL, pulled drive) is
 * a valid WAV up to the last flush. docs/architecture.md, "Recording".
 */

const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_IEEE_FLOAT = 3;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;
/** KSDATAFORMAT_SUBTYPE_PCM / _IEEE_FLOAT without their first two bytes (the format tag). */
const SUBTYPE_TAIL = Buffer.from([0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71]);

/** Largest size a RIFF size field holds; beyond it the file is RF64. */
export const RIFF_MAX = 0xffffffff;
/** ds64 body: RIFF size, data size, sample count (64 bit each), table length. */
const DS64_BODY = 28;
/** bext body without the coding history (EBU Tech 3285 version 1). */
const BEXT_FIXED = 602;

export const BITS_PER_SAMPLE: Readonly<Record<SampleFormat, number>> = { S16_LE: 16, S24_3LE: 24, S32_LE: 32, FLOAT_LE: 32 };

/** What a take file says about itself besides its audio. */
export interface WavMeta {
  format: SampleFormat;
  /** Channels in this file. */
  channels: number;
  rate: number;
  /** Wall clock of the file's first sample. */
  startedAt: Date;
  takeId: string;
  takeName: string;
  /** One name per channel of the file ("Kick", "Input 3"). */
  trackNames: readonly string[];
  /** Box input number (1-based) of each channel of the file. */
  inputs: readonly number[];
  /** The first sample's capture time (CLOCK_MONOTONIC ns, as in every packet) and sample position. */
  captureNs: bigint;
  samplePos: bigint;
  /** 1-based part number (a take split at a filesystem's file size limit has more than one). */
  part: number;
}

/** A marker inside one file, in frames from the file's first frame. */
export interface FileMarker {
  frame: number;
  label: string;
}

function ascii(buf: Buffer, at: number, len: number, text: string): void {
  // bext fields are ASCII: anything else becomes "?" rather than a multi-byte sequence cut in half.
  buf.write(text.replace(/[^\x20-\x7e]/g, '?').slice(0, len), at, len, 'latin1');
}

function chunk(id: string, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.write(id, 0, 4, 'latin1');
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat(body.length & 1 ? [head, body, Buffer.alloc(1)] : [head, body]);
}

function fmtBody(format: SampleFormat, channels: number, rate: number): Buffer {
  const bits = BITS_PER_SAMPLE[format];
  const blockAlign = (bits / 8) * channels;
  const tag = format === 'FLOAT_LE' ? WAVE_FORMAT_IEEE_FLOAT : WAVE_FORMAT_PCM;
  // WAVE_FORMAT_EXTENSIBLE is what the format's own rules ask for beyond 2 channels or 16 bits.
  const extensible = channels > 2 || bits > 16;
  const b = Buffer.alloc(extensible ? 40 : 16);
  b.writeUInt16LE(extensible ? WAVE_FORMAT_EXTENSIBLE : tag, 0);
  b.writeUInt16LE(channels, 2);
  b.writeUInt32LE(rate, 4);
  b.writeUInt32LE(rate * blockAlign, 8);
  b.writeUInt16LE(blockAlign, 12);
  b.writeUInt16LE(bits, 14);
  if (extensible) {
    b.writeUInt16LE(22, 16);
    b.writeUInt16LE(bits, 18); // valid bits
    b.writeUInt32LE(0, 20); // channel mask: inputs, not speakers
    b.writeUInt16LE(tag, 24);
    SUBTYPE_TAIL.copy(b, 26);
  }
  return b;
}

function two(n: number): string {
  return String(n).padStart(2, '0');
}

function bextBody(m: WavMeta): Buffer {
  const bits = BITS_PER_SAMPLE[m.format];
  const mode = m.channels === 1 ? 'mono' : m.channels === 2 ? 'stereo' : 'multitrack';
  const history = `A=PCM,F=${m.rate},W=${bits},M=${mode},T=stagebox take ${m.takeId}\r\n`;
  const b = Buffer.alloc(BEXT_FIXED + history.length + 1);
  const d = m.startedAt;
  const inputs = m.inputs.length === 1 ? `input ${m.inputs[0]}` : `inputs ${m.inputs.join(',')}`;
  ascii(b, 0, 256, `${m.takeName} (${inputs}${m.part > 1 ? `, part ${m.part}` : ''})`);
  ascii(b, 256, 32, 'stagebox');
  ascii(b, 288, 32, m.takeId);
  ascii(b, 320, 10, `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`);
  ascii(b, 330, 8, `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`);
  // TimeReference: samples since local midnight, where DAWs place the file on their timeline.
  const sinceMidnightMs = ((d.getHours() * 60 + d.getMinutes()) * 60 + d.getSeconds()) * 1000 + d.getMilliseconds();
  const ref = BigInt(Math.round((sinceMidnightMs * m.rate) / 1000));
  b.writeBigUInt64LE(ref, 338);
  b.writeUInt16LE(1, 346); // version 1; UMID and reserved stay zero
  b.write(history, BEXT_FIXED, 'latin1');
  return b;
}

function xml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function ixmlBody(m: WavMeta): Buffer {
  const tracks = m.trackNames
    .map((name, i) => `<TRACK><CHANNEL_INDEX>${m.inputs[i]}</CHANNEL_INDEX><INTERLEAVE_INDEX>${i + 1}</INTERLEAVE_INDEX><NAME>${xml(name)}</NAME></TRACK>`)
    .join('');
  const text =
    '<?xml version="1.0" encoding="UTF-8"?>\n<BWFXML><IXML_VERSION>2.10</IXML_VERSION>' +
    `<PROJECT>stagebox</PROJECT><SCENE>${xml(m.takeName)}</SCENE><TAKE>${xml(m.takeId)}</TAKE>` +
    `<FILE_UID>${xml(`${m.takeId}-${m.part}-${m.inputs[0]}`)}</FILE_UID>` +
    `<SPEED><FILE_SAMPLE_RATE>${m.rate}</FILE_SAMPLE_RATE><AUDIO_BIT_DEPTH>${BITS_PER_SAMPLE[m.format]}</AUDIO_BIT_DEPTH></SPEED>` +
    `<TRACK_LIST><TRACK_COUNT>${m.trackNames.length}</TRACK_COUNT>${tracks}</TRACK_LIST>` +
    `<USER>stagebox startedAt=${m.startedAt.toISOString()} captureNs=${m.captureNs} samplePos=${m.samplePos} part=${m.part}</USER>` +
    '</BWFXML>\n';
  return Buffer.from(text, 'utf8');
}

function infoBody(m: WavMeta): Buffer {
  const sub = (id: string, text: string): Buffer => chunk(id, Buffer.concat([Buffer.from(text, 'utf8'), Buffer.alloc(1)]));
  const d = m.startedAt;
  return Buffer.concat([
    Buffer.from('INFO', 'latin1'),
    sub('INAM', m.trackNames.length === 1 ? `${m.takeName} - ${m.trackNames[0]}` : m.takeName),
    sub('ICRD', `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`),
    sub('ISFT', 'stagebox'),
  ]);
}

/**
 * The header of one take file, built once when the file is opened. Only the
 * size fields change later (sized()).
 */
export class WavHeader {
  private readonly buf: Buffer;
  /** Where the audio starts. */
  readonly dataOffset: number;
  readonly blockAlign: number;
  private rf64 = false;

  /** `rf64Above`: RIFF size beyond which the file becomes RF64 (tests lower it; the format's limit otherwise). */
  constructor(
    readonly meta: WavMeta,
    private readonly rf64Above = RIFF_MAX,
  ) {
    this.blockAlign = BYTES_PER_SAMPLE[meta.format] * meta.channels;
    const parts = [
      Buffer.from('RIFF\0\0\0\0WAVE', 'latin1'),
      chunk('JUNK', Buffer.alloc(DS64_BODY)),
      chunk('fmt ', fmtBody(meta.format, meta.channels, meta.rate)),
      chunk('bext', bextBody(meta)),
      chunk('iXML', ixmlBody(meta)),
      chunk('LIST', infoBody(meta)),
      Buffer.from('data\0\0\0\0', 'latin1'),
    ];
    this.buf = Buffer.concat(parts);
    this.dataOffset = this.buf.length;
  }

  get isRf64(): boolean {
    return this.rf64;
  }

  /**
   * The header for `dataBytes` of audio followed by `trailerBytes` of chunks
   * (cue, labels; 0 while recording). Returns the same buffer each time:
   * write it at offset 0 before calling again.
   */
  sized(dataBytes: number, trailerBytes = 0): Buffer {
    const riffSize = this.dataOffset - 8 + dataBytes + (trailerBytes > 0 ? dataBytes & 1 : 0) + trailerBytes;
    if (!this.rf64 && riffSize > this.rf64Above) this.rf64 = true;
    writeSizes(this.buf, this.dataOffset, this.blockAlign, dataBytes, trailerBytes, this.rf64);
    return this.buf;
  }
}

/**
 * Writes the size fields into a header this module made (or one laid out
 * like it: RIFF or RF64, a 28-byte JUNK or ds64 chunk at byte 12, the data
 * chunk's size just before `dataOffset`). `rf64`: declare the sizes in ds64
 * (needed past 4 GiB; once RF64, a file stays RF64).
 */
export function writeSizes(b: Buffer, dataOffset: number, blockAlign: number, dataBytes: number, trailerBytes: number, rf64: boolean): void {
  const riffSize = dataOffset - 8 + dataBytes + (trailerBytes > 0 ? dataBytes & 1 : 0) + trailerBytes;
  const ds64At = 12;
  if (rf64) {
    b.write('RF64', 0, 'latin1');
    b.writeUInt32LE(RIFF_MAX, 4);
    b.write('ds64', ds64At, 'latin1');
    b.writeBigUInt64LE(BigInt(riffSize), ds64At + 8);
    b.writeBigUInt64LE(BigInt(dataBytes), ds64At + 16);
    b.writeBigUInt64LE(BigInt(Math.floor(dataBytes / blockAlign)), ds64At + 24);
    b.writeUInt32LE(0, ds64At + 32);
    b.writeUInt32LE(RIFF_MAX, dataOffset - 4);
  } else {
    b.writeUInt32LE(riffSize, 4);
    b.writeUInt32LE(dataBytes, dataOffset - 4);
  }
}

/** True when `head` starts like a header of this module: the ds64 room at byte 12 that lets it grow past 4 GiB. */
export function hasDs64Room(head: Buffer): boolean {
  const id = head.toString('latin1', 12, 16);
  return head.length >= 48 && (id === 'JUNK' || id === 'ds64') && head.readUInt32LE(16) === DS64_BODY;
}

/**
 * Chunks written after the audio when a file is closed: the markers as a cue
 * chunk with a label for each (LIST/adtl), which Reaper, Audition and Ardour
 * show as markers. Empty when there are none. Starts with the pad byte an odd
 * data chunk needs.
 */
export function trailerChunks(markers: readonly FileMarker[], dataBytes: number): Buffer {
  if (markers.length === 0) return Buffer.alloc(0);
  const cue = Buffer.alloc(4 + 24 * markers.length);
  cue.writeUInt32LE(markers.length, 0);
  markers.forEach((m, i) => {
    const o = 4 + 24 * i;
    cue.writeUInt32LE(i + 1, o); // cue point id
    cue.writeUInt32LE(m.frame >>> 0, o + 4); // position (no playlist: the sample frame)
    cue.write('data', o + 8, 'latin1');
    cue.writeUInt32LE(0, o + 12); // chunk start
    cue.writeUInt32LE(0, o + 16); // block start
    cue.writeUInt32LE(m.frame >>> 0, o + 20); // sample offset
  });
  const labels = markers.map((m, i) => {
    const text = Buffer.from(m.label, 'utf8');
    const body = Buffer.alloc(4 + text.length + 1);
    body.writeUInt32LE(i + 1, 0);
    text.copy(body, 4);
    return chunk('labl', body);
  });
  const pad = Buffer.alloc(dataBytes & 1);
  return Buffer.concat([pad, chunk('cue ', cue), chunk('LIST', Buffer.concat([Buffer.from('adtl', 'latin1'), ...labels]))]);
}

/** A WAV file's layout, from its header. */
export interface WavLayout {
  container: 'RIFF' | 'RF64';
  format: SampleFormat;
  channels: number;
  rate: number;
  blockAlign: number;
  dataOffset: number;
  /** Whole frames of audio the header declares and the file holds. */
  frames: number;
  /** Track names from an iXML TRACK_LIST, in channel order, when the file has one. */
  trackNames: string[] | null;
}

/** How much of a file parseWavHeader() needs at most: the audio must start within it. */
export const HEADER_SCAN_BYTES = 64 * 1024;

/**
 * Reads a WAV or RF64 header from the first bytes of a file (`head`, up to
 * HEADER_SCAN_BYTES) of `fileSize` bytes. Throws RangeError naming what is
 * wrong and what is allowed. A header that declares more audio than the file
 * holds is cut to what is there (a take whose writer died before its last
 * header update declares less, never more; anything else is damage).
 */
export function parseWavHeader(head: Buffer, fileSize: number, name: string): WavLayout {
  const id = head.length >= 12 ? head.toString('latin1', 0, 4) : '';
  if ((id !== 'RIFF' && id !== 'RF64') || head.toString('latin1', 8, 12) !== 'WAVE') throw new RangeError(`${name}: not a RIFF/WAVE or RF64 file`);
  let ds64Data: bigint | null = null;
  let fmt: { tag: number; channels: number; rate: number; blockAlign: number; bits: number } | null = null;
  let trackNames: string[] | null = null;
  for (let p = 12; p + 8 <= head.length; ) {
    const cid = head.toString('latin1', p, p + 4);
    const size = head.readUInt32LE(p + 4);
    const body = p + 8;
    if (cid === 'data') {
      if (!fmt) throw new RangeError(`${name}: the data chunk comes before any fmt chunk`);
      return layout(id, fmt, body, size === RIFF_MAX && ds64Data !== null ? ds64Data : BigInt(size), fileSize, trackNames, name);
    }
    if (body + size > head.length) break;
    if (cid === 'ds64' && size >= DS64_BODY) ds64Data = head.readBigUInt64LE(body + 8);
    else if (cid === 'fmt ') {
      if (size < 16) throw new RangeError(`${name}: fmt chunk is ${size} bytes; at least 16 needed`);
      let tag = head.readUInt16LE(body);
      if (tag === WAVE_FORMAT_EXTENSIBLE && size >= 40) tag = head.readUInt16LE(body + 24);
      fmt = { tag, channels: head.readUInt16LE(body + 2), rate: head.readUInt32LE(body + 4), blockAlign: head.readUInt16LE(body + 12), bits: head.readUInt16LE(body + 14) };
    } else if (cid === 'iXML') trackNames = ixmlTrackNames(head.toString('utf8', body, body + size));
    p = body + size + (size & 1);
  }
  throw new RangeError(`${name}: no data chunk within the first ${Math.min(head.length, HEADER_SCAN_BYTES)} bytes`);
}

function layout(
  container: string,
  fmt: { tag: number; channels: number; rate: number; blockAlign: number; bits: number },
  dataOffset: number,
  declared: bigint,
  fileSize: number,
  trackNames: string[] | null,
  name: string,
): WavLayout {
  const format = wavSampleFormat(fmt, name);
  const blockAlign = fmt.blockAlign;
  const held = BigInt(Math.max(0, fileSize - dataOffset));
  const bytes = declared < held ? declared : held;
  return {
    container: container as 'RIFF' | 'RF64',
    format,
    channels: fmt.channels,
    rate: fmt.rate,
    blockAlign,
    dataOffset,
    frames: Number(bytes / BigInt(blockAlign)),
    trackNames: trackNames && trackNames.length === fmt.channels ? trackNames : null,
  };
}

function ixmlTrackNames(text: string): string[] | null {
  const names: string[] = [];
  for (const m of text.matchAll(/<TRACK>[\s\S]*?<NAME>([\s\S]*?)<\/NAME>[\s\S]*?<\/TRACK>/g)) {
    names.push(m[1]!.replace(/&(lt|gt|amp|quot|apos);/g, (_, e: string) => ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" })[e]!));
  }
  return names.length > 0 ? names : null;
}
