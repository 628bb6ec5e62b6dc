import {
  closeSync,
  existsSync,
  fdatasyncSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  rmSync,
  statSync,
  statfsSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import type { SampleFormat } from '../engine/sample-format';
import { BYTES_PER_SAMPLE } from '../engine/sample-format';
import { takeFileNames, writeManifestSync, type TakeFile, type TakeLayout, type TakeManifest, type TakeMarker } from './take-manifest';
import {
  PROG_FIRST_WALL_MS,
  PROG_FRAMES,
  PROG_FRAMES_DURABLE,
  PROG_FREE_BYTES,
  PROG_LAST_SYNC_MS,
  CTRL_WRITE_ERRORS,
  START_CAPTURE_NS,
  START_SAMPLE_POS,
  STOP_NONE,
  STOP_OVERFLOW,
  TakeRingReader,
  type TakeRingBuffers,
} from './take-ring';
import { trailerChunks, WavHeader } from './wav-format';

/**
 * A take's writer thread: takes periods off the ring, writes them to the
 * take's files with plain synchronous calls (they block this thread only),
 * and every syncIntervalMs flushes the audio (fdatasync) and rewrites each
 * header to declare it, so a file cut short is valid up to the last flush.
 * It ends the take itself when the drive fills, fails or vanishes, and
 * always leaves every file valid: sizes declared, all files the same length.
 */

export interface WriterConfig {
  ring: TakeRingBuffers;
  /** Markers and the end reason from the main thread, read without waiting. */
  port: MessagePort;
  take: {
    dir: string;
    id: string;
    name: string;
    layout: TakeLayout;
    format: SampleFormat;
    rate: number;
    periodFrames: number;
    sourceChannels: number;
    channels: { ch: number; name: string }[];
  };
  syncIntervalMs: number;
  minFreeBytes: number;
  /** The filesystem's largest file (FAT); null: none (RF64 past 4 GiB). */
  maxFileBytes: number | null;
  /** Tests lower it to reach RF64 without writing 4 GiB. */
  rf64Above: number;
  /** No first period within this long: the take fails without creating anything. */
  firstPeriodTimeoutMs: number;
}

export type WriterMessage =
  | { type: 'started'; files: string[] }
  /** manifest null: nothing was created (no audio came, or the folder could not be made). */
  | { type: 'ended'; manifest: TakeManifest | null; error: string | null; reason: string };

export type WriterCommand = { type: 'marker'; marker: TakeMarker } | { type: 'reason'; text: string };

/** Woken this often to take what arrived; writes are then about this long (fewer, larger syscalls). */
const WAKE_MS = 100;
/** Dropout markers a take keeps at most, and at most one per second of audio: a device that keeps losing audio must not grow take.json and the cue chunk without end. */
const MAX_DROPOUT_MARKERS = 500;
/** Room kept below a file size limit for the closing chunks (cue, labels). */
const TRAILER_RESERVE = 64 * 1024;

interface OpenFile {
  name: string;
  fd: number;
  header: WavHeader;
  /** Source channels (0-based) in file order. */
  channels: number[];
  blockAlign: number;
  dataBytes: number;
  /** The file takes whole source frames in order: written straight from the ring. */
  passThrough: boolean;
  staging: Buffer;
}

class WriteFailure extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** What an errno means for a take, in the engineer's words. */
function reasonOf(code: string | undefined): string {
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return 'drive full';
    case 'EROFS':
      return 'drive read-only';
    case 'ENOENT':
    case 'ENODEV':
    case 'ENXIO':
    case 'ESTALE':
      return 'drive vanished';
    default:
      return 'drive error';
  }
}

function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (!e.code || e.message.startsWith(`${e.code}:`)) return e.message ?? String(err);
  return `${e.code}: ${e.message}`;
}

export class TakeWriterThread {
  private readonly ring: TakeRingReader;
  private readonly bps: number;
  private readonly srcFrameBytes: number;
  private readonly chunkPeriods: number;
  private files: OpenFile[] = [];
  private part = 1;
  private partStartFrame = 0;
  private frames = 0;
  private readonly fileLog: TakeFile[] = [];
  private markers: TakeMarker[] = [];
  private dropoutMarkers = 0;
  private lastDropoutFrame = -Infinity;
  private manifest!: TakeManifest;
  private dirId: { dev: number; ino: number } | null = null;
  private lastSync = 0;
  private endReason: string | null = null;
  private error: string | null = null;

  constructor(
    private readonly cfg: WriterConfig,
    private readonly post: (m: WriterMessage) => void,
  ) {
    this.ring = new TakeRingReader(cfg.ring);
    this.bps = BYTES_PER_SAMPLE[cfg.take.format];
    this.srcFrameBytes = this.bps * cfg.take.sourceChannels;
    this.chunkPeriods = Math.max(1, Math.ceil((cfg.take.rate * WAKE_MS) / 1000 / cfg.take.periodFrames) * 2);
  }

  run(): void {
    if (!this.waitFirstPeriod()) {
      this.commands();
      const stopped = this.ring.stop !== STOP_NONE;
      this.post({ type: 'ended', manifest: null, error: stopped ? null : 'no audio arrived from the capture', reason: this.endReason ?? (stopped ? 'stopped' : 'no audio') });
      this.cfg.port.close();
      return;
    }
    const existed = existsSync(this.cfg.take.dir);
    try {
      this.open();
    } catch (err) {
      this.closeAll();
      // Nothing of the take is worth keeping: no audio was written yet.
      if (!existed) {
        try {
          rmSync(this.cfg.take.dir, { recursive: true, force: true });
        } catch {
          // It was never made.
        }
      }
      this.post({ type: 'ended', manifest: null, error: `cannot create the take in ${this.cfg.take.dir}: ${errText(err)}`, reason: reasonOf((err as NodeJS.ErrnoException).code) });
      this.cfg.port.close();
      return;
    }
    this.post({ type: 'started', files: this.files.map((f) => f.name) });
    this.lastSync = Date.now();
    try {
      for (;;) {
        this.ring.sleep(WAKE_MS);
        this.commands();
        const stop = this.ring.stop;
        this.drain();
        if (Date.now() - this.lastSync >= this.cfg.syncIntervalMs) this.sync();
        if (stop !== STOP_NONE) {
          if (stop === STOP_OVERFLOW) {
            this.endReason = 'drive too slow';
            this.error = `the write buffer (${this.bufferSeconds()} s) filled: ${this.cfg.take.dir} takes less than ${this.bytesPerSecond()} bytes a second`;
          }
          break;
        }
      }
    } catch (err) {
      if (!(err instanceof WriteFailure)) throw err;
      this.endReason = err.reason;
      this.error = err.message;
    }
    this.commands();
    this.finish();
  }

  private bufferSeconds(): number {
    return Math.round(((this.ring.slots * this.cfg.take.periodFrames) / this.cfg.take.rate) * 10) / 10;
  }

  private bytesPerSecond(): number {
    return this.cfg.take.rate * this.bps * this.cfg.take.channels.length;
  }

  private waitFirstPeriod(): boolean {
    const deadline = Date.now() + this.cfg.firstPeriodTimeoutMs;
    while (this.ring.written === 0) {
      if (this.ring.stop !== STOP_NONE || Date.now() >= deadline) return false;
      this.ring.sleep(10);
    }
    return true;
  }

  private commands(): void {
    for (let m = receiveMessageOnPort(this.cfg.port); m; m = receiveMessageOnPort(this.cfg.port)) {
      const cmd = m.message as WriterCommand;
      if (cmd.type === 'reason') this.endReason ??= cmd.text;
      else {
        this.markers.push(cmd.marker);
        this.markers.sort((a, b) => a.frame - b.frame);
        this.saveManifest();
      }
    }
  }

  private open(): void {
    const t = this.cfg.take;
    mkdirSync(t.dir, { recursive: true });
    const st = statSync(t.dir);
    this.dirId = { dev: st.dev, ino: st.ino };
    const startedAt = new Date(this.ring.progress[PROG_FIRST_WALL_MS] || Date.now());
    this.manifest = {
      version: 1,
      id: t.id,
      name: t.name,
      state: 'recording',
      layout: t.layout,
      format: t.format,
      rate: t.rate,
      sourceChannels: t.sourceChannels,
      channels: t.channels,
      startedAt: startedAt.toISOString(),
      captureNs: BigInt.asUintN(64, this.ring.start[START_CAPTURE_NS]!).toString(),
      samplePos: BigInt.asUintN(64, this.ring.start[START_SAMPLE_POS]!).toString(),
      frames: 0,
      endedAt: null,
      endReason: null,
      error: null,
      files: [],
      markers: [],
    };
    this.openPart();
    this.saveManifest();
    this.syncDir();
  }

  /** Creates the files of the current part, headers first. */
  private openPart(): void {
    const t = this.cfg.take;
    const names = takeFileNames(t.layout, t, t.channels, this.part);
    const groups = t.layout === 'multi' ? [t.channels.map((c) => c.ch)] : t.channels.map((c) => [c.ch]);
    const startedAt = new Date(new Date(this.manifest.startedAt).getTime() + (this.partStartFrame * 1000) / t.rate);
    const chunkFrames = this.chunkPeriods * t.periodFrames;
    this.files = [];
    groups.forEach((channels, i) => {
      const header = new WavHeader(
        {
          format: t.format,
          channels: channels.length,
          rate: t.rate,
          startedAt,
          takeId: t.id,
          takeName: t.name || t.id,
          trackNames: channels.map((ch) => t.channels.find((c) => c.ch === ch)!.name),
          inputs: channels.map((ch) => ch + 1),
          captureNs: BigInt(this.manifest.captureNs),
          samplePos: BigInt(this.manifest.samplePos) + BigInt(this.partStartFrame),
          part: this.part,
        },
        this.cfg.rf64Above,
      );
      const name = names[i]!;
      const fd = openSync(path.join(t.dir, name), 'wx');
      const blockAlign = header.blockAlign;
      const passThrough = channels.length === t.sourceChannels && channels.every((ch, k) => ch === k);
      this.files.push({ name, fd, header, channels, blockAlign, dataBytes: 0, passThrough, staging: passThrough ? Buffer.alloc(0) : Buffer.alloc(chunkFrames * blockAlign) });
      const h = header.sized(0);
      writeSync(fd, h, 0, h.length, 0);
      this.fileLog.push({ name, part: this.part, startFrame: this.partStartFrame, channels, frames: 0 });
    });
  }

  /** Writes every period that has arrived, in runs that never wrap the ring. */
  private drain(): void {
    const pf = this.cfg.take.periodFrames;
    for (;;) {
      const { first, count } = this.ring.contiguous(this.chunkPeriods);
      if (count === 0) return;
      for (let i = 0; i < count; i++) {
        const frame = this.frames + i * pf;
        if (!this.ring.dropoutAt(first + i) || frame === 0) continue;
        if (this.dropoutMarkers >= MAX_DROPOUT_MARKERS || frame - this.lastDropoutFrame < this.cfg.take.rate) continue;
        this.markers.push({ frame, label: 'capture dropout', kind: 'dropout', at: new Date().toISOString() });
        this.dropoutMarkers++;
        this.lastDropoutFrame = frame;
      }
      const frames = count * pf;
      this.rollIfFull(frames);
      const src = this.ring.data.subarray(first * this.ring.periodBytes, (first + count) * this.ring.periodBytes);
      for (const f of this.files) this.writeFrames(f, src, frames);
      this.frames += frames;
      this.ring.progress[PROG_FRAMES] = this.frames;
      this.ring.consume(count);
    }
  }

  private writeFrames(f: OpenFile, src: Uint8Array, frames: number): void {
    let out: Uint8Array;
    if (f.passThrough) out = src;
    else {
      out = f.staging.subarray(0, frames * f.blockAlign);
      extract(src, this.srcFrameBytes, frames, f.channels, this.bps, out);
    }
    let done = 0;
    while (done < out.length) {
      let n: number;
      try {
        n = writeSync(f.fd, out, done, out.length - done, f.header.dataOffset + f.dataBytes);
      } catch (err) {
        Atomics.add(this.ring.ctrl, CTRL_WRITE_ERRORS, 1);
        throw new WriteFailure(reasonOf((err as NodeJS.ErrnoException).code), `${path.join(this.cfg.take.dir, f.name)}: ${errText(err)}`);
      }
      done += n;
      f.dataBytes += n;
    }
  }

  /** A filesystem with a file size limit (FAT): close this part and go on in the next before a file would pass it. */
  private rollIfFull(frames: number): void {
    const max = this.cfg.maxFileBytes;
    // A part holds something before it may end (a limit smaller than one write would otherwise roll forever).
    if (max === null || this.frames === this.partStartFrame) return;
    if (!this.files.some((f) => f.header.dataOffset + f.dataBytes + frames * f.blockAlign + TRAILER_RESERVE > max)) return;
    this.closePart();
    this.part++;
    this.partStartFrame = this.frames;
    this.openPart();
    this.saveManifest();
    this.syncDir();
  }

  /** Flushes the audio, then declares it in every header; checks free space and that the drive is still there. */
  private sync(): void {
    const dir = this.cfg.take.dir;
    this.lastSync = Date.now();
    for (const f of this.files) {
      try {
        fdatasyncSync(f.fd);
        const h = f.header.sized(f.dataBytes - (f.dataBytes % f.blockAlign));
        writeSync(f.fd, h, 0, h.length, 0);
      } catch (err) {
        Atomics.add(this.ring.ctrl, CTRL_WRITE_ERRORS, 1);
        throw new WriteFailure(reasonOf((err as NodeJS.ErrnoException).code), `${path.join(dir, f.name)}: ${errText(err)}`);
      }
    }
    this.ring.progress[PROG_FRAMES_DURABLE] = this.frames;
    this.ring.progress[PROG_LAST_SYNC_MS] = this.lastSync;
    // A lazily unmounted or pulled drive can still take writes through open files: the path says whether it is still there.
    let st;
    try {
      st = statSync(dir);
    } catch (err) {
      throw new WriteFailure('drive vanished', `${dir} is no longer reachable (${errText(err)}): the drive was unmounted or pulled`);
    }
    if (this.dirId && (st.dev !== this.dirId.dev || st.ino !== this.dirId.ino)) {
      throw new WriteFailure('drive vanished', `${dir} is no longer the folder the take was written to: the drive was unmounted or pulled`);
    }
    let free: number;
    try {
      const s = statfsSync(dir);
      free = s.bavail * s.bsize;
    } catch (err) {
      throw new WriteFailure('drive error', `statfs ${dir}: ${errText(err)}`);
    }
    this.ring.progress[PROG_FREE_BYTES] = free;
    if (free < this.cfg.minFreeBytes) {
      throw new WriteFailure('drive full', `${Math.floor(free / 1048576)} MiB left on the drive of ${dir}; a take stops at ${Math.floor(this.cfg.minFreeBytes / 1048576)} MiB (recording.minFreeMiB)`);
    }
  }

  /**
   * Leaves every file of the current part valid: all cut to the same whole
   * frame, markers appended, sizes declared, flushed, closed. Best effort on
   * a failing drive: each step that fails is skipped, the header (an
   * overwrite in place, no new blocks) is tried last.
   */
  private closePart(): void {
    const frames = this.files.length === 0 ? 0 : Math.min(...this.files.map((f) => Math.floor(f.dataBytes / f.blockAlign)));
    const partFrames = frames;
    const marks = this.markers
      .filter((m) => m.frame >= this.partStartFrame && m.frame < this.partStartFrame + partFrames)
      .map((m) => ({ frame: m.frame - this.partStartFrame, label: m.label || (m.kind === 'dropout' ? 'capture dropout' : 'marker') }));
    for (const f of this.files) {
      const bytes = frames * f.blockAlign;
      if (f.dataBytes !== bytes) {
        try {
          ftruncateSync(f.fd, f.header.dataOffset + bytes);
        } catch {
          // The header below declares `bytes` either way; a reader stops there.
        }
      }
      let trailer = trailerChunks(marks, bytes);
      if (trailer.length > 0) {
        try {
          writeSync(f.fd, trailer, 0, trailer.length, f.header.dataOffset + bytes);
        } catch {
          trailer = Buffer.alloc(0);
        }
      }
      try {
        const h = f.header.sized(bytes, trailer.length);
        writeSync(f.fd, h, 0, h.length, 0);
        fdatasyncSync(f.fd);
      } catch {
        Atomics.add(this.ring.ctrl, CTRL_WRITE_ERRORS, 1);
      }
      f.dataBytes = bytes;
      const log = this.fileLog.find((l) => l.name === f.name && l.part === this.part);
      if (log) log.frames = frames;
    }
    this.closeAll();
    // The take's length is where its last part ends: earlier parts are whole.
    this.frames = this.partStartFrame + frames;
  }

  private closeAll(): void {
    for (const f of this.files) {
      try {
        closeSync(f.fd);
      } catch {
        // Already failing drive: the data is as far as it got.
      }
    }
    this.files = [];
  }

  private finish(): void {
    this.drainQuietly();
    this.closePart();
    this.ring.progress[PROG_FRAMES] = this.frames;
    this.ring.progress[PROG_FRAMES_DURABLE] = this.frames;
    this.manifest.state = this.error === null ? 'done' : 'failed';
    this.manifest.endedAt = new Date().toISOString();
    this.manifest.endReason = this.endReason ?? 'stopped';
    this.manifest.error = this.error;
    this.saveManifest();
    this.syncDir();
    this.post({ type: 'ended', manifest: this.manifest, error: this.error, reason: this.manifest.endReason });
    this.cfg.port.close();
  }

  /** What is still in the ring after a failure cannot be written; after a clean stop it is. */
  private drainQuietly(): void {
    if (this.error !== null && this.endReason !== 'drive too slow') return;
    try {
      this.drain();
    } catch (err) {
      if (!(err instanceof WriteFailure)) throw err;
      this.endReason = err.reason;
      this.error = err.message;
    }
  }

  private saveManifest(): void {
    this.manifest.frames = this.frames;
    this.manifest.files = this.fileLog.map((f) => ({ ...f }));
    this.manifest.markers = this.manifest.state === 'recording' ? [...this.markers] : this.markers.filter((m) => m.frame < this.frames);
    try {
      writeManifestSync(this.cfg.take.dir, this.manifest);
    } catch {
      // A vanished or full drive: its take.json still says "recording", and the take is repaired when the box sees it next.
    }
  }

  private syncDir(): void {
    try {
      const fd = openSync(this.cfg.take.dir, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch {
      // Durability of the names only; the next flush tries again.
    }
  }
}

/** Copies `channels` of every frame from interleaved `src` into `dst`. */
export function extract(src: Uint8Array, srcFrameBytes: number, frames: number, channels: readonly number[], bps: number, dst: Uint8Array): void {
  const n = channels.length;
  // 16- and 32-bit samples move as whole words when both sides are aligned (the ring and the staging buffers are).
  if ((bps === 2 || bps === 4) && src.byteOffset % 4 === 0 && dst.byteOffset % 4 === 0) {
    const W = bps === 2 ? Uint16Array : Uint32Array;
    const s = new W(src.buffer as ArrayBuffer, src.byteOffset, (frames * srcFrameBytes) / bps);
    const d = new W(dst.buffer as ArrayBuffer, dst.byteOffset, frames * n);
    const stride = srcFrameBytes / bps;
    if (n === 1) {
      for (let f = 0, i = channels[0]!; f < frames; f++, i += stride) d[f] = s[i]!;
      return;
    }
    for (let f = 0, o = 0, base = 0; f < frames; f++, base += stride) for (let k = 0; k < n; k++) d[o++] = s[base + channels[k]!]!;
    return;
  }
  if (n === 1) {
    // One input per file (the mono layout): a tight loop per width, about twice as fast as the general one.
    let s = channels[0]! * bps;
    if (bps === 3) {
      for (let f = 0, o = 0; f < frames; f++, s += srcFrameBytes, o += 3) {
        dst[o] = src[s]!;
        dst[o + 1] = src[s + 1]!;
        dst[o + 2] = src[s + 2]!;
      }
      return;
    }
    for (let f = 0, o = 0; f < frames; f++, s += srcFrameBytes, o += bps) for (let b = 0; b < bps; b++) dst[o + b] = src[s + b]!;
    return;
  }
  let o = 0;
  for (let f = 0, base = 0; f < frames; f++, base += srcFrameBytes) {
    for (let k = 0; k < n; k++) {
      const s = base + channels[k]! * bps;
      for (let b = 0; b < bps; b++) dst[o + b] = src[s + b]!;
      o += bps;
    }
  }
}

if (parentPort && workerData && (workerData as { takeWriter?: boolean }).takeWriter) {
  const cfg = (workerData as { config: WriterConfig }).config;
  const port = parentPort;
  new TakeWriterThread(cfg, (m) => port.postMessage(m)).run();
}

