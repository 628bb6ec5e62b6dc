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
import { StateDirError, StateStore } from './state-store';
import { frameInPlace } from '../transport/ws-frame';

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
    // Mix slab slots: one mix per client, plus headroom for clients switching mixes (a new mix is made before the old one is freed).
    const maxMixes = cfg.stream.maxClients + 64;
    this.pool = new SendPool({ size: poolSize, inlineBudgetPct: cfg.pool.inlineBudgetPct, periodFrames: cfg.capture.periodFrames, maxMixes }, this.outputs, {
      channels: 1,
      rate: cfg.capture.rate,
    }, frameInPlace);
    this.pool.onEncodeError = (err) => this.log.error({ err: err.message }, 'encode failed; period dropped');
    this.log.info(
      { poolSize, configured: cfg.pool.size, inlineBudgetPct: cfg.pool.inlineBudgetPct, threadpool: process.env.UV_THREADPOOL_SIZE ?? '4 (default)' },
      `send pool: ${poolSize} worker thread(s)`,
    );
    this.ingest = new PeriodIngest(this.pool);

    this.server = new StreamServer({ host: cfg.server.host, port: cfg.server.port, stream: cfg.stream }, this.outputs, this.pool.serverLatency, createStatusRoutes(this), this.log);
    this.control = new ControlHandler({
      version: VERSION,
      stream: cfg.stream,
      outputs: this.outputs,
      source: () => this.sourceInfo(),
      claimClientId: (conn, id) => this.server.claimClientId(conn, id),
      close: (conn, code, reason) => this.server.close(conn, code, reason),
      log: this.log,
      rate: () => this.ingest.currentFormat?.rate ?? cfg.capture.rate,
      periodFrames: cfg.capture.periodFrames,
      memory,
    });
    this.server.control = this.control;
    this.port = await this.server.listen();
    this.log.info({ host: cfg.server.host, port: this.port }, 'listening');

    this.ingest.attach(source);
    source.on('state', (s: CaptureStatus) => this.onSourceState(s));
    source.on('format', () => {
      for (const c of this.server.clients) this.control.revalidate(c);
    });
    source.on('retry', (r: { delayMs: number; reason: string }) => this.log.warn({ retryInMs: r.delayMs, err: r.reason }, 'capture device unavailable; retrying'));
    source.start();
  }

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
      clients: this.server.clientInfos(),
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
