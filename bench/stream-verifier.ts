/**
 * The soak's source and its checker. The service plays a WAV file of a
 * self-identifying pattern (every 16-bit sample says which frame and channel
 * it is), looped seamlessly; each client checks every packet it receives
 * with the client library's own header parser: seq order, every gap flagged,
 * every sample equal to the pattern, and the label (samplePos) consistent
 * with the audio: within a stretch of unflagged packets, the pattern frame
 * minus samplePos never changes (a source that loses audio may shift it, but
 * only at a flagged packet).
 */
import { FLAG_DISCONTINUITY, PacketError, parseHeader } from '../src/client/packet-decoder.js';

/** The pattern repeats every 65536 frames (1.37 s at 48 kHz): the WAV holds exactly one repetition, so its loop is seamless. */
export const PATTERN_FRAMES = 65536;
const MUL = 31;
const CH_STEP = 1009;
/** Inverse of 31 modulo 65536, so a sample's value gives back its frame. */
const MUL_INV = (() => {
  for (let x = 1; x < 65536; x += 2) if ((x * MUL) % 65536 === 1) return x;
  throw new Error('31 has no inverse mod 65536');
})();

/** The pattern's 16-bit sample (as unsigned) at frame f, channel c. */
export function patternU16(f: number, c: number): number {
  return ((f % PATTERN_FRAMES) * MUL + c * CH_STEP) & 0xffff;
}

function frameOf(u16: number, c: number): number {
  return (((((u16 - c * CH_STEP) % 65536) + 65536) % 65536) * MUL_INV) % 65536;
}

/** A 16-bit PCM WAV holding one repetition of the pattern over `channels` channels. */
export function patternWav(channels: number, rate: number): Buffer {
  const dataBytes = PATTERN_FRAMES * channels * 2;
  const b = Buffer.alloc(44 + dataBytes);
  b.write('RIFF', 0, 'latin1');
  b.writeUInt32LE(36 + dataBytes, 4);
  b.write('WAVEfmt ', 8, 'latin1');
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);
  b.writeUInt16LE(channels, 22);
  b.writeUInt32LE(rate, 24);
  b.writeUInt32LE(rate * channels * 2, 28);
  b.writeUInt16LE(channels * 2, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36, 'latin1');
  b.writeUInt32LE(dataBytes, 40);
  for (let f = 0, o = 44; f < PATTERN_FRAMES; f++) for (let c = 0; c < channels; c++, o += 2) b.writeUInt16LE(patternU16(f, c), o);
  return b;
}

export const ANOMALY_KINDS = ['malformed', 'out-of-order', 'repeated', 'unflagged-gap', 'wrong-channels', 'not-the-source', 'mislabelled'] as const;
export type AnomalyKind = (typeof ANOMALY_KINDS)[number];

export interface VerifierCounts {
  checked: number;
  anomalies: Record<AnomalyKind, number>;
}

/** Descriptions kept per verifier (the report needs a few, not thousands). */
const MAX_EXAMPLES = 5;

/** Checks one client's packets (pcm16 or pcm24 raw channels) against the pattern. */
export class StreamVerifier {
  readonly counts: VerifierCounts = emptyCounts();
  readonly examples: string[] = [];
  private lastSeq = -1;
  /** Pattern frame − samplePos (mod PATTERN_FRAMES) of the current stretch; -1 before the first packet. */
  private offset = -1;

  constructor(
    private readonly label: string,
    private readonly channels: readonly number[],
  ) {}

  check(bytes: Uint8Array): void {
    let h;
    try {
      h = parseHeader(bytes);
    } catch (err) {
      if (!(err instanceof PacketError)) throw err;
      this.flag('malformed', err.message);
      return;
    }
    const where = `seq ${h.seq} samplePos ${h.samplePos}`;
    const flagged = (h.flags & FLAG_DISCONTINUITY) !== 0;
    if (this.lastSeq >= 0) {
      const step = (h.seq - this.lastSeq) >>> 0;
      if (step === 0) this.flag('repeated', `${where}: seq repeated`);
      else if (step > 0x7fff_ffff) this.flag('out-of-order', `${where}: after seq ${this.lastSeq}`);
      else if (step > 1 && !flagged) this.flag('unflagged-gap', `${where}: ${step - 1} missing after seq ${this.lastSeq}, not flagged`);
    }
    this.lastSeq = h.seq;
    if (h.channels.length !== this.channels.length || h.channels.some((c, i) => c !== this.channels[i])) {
      this.flag('wrong-channels', `${where}: channels [${h.channels}], subscribed [${this.channels}]`);
      return;
    }
    const bytesPer = h.codec === 'pcm24' ? 3 : 2;
    const n = this.channels.length;
    if ((h.codec !== 'pcm16' && h.codec !== 'pcm24') || bytes.length - h.headerBytes !== h.frames * n * bytesPer) {
      this.flag('malformed', `${where}: codec ${h.codec} with ${bytes.length - h.headerBytes} payload bytes for ${h.frames} x ${n}`);
      return;
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset + h.headerBytes, bytes.length - h.headerBytes);
    const sample = (i: number): number => (bytesPer === 2 ? view.getUint16(i * 2, true) : (view.getUint16(i * 3 + 1, true) & 0xffff));
    const f0 = frameOf(sample(0), this.channels[0]!);
    for (let i = 0; i < h.frames; i++) {
      for (let k = 0; k < n; k++) {
        if (sample(i * n + k) !== patternU16(f0 + i, this.channels[k]!)) {
          this.flag('not-the-source', `${where}: frame +${i} channel ${this.channels[k]} is not the pattern continuing from frame ${f0}`);
          return;
        }
        // pcm24 of a 16-bit source: the low byte is zero.
        if (bytesPer === 3 && view.getUint8((i * n + k) * 3) !== 0) {
          this.flag('not-the-source', `${where}: frame +${i} channel ${this.channels[k]} has a non-zero low byte`);
          return;
        }
      }
    }
    const offset = (((f0 - Number(h.samplePos % BigInt(PATTERN_FRAMES))) % PATTERN_FRAMES) + PATTERN_FRAMES) % PATTERN_FRAMES;
    if (this.offset >= 0 && offset !== this.offset && !flagged) {
      this.flag('mislabelled', `${where}: carries the audio of samplePos + ${((offset - this.offset + PATTERN_FRAMES) % PATTERN_FRAMES)} frames, not flagged`);
    }
    this.offset = offset;
    this.counts.checked++;
  }

  /** Zeroes the counts (a new measurement window) but keeps the stream's state, so a gap across the reset still counts. */
  resetCounts(): void {
    Object.assign(this.counts, emptyCounts());
    this.examples.length = 0;
  }

  private flag(kind: AnomalyKind, text: string): void {
    this.counts.anomalies[kind]++;
    if (this.examples.length < MAX_EXAMPLES) this.examples.push(`${this.label}: ${text}`);
  }
}

/** Sums verifier counts over clients. */
export function addCounts(into: VerifierCounts, c: VerifierCounts): void {
  into.checked += c.checked;
  for (const k of ANOMALY_KINDS) into.anomalies[k] += c.anomalies[k];
}

export function emptyCounts(): VerifierCounts {
  return { checked: 0, anomalies: Object.fromEntries(ANOMALY_KINDS.map((k) => [k, 0])) as Record<AnomalyKind, number> };
}
