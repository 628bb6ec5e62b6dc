/**
 * The hand-over between the period path and a take's writer thread: a ring
 * of whole capture periods in SharedArrayBuffers, one writer (the main
 * thread, in the capture callback) and one reader (the writer thread). The
 * main thread only copies a period in and bumps a counter; it never waits,
 * never allocates and never notifies per period. The writer thread wakes on
 * its own clock and takes whatever has arrived.
 */

/** Int32 control words. */
export const CTRL_WRITE = 0; // periods pushed (uint32, wraps)
export const CTRL_READ = 1; // periods the writer has consumed
export const CTRL_STOP = 2; // STOP_* below
export const CTRL_WRITE_ERRORS = 3; // failed write/sync calls of this take
const CTRL_WORDS = 8;

export const STOP_NONE = 0;
/** The engineer, the service or a format change ends the take: write everything pushed, then close. */
export const STOP_REQUESTED = 1;
/** The ring was full when a period came (the drive is slower than the audio): write what is in it, then close. */
export const STOP_OVERFLOW = 2;

/** Float64 progress, written by the writer thread, read by status. */
export const PROG_FRAMES = 0; // frames written to the files
export const PROG_FRAMES_DURABLE = 1; // frames flushed (fdatasync) with a header that declares them
export const PROG_FREE_BYTES = 2; // free bytes on the drive at the last flush (-1: unknown)
export const PROG_LAST_SYNC_MS = 3; // Date.now() of the last flush
export const PROG_FIRST_WALL_MS = 4; // Date.now() when the first period was pushed
export const PROG_MAX_FILL = 5; // most periods ever waiting in the ring
const PROG_WORDS = 8;

/** BigInt64: the first period's capture ns and sample position. */
export const START_CAPTURE_NS = 0;
export const START_SAMPLE_POS = 1;

export interface TakeRingBuffers {
  data: SharedArrayBuffer;
  /** One byte per slot: 1 when audio was lost just before that period. */
  flags: SharedArrayBuffer;
  ctrl: SharedArrayBuffer;
  progress: SharedArrayBuffer;
  start: SharedArrayBuffer;
  slots: number;
  periodBytes: number;
}

export function allocTakeRing(slots: number, periodBytes: number): TakeRingBuffers {
  if (!Number.isInteger(slots) || slots < 2) throw new RangeError(`slots: got ${slots}; allowed: an integer >= 2`);
  const progress = new SharedArrayBuffer(PROG_WORDS * 8);
  new Float64Array(progress)[PROG_FREE_BYTES] = -1;
  return {
    data: new SharedArrayBuffer(slots * periodBytes),
    flags: new SharedArrayBuffer(slots),
    ctrl: new SharedArrayBuffer(CTRL_WORDS * 4),
    progress,
    start: new SharedArrayBuffer(2 * 8),
    slots,
    periodBytes,
  };
}

/** Makes a ring that served a take ready for the next: counters, progress and start facts cleared (the audio is overwritten anyway). */
export function resetTakeRing(b: TakeRingBuffers): void {
  new Int32Array(b.ctrl).fill(0);
  const p = new Float64Array(b.progress);
  p.fill(0);
  p[PROG_FREE_BYTES] = -1;
  new BigInt64Array(b.start).fill(0n);
  new Uint8Array(b.flags).fill(0);
}

/** The main thread's end: one push per period. */
export class TakeRingWriter {
  private readonly data: Uint8Array;
  private readonly flags: Uint8Array;
  readonly ctrl: Int32Array;
  readonly progress: Float64Array;
  private readonly start: BigInt64Array;
  private readonly slots: number;
  private readonly periodBytes: number;

  constructor(b: TakeRingBuffers) {
    this.data = new Uint8Array(b.data);
    this.flags = new Uint8Array(b.flags);
    this.ctrl = new Int32Array(b.ctrl);
    this.progress = new Float64Array(b.progress);
    this.start = new BigInt64Array(b.start);
    this.slots = b.slots;
    this.periodBytes = b.periodBytes;
  }

  /** Periods pushed so far. */
  get pushed(): number {
    return Atomics.load(this.ctrl, CTRL_WRITE) >>> 0;
  }

  /**
   * Copies one period in. False when the ring is full (nothing is copied):
   * the writer is a whole buffer behind. `data` must be one period of
   * periodBytes; anything else is refused the same way.
   */
  push(data: Uint8Array, dropout: boolean, captureNs: bigint, samplePos: bigint): boolean {
    const w = Atomics.load(this.ctrl, CTRL_WRITE) >>> 0;
    const r = Atomics.load(this.ctrl, CTRL_READ) >>> 0;
    const queued = (w - r) >>> 0;
    if (queued >= this.slots || data.byteLength !== this.periodBytes) return false;
    if (this.progress[PROG_FIRST_WALL_MS] === 0) {
      this.start[START_CAPTURE_NS] = captureNs;
      this.start[START_SAMPLE_POS] = samplePos;
      this.progress[PROG_FIRST_WALL_MS] = Date.now();
    }
    const slot = w % this.slots;
    this.data.set(data, slot * this.periodBytes);
    this.flags[slot] = dropout ? 1 : 0;
    if (queued + 1 > this.progress[PROG_MAX_FILL]!) this.progress[PROG_MAX_FILL] = queued + 1;
    Atomics.store(this.ctrl, CTRL_WRITE, (w + 1) | 0);
    return true;
  }

  /** Asks the writer to finish (the first reason wins) and wakes it. */
  requestStop(reason: typeof STOP_REQUESTED | typeof STOP_OVERFLOW): void {
    Atomics.compareExchange(this.ctrl, CTRL_STOP, STOP_NONE, reason);
    Atomics.notify(this.ctrl, CTRL_STOP);
  }
}

/** The writer thread's end. */
export class TakeRingReader {
  readonly data: Uint8Array;
  private readonly flags: Uint8Array;
  readonly ctrl: Int32Array;
  readonly progress: Float64Array;
  readonly start: BigInt64Array;

  constructor(
    b: TakeRingBuffers,
    readonly slots = b.slots,
    readonly periodBytes = b.periodBytes,
  ) {
    this.data = new Uint8Array(b.data);
    this.flags = new Uint8Array(b.flags);
    this.ctrl = new Int32Array(b.ctrl);
    this.progress = new Float64Array(b.progress);
    this.start = new BigInt64Array(b.start);
  }

  get written(): number {
    return Atomics.load(this.ctrl, CTRL_WRITE) >>> 0;
  }

  get read(): number {
    return Atomics.load(this.ctrl, CTRL_READ) >>> 0;
  }

  get stop(): number {
    return Atomics.load(this.ctrl, CTRL_STOP);
  }

  /** Periods waiting, up to the end of the ring (a run never wraps). */
  contiguous(limit: number): { first: number; count: number } {
    const r = this.read;
    const avail = (this.written - r) >>> 0;
    const slot = r % this.slots;
    return { first: slot, count: Math.min(avail, this.slots - slot, limit) };
  }

  dropoutAt(slot: number): boolean {
    return this.flags[slot] === 1;
  }

  consume(n: number): void {
    Atomics.store(this.ctrl, CTRL_READ, (this.read + n) | 0);
  }

  /** Sleeps until a stop request or `ms` pass. */
  sleep(ms: number): void {
    Atomics.wait(this.ctrl, CTRL_STOP, STOP_NONE, ms);
  }
}
