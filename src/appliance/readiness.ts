import type { CaptureSource } from '../capture/capture-source';
import type { CaptureConfig } from '../config/config-schema';
import type { WatchdogView } from '../health/status-document';
import type { Logger } from '../logging/logger';
import type { SdNotify } from './sd-notify';
import { AudioWatchdog, healthLimits } from './watchdog';

/** What readiness reads from the running service. */
export interface ReadinessSources {
  /** Resolves once the capture source has settled (DeviceSupervisor.settled). */
  settled(): Promise<void>;
  source(): CaptureSource;
  /** performance.now() of the last period handed to the send pool. */
  lastDispatchAt(): number;
  /** One line for systemd's STATUS=. */
  statusText(): string;
}

/**
 * systemd readiness and the audio-path watchdog, as the last part to start:
 * READY=1 once the server listens (every part before this one started) and
 * the capture source has settled; then the watchdog, if systemd asked for
 * one, pings only while the audio path is alive (appliance/watchdog.ts).
 */
export class Readiness {
  readonly name = 'systemd readiness';
  ready = false;
  private stopping = false;
  private watchdog: AudioWatchdog | null = null;

  constructor(
    private readonly notify: SdNotify,
    private readonly capture: CaptureConfig,
    private readonly src: ReadinessSources,
    private readonly log: Logger,
  ) {}

  /** Does not wait for the device: READY=1 follows when it settles. */
  start(): void {
    void this.announce();
  }

  stop(): void {
    this.stopping = true;
    this.watchdog?.stop();
  }

  /** The watchdog's last verdict, or null without systemd's watchdog. */
  verdict(): WatchdogView | null {
    return this.watchdog ? this.watchdog.last : null;
  }

  /** The `systemd` block of /api/status. */
  status(): object {
    return {
      notify: this.notify.enabled,
      ready: this.ready,
      watchdogMs: this.notify.watchdogUsec === null ? null : this.notify.watchdogUsec / 1000,
      healthy: this.watchdog ? this.watchdog.last.healthy : null,
      reason: this.watchdog ? this.watchdog.last.reason : null,
      pings: this.watchdog?.pings ?? 0,
      maxLoopStallMs: this.watchdog ? Math.round(this.watchdog.maxLateMs) : null,
    };
  }

  private async announce(): Promise<void> {
    await this.src.settled();
    if (this.stopping) return;
    this.ready = true;
    this.notify.ready(this.src.statusText());
    this.log.info({ systemd: this.notify.enabled, capture: this.src.source().snapshot().state }, 'ready');
    if (this.notify.watchdogUsec === null) return;
    const limits = healthLimits(this.capture);
    this.watchdog = new AudioWatchdog(
      this.notify,
      {
        timeoutMs: this.notify.watchdogUsec / 1000,
        limits,
        sample: () => {
          const source = this.src.source();
          const snap = source.snapshot();
          return {
            now: performance.now(),
            state: snap.state,
            stateChangedAt: source.stateChangedAt,
            lastDispatchAt: this.src.lastDispatchAt(),
            lastAttemptAt: source.lastAttemptAt,
            retryBlocked: source.retryBlocked,
            stuckReaders: snap.stuckReaders,
          };
        },
        statusText: () => this.src.statusText(),
      },
      this.log,
    );
    this.log.info({ timeoutMs: this.notify.watchdogUsec / 1000, checkEveryMs: this.watchdog.intervalMs, ...limits }, 'systemd watchdog on: pinging while the audio path is healthy');
    this.watchdog.start();
  }
}
