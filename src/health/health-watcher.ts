import { EventEmitter } from 'node:events';
import type { CaptureStatus } from '../capture/capture-source';
import type { RecordingEvent } from '../recording/recording-events';
import { summarizeClient, type ClientSummary, type ServiceFigures } from './health-snapshot';
import type { SystemSample } from './system-collector';

/** One event of `<prefix>/<deviceId>/event` (docs/mqtt.md). */
export type HealthEvent =
  | { type: 'device-lost'; ts: string; device: string; state: CaptureStatus['state']; error: string | null }
  | { type: 'device-found'; ts: string; device: string; format: string | null; channels: number | null; rate: number | null }
  | { type: 'xruns'; ts: string; count: number; total: number; windowS: number }
  | { type: 'client-joined'; ts: string; id: string; name: string; address: string }
  | { type: 'client-left'; ts: string; id: string; name: string; address: string }
  | { type: 'overload'; ts: string; reasons: string[]; cpuLoadPct: number | null; deadlineMisses: number; skippedPeriods: number }
  | { type: 'overload-cleared'; ts: string }
  | RecordingEvent;

export interface HealthWatcherOptions {
  /** Reads the service's figures (cheap: counters and snapshots). */
  figures: () => ServiceFigures;
  system: () => SystemSample;
  overloadCpuPct: number;
  /** Ms between looks (default 1000). */
  intervalMs?: number;
}

/** Xruns are reported at most once per this long (the count covers the whole time), ms. */
const XRUN_EVENT_MIN_MS = 10_000;
/** An overload stays reported until this long passes with no cause, ms. */
const OVERLOAD_HOLD_MS = 10_000;

/**
 * Looks at the service's figures once a second and turns changes into
 * events: xruns, clients joining and leaving (after hello), overload; and
 * turns capture state changes, pushed as they happen, into device lost and
 * found. Emits:
 *  - 'event' (e: HealthEvent)
 *  - 'clients' (list: ClientSummary[]): the set of clients, or a client's
 *    name, mode or codec, changed.
 * It only compares numbers the parts already keep, on a timer of its own:
 * nothing is added to the audio path. Two changes within one look are seen
 * as one (a client that joins and leaves within a second is not reported).
 */
export class HealthWatcher extends EventEmitter {
  private timer: NodeJS.Timeout | null = null;
  private prev: {
    xruns: number;
    misses: number;
    skips: number;
    at: number;
    clients: Map<string, ClientSummary>;
    clientsKey: string;
    cpuSampledAt: string | null;
  } | null = null;
  private overloadUntil = 0;
  private xrunsUnreported = 0;
  private xrunsSince = 0;
  private lastXrunEventAt = -Infinity;
  private overloaded = false;
  private captureRunning = false;
  private deviceDown = false;

  constructor(private readonly opts: HealthWatcherOptions) {
    super();
  }

  start(): void {
    if (this.timer) return;
    this.look();
    this.timer = setInterval(() => this.look(), this.opts.intervalMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * The capture source changed state: called from its 'state' event, so an
   * outage shorter than a look is still seen. Lost: it stopped running (a
   * stop at shutdown is not a loss). Found: running again after a loss.
   */
  captureChanged(s: CaptureStatus, now: number = Date.now()): void {
    const ts = new Date(now).toISOString();
    if (s.state === 'running') {
      this.captureRunning = true;
      if (!this.deviceDown) return;
      this.deviceDown = false;
      this.emit('event', {
        type: 'device-found',
        ts,
        device: s.device,
        format: s.format?.format ?? null,
        channels: s.format?.channels ?? null,
        rate: s.format?.rate ?? null,
      } satisfies HealthEvent);
    } else if (this.captureRunning && s.state !== 'stopped') {
      this.captureRunning = false;
      this.deviceDown = true;
      this.emit('event', { type: 'device-lost', ts, device: s.device, state: s.state, error: s.lastError } satisfies HealthEvent);
    }
  }

  /** The current client list, as the clients topic shows it. */
  clients(): ClientSummary[] {
    return this.opts.figures().clients.map(summarizeClient);
  }

  /** One look: compare with the previous figures, emit what changed. Public for tests. */
  look(now: number = Date.now()): void {
    const f = this.opts.figures();
    const sys = this.opts.system();
    const cap = f.capture;
    const ts = new Date(now).toISOString();
    const list = f.clients.map(summarizeClient);
    const byId = new Map<string, ClientSummary>();
    for (const c of list) if (c.id !== null) byId.set(c.id, c);
    const clientsKey = list
      .map((c) => `${c.id ?? ''}\u0000${c.name}\u0000${c.address}\u0000${c.mode ?? ''}\u0000${c.codec ?? ''}`)
      .sort()
      .join('\u0001');
    const prev = this.prev;
    this.prev = {
      xruns: cap.xruns,
      misses: f.pool.deadlineMisses,
      skips: f.pool.skippedPeriods,
      at: now,
      clients: byId,
      clientsKey,
      cpuSampledAt: sys.sampledAt,
    };
    if (prev === null) {
      this.emit('clients', list);
      return;
    }

    // Counters go down only when /api/perf/reset zeroes them: count from zero then.
    const newXruns = cap.xruns >= prev.xruns ? cap.xruns - prev.xruns : cap.xruns;
    if (newXruns > 0 && this.xrunsUnreported === 0) this.xrunsSince = prev.at;
    this.xrunsUnreported += newXruns;
    if (this.xrunsUnreported > 0 && now - this.lastXrunEventAt >= XRUN_EVENT_MIN_MS) {
      this.emit('event', { type: 'xruns', ts, count: this.xrunsUnreported, total: cap.xruns, windowS: Math.round((now - this.xrunsSince) / 100) / 10 } satisfies HealthEvent);
      this.xrunsUnreported = 0;
      this.lastXrunEventAt = now;
    }

    for (const [id, c] of byId) {
      if (!prev.clients.has(id)) this.emit('event', { type: 'client-joined', ts, id, name: c.name, address: c.address } satisfies HealthEvent);
    }
    for (const [id, c] of prev.clients) {
      if (!byId.has(id)) this.emit('event', { type: 'client-left', ts, id, name: c.name, address: c.address } satisfies HealthEvent);
    }
    if (clientsKey !== prev.clientsKey) this.emit('clients', list);

    const reasons: string[] = [];
    const load = sys.cpu?.loadPct ?? null;
    if (load !== null && sys.sampledAt !== prev.cpuSampledAt && load >= this.opts.overloadCpuPct) reasons.push(`cpu ${load}% >= ${this.opts.overloadCpuPct}%`);
    const newMisses = f.pool.deadlineMisses >= prev.misses ? f.pool.deadlineMisses - prev.misses : f.pool.deadlineMisses;
    const newSkips = f.pool.skippedPeriods >= prev.skips ? f.pool.skippedPeriods - prev.skips : f.pool.skippedPeriods;
    if (newSkips > 0) reasons.push(`${newSkips} period(s) skipped: the send pool fell a whole ring behind`);
    // One late period now and then is scheduling noise; several in one look are not.
    if (newMisses >= 3) reasons.push(`${newMisses} period deadline misses`);
    if (reasons.length > 0) {
      this.overloadUntil = now + OVERLOAD_HOLD_MS;
      if (!this.overloaded) {
        this.overloaded = true;
        this.emit('event', { type: 'overload', ts, reasons, cpuLoadPct: load, deadlineMisses: newMisses, skippedPeriods: newSkips } satisfies HealthEvent);
      }
    } else if (this.overloaded && now >= this.overloadUntil) {
      this.overloaded = false;
      this.emit('event', { type: 'overload-cleared', ts } satisfies HealthEvent);
    }
  }
}
