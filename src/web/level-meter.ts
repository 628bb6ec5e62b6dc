import { SLOT_HEADER_WORDS, type AudioRing } from '../engine/audio-ring';

/** Largest channel count the meter holds (the ring's own limit). */
export const METER_MAX_CHANNELS = 64;
/** Peaks below this read as this: the meters' floor, dBFS. */
export const METER_FLOOR_DB = -120;
const FULL_SCALE = 2147483648; // 2^31: ring samples are Int32, left-aligned

/**
 * Peak level per channel, read off the shared ring from a timer. It runs
 * only while a dashboard watches (the live feed starts and stops it) and
 * never from the period path: ingest writes the ring as always, and this
 * reads the slots written since the previous collect().
 *
 * collect() is called often (every 25 ms: a few periods each, so no call
 * holds the event loop for long and none falls a whole ring behind);
 * finish() turns what was collected into dBFS for one push. Everything is
 * preallocated: the running extremes per channel as Int32Arrays (the
 * largest and the smallest sample; comparing integers is several times
 * faster than taking absolute values in floating point), the results, and
 * an Int32 view of the slot headers (the low word of each slot's seq, so no
 * BigInt is made per read). Neither call allocates.
 */
export class LevelMeter {
  /** dBFS per channel after finish(): the peak since the previous finish(), or NaN when no period arrived. */
  readonly peakDb = new Float64Array(METER_MAX_CHANNELS);
  /** Channels in the last finish(). */
  channels = 0;
  private readonly hi = new Int32Array(METER_MAX_CHANNELS);
  private readonly lo = new Int32Array(METER_MAX_CHANNELS);
  /** Periods folded into hi/lo since the last finish(). */
  private collected = 0;
  private lastNext = 0;
  private headerRing: AudioRing | null = null;
  private seqWords: Int32Array = new Int32Array(0);

  /**
   * `ring` returns the current ring (it is replaced when the source's shape
   * changes); `nextSeq` the seq the ingest will give the next period.
   */
  constructor(
    private readonly ring: () => AudioRing,
    private readonly nextSeq: () => number,
  ) {}

  /** Forgets what came before: the next finish() covers only periods written from now on. */
  reset(): void {
    this.lastNext = this.nextSeq();
    this.hi.fill(0);
    this.lo.fill(0);
    this.collected = 0;
  }

  /**
   * Folds in the periods written since the last collect (at most the ring's
   * slot count: older ones are overwritten). Returns how many it read.
   */
  collect(): number {
    const ring = this.ring();
    if (ring !== this.headerRing) {
      // Seq is stored as a 64-bit integer; its low 32 bits (little-endian: the first word) are the whole uint32 seq.
      this.seqWords = new Int32Array(ring.sab, 0, ring.shape.slotCount * SLOT_HEADER_WORDS * 2);
      this.headerRing = ring;
    }
    const { channels, periodFrames, slotCount } = ring.shape;
    const ch = Math.min(channels, METER_MAX_CHANNELS);
    const next = this.nextSeq();
    const count = Math.min((next - this.lastNext) >>> 0, slotCount);
    this.lastNext = next;
    const samples = ring.samples;
    const hiAll = this.hi;
    const loAll = this.lo;
    let read = 0;
    for (let i = count; i > 0; i--) {
      const seq = (next - i) >>> 0;
      const slot = seq % slotCount;
      // A period the pool had no room for was never written: its slot still holds an older seq.
      if (this.seqWords[slot * SLOT_HEADER_WORDS * 2] !== (seq | 0)) continue;
      read++;
      const base = slot * ring.samplesPerSlot;
      const end = base + periodFrames * channels;
      for (let c = 0; c < ch; c++) {
        let hi = hiAll[c]!;
        let lo = loAll[c]!;
        for (let j = base + c; j < end; j += channels) {
          const v = samples[j]!;
          if (v > hi) hi = v;
          else if (v < lo) lo = v;
        }
        hiAll[c] = hi;
        loAll[c] = lo;
      }
    }
    this.collected += read;
    this.channels = ch;
    return read;
  }

  /** Sets peakDb from the periods collected since the last finish() and starts over; returns their count. */
  finish(): number {
    const n = this.collected;
    for (let c = 0; c < this.channels; c++) {
      const p = Math.max(this.hi[c]!, -this.lo[c]!);
      this.peakDb[c] = n === 0 ? NaN : p === 0 ? METER_FLOOR_DB : Math.max(METER_FLOOR_DB, 20 * Math.log10(p / FULL_SCALE));
    }
    this.hi.fill(0);
    this.lo.fill(0);
    this.collected = 0;
    return n;
  }

  /** The last finish() as JSON: `{"type":"levels","peakDb":[-12.0,…]}`, one decimal, null for "no audio". */
  toJson(): string {
    let s = '{"type":"levels","peakDb":[';
    for (let c = 0; c < this.channels; c++) {
      const v = this.peakDb[c]!;
      if (c > 0) s += ',';
      s += Number.isNaN(v) ? 'null' : String(Math.round(v * 10) / 10);
    }
    return s + ']}';
  }
}
