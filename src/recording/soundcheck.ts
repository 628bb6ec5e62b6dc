import type { CaptureSource } from '../capture/capture-source';
import { TakeSource, type PlayState } from '../capture/take-source';
import { RecordingError } from './recording-error';
import type { RecordingEventSink } from './recording-events';
import type { TakeLibrary } from './take-library';

export interface SoundcheckLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface SoundcheckDeps {
  takes: TakeLibrary;
  periodFrames: number;
  /** Makes `source` the capture (the one before it stops); clients stay connected. */
  useSource(source: CaptureSource): Promise<void>;
  /** Back to the live device, as the configuration says. */
  useLive(): Promise<void>;
  /** The take being recorded, if any: nothing plays back meanwhile. */
  recording(): string | null;
  events: RecordingEventSink;
  log: SoundcheckLog;
}

export interface PlayRequest {
  take?: string | undefined;
  positionS?: number | undefined;
  loop?: boolean | undefined;
}

export interface LoopRequest {
  loop: boolean;
  startS?: number | undefined;
  endS?: number | undefined;
}

export interface PlaybackStatus {
  /** True while the box plays a take instead of the stage. */
  active: boolean;
  take: string | null;
  state: PlayState | 'live';
  positionS: number | null;
  durationS: number | null;
  loop: { startS: number; endS: number } | null;
  /** Periods played silent because the drive was late. */
  underruns: number;
  lastError: string | null;
}

/**
 * Virtual soundcheck, one part of the service: a take becomes the capture
 * source (capture/take-source.ts) at the engineer's request, with play,
 * pause, seek and loop, and the live device comes back on request; neither
 * restarts the service or drops a client. Requests run one at a time. A take
 * that fails to open changes nothing; one whose drive fails mid-play gives
 * the stage back by itself, with an event.
 */
export class Soundcheck {
  private source: TakeSource | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private lastError: string | null = null;

  constructor(private readonly deps: SoundcheckDeps) {}

  /** The take playing (or paused) now, if any. */
  get playing(): string | null {
    return this.source?.plan.id ?? null;
  }

  status(): PlaybackStatus {
    const s = this.source;
    if (!s) return { active: false, take: null, state: 'live', positionS: null, durationS: null, loop: null, underruns: 0, lastError: this.lastError };
    const rate = s.plan.rate;
    const loop = s.loop;
    return {
      active: true,
      take: s.plan.id,
      state: s.playState,
      positionS: round3(s.position / rate),
      durationS: round3(s.plan.frames / rate),
      loop: loop ? { startS: round3(loop.start / rate), endS: round3(loop.end / rate) } : null,
      underruns: s.underruns,
      lastError: this.lastError,
    };
  }

  /** Plays `take` (or resumes the current one), from `positionS` if given. */
  play(req: PlayRequest): Promise<PlaybackStatus> {
    return this.serial(async () => {
      const rec = this.deps.recording();
      if (rec !== null) throw new RecordingError('already-recording', `take ${rec} is recording; stop it before playing a take back`);
      if (req.take !== undefined && req.take !== this.source?.plan.id) await this.load(req.take, req.positionS);
      else if (!this.source) throw new RecordingError('not-playing', 'no take is selected for playback; name one with "take"');
      else if (req.positionS !== undefined) this.source.seek(this.frameAt(req.positionS));
      if (req.loop !== undefined) this.applyLoop({ loop: req.loop });
      this.source!.resume();
      return this.status();
    });
  }

  pause(): Promise<PlaybackStatus> {
    return this.serial(async () => {
      this.current('pause').pause();
      return this.status();
    });
  }

  seek(positionS: number): Promise<PlaybackStatus> {
    return this.serial(async () => {
      this.current('seek').seek(this.frameAt(positionS));
      return this.status();
    });
  }

  loop(req: LoopRequest): Promise<PlaybackStatus> {
    return this.serial(async () => {
      this.current('loop');
      this.applyLoop(req);
      return this.status();
    });
  }

  /** Gives the stage back: the live device becomes the capture again. */
  live(reason = 'back to live'): Promise<PlaybackStatus> {
    return this.serial(async () => {
      const s = this.current('live');
      this.source = null;
      await this.deps.useLive();
      this.deps.log.info({ take: s.plan.id, reason }, 'virtual soundcheck ended: capturing live again');
      this.deps.events({ type: 'playback-stopped', ts: new Date().toISOString(), take: s.plan.id, reason });
      return this.status();
    });
  }

  private async load(id: string, positionS: number | undefined): Promise<void> {
    const plan = await this.deps.takes.playPlan(await this.deps.takes.find(id));
    const startFrame = positionS === undefined ? 0 : frameIn(positionS, plan.rate, plan.frames, id);
    const src = new TakeSource(plan, this.deps.periodFrames, { startFrame, playing: true });
    try {
      await src.open();
    } catch (err) {
      throw new RecordingError('bad-take', `take ${id} cannot be played: ${(err as Error).message}`);
    }
    src.on('failed', (message: string) => this.failed(src, message));
    const before = this.source;
    await this.deps.useSource(src);
    this.source = src;
    this.lastError = null;
    if (before) this.deps.events({ type: 'playback-stopped', ts: new Date().toISOString(), take: before.plan.id, reason: `switched to take ${id}` });
    this.deps.log.info({ take: id, channels: plan.sourceChannels, seconds: round3(plan.frames / plan.rate) }, 'virtual soundcheck: playing a take instead of the stage');
    this.deps.events({ type: 'playback-started', ts: new Date().toISOString(), take: id });
  }

  private failed(src: TakeSource, message: string): void {
    if (this.source !== src) return;
    this.lastError = message;
    this.deps.log.warn({ take: src.plan.id, err: message }, 'virtual soundcheck: the take cannot be read any more; back to live');
    void this.live(`read failed: ${message}`).catch(() => undefined);
  }

  private applyLoop(req: LoopRequest): void {
    const s = this.source!;
    if (!req.loop) {
      s.setLoop(null);
      return;
    }
    const rate = s.plan.rate;
    const start = req.startS === undefined ? 0 : this.frameAt(req.startS);
    const end = req.endS === undefined ? s.plan.frames : Math.min(s.plan.frames, Math.round(req.endS * rate));
    if (end <= start) {
      throw new RecordingError('bad-seek', `loop end ${round3(end / rate)} s is not after its start ${round3(start / rate)} s; allowed: 0 <= startS < endS <= ${round3(s.plan.frames / rate)}`);
    }
    if (req.endS !== undefined && Math.round(req.endS * rate) > s.plan.frames) {
      throw new RecordingError('bad-seek', `loop end ${req.endS} s is past the end of take ${s.plan.id} (${round3(s.plan.frames / rate)} s)`);
    }
    s.setLoop({ start, end });
  }

  private frameAt(positionS: number): number {
    const s = this.source!;
    return frameIn(positionS, s.plan.rate, s.plan.frames, s.plan.id);
  }

  private current(action: string): TakeSource {
    if (!this.source) throw new RecordingError('not-playing', `nothing to ${action}: the box is capturing live, no take is playing`);
    return this.source;
  }

  /** One request at a time: a swap of the capture source must not interleave with another. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function frameIn(positionS: number, rate: number, frames: number, id: string): number {
  const f = Math.round(positionS * rate);
  if (f >= frames) throw new RecordingError('bad-seek', `position ${positionS} s is past the end of take ${id} (${round3(frames / rate)} s); allowed: 0 to less than ${round3(frames / rate)}`);
  return f;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
