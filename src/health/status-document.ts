import type { CaptureStatus } from '../capture/capture-source';
import type { PeriodIngest } from '../capture/period-ingest';
import type { Config } from '../config/config-schema';
import type { ChannelMetadata } from '../control/channel-metadata';
import type { SendPool } from '../pool/send-pool';
import type { SavedState } from '../state/saved-state';
import type { StreamServer } from '../transport/stream-server';
import type { EventLog } from './event-log';
import type { HealthReporting } from './health-reporting';
import type { ProcessUsage } from './process-usage';
import type { Health } from './status-routes';

/** The audio-path watchdog's last verdict, when systemd asked for one. */
export interface WatchdogView {
  healthy: boolean;
  reason: string;
}

/** Everything /api/status and /healthz read: the running parts, and views of the layers above health. */
export interface StatusSources {
  version: string;
  /** Date.now() at start. */
  startedAt: number;
  config: Config;
  port(): number;
  capture(): CaptureStatus;
  ingest: PeriodIngest;
  pool: SendPool;
  server: StreamServer;
  state: SavedState;
  metadata: ChannelMetadata;
  health: HealthReporting;
  usage: ProcessUsage;
  events: EventLog;
  /** mDNS announcement (discovery/). */
  discovery(): object;
  /** The dashboard's live feed (web/). */
  dashboard(): object;
  /** systemd readiness and watchdog (appliance/). */
  systemd(): object;
  /** Audio over UDP: the socket's counters (transport/udp-flows.ts). */
  udp(): object;
  /** Browsers' WebRTC data channels: peers now, their bound, offers answered and refused (transport/webrtc-routes.ts). */
  webrtc(): object;
  /** Recording and virtual soundcheck (recording/). */
  recording(): object;
  playback(): object;
  ready(): boolean;
  stopping(): boolean;
  watchdog(): WatchdogView | null;
}

/** GET /api/status: the whole picture, assembled from snapshots the parts keep (no I/O). */
export function statusDocument(s: StatusSources): object {
  const state = s.state.store;
  const sys = s.health.collector.latest();
  return {
    version: s.version,
    uptimeS: Math.round((Date.now() - s.startedAt) / 1000),
    capture: { ...s.capture(), periods: s.ingest.periods, jitter: s.ingest.jitter.summary() },
    pool: s.pool.snapshot(),
    perf: { serverLatency: s.pool.serverLatency.summary(), captureBlock: s.pool.captureBlock.summary() },
    server: { port: s.port(), clients: s.server.clients.size, maxClients: s.config.stream.maxClients, handshakes: s.server.pendingInfo() },
    state: { ...s.state.saving(), writes: state?.writes ?? 0, failure: state?.writeFailure ?? null },
    recording: s.recording(),
    playback: s.playback(),
    mixing: { maxOutputDb: s.metadata.maxOutputDb, adminEnabled: s.config.admin.token !== null },
    metadata: { channels: s.metadata.list(), groups: s.metadata.groups() },
    clients: s.server.clientInfos(),
    bytesSent: s.server.bytesSent(),
    health: s.health.snapshot(),
    // The collector runs whether or not MQTT is on; the dashboard's System card reads its figures here.
    system: { ...sys, intervalS: s.config.health.systemIntervalS },
    mqtt: s.health.reporter ? s.health.reporter.status() : { enabled: s.config.mqtt.enabled, connected: false, url: null },
    discovery: s.discovery(),
    systemd: s.systemd(),
    udp: s.udp(),
    webrtc: s.webrtc(),
    process: s.usage.snapshot(),
    dashboard: s.dashboard(),
    events: s.events.recent(),
  };
}

/**
 * GET /healthz: healthy while the service is up and capturing. A box with
 * no interface plugged in is up but not healthy (it has nothing to give
 * the musicians), and neither is one whose audio-path watchdog is failing.
 * Not saving state is degraded, not unhealthy: the musicians still hear
 * everything.
 */
export function healthzVerdict(s: StatusSources): Health {
  const cap = s.capture();
  const reasons: string[] = [];
  if (s.stopping()) reasons.push('service stopping');
  else if (!s.ready()) reasons.push('service starting');
  if (cap.state !== 'running') reasons.push(`capture ${cap.state} on ${cap.device}${cap.lastError ? `: ${cap.lastError}` : ''}`);
  const wd = s.watchdog();
  if (wd && !wd.healthy) reasons.push(`audio path unhealthy: ${wd.reason}`);
  const warnings: string[] = [];
  const saving = s.state.saving();
  if (!saving.saving) warnings.push(`state not saved in ${saving.dir}: ${saving.error ?? 'unknown error'}`);
  return {
    healthy: reasons.length === 0,
    reasons,
    warnings,
    body: {
      version: s.version,
      uptimeS: Math.round((Date.now() - s.startedAt) / 1000),
      capture: { state: cap.state, source: cap.kind, device: cap.device },
      clients: s.server.clients.size,
    },
  };
}
