import type http from 'node:http';
import type { Config } from './config-schema';
import type { Logger } from './logger';
import { createSource } from '../capture/source-factory';
import type { CaptureSource, CaptureStatus } from '../capture/capture-source';
import { PeriodIngest } from '../capture/period-ingest';
import { ControlHandler, type SourceInfo } from '../control/control-handler';
import { createStatusRoutes } from '../health/status-routes';
import { OutputRegistry } from '../pool/output-registry';
import { resolvePoolSize } from '../pool/pool-size';
import { SendPool } from '../pool/send-pool';
import { StreamServer } from '../transport/stream-server';
import { ClientMemory } from '../control/client-memory';
import { ChannelMetadata } from '../control/channel-metadata';
import { AdminAuth } from '../control/admin-auth';
import { StateDirError, StateStore } from './state-store';
import { frameInPlace } from '../transport/ws-frame';
import { EventLog } from '../health/event-log';
import { OverloadWatch } from '../health/overload-watch';
import { ProcessUsage } from '../health/process-usage';
import { DashboardFiles } from '../web/dashboard-routes';
import { LevelMeter } from '../web/level-meter';
import { LiveFeed } from '../web/live-feed';

export const VERSION: string = (require('../../../package.json') as { version: string }).version;

/**
 * Builds the parts and only wires them: capture → ingest → send pool →
 * stream server. Starts them in that order (server first so clients can
 * connect while the device comes up), stops them in reverse.
 */
export class Controller {
  private readonly outputs = new OutputRegistry();
  private pool!: SendPool;
  private ingest!: PeriodIngest;
  private source!: CaptureSource;
  private server!: StreamServer;
  private control!: ControlHandler;
  private store: StateStore | null = null;
  private metadata!: ChannelMetadata;
  private live: LiveFeed | null = null;
  /** The last service events (clients, capture, overload), for the dashboard and other reporters. */
  readonly events = new EventLog(50);
  private readonly usage = new ProcessUsage();
  private readonly overload = new OverloadWatch(this.events);
  private healthTimer: NodeJS.Timeout | null = null;
  private captureState: string | null = null;
  private deviceLost = false;
  private readonly startedAt = Date.now();
  port = 0;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const cfg = this.config;
    const { source, reason } = createSource(cfg.capture);
    this.source = source;
    if (source.snapshot().kind === 'test-signal') this.log.warn({ source: 'test-signal' }, reason);
    else this.log.info({ source: source.snapshot().kind }, reason);

    const memory = await this.openState();

    const poolSize = resolvePoolSize(cfg.pool.size);
    this.pool = new SendPool({ size: poolSize, inlineBudgetPct: cfg.pool.inlineBudgetPct, periodFrames: cfg.capture.periodFrames }, this.outputs, {
      channels: 1,
      rate: cfg.capture.rate,
    }, frameInPlace);
    this.pool.onEncodeError = (err) => this.log.error({ err: err.message }, 'encode failed; period dropped');
    if (cfg.admin.token === null) this.log.info({}, 'no admin token configured (admin.token): channel metadata and other clients\' mixes cannot be edited');
    this.log.info(
      { poolSize, configured: cfg.pool.size, inlineBudgetPct: cfg.pool.inlineBudgetPct, threadpool: process.env.UV_THREADPOOL_SIZE ?? '4 (default)' },
      `send pool: ${poolSize} worker thread(s)`,
    );
    this.ingest = new PeriodIngest(this.pool);

    const api = createStatusRoutes(this);
    const dashboard = this.loadDashboard();
    const routes: http.RequestListener = dashboard ? (req, res) => dashboard.handle(req, res) || api(req, res) : api;
    this.server = new StreamServer({ host: cfg.server.host, port: cfg.server.port, stream: cfg.stream }, this.outputs, this.pool.serverLatency, routes, this.log);
    this.server.events = this.events;
    const ingest = this.ingest;
    this.live = new LiveFeed({ maxViewers: cfg.dashboard.maxViewers }, () => this.status(), new LevelMeter(() => this.pool.ring, () => ingest.nextSeq), this.log);
    this.server.addUpgradeRoute('/api/live', this.live.handleUpgrade);
    this.control = new ControlHandler({
      version: VERSION,
      stream: cfg.stream,
      outputs: this.outputs,
      source: () => this.sourceInfo(),
      claimClientId: (conn, id) => {
        const replaced = this.server.claimClientId(conn, id);
        this.events.add('client-joined', { clientId: id, name: conn.name, address: conn.address, replacedOlder: replaced !== null });
        return replaced;
      },
      findClient: (id) => this.server.findClient(id),
      clients: () => this.server.clients,
      metadata: (this.metadata = new ChannelMetadata(this.store)),
      auth: new AdminAuth(cfg.admin),
      close: (conn, code, reason) => this.server.close(conn, code, reason),
      log: this.log,
      rate: () => this.ingest.currentFormat?.rate ?? cfg.capture.rate,
      periodFrames: cfg.capture.periodFrames,
      memory,
    });
    this.server.control = this.control;
    this.port = await this.server.listen();
    this.log.info({ host: cfg.server.host, port: this.port }, 'listening');
    this.events.add('service-started', { version: VERSION, port: this.port });
    this.healthTimer = setInterval(this.healthCheck, 1000);
    this.healthTimer.unref();

    this.ingest.attach(source);
    source.on('state', (s: CaptureStatus) => this.onSourceState(s));
    source.on('format', () => {
      for (const c of this.server.clients) this.control.revalidate(c);
    });
    source.on('retry', (r: { delayMs: number; reason: string }) => this.log.warn({ retryInMs: r.delayMs, err: r.reason }, 'capture device unavailable; retrying'));
    source.start();
  }

  /** The dashboard's files; a missing or unreadable folder is logged and the service runs without the page. */
  private loadDashboard(): DashboardFiles | null {
    try {
      return new DashboardFiles();
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'dashboard files unreadable: no dashboard at /');
      return null;
    }
  }

  /** Once a second, off the audio path: CPU sample and the overload watch. */
  private readonly healthCheck = (): void => {
    this.usage.sample();
    const p = this.pool.snapshot();
    this.overload.check({ deadlineMisses: p.deadlineMisses, skippedPeriods: p.skippedPeriods, xruns: this.source.snapshot().xruns });
  };

  /** Loads saved state; an unusable state dir is logged and the service runs without saving. */
  private async openState(): Promise<ClientMemory | null> {
    const store = new StateStore({ dir: this.config.state.dir, maxClients: this.config.state.maxClients, log: this.log });
    try {
      const doc = await store.load();
      this.store = store;
      this.log.info({ dir: this.config.state.dir, clients: Object.keys(doc.clients).length }, 'state loaded');
      return new ClientMemory(store);
    } catch (err) {
      if (!(err instanceof StateDirError)) throw err;
      this.log.error({ dir: this.config.state.dir, err: err.message }, 'state dir unusable: mixes and channel names will NOT be saved');
      return null;
    }
  }

  private onSourceState(s: CaptureStatus): void {
    const fields = { state: s.state, device: s.device, format: s.format, err: s.lastError };
    const prev = this.captureState;
    this.captureState = s.state;
    if (s.state !== 'stopped') {
      // Lost: it was running and is not. Found: running again after a loss (through any reopen states).
      let kind = 'capture-state';
      if (prev === 'running' && s.state !== 'running') {
        kind = 'device-lost';
        this.deviceLost = true;
      } else if (s.state === 'running' && this.deviceLost) {
        kind = 'device-found';
        this.deviceLost = false;
      }
      this.events.add(kind, { state: s.state, previous: prev, device: s.device, err: s.lastError });
    }
    if (s.state === 'running') this.log.info(fields, 'capture running');
    else if (s.state === 'error' || s.state === 'no-device') this.log.warn(fields, `capture ${s.state}`);
    const info = { type: 'source', ...this.sourceInfo() };
    for (const c of this.server.clients) if (c.clientId !== null) this.control.send(c, info);
  }

  sourceInfo(): SourceInfo {
    const s = this.source.snapshot();
    return {
      state: s.state,
      kind: s.kind,
      device: s.device,
      channels: s.format?.channels ?? null,
      rate: s.format?.rate ?? null,
      periodFrames: this.config.capture.periodFrames,
      format: s.format?.format ?? null,
    };
  }

  status(): object {
    return {
      version: VERSION,
      uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
      capture: { ...this.source.snapshot(), periods: this.ingest.periods, jitter: this.ingest.jitter.summary() },
      pool: this.pool.snapshot(),
      perf: { serverLatency: this.pool.serverLatency.summary(), captureBlock: this.pool.captureBlock.summary() },
      server: { port: this.port, clients: this.server.clients.size, maxClients: this.config.stream.maxClients },
      state: this.store ? { dir: this.config.state.dir, writes: this.store.writes, lastWriteError: this.store.lastWriteError } : { dir: this.config.state.dir, writes: 0, lastWriteError: 'state dir unusable: not saving' },
      mixing: { maxOutputDb: this.metadata.maxOutputDb, adminEnabled: this.config.admin.token !== null },
      clients: this.server.clientInfos(),
      process: this.usage.snapshot(),
      dashboard: {
        ...(this.live?.snapshot() ?? { viewers: 0, maxViewers: this.config.dashboard.maxViewers, skippedPushes: 0, refused: 0 }),
        latencyAmberMs: this.config.dashboard.latencyAmberMs,
        latencyRedMs: this.config.dashboard.latencyRedMs,
      },
      events: this.events.recent(),
    };
  }

  resetPerf(): void {
    this.pool.resetPerf();
    this.ingest.jitter.reset();
    for (const c of this.server.clients) c.drops = 0;
  }

  /** Capture threads still blocked in the driver after stop (they make a normal exit hang). */
  unfinishedCaptureThreads(): number {
    return this.source?.unfinishedReaders() ?? 0;
  }

  /** Stops in reverse order; each part's failure is logged by name and the others still stop. */
  async stop(): Promise<void> {
    const steps: [string, () => Promise<void>][] = [
      ['capture', async () => {
        this.ingest?.detach(this.source);
        await this.source?.stop();
      }],
      ['health timer', async () => {
        if (this.healthTimer) clearInterval(this.healthTimer);
      }],
      ['live feed', async () => this.live?.stop()],
      ['stream server', async () => this.server?.stop()],
      ['send pool', async () => this.pool?.stop()],
      ['state', async () => this.store?.stop()],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (err) {
        this.log.error({ part: name, err: (err as Error).message }, `stopping ${name} failed`);
      }
    }
  }
}
