import type http from 'node:http';
import type { Config } from './config-schema';
import type { Logger } from './logger';
import { createSource } from '../capture/source-factory';
import { pickUsbCaptureCard } from '../capture/device-probe';
import { SdNotify } from './sd-notify';
import { AudioWatchdog, healthLimits } from './watchdog';
import type { CaptureSource, CaptureStatus } from '../capture/capture-source';
import { PeriodIngest } from '../capture/period-ingest';
import { ControlHandler, type SourceInfo } from '../control/control-handler';
import { createStatusRoutes, type Health } from '../health/status-routes';
import { PrometheusMetrics } from '../health/prometheus-metrics';
import { OutputRegistry } from '../pool/output-registry';
import { resolvePoolSize } from '../pool/pool-size';
import { SendPool } from '../pool/send-pool';
import { StreamServer } from '../transport/stream-server';
import { ClientMemory } from '../control/client-memory';
import { ChannelMetadata } from '../control/channel-metadata';
import { AdminAuth } from '../control/admin-auth';
import { StateDirError, StateStore } from './state-store';
import { frameInPlace } from '../transport/ws-frame';
import { SystemCollector } from '../health/system-collector';
import { HealthWatcher, type HealthEvent } from '../health/health-watcher';
import { buildHealthSnapshot, summarizeClient, type HealthSnapshot, type ServiceFigures, type StateSaving } from '../health/health-snapshot';
import { EmbeddedBroker } from '../health/embedded-broker';
import { MqttReporter } from '../health/mqtt-reporter';
import { readMqttFiles, resolveDeviceId, topicsFor, type MqttFiles } from '../health/mqtt-options';
import { EventLog, type ServiceEvent } from '../health/event-log';
import { ProcessUsage } from '../health/process-usage';
import { DashboardFiles } from '../web/dashboard-routes';
import { createListenQrRoute } from '../web/listen-qr';
import { ListenPage } from '../web/listen-routes';
import { LevelMeter } from '../web/level-meter';
import { LiveFeed } from '../web/live-feed';
import { MdnsAdvertiser, discoveryOffStatus } from '../discovery/mdns-advertiser';
import { PROTOCOL_VERSION } from '../engine/packet-format';
import type { Recorder } from '../recording/recorder';
import type { RecordingControl } from '../recording/recording-control';
import type { RecordingEvent } from '../recording/recording-events';
import { createRecordingParts } from '../recording/recording-parts';
import { createRecordingRoutes } from '../recording/recording-routes';
import type { Soundcheck } from '../recording/soundcheck';

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
  /** Why the state dir could not be used at start (then nothing is saved until a restart). */
  private stateDirError: StateDirError | null = null;
  private metadata!: ChannelMetadata;
  private collector: SystemCollector | null = null;
  private watcher: HealthWatcher | null = null;
  private broker: EmbeddedBroker | null = null;
  private reporter: MqttReporter | null = null;
  private live: LiveFeed | null = null;
  private discovery: MdnsAdvertiser | null = null;
  private recorder!: Recorder;
  private soundcheck!: Soundcheck;
  /** The live source while a take plays instead (virtual soundcheck). */
  private parkedLive: CaptureSource | null = null;
  /** The last service events (clients, capture, overload), for the dashboard and other reporters. */
  readonly events = new EventLog(50);
  private readonly usage = new ProcessUsage();
  private healthTimer: NodeJS.Timeout | null = null;
  private readonly startedAt = Date.now();
  private watchdog: AudioWatchdog | null = null;
  private stopping = false;
  private reloading: Promise<void> | null = null;
  /** True once READY=1 went out (or would have, without systemd). */
  ready = false;
  readonly metrics = new PrometheusMetrics({
    healthSnapshot: () => this.healthSnapshot(),
    latency: () => ({ server: this.pool.serverLatency.summary(), captureBlock: this.pool.captureBlock.summary() }),
    clients: () => this.server.clientInfos().map(summarizeClient),
  });
  port = 0;

  /**
   * @param notify systemd's notify socket; SdNotify.fromEnv() by default, a no-op without NOTIFY_SOCKET
   * @param procAsound where sound cards are probed (/proc/asound; tests point it elsewhere)
   */
  constructor(
    private readonly config: Config,
    private readonly log: Logger,
    private readonly notify: SdNotify = SdNotify.fromEnv(log),
    private readonly procAsound?: string,
  ) {}

  async start(): Promise<void> {
    const cfg = this.config;
    // Files named by the MQTT config are read first: a missing one is a configuration error (exit 2) before anything opens.
    const mqttFiles = cfg.mqtt.enabled ? readMqttFiles(cfg.mqtt) : null;
    const { source, reason } = createSource(cfg.capture, this.procAsound);
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
    if (cfg.admin.token === null) this.log.info({}, 'no admin token configured (admin.token): channel metadata and other clients\' mixes cannot be edited');
    this.log.info(
      { poolSize, configured: cfg.pool.size, inlineBudgetPct: cfg.pool.inlineBudgetPct, threadpool: process.env.UV_THREADPOOL_SIZE ?? '4 (default)' },
      `send pool: ${poolSize} worker thread(s)`,
    );
    this.ingest = new PeriodIngest(this.pool);
    const auth = new AdminAuth(cfg.admin);
    const recording = this.createRecording();

    const api = createStatusRoutes(this);
    const recordingRoutes = createRecordingRoutes(recording, auth);
    const dashboard = this.loadDashboard();
    const listen = this.loadListenPage();
    const listenQr = createListenQrRoute();
    const routes: http.RequestListener = (req, res) =>
      (dashboard?.handle(req, res) ?? false) || (listen?.handle(req, res) ?? false) || listenQr(req, res) || recordingRoutes(req, res) || api(req, res);
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
      claimClientId: (conn, id) => this.server.claimClientId(conn, id),
      findClient: (id) => this.server.findClient(id),
      clients: () => this.server.clients,
      metadata: (this.metadata = new ChannelMetadata(this.store)),
      auth,
      close: (conn, code, reason) => this.server.close(conn, code, reason),
      log: this.log,
      rate: () => this.ingest.currentFormat?.rate ?? cfg.capture.rate,
      periodFrames: cfg.capture.periodFrames,
      memory,
      recording,
    });
    this.server.control = this.control;
    this.port = await this.server.listen();
    this.log.info({ host: cfg.server.host, port: this.port }, 'listening');
    this.events.add('service-started', { version: VERSION, port: this.port });
    this.healthTimer = setInterval(this.healthCheck, 1000);
    this.healthTimer.unref();

    this.attachSource(source);
    this.recorder.start();
    await this.startHealth(mqttFiles);
    this.startDiscovery(dashboard !== null);
    void this.announceReady();
  }

  /** Recording and virtual soundcheck: parts of their own, given small views of the rest. */
  private createRecording(): RecordingControl {
    const parts = createRecordingParts({
      cfg: this.config.recording,
      stateDir: this.config.state.dir,
      periodFrames: this.config.capture.periodFrames,
      capture: () => ({ state: this.source.snapshot().state, format: this.ingest.currentFormat }),
      channelName: (ch) => this.metadata.list().find((c) => c.ch === ch)?.name,
      setTap: (tap) => {
        this.ingest.tap = tap;
      },
      swapSource: (next) => this.swapSource(next),
      events: this.onRecordingEvent,
      log: this.log,
    });
    this.recorder = parts.recorder;
    this.soundcheck = parts.soundcheck;
    return parts.control;
  }

  /** A take started, stopped or failed, or playback began or ended: logged, in the event log, on MQTT, and every phone is told. */
  private readonly onRecordingEvent = (e: RecordingEvent): void => {
    this.log.info({ event: e }, `health event: ${e.type}`);
    this.events.add(e.type, eventFields(e));
    this.reporter?.publishEvent(e);
    if (e.type.startsWith('recording-')) this.tellSource();
  };

  /**
   * Virtual soundcheck: `next` (a take) becomes the capture; null gives the
   * stage back. The live source is not stopped meanwhile but parked, running
   * and unheard: the way back is instant, and the device is never reopened
   * for it. Clients stay connected throughout.
   */
  private async swapSource(next: CaptureSource | null): Promise<void> {
    await this.reloading;
    if (this.stopping) {
      await next?.stop();
      return;
    }
    const current = this.source;
    const to = next ?? this.parkedLive;
    if (!to) return;
    this.log.info({ from: current.snapshot().device, to: to.snapshot().device }, 'capture source switched');
    if (this.parkedLive === null) {
      this.parkedLive = current;
      await this.detachSource(current, false);
    } else await this.detachSource(current);
    if (this.stopping) {
      await next?.stop();
      return;
    }
    if (next) this.attachSource(next);
    else {
      this.parkedLive = null;
      this.attachSource(to, false);
    }
  }

  private tellSource(): void {
    const info = { type: 'source', ...this.sourceInfo() };
    for (const c of this.server.clients) if (c.clientId !== null) this.control.send(c, info);
  }

  /** `start` false: the source already runs (the live device back from a virtual soundcheck); it announces its format again. */
  private attachSource(source: CaptureSource, start = true): void {
    this.source = source;
    this.ingest.attach(source);
    source.on('state', this.onSourceState);
    source.on('format', this.onSourceFormat);
    source.on('retry', this.onSourceRetry);
    if (start) source.start();
    else {
      source.announceFormat();
      this.onSourceState(source.snapshot());
    }
  }

  /**
   * The system collector, the watcher that turns changes into events, and the
   * MQTT reporter (with the embedded broker when no mqtt.url is set). All of
   * it runs on timers off the audio path; a broker problem is logged, never fatal.
   */
  private async startHealth(mqttFiles: MqttFiles | null): Promise<void> {
    const cfg = this.config;
    this.collector = new SystemCollector({ intervalS: cfg.health.systemIntervalS, stateDir: cfg.state.dir, log: this.log });
    this.collector.start();
    this.watcher = new HealthWatcher({ figures: () => this.figures(), system: () => this.collector!.latest(), overloadCpuPct: cfg.health.overloadCpuPct });
    this.watcher.captureChanged(this.source.snapshot());
    if (mqttFiles) await this.startMqtt(mqttFiles);
    else this.log.info({}, 'MQTT off (mqtt.enabled false)');
    // One detector of device, client and overload changes feeds both the MQTT event topic and the dashboard's event log.
    this.watcher.on('event', (e: HealthEvent) => {
      this.log.info({ event: e }, `health event: ${e.type}`);
      this.events.add(e.type, eventFields(e));
      this.reporter?.publishEvent(e);
    });
    this.watcher.on('clients', () => this.reporter?.clientsChanged());
    this.watcher.start();
  }

  /** mDNS/DNS-SD announcement (control plane only; its failures are logged and shown in status, never fatal). */
  private startDiscovery(dashboard: boolean): void {
    const d = this.config.discovery;
    if (!d.enabled) {
      this.log.info({}, 'mDNS announcement off (discovery.enabled false)');
      return;
    }
    this.discovery = new MdnsAdvertiser({
      name: d.name,
      port: this.port,
      deviceId: resolveDeviceId(this.config.mqtt),
      protocol: PROTOCOL_VERSION,
      version: VERSION,
      dashboardPath: dashboard ? '/' : null,
      log: this.log,
    });
    const info = this.sourceInfo();
    this.discovery.start({ channels: info.channels, rate: info.rate });
  }

  private async startMqtt(files: MqttFiles): Promise<void> {
    const m = this.config.mqtt;
    let url = m.url;
    if (url === null) {
      if (!m.embeddedBroker.enabled) {
        this.log.info({}, 'MQTT: no mqtt.url and the embedded broker is off (mqtt.embeddedBroker.enabled false): health is not published');
        return;
      }
      this.broker = new EmbeddedBroker({ host: m.embeddedBroker.host, port: m.embeddedBroker.port, log: this.log });
      if (!(await this.broker.start())) {
        this.broker = null;
        return;
      }
      url = this.broker.localUrl;
    }
    const deviceId = resolveDeviceId(m);
    this.reporter = new MqttReporter({
      url,
      cfg: m,
      files,
      deviceId,
      clientId: m.clientId ?? `stagebox-${deviceId}`,
      topics: topicsFor(m.topicPrefix, deviceId),
      version: VERSION,
      snapshot: () => this.healthSnapshot(),
      clients: () => this.watcher!.clients(),
      log: this.log,
    });
    this.reporter.start();
  }

  /** The service's own figures, as the health snapshot and the watcher read them. */
  private figures(): ServiceFigures {
    return {
      version: VERSION,
      uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
      capture: this.source.snapshot(),
      periodFrames: this.config.capture.periodFrames,
      periods: this.ingest.periods,
      jitter: this.ingest.jitter.summary(),
      pool: this.pool.snapshot(),
      clients: this.server.clientInfos(),
      bytesSent: this.server.bytesSent(),
      state: this.stateSaving(),
      recording: this.recorder.health(this.soundcheck.playing),
    };
  }

  /** Whether state reaches the disk; a failing dir never stops the audio, it is reported here. */
  stateSaving(): StateSaving {
    const dir = this.config.state.dir;
    if (this.store === null) {
      const e = this.stateDirError;
      return { dir, saving: false, error: e ? e.message : 'state dir not opened', since: null };
    }
    const f = this.store.writeFailure;
    return f ? { dir, saving: false, error: f.message, since: f.since } : { dir, saving: true, error: null, since: null };
  }

  /** The health snapshot (MQTT health topic; for /healthz and /metrics too). Never waits on a system call. */
  healthSnapshot(): HealthSnapshot {
    const sys = this.collector?.latest() ?? { sampledAt: null, cpu: null, mem: null, disk: null, net: null, throttle: null, skippedCalls: 0, failedCalls: 0 };
    return buildHealthSnapshot(sys, this.figures());
  }

  /** `stop` false: the source keeps running unheard (the live device during a virtual soundcheck). */
  private async detachSource(source: CaptureSource, stop = true): Promise<void> {
    this.ingest.detach(source);
    source.off('state', this.onSourceState);
    source.off('format', this.onSourceFormat);
    source.off('retry', this.onSourceRetry);
    if (stop) await source.stop();
  }

  /**
   * READY=1 once the server listens (start() got there) and the capture
   * source has settled: the test signal or a WAV file runs at once; an ALSA
   * device has either delivered its first period or failed its first attempt
   * (no-device/error, retrying). A device that opens but stays silent
   * settles after capture.stallTimeoutMs, when the source gives up on it.
   * Then the watchdog starts (if systemd asked for one).
   */
  private async announceReady(): Promise<void> {
    if (this.source.snapshot().state === 'starting') {
      await new Promise<void>((resolve) => {
        const cap = setTimeout(done, this.config.capture.stallTimeoutMs + 1000);
        const src = this.source;
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
    if (this.stopping) return;
    this.ready = true;
    this.notify.ready(this.statusText());
    this.log.info({ systemd: this.notify.enabled, capture: this.source.snapshot().state }, 'ready');
    if (this.notify.watchdogUsec !== null) {
      const limits = healthLimits(this.config.capture);
      this.watchdog = new AudioWatchdog(
        this.notify,
        {
          timeoutMs: this.notify.watchdogUsec / 1000,
          limits,
          sample: () => {
            const snap = this.source.snapshot();
            return {
              now: performance.now(),
              state: snap.state,
              stateChangedAt: this.source.stateChangedAt,
              lastDispatchAt: this.ingest.lastDispatchAt,
              lastAttemptAt: this.source.lastAttemptAt,
              retryBlocked: this.source.retryBlocked,
              stuckReaders: snap.stuckReaders,
            };
          },
          statusText: () => this.statusText(),
        },
        this.log,
      );
      this.log.info({ timeoutMs: this.notify.watchdogUsec / 1000, checkEveryMs: this.watchdog.intervalMs, ...limits }, 'systemd watchdog on: pinging while the audio path is healthy');
      this.watchdog.start();
    }
  }

  /** One line for systemd's STATUS= (shown by systemctl status). */
  statusText(): string {
    const s = this.source.snapshot();
    const clients = this.server ? this.server.clients.size : 0;
    let what: string;
    if (s.kind === 'test-signal') what = `streaming the built-in test signal (${s.format?.channels ?? '?'} ch)`;
    else if (s.kind === 'take') what = `playing ${s.device} instead of the stage (virtual soundcheck)`;
    else if (s.state === 'running' && s.format) what = `capturing ${s.device} (${s.format.channels} ch ${s.format.format} ${s.format.rate} Hz)`;
    else what = `capture ${s.state} on ${s.device}${s.lastError ? `: ${s.lastError}` : ''}`;
    return `${what}; ${clients} client(s) on port ${this.port}`;
  }

  /**
   * SIGHUP / systemctl reload (the udev rule sends it when a USB audio
   * interface comes or goes): probes /proc/asound again. With capture.device
   * "auto", a USB interface that appeared replaces the test signal (or a
   * different, vanished interface); otherwise a source waiting for its
   * device retries now instead of at the end of its backoff. An interface
   * that left is not replaced by the test signal: its source keeps retrying,
   * so the musicians hear silence, not a tone, until it is back.
   */
  reload(): Promise<void> {
    if (this.reloading) return this.reloading;
    this.reloading = this.doReload().finally(() => {
      this.reloading = null;
    });
    return this.reloading;
  }

  private async doReload(): Promise<void> {
    if (this.stopping) return;
    if (!this.ready) {
      // start() probes anyway; a swap now would race the first device attempt.
      this.log.info({}, 'SIGHUP while starting: ignored (the start-up probe covers it)');
      return;
    }
    this.notify.reloading();
    const cap = this.config.capture;
    const cur = this.source.snapshot();
    if (cur.kind === 'take') {
      // Virtual soundcheck owns the capture until the engineer goes back to live; the parked live source keeps retrying its device.
      this.log.info({ take: cur.device }, 're-probe skipped: playing a take (virtual soundcheck)');
      this.notify.ready(this.statusText());
      return;
    }
    let action = 'retry now';
    if (cap.wavFile === null && cap.device === 'auto') {
      const card = pickUsbCaptureCard(this.procAsound);
      if (card && !(cur.kind === 'alsa' && cur.device === card.pcm)) {
        const next = createSource(cap, this.procAsound);
        action = `switch to ${next.source.snapshot().device}`;
        this.log.info({ from: cur.device, to: next.source.snapshot().device }, `re-probe: ${next.reason}`);
        await this.detachSource(this.source);
        if (this.stopping) {
          await next.source.stop();
          return;
        }
        this.attachSource(next.source);
      } else if (!card) action = cur.kind === 'alsa' ? 'no USB interface found; keep retrying the last one' : 'no USB interface found; keep the test signal';
    }
    if (action === 'retry now' || action.startsWith('no USB interface found; keep retrying')) this.source.retryNow();
    this.log.info({ action, capture: this.source.snapshot().state, device: this.source.snapshot().device }, 're-probed capture devices (SIGHUP)');
    if (!this.stopping) this.notify.ready(this.statusText());
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

  /** The browser listener's files; like the dashboard's, a missing part is logged and the service runs without it. */
  private loadListenPage(): ListenPage | null {
    try {
      return new ListenPage();
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'listener page unreadable: no listener at /listen/');
      return null;
    }
  }

  /** Once a second, off the audio path: the service's own CPU share. */
  private readonly healthCheck = (): void => {
    this.usage.sample();
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
      this.stateDirError = err;
      this.log.error({ dir: this.config.state.dir, err: err.message }, 'state dir unusable: mixes and channel names will NOT be saved');
      return null;
    }
  }

  private readonly onSourceFormat = (): void => {
    const info = this.sourceInfo();
    this.discovery?.captureChanged({ channels: info.channels, rate: info.rate });
    for (const c of this.server.clients) this.control.revalidate(c);
  };

  private readonly onSourceRetry = (r: { delayMs: number; reason: string }): void => {
    this.log.warn({ retryInMs: r.delayMs, err: r.reason }, 'capture device unavailable; retrying');
  };

  private readonly onSourceState = (s: CaptureStatus): void => {
    const fields = { state: s.state, device: s.device, format: s.format, err: s.lastError };
    this.watcher?.captureChanged(s);
    this.discovery?.captureChanged({ channels: s.format?.channels ?? null, rate: s.format?.rate ?? null });
    if (s.state === 'running') this.log.info(fields, 'capture running');
    else if (s.state === 'error' || s.state === 'no-device') this.log.warn(fields, `capture ${s.state}`);
    this.tellSource();
    if (this.ready && !this.stopping) this.notify.status(this.statusText());
  };

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
      recording: this.recorder?.isRecording ?? false,
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
      state: this.store
        ? { ...this.stateSaving(), writes: this.store.writes, failure: this.store.writeFailure }
        : { ...this.stateSaving(), writes: 0, failure: null },
      mixing: { maxOutputDb: this.metadata.maxOutputDb, adminEnabled: this.config.admin.token !== null },
      recording: this.recorder.status(),
      playback: this.soundcheck.status(),
      metadata: { channels: this.metadata.list(), groups: this.metadata.groups() },
      clients: this.server.clientInfos(),
      bytesSent: this.server.bytesSent(),
      health: this.healthSnapshot(),
      system: this.collector ? { skippedCalls: this.collector.latest().skippedCalls, failedCalls: this.collector.latest().failedCalls, intervalS: this.config.health.systemIntervalS } : null,
      mqtt: this.reporter ? this.reporter.status() : { enabled: this.config.mqtt.enabled, connected: false, url: null },
      discovery: this.discovery ? this.discovery.status() : discoveryOffStatus(),
      systemd: {
        notify: this.notify.enabled,
        ready: this.ready,
        watchdogMs: this.notify.watchdogUsec === null ? null : this.notify.watchdogUsec / 1000,
        healthy: this.watchdog ? this.watchdog.last.healthy : null,
        reason: this.watchdog ? this.watchdog.last.reason : null,
        pings: this.watchdog?.pings ?? 0,
        maxLoopStallMs: this.watchdog ? Math.round(this.watchdog.maxLateMs) : null,
      },
      process: this.usage.snapshot(),
      dashboard: {
        ...(this.live?.snapshot() ?? { viewers: 0, maxViewers: this.config.dashboard.maxViewers, skippedPushes: 0, refused: 0 }),
        latencyAmberMs: this.config.dashboard.latencyAmberMs,
        latencyRedMs: this.config.dashboard.latencyRedMs,
      },
      events: this.events.recent(),
    };
  }

  /**
   * GET /healthz: healthy while the service is up and capturing. A box with
   * no interface plugged in is up but not healthy (it has nothing to give
   * the musicians), and neither is one whose audio-path watchdog is failing.
   */
  healthz(): Health {
    const cap = this.source.snapshot();
    const reasons: string[] = [];
    if (this.stopping) reasons.push('service stopping');
    else if (!this.ready) reasons.push('service starting');
    if (cap.state !== 'running') reasons.push(`capture ${cap.state} on ${cap.device}${cap.lastError ? `: ${cap.lastError}` : ''}`);
    if (this.watchdog && !this.watchdog.last.healthy) reasons.push(`audio path unhealthy: ${this.watchdog.last.reason}`);
    // Not saving is degraded, not unhealthy: the musicians still hear everything.
    const warnings: string[] = [];
    const saving = this.stateSaving();
    if (!saving.saving) warnings.push(`state not saved in ${saving.dir}: ${saving.error ?? 'unknown error'}`);
    return {
      healthy: reasons.length === 0,
      reasons,
      warnings,
      body: {
        version: VERSION,
        uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
        capture: { state: cap.state, source: cap.kind, device: cap.device },
        clients: this.server.clients.size,
      },
    };
  }

  resetPerf(): void {
    this.pool.resetPerf();
    this.ingest.jitter.reset();
    for (const c of this.server.clients) c.drops = 0;
  }

  /** Capture threads still blocked in the driver after stop (they make a normal exit hang). */
  unfinishedCaptureThreads(): number {
    return (this.source?.unfinishedReaders() ?? 0) + (this.parkedLive?.unfinishedReaders() ?? 0);
  }

  /** Stops in reverse order; each part's failure is logged by name and the others still stop. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.notify.stopping();
    this.watchdog?.stop();
    await this.reloading;
    const steps: [string, () => Promise<void>][] = [
      // Goodbyes first, so phones stop offering a box that is going away (bounded: 0.5 s).
      ['mDNS announcement', async () => this.discovery?.stop(500)],
      // MQTT first: "offline" goes out while everything else still stands.
      ['mqtt', async () => this.reporter?.stop()],
      ['health watcher', async () => this.watcher?.stop()],
      ['system collector', async () => this.collector?.stop()],
      ['embedded MQTT broker', async () => this.broker?.stop()],
      // Before the capture: the take gets every period up to here, then its files are closed.
      ['recording', async () => this.recorder?.stop()],
      ['capture', async () => {
        this.ingest?.detach(this.source);
        await this.source?.stop();
        await this.parkedLive?.stop();
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

/** A health event as flat event-log fields: without its type and time (the log has its own), lists joined. */
function eventFields(e: HealthEvent): ServiceEvent['fields'] {
  const fields: ServiceEvent['fields'] = {};
  for (const [k, v] of Object.entries(e)) {
    if (k === 'type' || k === 'ts') continue;
    fields[k] = Array.isArray(v) ? v.join('; ') : (v as string | number | null);
  }
  return fields;
}
