import type { Logger } from '../logging/logger';

/** The one call of native/sd-notify (a ~60-line N-API addon; see its sd_notify.c). */
interface NotifyAddon {
  send(socketPath: string, message: string): number;
}

/**
 * systemd's notify protocol (sd_notify(3)): READY=1, RELOADING=1, STOPPING=1,
 * WATCHDOG=1 and STATUS= lines, each sent as one AF_UNIX datagram to
 * $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). Node's dgram
 * has no AF_UNIX, hence the addon. Optional and small: without NOTIFY_SOCKET
 * (run by hand, in tests, in a container) every method does nothing and the
 * addon is never loaded.
 */
export class SdNotify {
  /** Messages that could not be sent (socket gone, queue full). */
  failures = 0;
  private addon: NotifyAddon | null = null;
  /** The last STATUS= text that went out: status() sends only changes. */
  private lastStatus = '';

  /**
   * @param socketPath $NOTIFY_SOCKET, or null to do nothing
   * @param watchdogUsec $WATCHDOG_USEC when it is meant for this process, or null
   */
  constructor(
    public socketPath: string | null,
    readonly watchdogUsec: number | null,
    private readonly log: Logger,
  ) {}

  /**
   * Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (the watchdog is ours
   * only if WATCHDOG_PID is unset or our pid, as sd_watchdog_enabled(3) says).
   */
  static fromEnv(log: Logger, env: NodeJS.ProcessEnv = process.env): SdNotify {
    const sock = env.NOTIFY_SOCKET && (env.NOTIFY_SOCKET.startsWith('/') || env.NOTIFY_SOCKET.startsWith('@')) ? env.NOTIFY_SOCKET : null;
    if (env.NOTIFY_SOCKET && !sock) log.warn({ NOTIFY_SOCKET: env.NOTIFY_SOCKET }, 'NOTIFY_SOCKET is neither a path nor @abstract; not notifying systemd');
    let usec: number | null = null;
    const raw = env.WATCHDOG_USEC;
    if (sock && raw !== undefined && (env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid)) {
      const n = Number(raw);
      if (Number.isInteger(n) && n > 0) usec = n;
      else log.warn({ WATCHDOG_USEC: raw }, 'WATCHDOG_USEC is not a positive integer; watchdog off');
    }
    return new SdNotify(sock, usec, log);
  }

  get enabled(): boolean {
    return this.socketPath !== null;
  }

  /** Sends `lines` (KEY=value, joined by newlines) as one datagram; false if it was not sent. */
  send(...lines: string[]): boolean {
    if (this.socketPath === null) return false;
    if (this.addon === null) {
      try {
        this.addon = require('stagebox-sd-notify') as NotifyAddon;
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'systemd notify addon (native/sd-notify) could not be loaded: not notifying systemd');
        this.socketPath = null;
        return false;
      }
    }
    // One line per field; a newline inside STATUS would start a bogus field.
    const msg = lines.map((l) => l.replace(/\n/g, ' ').slice(0, 1024)).join('\n');
    const rc = this.addon.send(this.socketPath, msg);
    if (rc === 0) return true;
    if (this.failures++ === 0 || this.failures % 1000 === 0) {
      this.log.warn({ socket: this.socketPath, errno: -rc, failures: this.failures, msg: lines[0] }, 'systemd notify message not sent');
    }
    return false;
  }

  ready(status: string): boolean {
    const ok = this.send('READY=1', `STATUS=${status}`);
    if (ok) this.lastStatus = status;
    return ok;
  }

  reloading(): boolean {
    return this.send('RELOADING=1');
  }

  stopping(status = 'stopping'): boolean {
    this.lastStatus = status;
    return this.send('STOPPING=1', `STATUS=${status}`);
  }

  /** STATUS=<text>, unless it is the text last sent; true if it went out or needed not. */
  status(status: string): boolean {
    if (status === this.lastStatus) return true;
    const ok = this.send(`STATUS=${status}`);
    if (ok) this.lastStatus = status;
    return ok;
  }

  watchdog(): boolean {
    return this.send('WATCHDOG=1');
  }
}
