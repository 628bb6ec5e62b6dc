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
  /** The live source while a take plays instead (virtual soundcheck): running, unheard. */
  private parked: CaptureSource | null = null;
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
    this.attach(this.current, true);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.ingest.detach(this.current);
    await this.current.stop();
    await this.parked?.stop();
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
    if (cur.kind === 'take') {
      // Virtual soundcheck owns the capture until the engineer goes back to live; the parked live source keeps retrying its device.
      this.log.info({ take: cur.device }, 're-probe skipped: playing a take (virtual soundcheck)');
      return 'skipped: playing a take';
    }
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
    await this.detach(this.current, true);
    if (this.stopping) {
      await next.stop();
      return;
    }
    this.attach(next, true);
  }

  /**
   * Virtual soundcheck: `next` (a take) becomes the capture; null gives the
   * stage back. The live source is not stopped meanwhile but parked, running
   * and unheard: the way back is instant, and the device is never reopened
   * for it. Clients stay connected throughout.
   */
  async playInstead(next: CaptureSource | null): Promise<void> {
    if (this.stopping) {
      await next?.stop();
      return;
    }
    const current = this.current;
    const to = next ?? this.parked;
    if (!to) return;
    this.log.info({ from: current.snapshot().device, to: to.snapshot().device }, 'capture source switched');
    if (this.parked === null) {
      this.parked = current;
      await this.detach(current, false);
    } else await this.detach(current, true);
    if (this.stopping) {
      await next?.stop();
      return;
    }
    if (next) this.attach(next, true);
    else {
      this.parked = null;
      this.attach(to, false);
    }
  }

  /** Capture threads still blocked in the driver (they make a normal exit hang). */
  unfinishedReaders(): number {
    return this.current.unfinishedReaders() + (this.parked?.unfinishedReaders() ?? 0);
  }

  /** `stop` false: the source keeps running unheard (the live device during a virtual soundcheck). */
  private async detach(source: CaptureSource, stop: boolean): Promise<void> {
    this.ingest.detach(source);
    source.off('state', this.onState);
    source.off('format', this.onFormat);
    source.off('retry', this.onRetry);
    if (stop) await source.stop();
  }

  /** `start` false: the source already runs (the live device back from a virtual soundcheck); it announces its format again. */
  private attach(source: CaptureSource, start: boolean): void {
    this.current = source;
    this.ingest.attach(source);
    source.on('state', this.onState);
    source.on('format', this.onFormat);
    source.on('retry', this.onRetry);
    if (start) source.start();
    else {
      source.announceFormat();
      this.events.onState(source.snapshot());
    }
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
