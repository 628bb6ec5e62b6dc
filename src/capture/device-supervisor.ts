import type { CaptureConfig } from '../config/config-schema';
import type { Logger } from '../logging/logger';
import type { CaptureSource, CaptureStatus } from './capture-source';
import { pickUsbCaptureCard } from './device-probe';
import type { PeriodIngest } from './period-ingest';
import { createSource } from './source-factory';

/** What the rest of the service hears of the capture source, whichever source it is now. */
export interface SupervisorEvents {
  /** The source (re)started with a new format: clients are revalidated, mDNS re-announced. */
  onFormat(): void;
  /** The source's state changed (running, retrying, ...). */
  onState(s: CaptureStatus): void;
}

/**
 * Owns the capture source: chooses it from the config at start, attaches it
 * to the period ingest, swaps it when a USB interface appears (SIGHUP
 * re-probe), and detaches and stops it at the end. The rest of the service
 * reads `source` and never holds a reference to an old one.
 */
export class DeviceSupervisor {
  readonly name = 'capture';
  private current: CaptureSource;
  private readonly reason: string;
  private stopping = false;

  /**
   * Chooses the source now (no I/O beyond reading /proc/asound): a bad
   * capture config is a ConfigError before anything opens.
   * @param procAsound where sound cards are probed (/proc/asound; tests point it elsewhere)
   */
  constructor(
    private readonly cfg: CaptureConfig,
    private readonly ingest: PeriodIngest,
    private readonly events: SupervisorEvents,
    private readonly log: Logger,
    private readonly procAsound?: string,
  ) {
    const choice = createSource(cfg, procAsound);
    this.current = choice.source;
    this.reason = choice.reason;
  }

  get source(): CaptureSource {
    return this.current;
  }

  start(): void {
    if (this.current.snapshot().kind === 'test-signal') this.log.warn({ source: 'test-signal' }, this.reason);
    else this.log.info({ source: this.current.snapshot().kind }, this.reason);
    this.attach(this.current);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.ingest.detach(this.current);
    await this.current.stop();
  }

  /**
   * Resolves once the source has settled: the test signal or a WAV file runs
   * at once; an ALSA device has delivered its first period or failed its
   * first attempt. A device that opens but stays silent settles after
   * capture.stallTimeoutMs, when the source gives up on it.
   */
  settled(): Promise<void> {
    const src = this.current;
    if (src.snapshot().state !== 'starting') return Promise.resolve();
    return new Promise<void>((resolve) => {
      const cap = setTimeout(done, this.cfg.stallTimeoutMs + 1000);
      function onState(s: CaptureStatus): void {
        if (s.state !== 'starting') done();
      }
      function done(): void {
        clearTimeout(cap);
        src.off('state', onState);
        resolve();
      }
      src.on('state', onState);
    });
  }

  /**
   * SIGHUP (the udev rule sends it when a USB audio interface comes or
   * goes): probes /proc/asound again. With capture.device "auto", a USB
   * interface that appeared replaces the test signal (or a different,
   * vanished interface); otherwise a source waiting for its device retries
   * now instead of at the end of its backoff. An interface that left is not
   * replaced by the test signal: its source keeps retrying, so the musicians
   * hear silence, not a tone, until it is back. Returns what it did.
   */
  async reprobe(): Promise<string> {
    const cap = this.cfg;
    const cur = this.current.snapshot();
    let action = 'retry now';
    if (cap.wavFile === null && cap.device === 'auto') {
      const card = pickUsbCaptureCard(this.procAsound);
      if (card && !(cur.kind === 'alsa' && cur.device === card.pcm)) {
        const next = createSource(cap, this.procAsound);
        action = `switch to ${next.source.snapshot().device}`;
        this.log.info({ from: cur.device, to: next.source.snapshot().device }, `re-probe: ${next.reason}`);
        await this.replace(next.source);
      } else if (!card) action = cur.kind === 'alsa' ? 'no USB interface found; keep retrying the last one' : 'no USB interface found; keep the test signal';
    }
    if (action === 'retry now' || action.startsWith('no USB interface found; keep retrying')) this.current.retryNow();
    this.log.info({ action, capture: this.current.snapshot().state, device: this.current.snapshot().device }, 're-probed capture devices (SIGHUP)');
    return action;
  }

  /**
   * Puts `next` in place of the current source without touching clients: the
   * ingest flags a discontinuity and clients are revalidated on its format.
   */
  async replace(next: CaptureSource): Promise<void> {
    const old = this.current;
    this.ingest.detach(old);
    old.off('state', this.onState);
    old.off('format', this.onFormat);
    old.off('retry', this.onRetry);
    await old.stop();
    if (this.stopping) {
      await next.stop();
      return;
    }
    this.attach(next);
  }

  /** Capture threads still blocked in the driver (they make a normal exit hang). */
  unfinishedReaders(): number {
    return this.current.unfinishedReaders();
  }

  private attach(source: CaptureSource): void {
    this.current = source;
    this.ingest.attach(source);
    source.on('state', this.onState);
    source.on('format', this.onFormat);
    source.on('retry', this.onRetry);
    source.start();
  }

  private readonly onFormat = (): void => this.events.onFormat();

  private readonly onRetry = (r: { delayMs: number; reason: string }): void => {
    this.log.warn({ retryInMs: r.delayMs, err: r.reason }, 'capture device unavailable; retrying');
  };

  private readonly onState = (s: CaptureStatus): void => {
    const fields = { state: s.state, device: s.device, format: s.format, err: s.lastError };
    if (s.state === 'running') this.log.info(fields, 'capture running');
    else if (s.state === 'error' || s.state === 'no-device') this.log.warn(fields, `capture ${s.state}`);
    this.events.onState(s);
  };
}
