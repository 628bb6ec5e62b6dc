import { EventEmitter } from 'node:events';
import path from 'node:path';
import { MessageChannel, Worker } from 'node:worker_threads';
import type { CaptureFormat } from '../capture/capture-source';
import type { PeriodTap } from '../capture/period-ingest';
import { BYTES_PER_SAMPLE } from '../engine/sample-format';
import type { TakeManifest, TakeMarker } from './take-manifest';
import {
  allocTakeRing,
  CTRL_WRITE_ERRORS,
  resetTakeRing,
  PROG_FRAMES,
  PROG_FRAMES_DURABLE,
  PROG_FREE_BYTES,
  PROG_LAST_SYNC_MS,
  PROG_MAX_FILL,
  STOP_OVERFLOW,
  STOP_REQUESTED,
  TakeRingWriter,
  type TakeRingBuffers,
} from './take-ring';
import type { WriterCommand, WriterConfig, WriterMessage } from './take-writer-worker';
import { RIFF_MAX } from './wav-format';

export interface TakeWriterOptions {
  dir: string;
  id: string;
  name: string;
  layout: WriterConfig['take']['layout'];
  format: CaptureFormat;
  channels: { ch: number; name: string }[];
  /** Seconds of audio the ring holds while the drive lags (recording.bufferS). */
  bufferS: number;
  syncIntervalMs: number;
  minFreeBytes: number;
  maxFileBytes: number | null;
  rf64Above?: number;
  firstPeriodTimeoutMs?: number;
  /** A ring of a take that has ended, to use again when it has the size this take needs (then nothing is allocated). */
  reuse?: TakeRingBuffers | null;
}

export interface TakeProgress {
  frames: number;
  durableFrames: number;
  freeBytes: number | null;
  lastSyncAt: number | null;
  /** Largest share of the buffer ever filled, 0-1. */
  maxFill: number;
  writeErrors: number;
}

/** The take ended: `manifest` null when nothing was created. */
export interface TakeEnd {
  manifest: TakeManifest | null;
  reason: string;
  error: string | null;
}

/**
 * One take, seen from the main thread: the ring (sized by bufferS), the
 * period tap that feeds it, and the writer thread that empties it. Events:
 * 'ended' (TakeEnd), once.
 *
 * On the period path this adds one bounded copy of the period into shared
 * memory and two atomic loads/one store (take-ring.ts). A full ring (the
 * drive is bufferS behind) ends the take; the audio never waits for it.
 */
export class TakeWriter extends EventEmitter implements PeriodTap {
  readonly ring: TakeRingWriter;
  /** The shared memory, for the next take to use again once this one has ended. */
  readonly buffers: TakeRingBuffers;
  private readonly worker: Worker;
  private readonly port: MessageChannel['port1'];
  private readonly periodFrames: number;
  readonly bufferBytes: number;
  private readonly slots: number;
  private ended: TakeEnd | null = null;
  private overflowed = false;
  private readonly started: Promise<string[]>;

  constructor(private readonly opts: TakeWriterOptions) {
    super();
    const f = opts.format;
    this.periodFrames = f.periodFrames;
    const periodBytes = f.periodFrames * f.channels * BYTES_PER_SAMPLE[f.format];
    const slots = Math.max(8, Math.ceil((opts.bufferS * f.rate) / f.periodFrames));
    const old = opts.reuse;
    let buffers: TakeRingBuffers;
    if (old && old.slots === slots && old.periodBytes === periodBytes) {
      resetTakeRing(old);
      buffers = old;
    } else buffers = allocTakeRing(slots, periodBytes);
    this.buffers = buffers;
    this.bufferBytes = slots * periodBytes;
    this.slots = slots;
    this.ring = new TakeRingWriter(buffers);
    const channel = new MessageChannel();
    this.port = channel.port1;
    const config: WriterConfig = {
      ring: buffers,
      port: channel.port2,
      take: {
        dir: opts.dir,
        id: opts.id,
        name: opts.name,
        layout: opts.layout,
        format: f.format,
        rate: f.rate,
        periodFrames: f.periodFrames,
        sourceChannels: f.channels,
        channels: opts.channels,
      },
      syncIntervalMs: opts.syncIntervalMs,
      minFreeBytes: opts.minFreeBytes,
      maxFileBytes: opts.maxFileBytes,
      rf64Above: opts.rf64Above ?? RIFF_MAX,
      firstPeriodTimeoutMs: opts.firstPeriodTimeoutMs ?? 5000,
    };
    this.worker = new Worker(path.join(__dirname, 'take-writer-worker.js'), {
      workerData: { takeWriter: true, config },
      transferList: [channel.port2],
      // Its own small heap: it holds the staging buffers, never the audio ring (shared).
      resourceLimits: { maxOldGenerationSizeMb: 32 },
    });
    this.started = new Promise((resolve, reject) => {
      this.worker.on('message', (m: WriterMessage) => {
        if (m.type === 'started') resolve(m.files);
        else this.finish({ manifest: m.manifest, reason: m.reason, error: m.error }, reject);
      });
      this.worker.on('error', (err) => this.finish({ manifest: null, reason: 'writer failed', error: `the take's writer thread failed: ${err.message}` }, reject));
      this.worker.on('exit', (code) => {
        if (this.ended === null) this.finish({ manifest: null, reason: 'writer failed', error: `the take's writer thread exited with code ${code}` }, reject);
      });
    });
    // A rejection nobody awaits (the take ended after it started) is expected.
    this.started.catch(() => undefined);
  }

  /** Resolves with the file names once the files exist; rejects with the reason when the take could not start. */
  whenStarted(): Promise<string[]> {
    return this.started;
  }

  get isEnded(): boolean {
    return this.ended !== null;
  }

  /** Frames pushed so far (the take's length as the period path sees it). */
  get framesPushed(): number {
    return this.ring.pushed * this.periodFrames;
  }

  progress(): TakeProgress {
    const p = this.ring.progress;
    const free = p[PROG_FREE_BYTES]!;
    const sync = p[PROG_LAST_SYNC_MS]!;
    return {
      frames: p[PROG_FRAMES]!,
      durableFrames: p[PROG_FRAMES_DURABLE]!,
      freeBytes: free < 0 ? null : free,
      lastSyncAt: sync > 0 ? sync : null,
      maxFill: p[PROG_MAX_FILL]! / this.slots,
      writeErrors: Atomics.load(this.ring.ctrl, CTRL_WRITE_ERRORS),
    };
  }

  // ---- PeriodTap (the period path: copy, count, nothing else) -------------

  format(f: CaptureFormat): void {
    const o = this.opts.format;
    if (f.format === o.format && f.channels === o.channels && f.rate === o.rate && f.periodFrames === o.periodFrames) return;
    this.stop(`capture format changed (${o.channels} ch ${o.format} ${o.rate} Hz to ${f.channels} ch ${f.format} ${f.rate} Hz)`);
  }

  period(data: Uint8Array, _frames: number, samplePos: bigint, captureNs: bigint, dropout: boolean): void {
    if (this.overflowed) return;
    if (this.ring.push(data, dropout, captureNs, samplePos)) return;
    this.overflowed = true;
    this.ring.requestStop(STOP_OVERFLOW);
  }

  // ---- control --------------------------------------------------------------

  /** Places a marker at the audio the tap has handed over so far. */
  marker(label: string): TakeMarker {
    const m: TakeMarker = { frame: this.framesPushed, label, kind: 'marker', at: new Date().toISOString() };
    this.send({ type: 'marker', marker: m });
    return m;
  }

  /** Asks the writer to finish with `reason`; resolves when it has (no bound here: the caller bounds its wait). */
  stop(reason: string): Promise<TakeEnd> {
    if (this.ended) return Promise.resolve(this.ended);
    this.send({ type: 'reason', text: reason });
    this.ring.requestStop(STOP_REQUESTED);
    return new Promise((resolve) => this.once('ended', resolve));
  }

  /** Ends the thread without waiting for it (service stop past its deadline). */
  abandon(): void {
    void this.worker.terminate();
  }

  private send(cmd: WriterCommand): void {
    try {
      this.port.postMessage(cmd);
    } catch {
      // The writer has gone; the take is over.
    }
  }

  private finish(end: TakeEnd, reject: (e: Error) => void): void {
    if (this.ended) return;
    this.ended = end;
    reject(new Error(end.error ?? end.reason));
    this.port.close();
    this.emit('ended', end);
  }
}
