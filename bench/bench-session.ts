/**
 * One service process plus one client process, and the measurement window
 * protocol: status snapshot, perf reset, clients reset, sample CPU/RSS for
 * N seconds, final status and client stats.
 */
import type { ClientSpec, FleetStats } from './bench-ipc';
import { ClientFleet } from './client-fleet';
import { getJson, httpRequest } from './http-json';
import { ProcSampler, type ProcUsage } from './proc-sampler';
import { ServiceProcess, sleep, type ServiceOptions, type StopInfo } from './service-process';
import { parseStatus, type ServiceStatus } from './service-status';

export const WARMUP_MS = 1500;
const STATUS_TIMEOUT_MS = 10_000;
const SLOW_POLL_MS = 1000;

/** What happened to the stalled client(s), seen from the box's status. */
export interface SlowObservation {
  /** Highest drops count seen since the perf reset (the box forgets it once it closes the client). */
  maxDrops: number;
  maxQueued: number;
  /** The box closed it (it vanished from status) during the window. */
  closedByBox: boolean;
  closedAfterS: number | null;
}

export interface Measurement {
  seconds: number;
  before: ServiceStatus;
  after: ServiceStatus;
  fleet: FleetStats;
  service: ProcUsage;
  clientProcess: ProcUsage;
  /** Sum of status drops over the normal clients. */
  normalDrops: number;
  slow: SlowObservation | null;
}

export class BenchSession {
  private readonly normalIds = new Set<string>();
  private readonly stalledIds = new Set<string>();
  private closed: StopInfo | null = null;

  private constructor(
    readonly service: ServiceProcess,
    readonly fleet: ClientFleet,
    readonly poolSize: number,
  ) {}

  /**
   * Starts the service, waits for capture to run, forks the client process
   * (in a network namespace of the harness when `fleetPrefix` says how).
   */
  static async open(opts: ServiceOptions, fleetPrefix: string[] = []): Promise<BenchSession> {
    const service = await ServiceProcess.start(opts);
    try {
      const status = await service.waitRunning();
      return new BenchSession(service, ClientFleet.start(fleetPrefix), status.pool.size);
    } catch (err) {
      await service.stop();
      throw err;
    }
  }

  get clientCount(): number {
    return this.normalIds.size;
  }

  /** Connects and subscribes `specs`; throws with the first failure if any client could not. */
  async addClients(specs: ClientSpec[], perClientTimeoutMs?: number): Promise<void> {
    if (specs.length === 0) return;
    const r = await this.fleet.connect(this.service.port, specs, perClientTimeoutMs);
    for (const s of specs) (s.stalled ? this.stalledIds : this.normalIds).add(s.clientId);
    if (r.failed > 0) throw new Error(`${r.failed} of ${specs.length} clients could not connect and subscribe; first: ${r.firstError ?? '?'}`);
  }

  /** Keeps the first `count` normal clients (in the order they were added), closes the rest. */
  async trimTo(count: number): Promise<void> {
    if (count >= this.normalIds.size) return;
    await this.fleet.trim(count);
    const keep = [...this.normalIds].slice(0, count);
    this.normalIds.clear();
    for (const id of keep) this.normalIds.add(id);
  }

  get serviceAlive(): boolean {
    return !this.service.hasExited;
  }

  async measure(seconds: number): Promise<Measurement> {
    const http = this.service.http;
    // Taken before the reset: serializing a big status must not land inside the window.
    const before = parseStatus(await getJson(http, '/api/status', STATUS_TIMEOUT_MS));
    const reset = await httpRequest(http, 'POST', '/api/perf/reset', STATUS_TIMEOUT_MS);
    if (reset.status !== 204) throw new Error(`POST /api/perf/reset: HTTP ${reset.status}; 204 expected`);
    await this.fleet.reset();
    const svc = new ProcSampler(this.service.pid);
    const cli = new ProcSampler(this.fleet.pid);
    svc.start();
    cli.start();
    const watcher = this.stalledIds.size > 0 ? this.watchStalled(before, seconds * 1000) : null;
    await sleep(seconds * 1000);
    const service = svc.stop();
    const clientProcess = cli.stop();
    const slow = watcher ? await watcher.stop() : null;
    if (this.service.hasExited) throw new Error(`the service exited during the measurement; its last output:\n${this.service.logTail()}`);
    const after = parseStatus(await getJson(http, '/api/status', STATUS_TIMEOUT_MS));
    const fleet = await this.fleet.stats();
    let normalDrops = 0;
    for (const c of after.clients) if (c.clientId !== null && this.normalIds.has(c.clientId)) normalDrops += c.drops;
    return { seconds, before, after, fleet, service, clientProcess, normalDrops, slow };
  }

  /** Stops the service first (so shutdown is exercised with clients attached), then the clients. */
  async close(): Promise<StopInfo> {
    if (this.closed) return this.closed;
    try {
      this.closed = await this.service.stop();
    } finally {
      await this.fleet.close();
    }
    return this.closed;
  }

  /**
   * Polls status once a second during the window: the box closes a stalled
   * client (4008) after stream.stallTimeoutMs, and its drop count leaves the
   * status with it, so the final status alone would miss it.
   */
  private watchStalled(before: ServiceStatus, windowMs: number): { stop(): Promise<SlowObservation> } {
    const obs: SlowObservation = { maxDrops: 0, maxQueued: 0, closedByBox: false, closedAfterS: null };
    const ids = this.stalledIds;
    let present = before.clients.some((c) => c.clientId !== null && ids.has(c.clientId));
    let stopped = false;
    const t0 = Date.now();
    const end = t0 + windowMs;
    const loop = (async () => {
      while (!stopped && Date.now() < end) {
        await sleep(SLOW_POLL_MS);
        if (stopped) break;
        try {
          const st = parseStatus(await getJson(this.service.http, '/api/status', STATUS_TIMEOUT_MS));
          const mine = st.clients.filter((c) => c.clientId !== null && ids.has(c.clientId));
          for (const c of mine) {
            obs.maxDrops = Math.max(obs.maxDrops, c.drops);
            obs.maxQueued = Math.max(obs.maxQueued, c.queued);
          }
          if (present && mine.length === 0 && !obs.closedByBox) {
            obs.closedByBox = true;
            obs.closedAfterS = Math.round((Date.now() - t0) / 100) / 10;
          }
          present = mine.length > 0;
        } catch {
          // One missed poll only lowers the resolution; the final status still comes.
        }
      }
    })();
    return {
      stop: async () => {
        stopped = true;
        await loop;
        return obs;
      },
    };
  }
}
