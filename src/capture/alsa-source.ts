import type { SampleFormat } from '../engine/sample-format';
import { BYTES_PER_SAMPLE } from '../engine/sample-format';
import { CaptureSource, type CaptureFormat } from './capture-source';

/** The part of alsa-capture's API we use (its own typings are loose). */
interface AlsaCaptureHandle {
  on(event: string, fn: (arg: never) => void): unknown;
  close(): void;
}
type AlsaCaptureCtor = new (opts: { device: string; channels: number; format: string; rate: number; periodSize: number; debug: boolean }) => AlsaCaptureHandle;

let ctor: AlsaCaptureCtor | null = null;
let loadError: string | null = null;
function loadAddon(): AlsaCaptureCtor | null {
  if (ctor || loadError) return ctor;
  try {
    ctor = require('alsa-capture') as AlsaCaptureCtor;
  } catch (err) {
    loadError = `alsa-capture native addon could not be loaded: ${(err as Error).message}`;
  }
  return ctor;
}

export interface AlsaSourceOptions {
  device: string;
  format: SampleFormat;
  channels: number;
  rate: number;
  periodFrames: number;
  retryInitialMs: number;
  retryMaxMs: number;
  stallTimeoutMs: number;
}

/**
 * After this many readers that never returned from the driver, stop opening
 * new ones: each holds a libuv threadpool thread for good.
 */
export const MAX_STUCK_READERS = 4;
/** How long a closed reader may take to return before it counts as stuck, ms. */
const STUCK_AFTER_MS = 1000;
/** Consecutive short reads that mean the device is not really delivering. */
const MAX_SHORT_READS = 8;

/** One open attempt of the addon; events of a finished attempt are ignored. */
interface Reader {
  handle: AlsaCaptureHandle;
  closing: boolean;
  closedAt: number;
  finished: boolean;
}

/**
 * Captures from an ALSA PCM through alsa-capture, and covers what the addon
 * does not: it sets hw params without checking each call (so a device that
 * refuses the channel count or format is caught by the buffer size), keeps
 * emitting stale buffers after overruns and read errors (discarded here),
 * spins on short reads at end of stream, and holds a threadpool thread for
 * its whole life (readers that never return are counted and capped; opening
 * resumes when they come back).
 * A device that fails to open or disappears is retried with backoff, forever.
 */
export class AlsaSource extends CaptureSource {
  private reader: Reader | null = null;
  private readonly closing = new Set<Reader>();
  private retryTimer: NodeJS.Timeout | null = null;
  private watchTimer: NodeJS.Timeout | null = null;
  private backoffMs: number;
  private stopped = false;
  /** Opening is paused until stuck readers return (see MAX_STUCK_READERS). */
  private waitingForStuck = false;
  private discardNext = false;
  private shortReads = 0;
  private lastPeriodAt = 0;
  private openedAt = 0;
  private readonly expectedBytes: number;
  private readonly fmt: CaptureFormat;

  constructor(private readonly opts: AlsaSourceOptions) {
    super('alsa', opts.device);
    this.backoffMs = opts.retryInitialMs;
    this.fmt = { format: opts.format, channels: opts.channels, rate: opts.rate, periodFrames: opts.periodFrames };
    this.expectedBytes = opts.periodFrames * opts.channels * BYTES_PER_SAMPLE[opts.format];
  }

  start(): void {
    this.stopped = false;
    this.watchTimer = setInterval(this.watch, Math.max(50, Math.min(500, this.opts.stallTimeoutMs / 4)));
    this.watchTimer.unref();
    this.open();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.retryTimer = this.watchTimer = null;
    const r = this.reader;
    this.reader = null;
    if (r) this.closeReader(r);
    // Wait briefly for readers to return from the driver; a stuck one cannot be waited for.
    const deadline = Date.now() + 500;
    while ([...this.closing].some((x) => !x.finished) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
    this.setState('stopped');
  }

  override get retryBlocked(): boolean {
    return this.waitingForStuck;
  }

  /** Cuts the backoff short: opens now if a retry is pending, and the next backoff starts over. */
  override retryNow(): void {
    if (this.stopped || this.reader || this.waitingForStuck || !this.retryTimer) return;
    clearTimeout(this.retryTimer);
    this.backoffMs = this.opts.retryInitialMs;
    this.open();
  }

  private open(): void {
    this.retryTimer = null;
    if (this.stopped) return;
    this.lastAttemptAt = performance.now();
    const Ctor = loadAddon();
    if (!Ctor) {
      this.setState('error', loadError);
      return;
    }
    const stuck = this.countStuck();
    if (stuck >= MAX_STUCK_READERS) {
      // watch() reopens as soon as one of them returns from the driver.
      this.waitingForStuck = true;
      this.setState('error', `${stuck} capture threads are stuck in the ALSA driver; not opening more until they return`);
      return;
    }
    let handle: AlsaCaptureHandle;
    try {
      handle = new Ctor({
        device: this.opts.device,
        channels: this.opts.channels,
        format: this.opts.format,
        rate: this.opts.rate,
        periodSize: this.opts.periodFrames,
        debug: false,
      });
    } catch (err) {
      this.fail(null, `cannot open ${this.opts.device}: ${(err as Error).message}`, 'error');
      return;
    }
    const r: Reader = { handle, closing: false, closedAt: 0, finished: false };
    this.reader = r;
    this.discardNext = false;
    this.shortReads = 0;
    this.openedAt = performance.now();
    this.lastPeriodAt = 0;
    if (this.status.state !== 'starting') this.setState('starting');
    handle.on('audio', (buf: Buffer) => this.onAudio(r, buf));
    handle.on('overrun', () => this.onOverrun(r));
    handle.on('shortRead', (n: string) => this.onShortRead(r, n));
    handle.on('readError', (msg: string) => this.fail(r, `read error on ${this.opts.device}: ${String(msg).trim()}`, 'no-device'));
    handle.on('rateDeviating', (rate: string) =>
      this.fail(r, `${this.opts.device} runs at ${rate} Hz; configured capture.rate is ${this.opts.rate}`, 'error'),
    );
    handle.on('periodSizeDeviating', (frames: string) =>
      this.fail(r, `${this.opts.device} uses periods of ${frames} frames; configured capture.periodFrames is ${this.opts.periodFrames} (set it to ${frames})`, 'error'),
    );
    handle.on('error', (err: Error) => {
      r.finished = true;
      this.closing.delete(r);
      const msg = String(err?.message ?? err).trim();
      const gone = /No such (file|device)|not found|No such file/i.test(msg);
      this.fail(r, `${this.opts.device}: ${msg}`, gone ? 'no-device' : 'error');
    });
    handle.on('close', () => {
      r.finished = true;
      this.closing.delete(r);
      if (this.reader === r && !this.stopped) this.fail(r, `${this.opts.device}: capture ended`, 'no-device');
    });
  }

  private onAudio(r: Reader, buf: Buffer): void {
    if (r !== this.reader) return;
    if (this.discardNext) {
      this.discardNext = false;
      this.status.discardedPeriods++;
      return;
    }
    if (buf.length !== this.expectedBytes) {
      this.fail(
        r,
        `${this.opts.device} delivered ${buf.length} bytes per period; expected ${this.expectedBytes} (${this.opts.channels} channels x ${this.opts.format} x ${this.opts.periodFrames} frames): the device did not accept these parameters`,
        'error',
      );
      return;
    }
    this.shortReads = 0;
    if (this.lastPeriodAt === 0) {
      this.status.format = { ...this.fmt };
      this.emit('format', { ...this.fmt });
      this.backoffMs = this.opts.retryInitialMs;
      this.setState('running', null);
    }
    this.lastPeriodAt = performance.now();
    this.emit('period', buf, this.opts.periodFrames);
  }

  private onOverrun(r: Reader): void {
    if (r !== this.reader) return;
    this.status.xruns++;
    // The addon re-prepares and then emits the buffer it failed to fill: stale.
    this.discardNext = true;
    this.emit('discontinuity');
    this.emit('xrun', this.status.xruns);
  }

  private onShortRead(r: Reader, frames: string): void {
    if (r !== this.reader) return;
    this.discardNext = true;
    this.emit('discontinuity');
    if (++this.shortReads >= MAX_SHORT_READS) {
      this.fail(r, `${this.opts.device} returned ${this.shortReads} short reads in a row (last: ${frames} frames)`, 'no-device');
    }
  }

  private readonly watch = (): void => {
    const r = this.reader;
    this.status.stuckReaders = this.countStuck();
    if (this.waitingForStuck && this.status.stuckReaders < MAX_STUCK_READERS && !this.stopped) {
      this.waitingForStuck = false;
      this.open();
      return;
    }
    if (!r || r.closing) return;
    const since = this.lastPeriodAt || this.openedAt;
    if (performance.now() - since > this.opts.stallTimeoutMs) {
      this.fail(r, `${this.opts.device} delivered no period for ${this.opts.stallTimeoutMs} ms`, 'no-device');
    }
  };

  override unfinishedReaders(): number {
    // The open reader too: a stop cut short by its deadline may not have closed it yet, and it never returns by itself.
    let n = this.reader && !this.reader.finished ? 1 : 0;
    for (const r of this.closing) if (!r.finished) n++;
    return n;
  }

  private countStuck(): number {
    const now = performance.now();
    let n = 0;
    for (const r of this.closing) if (!r.finished && now - r.closedAt > STUCK_AFTER_MS) n++;
    return n;
  }

  private closeReader(r: Reader): void {
    if (r.closing) return;
    r.closing = true;
    r.closedAt = performance.now();
    if (!r.finished) {
      this.closing.add(r);
      try {
        r.handle.close();
      } catch {
        // Closing a reader whose thread already ended can throw; it is finished either way.
        r.finished = true;
        this.closing.delete(r);
      }
    }
  }

  private fail(r: Reader | null, reason: string, state: 'no-device' | 'error'): void {
    if (r && r !== this.reader) return;
    if (r) this.closeReader(r);
    this.reader = null;
    if (this.stopped) return;
    const wasRunning = this.status.state === 'running';
    this.status.reopenCount++;
    this.setState(state === 'no-device' ? 'no-device' : 'error', reason);
    if (wasRunning) this.emit('discontinuity');
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.opts.retryMaxMs, this.backoffMs * 2);
    this.emit('retry', { delayMs: delay, reason });
    this.retryTimer = setTimeout(() => this.open(), delay);
  }
}
