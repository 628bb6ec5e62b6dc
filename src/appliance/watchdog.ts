import type { CaptureState } from '../capture/capture-source';
import type { Logger } from '../logging/logger';
import type { SdNotify } from './sd-notify';

/** What the watchdog reads from the audio path on each check (all times performance.now(), ms). */
export interface AudioPathSample {
  now: number;
  state: CaptureState;
  /** When the source entered `state`. */
  stateChangedAt: number;
  /** Last period handed to the send pool (0: none yet). */
  lastDispatchAt: number;
  /** Last attempt to open the device (0: the source never opens one). */
  lastAttemptAt: number;
  /** The source has stopped retrying (alsa: too many reader threads stuck in the driver). */
  retryBlocked: boolean;
  stuckReaders: number;
}

/** How long each kind of progress may be absent before the path counts as dead, ms. */
export interface HealthLimits {
  /** Running: longest gap between periods reaching the pool. */
  periodGapMs: number;
  /** Waiting for a device: longest gap between open attempts. */
  attemptGapMs: number;
}

export interface Health {
  healthy: boolean;
  /** One sentence: why it is (not) healthy. */
  reason: string;
}

/**
 * Limits from the capture config: the ALSA source itself declares a device
 * lost after stallTimeoutMs without a period, and retries at most retryMaxMs
 * apart; an attempt may take up to stallTimeoutMs to fail. One second of
 * slack on top covers timer lateness. Beyond these, the mechanism that
 * should have acted (the period stream or the source's own recovery) is dead.
 */
export function healthLimits(capture: { stallTimeoutMs: number; retryMaxMs: number }): HealthLimits {
  return {
    periodGapMs: capture.stallTimeoutMs + 1000,
    attemptGapMs: capture.retryMaxMs + capture.stallTimeoutMs + 1000,
  };
}

/**
 * Is the audio path alive? Healthy means one of:
 *  - running, and a period reached the send pool within periodGapMs;
 *  - waiting for a device (starting, no-device, retrying, error) with the
 *    retry loop provably turning: an open attempt (or the state change that
 *    scheduled it) within attemptGapMs, and not blocked on stuck threads.
 * So an unplugged interface keeps the watchdog fed (a restart cannot plug it
 * in, and the box goes on serving the dashboard and its clients), while a
 * silent stream the source failed to notice, a wedged send pool (periods
 * arrive but are skipped), a source that gave up (stuck reader threads, a
 * WAV file that failed) or a dead retry timer are not.
 */
export function audioPathHealth(s: AudioPathSample, limits: HealthLimits): Health {
  if (s.state === 'stopped') return { healthy: false, reason: 'capture stopped' };
  if (s.state === 'running') {
    const since = Math.max(s.lastDispatchAt, s.stateChangedAt);
    const gap = s.now - since;
    if (gap <= limits.periodGapMs) return { healthy: true, reason: 'capture running: periods arriving' };
    return { healthy: false, reason: `capture running but no period reached the send pool for ${Math.round(gap)} ms (limit ${limits.periodGapMs} ms)` };
  }
  if (s.retryBlocked) {
    return { healthy: false, reason: `capture ${s.state}: ${s.stuckReaders} reader thread(s) stuck in the ALSA driver; the source stopped retrying` };
  }
  const since = Math.max(s.lastAttemptAt, s.stateChangedAt);
  const gap = s.now - since;
  if (gap <= limits.attemptGapMs) return { healthy: true, reason: `capture ${s.state}: retry loop alive` };
  return { healthy: false, reason: `capture ${s.state} and no open attempt for ${Math.round(gap)} ms (limit ${limits.attemptGapMs} ms)` };
}

export interface WatchdogOptions {
  /** WATCHDOG_USEC / 1000: systemd's timeout, ms. The check runs every quarter of it. */
  timeoutMs: number;
  limits: HealthLimits;
  /** Reads the audio path. */
  sample: () => AudioPathSample;
  /** The STATUS= text while healthy (SdNotify sends it only when it changes). */
  statusText: () => string;
}

/**
 * Feeds systemd's watchdog only while the service is healthy. The check is a
 * timer on the main event loop, so a blocked loop sends nothing by itself;
 * on each tick the audio path must also pass audioPathHealth(). It runs every
 * quarter of the timeout, so one late tick never costs a restart.
 */
export class AudioWatchdog {
  private timer: NodeJS.Timeout | null = null;
  /** Outcome of the last check (for status()). */
  last: Health = { healthy: true, reason: 'not checked yet' };
  pings = 0;
  /** Longest delay of a check behind its schedule: the event loop's worst stall seen, ms. */
  maxLateMs = 0;
  private due = 0;

  constructor(
    private readonly notify: SdNotify,
    private readonly opts: WatchdogOptions,
    private readonly log: Logger,
  ) {}

  get intervalMs(): number {
    return Math.max(50, Math.floor(this.opts.timeoutMs / 4));
  }

  start(): void {
    if (this.timer) return;
    this.due = performance.now() + this.intervalMs;
    this.timer = setInterval(this.check, this.intervalMs);
    this.check();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One check: STATUS= if changed, WATCHDOG=1 if healthy. */
  readonly check = (): void => {
    const now = performance.now();
    if (this.due !== 0 && now > this.due) this.maxLateMs = Math.max(this.maxLateMs, now - this.due);
    this.due = now + this.intervalMs;
    const h = audioPathHealth(this.opts.sample(), this.opts.limits);
    if (h.healthy !== this.last.healthy) {
      if (h.healthy) this.log.info({ reason: h.reason }, 'watchdog: audio path healthy again; pinging systemd');
      else this.log.error({ reason: h.reason, timeoutMs: this.opts.timeoutMs }, 'watchdog: audio path unhealthy; no longer pinging systemd (it restarts the service if this lasts)');
    }
    this.last = h;
    this.notify.status(h.healthy ? this.opts.statusText() : `UNHEALTHY: ${h.reason}`);
    if (h.healthy && this.notify.watchdog()) this.pings++;
  };
}
