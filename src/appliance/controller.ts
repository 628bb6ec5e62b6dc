import type http from 'node:http';
import { DeviceSupervisor } from '../capture/device-supervisor';
import { PeriodIngest } from '../capture/period-ingest';
import type { Config } from '../config/config-schema';
import { AdminAuth } from '../control/admin-auth';
import { ChannelMetadata } from '../control/channel-metadata';
import { ClientMemory } from '../control/client-memory';
import { ControlHandler, type SourceInfo } from '../control/control-handler';
import { discoveryOffStatus } from '../discovery/discovery-status';
import { MdnsAdvertiser } from '../discovery/mdns-advertiser';
import { EventLog } from '../health/event-log';
import { HealthReporting } from '../health/health-reporting';
import { summarizeClient, type ServiceFigures } from '../health/health-snapshot';
import { readMqttFiles, resolveDeviceId } from '../health/mqtt-options';
import { ProcessUsage } from '../health/process-usage';
import { PrometheusMetrics } from '../health/prometheus-metrics';
import { healthzVerdict, statusDocument, type StatusSources } from '../health/status-document';
import { createStatusRoutes, type Health } from '../health/status-routes';
import type { Logger } from '../logging/logger';
import { OutputRegistry } from '../pool/output-registry';
import { resolvePoolSize } from '../pool/pool-size';
import { SendPool } from '../pool/send-pool';
import { PROTOCOL_VERSION } from '../protocol';
import { SavedState } from '../state/saved-state';
import { FanOut } from '../transport/fan-out';
import { StreamServer } from '../transport/stream-server';
import { UdpFlows } from '../transport/udp-flows';
import { WebRtcRoutes } from '../transport/webrtc-routes';
import { DashboardFiles } from '../web/dashboard-routes';
import { LevelMeter } from '../web/level-meter';
import { createListenQrRoute } from '../web/listen-qr';
import { ListenPage } from '../web/listen-routes';
import { LiveFeed } from '../web/live-feed';
import { createRecordingParts } from '../recording/recording-parts';
import { createRecordingRoutes } from '../recording/recording-routes';
import type { RecordingEvent } from '../recording/recording-events';
import { Readiness } from './readiness';
import { SdNotify } from './sd-notify';

export const VERSION: string = (require('../../../package.json') as { version: string }).version;

/** One part of the service: the controller starts the parts in order and stops them in reverse. */
export interface Part {
  readonly name: string;
  start(): void | Promise<void>;
  stop(): void | Promise<void>;
}

/**
 * Builds the parts and only wires them, as Zigbee2MQTT's controller does with
 * its extensions: one ordered list drives start and stop. State first (the
 * control plane is built on it), then the send pool, the server (clients can
 * connect while the device comes up), capture, health, discovery, and
 * systemd readiness last. A part that fails to start stops the ones before
 * it; on stop each failure is logged by name and the others still stop.
 */
export class Controller {
  readonly metrics: PrometheusMetrics;
  private readonly parts: readonly Part[];
  private readonly supervisor: DeviceSupervisor;
  private readonly server: StreamServer;
  private readonly readiness: Readiness;
  private readonly notify: SdNotify;
  private readonly status: StatusSources;
  private started: Part[] = [];
  private stopping = false;
  private reloading: Promise<void> | null = null;
  private port = 0;

  /**
   * Opens the saved state (its content shapes the control plane), then builds
   * every part. Reads the MQTT files and chooses the capture source here, so
   * a bad config is a ConfigError before anything opens.
   * @param notify systemd's notify socket; SdNotify.fromEnv() by default, a no-op without NOTIFY_SOCKET
   * @param procAsound where sound cards are probed (/proc/asound; tests point it elsewhere)
   */
  static async open(config: Config, log: Logger, notify?: SdNotify, procAsound?: string): Promise<Controller> {
    const mqttFiles = config.mqtt.enabled ? readMqttFiles(config.mqtt) : null;
    const state = await SavedState.open(config.state, log);
    return new Controller(config, log, state, mqttFiles, notify ?? SdNotify.fromEnv(log), procAsound);
  }

  private constructor(
    config: Config,
    private readonly log: Logger,
    state: SavedState,
    mqttFiles: ReturnType<typeof readMqttFiles> | null,
    notify: SdNotify,
    procAsound: string | undefined,
  ) {
    const cfg = config;
    const startedAt = Date.now();
    this.notify = notify;
    const events = new EventLog(50);
    const usage = new ProcessUsage();
    const outputs = new OutputRegistry();
    const poolSize = resolvePoolSize(cfg.pool.size);
    // Mix slab slots: one mix per client, plus headroom for clients switching mixes (a new mix is made before the old one is freed).
    const pool = new SendPool(
      { size: poolSize, inlineBudgetPct: cfg.pool.inlineBudgetPct, periodFrames: cfg.capture.periodFrames, maxMixes: cfg.stream.maxClients + 64 },
      outputs,
      { channels: 1, rate: cfg.capture.rate },
      new FanOut(outputs).deliver,
    );
    pool.onEncodeError = (err) => log.error({ err: err.message }, 'encode failed; period dropped');
    log.info(
      { poolSize, configured: cfg.pool.size, inlineBudgetPct: cfg.pool.inlineBudgetPct, threadpool: process.env.UV_THREADPOOL_SIZE ?? '4 (default)' },
      `send pool: ${poolSize} worker thread(s)`,
    );
    const ingest = new PeriodIngest(pool);
    const metadata = new ChannelMetadata(state.store);
    const auth = new AdminAuth(cfg.admin);
    // Recording and virtual soundcheck: parts of their own, given small views of the rest.
    const recording = createRecordingParts({
      cfg: cfg.recording,
      stateDir: cfg.state.dir,
      periodFrames: cfg.capture.periodFrames,
      capture: () => ({ state: this.supervisor.source.snapshot().state, format: ingest.currentFormat }),
      channelName: (ch) => metadata.list().find((c) => c.ch === ch)?.name,
      setTap: (tap) => {
        ingest.tap = tap;
      },
      swapSource: (next) => this.supervisor.playInstead(next),
      events: (e: RecordingEvent) => {
        health.report(e);
        if (!e.type.startsWith('recording-')) return;
        // Phones show that a take is running (source.recording); playback changes the source itself, which says so.
        const info = { type: 'source', ...sourceInfo() };
        for (const c of server.clients) if (c.clientId !== null) control.send(c, info);
      },
      log,
    });
    if (cfg.admin.token === null) log.info({}, "no admin token configured (admin.token): channel metadata and other clients' mixes cannot be edited");

    const sourceInfo = (): SourceInfo => {
      const s = this.supervisor.source.snapshot();
      return {
        state: s.state,
        kind: s.kind,
        device: s.device,
        channels: s.format?.channels ?? null,
        rate: s.format?.rate ?? null,
        periodFrames: cfg.capture.periodFrames,
        format: s.format?.format ?? null,
        recording: recording.recorder.isRecording,
      };
    };
    const udp = cfg.udp.enabled
      ? new UdpFlows({
          host: cfg.server.host,
          port: cfg.udp.port ?? (cfg.server.port === 0 ? 0 : cfg.server.port + 1),
          flowTimeoutMs: cfg.udp.flowTimeoutMs,
          sourceRatePerSecond: cfg.udp.sourceRatePerSecond,
          sourceBurst: cfg.udp.sourceBurst,
          log,
        })
      : null;
    // werift itself loads on the first offer (0.5 s, 28 MB): a box whose listeners never offer pays nothing.
    const webrtc = cfg.webrtc.enabled ? new WebRtcRoutes(cfg.webrtc, cfg.server.host, log) : null;
    // The control plane reaches the server through these closures; they run only once clients connect, after both exist.
    const control = new ControlHandler({
      version: VERSION,
      stream: cfg.stream,
      outputs,
      source: sourceInfo,
      admit: (conn, id) => this.server.admit(conn, id),
      claimClientId: (conn, id) => this.server.claimClientId(conn, id),
      findClient: (id) => this.server.findClient(id),
      clients: () => this.server.clients,
      metadata,
      auth,
      close: (conn, code, reason) => this.server.close(conn, code, reason),
      log,
      rate: () => ingest.currentFormat?.rate ?? cfg.capture.rate,
      periodFrames: cfg.capture.periodFrames,
      memory: state.store ? new ClientMemory(state.store) : null,
      udpPort: () => udp?.port ?? null,
      webrtc,
      recording: recording.control,
    });

    const dashboard = loadOrNull(log, 'dashboard files unreadable: no dashboard at /', () => new DashboardFiles());
    const listen = loadOrNull(log, 'listener page unreadable: no listener at /listen/', () => new ListenPage());
    const listenQr = createListenQrRoute();
    const recordingRoutes = createRecordingRoutes(recording.control, auth);
    let api: http.RequestListener = () => undefined;
    const routes: http.RequestListener = (req, res) => (dashboard?.handle(req, res) ?? false) || (listen?.handle(req, res) ?? false) || listenQr(req, res) || recordingRoutes(req, res) || api(req, res);
    this.server = new StreamServer({ host: cfg.server.host, port: cfg.server.port, stream: cfg.stream }, { outputs, serverLatency: pool.serverLatency, http: routes, text: control, events, log, udp, webrtc, maxDatagramBytes: cfg.udp.maxDatagramBytes });
    const server = this.server;

    const figures = (): ServiceFigures => ({
      version: VERSION,
      uptimeS: Math.round((Date.now() - startedAt) / 1000),
      capture: this.supervisor.source.snapshot(),
      periodFrames: cfg.capture.periodFrames,
      periods: ingest.periods,
      jitter: ingest.jitter.summary(),
      pool: pool.snapshot(),
      clients: server.clientInfos(),
      bytesSent: server.bytesSent(),
      state: state.saving(),
      recording: recording.recorder.health(recording.soundcheck.playing),
    });
    const health = new HealthReporting(cfg, mqttFiles, figures, events, VERSION, log);
    // Made when the server has its port (the config may ask for port 0).
    let discovery: MdnsAdvertiser | null = null;

    this.supervisor = new DeviceSupervisor(
      cfg.capture,
      ingest,
      {
        onFormat: () => {
          const info = sourceInfo();
          discovery?.captureChanged({ channels: info.channels, rate: info.rate });
          for (const c of server.clients) control.revalidate(c);
        },
        onState: (s) => {
          health.captureChanged(s);
          discovery?.captureChanged({ channels: s.format?.channels ?? null, rate: s.format?.rate ?? null });
          const info = { type: 'source', ...sourceInfo() };
          for (const c of server.clients) if (c.clientId !== null) control.send(c, info);
          if (this.readiness.ready && !this.stopping) notify.status(this.statusText());
        },
      },
      log,
      procAsound,
    );
    const live = new LiveFeed({ maxViewers: cfg.dashboard.maxViewers }, () => statusDocument(this.status), new LevelMeter(() => pool.ring, () => ingest.nextSeq), log);
    server.addUpgradeRoute('/api/live', live.handleUpgrade);
    this.readiness = new Readiness(
      notify,
      cfg.capture,
      { settled: () => this.supervisor.settled(), source: () => this.supervisor.source, lastDispatchAt: () => ingest.lastDispatchAt, statusText: () => this.statusText() },
      log,
    );

    this.status = {
      version: VERSION,
      startedAt,
      config: cfg,
      port: () => this.port,
      capture: () => this.supervisor.source.snapshot(),
      ingest,
      pool,
      server,
      state,
      metadata,
      health,
      usage,
      events,
      discovery: () => (discovery ? discovery.status() : discoveryOffStatus()),
      dashboard: () => ({ ...live.snapshot(), latencyAmberMs: cfg.dashboard.latencyAmberMs, latencyRedMs: cfg.dashboard.latencyRedMs }),
      systemd: () => this.readiness.status(),
      udp: () => (udp ? udp.stats() : { enabled: false }),
      webrtc: () => (webrtc ? webrtc.status() : { enabled: false }),
      recording: () => recording.recorder.status(),
      playback: () => recording.soundcheck.status(),
      ready: () => this.readiness.ready,
      stopping: () => this.stopping,
      watchdog: () => this.readiness.verdict(),
    };
    this.metrics = new PrometheusMetrics({
      healthSnapshot: () => health.snapshot(),
      latency: () => ({ server: pool.serverLatency.summary(), captureBlock: pool.captureBlock.summary() }),
      clients: () => server.clientInfos().map(summarizeClient),
    });
    api = createStatusRoutes({
      status: () => statusDocument(this.status),
      healthz: (): Health => healthzVerdict(this.status),
      resetPerf: () => {
        pool.resetPerf();
        ingest.jitter.reset();
        for (const c of server.clients) c.drops = 0;
      },
      metrics: this.metrics,
    });

    this.parts = [
      state,
      { name: 'send pool', start: () => undefined, stop: () => pool.stop() },
      {
        name: 'stream server',
        start: async () => {
          this.port = await server.listen();
          log.info({ host: cfg.server.host, port: this.port }, 'listening');
          events.add('service-started', { version: VERSION, port: this.port });
        },
        stop: () => server.stop(),
      },
      {
        name: 'udp',
        start: async () => {
          if (!udp) return log.info({}, 'audio over UDP off (udp.enabled false)');
          try {
            const port = await udp.start();
            log.info({ host: cfg.server.host, port }, 'audio over UDP on');
          } catch (err) {
            // Like a taken MQTT port: the WebSocket carries every client's audio, and welcome offers no UDP.
            log.error({ host: cfg.server.host, err: (err as Error).message }, 'audio over UDP unavailable: cannot bind its port; clients get their audio over the WebSocket');
          }
        },
        stop: () => udp?.stop(),
      },
      { name: 'webrtc', start: () => undefined, stop: () => webrtc?.stop() },
      { name: 'live feed', start: () => undefined, stop: () => live.stop() },
      usage,
      this.supervisor,
      // After the capture: on stop the take gets every period up to here, then its files are closed, before the capture stops.
      { name: 'recording', start: () => recording.recorder.start(), stop: () => recording.recorder.stop() },
      health,
      {
        name: 'mDNS announcement',
        start: () => {
          if (!cfg.discovery.enabled) return log.info({}, 'mDNS announcement off (discovery.enabled false)');
          discovery = new MdnsAdvertiser({
            name: cfg.discovery.name,
            port: this.port,
            deviceId: resolveDeviceId(cfg.mqtt),
            protocol: PROTOCOL_VERSION,
            version: VERSION,
            dashboardPath: dashboard ? '/' : null,
            transports: ['ws', ...(udp?.port != null ? ['udp'] : []), ...(webrtc ? ['webrtc'] : [])],
            log,
          });
          const info = sourceInfo();
          discovery.start({ channels: info.channels, rate: info.rate });
        },
        // Goodbyes go out first on stop (only readiness stops before it), bounded at 0.5 s.
        stop: () => discovery?.stop(500),
      },
      this.readiness,
    ];
  }

  /** Starts every part in order; if one fails, the ones already started are stopped and the error is thrown. */
  async start(): Promise<void> {
    for (const part of this.parts) {
      if (this.stopping) return;
      try {
        await part.start();
        this.started.push(part);
      } catch (err) {
        this.log.error({ part: part.name, err: (err as Error).message }, `starting ${part.name} failed`);
        throw err;
      }
    }
  }

  /** Stops the started parts in reverse order; each part's failure is logged by name and the others still stop. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.notify.stopping();
    await this.reloading;
    for (const part of [...this.started].reverse()) {
      try {
        await part.stop();
      } catch (err) {
        this.log.error({ part: part.name, err: (err as Error).message }, `stopping ${part.name} failed`);
      }
    }
    this.started = [];
  }

  /** SIGHUP / systemctl reload: re-probes the capture devices (DeviceSupervisor.reprobe), telling systemd. */
  reload(): Promise<void> {
    if (this.reloading) return this.reloading;
    this.reloading = this.doReload().finally(() => {
      this.reloading = null;
    });
    return this.reloading;
  }

  private async doReload(): Promise<void> {
    if (this.stopping) return;
    if (!this.readiness.ready) {
      // start() probes anyway; a swap now would race the first device attempt.
      this.log.info({}, 'SIGHUP while starting: ignored (the start-up probe covers it)');
      return;
    }
    this.notify.reloading();
    await this.supervisor.reprobe();
    if (!this.stopping) this.notify.ready(this.statusText());
  }

  /** One line for systemd's STATUS= (shown by systemctl status). */
  statusText(): string {
    const s = this.supervisor.source.snapshot();
    let what: string;
    if (s.kind === 'test-signal') what = `streaming the built-in test signal (${s.format?.channels ?? '?'} ch)`;
    else if (s.kind === 'take') what = `playing ${s.device} instead of the stage (virtual soundcheck)`;
    else if (s.state === 'running' && s.format) what = `capturing ${s.device} (${s.format.channels} ch ${s.format.format} ${s.format.rate} Hz)`;
    else what = `capture ${s.state} on ${s.device}${s.lastError ? `: ${s.lastError}` : ''}`;
    return `${what}; ${this.server.clients.size} client(s) on port ${this.port}`;
  }

  /** Capture threads still blocked in the driver after stop (they make a normal exit hang). */
  unfinishedCaptureThreads(): number {
    return this.supervisor.unfinishedReaders();
  }
}

/** A page's files; a missing or unreadable folder is logged and the service runs without the page. */
function loadOrNull<T>(log: Logger, what: string, load: () => T): T | null {
  try {
    return load();
  } catch (err) {
    log.error({ err: (err as Error).message }, what);
    return null;
  }
}
