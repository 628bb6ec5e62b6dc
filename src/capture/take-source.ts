import { open, type FileHandle } from 'node:fs/promises';
import type { SampleFormat } from '../engine/sample-format';
import { BYTES_PER_SAMPLE } from '../engine/sample-format';
import { CaptureSource, type CaptureFormat } from './capture-source';
import { RealtimePacer } from './realtime-pacer';

/** A take as playback needs it: checked files, where their audio starts, which inputs they hold. */
export interface TakePlayPlan {
  id: string;
  format: SampleFormat;
  rate: number;
  /** The capture's channel count when it was recorded: every input plays back on its own number. */
  sourceChannels: number;
  frames: number;
  /** Back to back; a take split at a file size limit has several. */
  parts: {
    startFrame: number;
    frames: number;
    files: { path: string; dataOffset: number; channels: number[] }[];
  }[];
}

export type PlayState = 'playing' | 'paused' | 'ended';

/** Frames per read of each file. */
const BLOCK_FRAMES = 4096;
/** Blocks read ahead of the play position (~1 s at 48 kHz). */
const AHEAD_BLOCKS = 12;
/** Blocks in the pool: read-ahead, the one playing, and room for reads a seek left in flight. */
const POOL_BLOCKS = AHEAD_BLOCKS + 6;

interface Block {
  part: number;
  index: number;
  frames: number;
  /** One buffer per file of the part, BLOCK_FRAMES long. */
  bufs: Buffer[];
  state: 'free' | 'loading' | 'ready' | 'stale';
}

/**
 * Virtual soundcheck: plays a take as if it were the stage. It presents the
 * capture the take was recorded from (its channel count, format and rate),
 * with each recorded input on its own number and silence on the others, so
 * every client keeps its channels and its mix. Paced in real time like the
 * test signal; paused or at the end it sends silence, so clients stay
 * connected and the watchdog sees audio flowing. Files are read ahead on
 * the libuv pool (about a second); a read that is late leaves a silent
 * period (counted, flagged) and play resumes where it was.
 *
 * Events besides CaptureSource's: 'playback' () when the play state changes
 * by itself (the end of the take), 'failed' (message) when a file can no
 * longer be read.
 */
export class TakeSource extends CaptureSource {
  private handles: FileHandle[][] = [];
  private readonly fmt: CaptureFormat;
  private readonly bps: number;
  private readonly frameBytes: number;
  private readonly period: Buffer;
  private readonly pacer: RealtimePacer;
  private readonly pool: Block[];
  private pos = 0;
  private play: PlayState;
  private loopRange: { start: number; end: number } | null = null;
  private silent = false;
  private closed = false;
  /** Periods sent silent because the read-ahead was late. */
  underruns = 0;

  constructor(
    readonly plan: TakePlayPlan,
    periodFrames: number,
    opts: { startFrame?: number; playing?: boolean } = {},
  ) {
    super('take', `take:${plan.id}`);
    this.fmt = { format: plan.format, channels: plan.sourceChannels, rate: plan.rate, periodFrames };
    this.bps = BYTES_PER_SAMPLE[plan.format];
    this.frameBytes = this.bps * plan.sourceChannels;
    this.period = Buffer.alloc(periodFrames * this.frameBytes);
    this.pos = opts.startFrame ?? 0;
    this.play = opts.playing === false ? 'paused' : 'playing';
    const filesPerPart = Math.max(...plan.parts.map((p) => p.files.length));
    const widest = plan.parts[0]!.files.map((f) => f.channels.length * this.bps);
    this.pool = Array.from({ length: POOL_BLOCKS }, () => ({
      part: -1,
      index: -1,
      frames: 0,
      bufs: Array.from({ length: filesPerPart }, (_, i) => Buffer.alloc(BLOCK_FRAMES * (widest[i] ?? widest[0]!))),
      state: 'free' as Block['state'],
    }));
    // A take is a file: a late timer loses no sample (the pacer skips ahead in time, not in the take).
    this.pacer = new RealtimePacer((periodFrames / plan.rate) * 1000, this.tick);
  }

  /** Opens every file; throws (closing what it opened) if one cannot be. Before start(). */
  async open(): Promise<void> {
    try {
      for (const part of this.plan.parts) {
        const hs: FileHandle[] = [];
        this.handles.push(hs);
        for (const f of part.files) hs.push(await open(f.path, 'r'));
      }
    } catch (err) {
      await this.closeHandles();
      throw err;
    }
  }

  start(): void {
    this.status.format = { ...this.fmt };
    this.emit('format', { ...this.fmt });
    this.setState('running', null);
    this.fill();
    this.pacer.start();
  }

  async stop(): Promise<void> {
    this.pacer.stop();
    this.setState('stopped');
    await this.closeHandles();
  }

  get position(): number {
    return this.pos;
  }

  get playState(): PlayState {
    return this.play;
  }

  get loop(): { start: number; end: number } | null {
    return this.loopRange ? { ...this.loopRange } : null;
  }

  resume(): void {
    if (this.play === 'ended') this.moveTo(this.loopRange?.start ?? 0);
    this.play = 'playing';
    this.fill();
  }

  pause(): void {
    if (this.play === 'playing') this.play = 'paused';
  }

  /** Moves the play position (0 <= frame < frames; the caller checks). */
  seek(frame: number): void {
    this.moveTo(frame);
    if (this.play === 'ended') this.play = 'paused';
    this.fill();
  }

  /** Loops [start, end) (null: no loop; the take then plays to its end and stops). */
  setLoop(range: { start: number; end: number } | null): void {
    this.loopRange = range ? { ...range } : null;
    if (range && (this.pos < range.start || this.pos >= range.end)) this.moveTo(range.start);
    this.fill();
  }

  private moveTo(frame: number): void {
    this.pos = frame;
    for (const b of this.pool) {
      if (b.state === 'ready') b.state = 'free';
      else if (b.state === 'loading') b.state = 'stale';
    }
    this.emit('discontinuity');
  }

  private readonly tick = (): void => {
    const pf = this.fmt.periodFrames;
    if (this.play !== 'playing' || this.closed) {
      if (!this.silent) this.period.fill(0);
      this.silent = true;
      this.emit('period', this.period, pf);
      return;
    }
    this.silent = false;
    let done = 0;
    let crossed = false;
    while (done < pf) {
      const end = this.loopRange?.end ?? this.plan.frames;
      if (this.pos >= end) {
        if (this.loopRange) {
          this.pos = this.loopRange.start;
          crossed = true;
          continue;
        }
        this.period.fill(0, done * this.frameBytes);
        this.play = 'ended';
        this.emit('playback');
        break;
      }
      const pi = this.partAt(this.pos);
      const part = this.plan.parts[pi]!;
      const local = this.pos - part.startFrame;
      const index = Math.floor(local / BLOCK_FRAMES);
      const block = this.pool.find((b) => b.state === 'ready' && b.part === pi && b.index === index);
      if (!block) {
        // The read-ahead is late: this period is silent from here, and play goes on from the same place.
        this.period.fill(0, done * this.frameBytes);
        this.underruns++;
        this.emit('discontinuity');
        break;
      }
      const off = local - index * BLOCK_FRAMES;
      const n = Math.min(pf - done, block.frames - off, end - this.pos, part.startFrame + part.frames - this.pos);
      this.copy(block, part.files, off, n, done);
      done += n;
      this.pos += n;
      if (off + n >= block.frames) {
        block.state = 'free';
        crossed = true;
      }
    }
    this.emit('period', this.period, pf);
    if (crossed) this.fill();
  };

  /** `n` frames of `block` from frame `off` into the period at frame `at`, each file's channels on their input numbers. */
  private copy(block: Block, files: TakePlayPlan['parts'][number]['files'], off: number, n: number, at: number): void {
    const bps = this.bps;
    const fb = this.frameBytes;
    for (let fi = 0; fi < files.length; fi++) {
      const chans = files[fi]!.channels;
      const src = block.bufs[fi]!;
      const sfb = chans.length * bps;
      if (chans.length === this.fmt.channels && chans.every((c, k) => c === k)) {
        src.copy(this.period, at * fb, off * sfb, (off + n) * sfb);
        continue;
      }
      for (let i = 0; i < n; i++) {
        let s = (off + i) * sfb;
        const d = (at + i) * fb;
        for (let k = 0; k < chans.length; k++, s += bps) {
          const o = d + chans[k]! * bps;
          for (let b = 0; b < bps; b++) this.period[o + b] = src[s + b]!;
        }
      }
    }
  }

  private partAt(frame: number): number {
    const parts = this.plan.parts;
    for (let i = parts.length - 1; i > 0; i--) if (frame >= parts[i]!.startFrame) return i;
    return 0;
  }

  /** The blocks play will need next, in order (following the loop), up to AHEAD_BLOCKS. */
  private upcoming(): { part: number; index: number }[] {
    const out: { part: number; index: number }[] = [];
    let frame = this.pos;
    const end = this.loopRange?.end ?? this.plan.frames;
    for (let guard = 0; out.length < AHEAD_BLOCKS && guard < AHEAD_BLOCKS * 2; guard++) {
      if (frame >= end) {
        if (!this.loopRange) break;
        frame = this.loopRange.start;
      }
      const part = this.partAt(frame);
      const p = this.plan.parts[part]!;
      const index = Math.floor((frame - p.startFrame) / BLOCK_FRAMES);
      if (!out.some((b) => b.part === part && b.index === index)) out.push({ part, index });
      frame = Math.min(p.startFrame + (index + 1) * BLOCK_FRAMES, p.startFrame + p.frames);
    }
    return out;
  }

  /** Starts reads for the upcoming blocks not yet read or reading; frees blocks play has left behind. */
  private fill(): void {
    if (this.closed) return;
    const want = this.upcoming();
    for (const b of this.pool) {
      if (b.state === 'ready' && !want.some((w) => w.part === b.part && w.index === b.index)) b.state = 'free';
    }
    for (const w of want) {
      if (this.pool.some((b) => (b.state === 'ready' || b.state === 'loading') && b.part === w.part && b.index === w.index)) continue;
      const b = this.pool.find((x) => x.state === 'free');
      if (!b) return;
      b.part = w.part;
      b.index = w.index;
      b.state = 'loading';
      void this.read(b);
    }
  }

  private async read(b: Block): Promise<void> {
    const part = this.plan.parts[b.part]!;
    const first = b.index * BLOCK_FRAMES;
    const frames = Math.min(BLOCK_FRAMES, part.frames - first);
    try {
      await Promise.all(
        part.files.map(async (f, fi) => {
          const fba = f.channels.length * this.bps;
          const len = frames * fba;
          const { bytesRead } = await this.handles[b.part]![fi]!.read(b.bufs[fi]!, 0, len, f.dataOffset + first * fba);
          // A file cut shorter than planned plays silence for what is missing.
          if (bytesRead < len) b.bufs[fi]!.fill(0, bytesRead, len);
        }),
      );
    } catch (err) {
      b.state = 'free';
      if (this.closed) return;
      this.status.lastError = `reading take ${this.plan.id}: ${(err as Error).message}`;
      this.pause();
      this.emit('failed', this.status.lastError);
      return;
    }
    if (b.state === 'stale') {
      b.state = 'free';
      this.fill();
      return;
    }
    b.frames = frames;
    b.state = 'ready';
  }

  private async closeHandles(): Promise<void> {
    this.closed = true;
    const all = this.handles.flat();
    this.handles = [];
    await Promise.all(all.map((h) => h.close().catch(() => undefined)));
  }
}
