import { EventEmitter } from 'node:events';
import type { SampleFormat } from '../engine/sample-format';

/** What a source delivers once it is running. */
export interface CaptureFormat {
  format: SampleFormat;
  channels: number;
  rate: number;
  periodFrames: number;
}

export type CaptureState = 'starting' | 'running' | 'no-device' | 'retrying' | 'error' | 'stopped';

export interface CaptureStatus {
  kind: 'alsa' | 'test-signal' | 'wav' | 'take';
  state: CaptureState;
  device: string;
  format: CaptureFormat | null;
  xruns: number;
  /** Periods dropped by the source (short reads, read errors) rather than delivered. */
  discardedPeriods: number;
  reopenCount: number;
  lastError: string | null;
  /** Reader threads that were asked to close but never returned from the driver. */
  stuckReaders: number;
}

/**
 * One capture-source interface for ALSA, the test signal and WAV files.
 * Events:
 *  - 'period' (data: Buffer, frames: number): one period of interleaved samples in
 *    `format`; the buffer may be reused after the handler returns.
 *  - 'format' (f: CaptureFormat): the source (re)started with this format; emitted before its first period.
 *  - 'discontinuity' (): samples were lost before the next period (xrun, reopen).
 *  - 'state' (s: CaptureStatus): state changed.
 */
export abstract class CaptureSource extends EventEmitter {
  protected status: CaptureStatus;
  /** performance.now() of the last state change (the watchdog's reference while a state lasts), ms. */
  stateChangedAt = performance.now();
  /**
   * performance.now() of the last attempt to open the device, ms; 0 if the
   * source never opens anything. While the source waits for a device this is
   * the heartbeat of its retry loop.
   */
  lastAttemptAt = 0;

  constructor(kind: CaptureStatus['kind'], device: string) {
    super();
    this.status = {
      kind,
      state: 'starting',
      device,
      format: null,
      xruns: 0,
      discardedPeriods: 0,
      reopenCount: 0,
      lastError: null,
      stuckReaders: 0,
    };
  }

  abstract start(): void;
  abstract stop(): Promise<void>;

  /**
   * True when the source has stopped retrying and waits on something that may
   * never happen (alsa: reader threads stuck in the driver). Only a new
   * process recovers from that, so the watchdog stops feeding systemd.
   */
  get retryBlocked(): boolean {
    return false;
  }

  /**
   * Re-attempts now instead of at the end of the current backoff (SIGHUP:
   * a device may just have been plugged in). Does nothing while running.
   */
  retryNow(): void {}

  /** Reader threads that have not returned (still open, or closed but inside the driver); they block a normal process exit. */
  unfinishedReaders(): number {
    return 0;
  }

  /**
   * Emits 'format' again with the format the source runs at (nothing if it
   * has none yet): a running source attached anew (back from a virtual
   * soundcheck) tells the ingest what its periods are.
   */
  announceFormat(): void {
    if (this.status.format) this.emit('format', { ...this.status.format });
  }

  snapshot(): CaptureStatus {
    return { ...this.status, format: this.status.format ? { ...this.status.format } : null };
  }

  protected setState(state: CaptureState, lastError: string | null = this.status.lastError): void {
    const changed = state !== this.status.state || lastError !== this.status.lastError;
    if (state !== this.status.state) this.stateChangedAt = performance.now();
    this.status.state = state;
    this.status.lastError = lastError;
    if (changed) this.emit('state', this.snapshot());
  }
}
