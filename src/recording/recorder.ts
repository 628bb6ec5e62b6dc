import { access } from 'node:fs/promises';
import path from 'node:path';
import type { RecordingConfig } from '../config/config-schema';
import type { CaptureFormat } from '../capture/capture-source';
import type { PeriodTap } from '../capture/period-ingest';
import type { RecordingHealth } from './recording-health';
import { BYTES_PER_SAMPLE } from '../engine/sample-format';
import { RecordingError } from './recording-error';
import type { RecordingEventSink } from './recording-events';
import { DriveError, type Drive, type RecordDrives } from './record-drives';
import { TakeLibrary } from './take-library';
import { markerLabelProblem, takeId, takeNameProblem, type TakeManifest } from './take-manifest';
import type { TakeRingBuffers } from './take-ring';
import { TakeWriter, type TakeEnd } from './take-writer';

export interface RecorderLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What the recorder needs from the rest of the service: small views, never the controller. */
export interface RecorderDeps {
  cfg: RecordingConfig;
  drives: RecordDrives;
  /** The capture as it runs now. */
  capture(): { state: string; format: CaptureFormat | null };
  /** The engineer's channel names (metadata). */
  channelName(ch: number): string | undefined;
  /** Puts the take's tap on the period path (null takes it off). */
  setTap(tap: PeriodTap | null): void;
  /** The take virtual soundcheck plays, if any: the box then records nothing. */
  playing(): string | null;
  events: RecordingEventSink;
  log: RecorderLog;
  /** Tests: RF64 at a small size. */
  rf64Above?: number;
}

export interface StartRequest {
  channels?: number[];
  name?: string;
  drive?: string;
}

export type RecorderState = 'idle' | 'starting' | 'recording' | 'stopping';

/** The take as the API shows it while it records and once it ended. */
export interface TakeView {
  id: string;
  name: string;
  state: string;
  drive: string;
  dir: string;
  layout: string;
  format: string;
  rate: number;
  channels: { ch: number; name: string }[];
  startedAt: string | null;
  seconds: number;
  files: string[];
  markers: { seconds: number; label: string; kind: string }[];
  endReason: string | null;
  error: string | null;
}

export interface RecordingStatus {
  state: RecorderState;
  take: TakeView | null;
  /** The drive in use, or the one a take would use now. */
  drive: { mount: string; kind: string; fsType: string; freeBytes: number | null; totalBytes: number | null } | null;
  freeBytes: number | null;
  /** Bytes a second the take writes, or all inputs would. */
  bytesPerSecond: number | null;
  /** Free space at this rate, less recording.minFreeMiB, seconds. */
  secondsLeft: number | null;
  buffer: { seconds: number; bytes: number | null; maxFillPct: number | null };
  /** Failed writes and flushes since the service started. */
  writeErrors: number;
  last: { id: string; reason: string; error: string | null; seconds: number } | null;
  lastError: string | null;
}

/** The engineer's markers a take keeps at most. */
export const MAX_MARKERS = 1000;
/** Bound on waiting for a take's files to close when the engineer stops it, ms. */
const STOP_WAIT_MS = 10_000;
/** Bound during service stop (the whole stop has 1.8 s): what is not closed by then is repaired at the next start. */
const SERVICE_STOP_WAIT_MS = 800;
const DRIVE_REFRESH_MS = 5000;

interface Current {
  writer: TakeWriter;
  id: string;
  name: string;
  drive: Drive;
  dir: string;
  format: CaptureFormat;
  channels: { ch: number; name: string }[];
  startedAt: string;
  files: string[];
  markers: { frame: number; label: string; kind: string }[];
  ended: Promise<TakeEnd>;
}

/**
 * Multitrack recording, one part of the service with start and stop: takes
 * from the capture to a recording drive (take-writer.ts), their listing,
 * deletion and repair (take-library.ts), and the figures status, metrics
 * and MQTT show.
 */
export class Recorder {
  readonly takes: TakeLibrary;
  private state: RecorderState = 'idle';
  private current: Current | null = null;
  private idleDrive: Drive | null = null;
  private timer: NodeJS.Timeout | null = null;
  private writeErrors = 0;
  /** The ring of the last take: the next take of the same format uses it again, so memory holds one ring at most. */
  private spareRing: TakeRingBuffers | null = null;
  private last: RecordingStatus['last'] = null;
  private lastError: string | null = null;

  constructor(private readonly deps: RecorderDeps) {
    this.takes = new TakeLibrary(deps.drives, deps.log, () => this.current?.id ?? null);
  }

  /**
   * Repairs takes a dead writer left behind, and keeps the idle drive's free
   * space fresh. Neither is waited for: a drive full of takes, or a slow one,
   * must not hold up the start (READY=1, the first clients).
   */
  start(): void {
    void this.takes.list().then(
      (takes) => this.deps.log.info({ takes: takes.length }, 'recording: takes on the drives listed (interrupted ones repaired)'),
      (err: Error) => this.deps.log.warn({ err: err.message }, 'recording: listing the takes failed'),
    );
    void this.refreshDrive();
    this.timer = setInterval(() => void this.refreshDrive(), DRIVE_REFRESH_MS);
    this.timer.unref();
  }

  /** Ends a running take (reason "service stopped"), bounded; what is not closed in time is repaired at the next start. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const c = this.current;
    if (!c) return;
    this.deps.setTap(null);
    const end = c.writer.stop('service stopped');
    const done = await Promise.race([end, new Promise<null>((r) => setTimeout(() => r(null), SERVICE_STOP_WAIT_MS).unref())]);
    if (done === null) {
      this.deps.log.warn({ take: c.id }, 'recording: the take did not close in time; it is repaired at the next start');
      c.writer.abandon();
    }
  }

  /** Every recording drive mounted now. */
  drives(): Promise<Drive[]> {
    return this.deps.drives.list();
  }

  get activeId(): string | null {
    return this.current?.id ?? null;
  }

  get isRecording(): boolean {
    return this.current !== null;
  }

  async startTake(req: StartRequest): Promise<TakeView> {
    const playing = this.deps.playing();
    if (playing !== null) {
      throw new RecordingError('playback-active', `the box is playing take ${playing} (virtual soundcheck), not the stage; go back to live before recording`);
    }
    if (this.current) throw new RecordingError('already-recording', `take ${this.current.id} is ${this.state}; stop it before starting another`);
    const name = req.name ?? '';
    if (req.name !== undefined) {
      const problem = takeNameProblem(name);
      if (problem) throw new RecordingError('bad-take-name', problem);
    }
    const cap = this.deps.capture();
    const format = cap.format;
    if (cap.state !== 'running' || format === null) throw new RecordingError('no-audio', `the capture is ${cap.state}: there is no audio to record`);
    const chans = req.channels ?? Array.from({ length: format.channels }, (_, i) => i);
    const seen = new Set<number>();
    for (const ch of chans) {
      if (ch >= format.channels) throw new RecordingError('bad-channel', `channel ${ch} does not exist; the device has ${format.channels} channels (0-${format.channels - 1})`);
      if (seen.has(ch)) throw new RecordingError('bad-channel', `channel ${ch} appears more than once`);
      seen.add(ch);
    }
    let drive: Drive;
    try {
      drive = await this.deps.drives.pick(req.drive);
    } catch (err) {
      if (err instanceof DriveError) throw new RecordingError(err.code, err.message);
      throw err;
    }
    const minFree = this.deps.cfg.minFreeMiB * 1048576;
    if (drive.freeBytes !== null && drive.freeBytes <= minFree) {
      throw new RecordingError('drive-error', `only ${Math.floor(drive.freeBytes / 1048576)} MiB free on ${drive.mount}; a take needs more than recording.minFreeMiB (${this.deps.cfg.minFreeMiB} MiB)`);
    }
    const startedAt = new Date();
    let id = takeId(startedAt, name);
    for (let n = 2; await exists(path.join(drive.dir, id)); n++) id = `${takeId(startedAt, name)}-${n}`;
    const channels = [...chans].sort((a, b) => a - b).map((ch) => ({ ch, name: this.deps.channelName(ch) ?? `Input ${ch + 1}` }));
    // Re-checked: the lookups above awaited, and another request may have started a take meanwhile.
    const racing = this.current as Current | null;
    if (racing) throw new RecordingError('already-recording', `take ${racing.id} is ${this.state}; stop it before starting another`);
    const cfg = this.deps.cfg;
    const writer = new TakeWriter({
      dir: path.join(drive.dir, id),
      id,
      name,
      layout: cfg.layout,
      format,
      channels,
      bufferS: cfg.bufferS,
      syncIntervalMs: cfg.syncIntervalMs,
      minFreeBytes: cfg.minFreeMiB * 1048576,
      maxFileBytes: drive.maxFileBytes,
      reuse: this.spareRing,
      ...(this.deps.rf64Above !== undefined ? { rf64Above: this.deps.rf64Above } : {}),
    });
    this.spareRing = null;
    const ended = new Promise<TakeEnd>((resolve) => writer.once('ended', resolve));
    const c: Current = { writer, id, name, drive, dir: path.join(drive.dir, id), format, channels, startedAt: startedAt.toISOString(), files: [], markers: [], ended };
    this.current = c;
    this.state = 'starting';
    void ended.then((end) => this.ended(c, end));
    this.deps.setTap(writer);
    try {
      c.files = await writer.whenStarted();
    } catch (err) {
      this.deps.setTap(null);
      const text = (err as Error).message;
      throw new RecordingError(text.startsWith('no audio') ? 'no-audio' : 'drive-error', text);
    }
    this.state = 'recording';
    this.deps.log.info({ take: id, dir: c.dir, channels: channels.length, layout: cfg.layout, drive: drive.mount }, 'recording started');
    this.deps.events({ type: 'recording-started', ts: new Date().toISOString(), take: id, channels: channels.length, drive: drive.mount });
    return this.view(c, null);
  }

  /** Ends the take; resolves with it once its files are closed (or after STOP_WAIT_MS, still closing). */
  async stopTake(): Promise<TakeView> {
    const c = this.current;
    if (!c || this.state !== 'recording') {
      throw new RecordingError('not-recording', c ? `take ${c.id} is ${this.state}` : 'nothing is recording');
    }
    this.state = 'stopping';
    this.deps.setTap(null);
    const end = await Promise.race([c.writer.stop('stopped'), new Promise<null>((r) => setTimeout(() => r(null), STOP_WAIT_MS).unref())]);
    return this.view(c, end);
  }

  addMarker(label: string | undefined): { take: string; seconds: number; label: string } {
    const c = this.current;
    if (!c || this.state !== 'recording') throw new RecordingError('not-recording', 'nothing is recording: a marker needs a running take');
    if (label !== undefined) {
      const problem = markerLabelProblem(label);
      if (problem) throw new RecordingError('bad-marker', problem);
    }
    const count = c.markers.filter((m) => m.kind === 'marker').length;
    if (count >= MAX_MARKERS) throw new RecordingError('bad-marker', `take ${c.id} has ${count} markers, the most a take keeps`);
    const text = label === undefined || label === '' ? `Marker ${count + 1}` : label;
    const m = c.writer.marker(text);
    c.markers.push({ frame: m.frame, label: m.label, kind: m.kind });
    return { take: c.id, seconds: round3(m.frame / c.format.rate), label: m.label };
  }

  /** Deletes a take that is neither recording nor playing. */
  async deleteTake(id: string): Promise<void> {
    if (this.current?.id === id) throw new RecordingError('take-busy', `take ${id} is recording; stop it first`);
    if (this.deps.playing() === id) throw new RecordingError('take-busy', `take ${id} is playing (virtual soundcheck); go back to live first`);
    await this.takes.remove(await this.takes.find(id));
  }

  /** Recording as the health snapshot (MQTT, /metrics, Home Assistant) shows it; `playing`: the take virtual soundcheck plays. */
  health(playing: string | null): RecordingHealth {
    const r = this.status();
    return {
      active: r.take !== null,
      take: r.take?.id ?? null,
      seconds: r.take?.seconds ?? 0,
      freeBytes: r.freeBytes,
      secondsLeft: r.secondsLeft,
      writeErrors: r.writeErrors,
      lastError: r.lastError,
      playing,
    };
  }

  status(): RecordingStatus {
    const c = this.current;
    const cfg = this.deps.cfg;
    if (c) {
      const p = c.writer.progress();
      const rate = c.format.rate * BYTES_PER_SAMPLE[c.format.format] * c.channels.length;
      const free = p.freeBytes ?? c.drive.freeBytes;
      return {
        state: this.state,
        take: this.view(c, null),
        drive: driveView(c.drive, free),
        freeBytes: free,
        bytesPerSecond: rate,
        secondsLeft: secondsLeft(free, rate, cfg.minFreeMiB),
        buffer: { seconds: cfg.bufferS, bytes: c.writer.bufferBytes, maxFillPct: Math.round(p.maxFill * 1000) / 10 },
        writeErrors: this.writeErrors + p.writeErrors,
        last: this.last,
        lastError: this.lastError,
      };
    }
    const f = this.deps.capture().format;
    const rate = f ? f.rate * BYTES_PER_SAMPLE[f.format] * f.channels : null;
    const d = this.idleDrive;
    return {
      state: this.state,
      take: null,
      drive: d ? driveView(d, d.freeBytes) : null,
      freeBytes: d?.freeBytes ?? null,
      bytesPerSecond: rate,
      secondsLeft: d && rate ? secondsLeft(d.freeBytes, rate, cfg.minFreeMiB) : null,
      buffer: { seconds: cfg.bufferS, bytes: f ? Math.max(8, Math.ceil((cfg.bufferS * f.rate) / f.periodFrames)) * f.periodFrames * f.channels * BYTES_PER_SAMPLE[f.format] : null, maxFillPct: null },
      writeErrors: this.writeErrors,
      last: this.last,
      lastError: this.lastError,
    };
  }

  /** A take as the API shows it, from its manifest. */
  static viewOf(m: TakeManifest, dir: string, drive: string): TakeView {
    return {
      id: m.id,
      name: m.name,
      state: m.state,
      drive,
      dir,
      layout: m.layout,
      format: m.format,
      rate: m.rate,
      channels: m.channels,
      startedAt: m.startedAt,
      seconds: round3(m.frames / m.rate),
      files: m.files.map((f) => f.name),
      markers: m.markers.map((k) => ({ seconds: round3(k.frame / m.rate), label: k.label, kind: k.kind })),
      endReason: m.endReason,
      error: m.error,
    };
  }

  private view(c: Current, end: TakeEnd | null): TakeView {
    if (end?.manifest) return Recorder.viewOf(end.manifest, c.dir, c.drive.mount);
    const p = c.writer.progress();
    return {
      id: c.id,
      name: c.name,
      state: end ? 'failed' : this.state === 'stopping' ? 'closing' : 'recording',
      drive: c.drive.mount,
      dir: c.dir,
      layout: this.deps.cfg.layout,
      format: c.format.format,
      rate: c.format.rate,
      channels: c.channels,
      startedAt: c.startedAt,
      seconds: round3(Math.max(p.frames, c.writer.framesPushed) / c.format.rate),
      files: c.files,
      markers: c.markers.map((k) => ({ seconds: round3(k.frame / c.format.rate), label: k.label, kind: k.kind })),
      endReason: end?.reason ?? null,
      error: end?.error ?? null,
    };
  }

  /** The writer finished, for whatever reason: the tap comes off, and the end is reported. */
  private ended(c: Current, end: TakeEnd): void {
    if (this.current !== c) return;
    this.deps.setTap(null);
    this.writeErrors += c.writer.progress().writeErrors;
    // The writer thread has let go of the ring (it posted its end last): the next take may use it.
    this.spareRing = c.writer.buffers;
    this.current = null;
    this.state = 'idle';
    const seconds = round3((end.manifest?.frames ?? 0) / c.format.rate);
    this.last = { id: c.id, reason: end.reason, error: end.error, seconds };
    if (end.manifest === null) return; // it never started: startTake's caller got the error
    if (end.error !== null) {
      this.lastError = end.error;
      this.deps.log.error({ take: c.id, reason: end.reason, err: end.error, seconds }, `recording ended: ${end.reason}; the files are valid up to ${seconds} s`);
      this.deps.events({ type: 'recording-failed', ts: new Date().toISOString(), take: c.id, seconds, reason: end.reason, error: end.error });
    } else {
      this.deps.log.info({ take: c.id, reason: end.reason, seconds }, 'recording stopped');
      this.deps.events({ type: 'recording-stopped', ts: new Date().toISOString(), take: c.id, seconds, reason: end.reason });
    }
    void this.refreshDrive();
  }

  private async refreshDrive(): Promise<void> {
    try {
      this.idleDrive = await this.deps.drives.pick();
    } catch {
      this.idleDrive = null;
    }
  }
}

function driveView(d: Drive, free: number | null): NonNullable<RecordingStatus['drive']> {
  return { mount: d.mount, kind: d.kind, fsType: d.fsType, freeBytes: free, totalBytes: d.totalBytes };
}

function secondsLeft(free: number | null, bytesPerSecond: number, minFreeMiB: number): number | null {
  if (free === null || bytesPerSecond <= 0) return null;
  return Math.max(0, Math.floor((free - minFreeMiB * 1048576) / bytesPerSecond));
}

function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
