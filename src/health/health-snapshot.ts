import type { CaptureStatus } from '../capture/capture-source';
import type { SendPoolStats } from '../pool/send-pool';
import type { ClientInfo } from '../transport/client-connection';
import type { LatencySummary } from '../metrics/latency-histogram';
import type { StateSaving } from '../state/saved-state';
import { RECORDING_IDLE, type RecordingHealth } from '../recording/recording-health';
import type { DiskSample, NetSample, SystemSample, ThrottleSample } from './system-collector';

/**
 * The service's own figures, read from the running parts. Everything here is
 * a counter or a snapshot the parts keep anyway; reading it never touches
 * the audio path beyond copying numbers.
 */
export interface ServiceFigures {
  version: string;
  uptimeS: number;
  capture: CaptureStatus;
  periodFrames: number;
  /** Periods delivered since start. */
  periods: number;
  /** Deviation of period arrival from the nominal period, ms. */
  jitter: LatencySummary;
  pool: SendPoolStats;
  clients: ClientInfo[];
  /** Audio bytes written to client sockets since start, every client (gone ones too). */
  bytesSent: number;
  state: StateSaving;
  /** Recording and virtual soundcheck; absent: nothing records or plays. */
  recording?: RecordingHealth;
}

export type { StateSaving };
export { RECORDING_IDLE, type RecordingHealth };

/** What the health topic reports for the capture path: running, no device (missing, opening, retrying) or error. */
export type AudioState = 'running' | 'no-device' | 'error';

/** One client as the health topics show it (no channel lists, no mix parameters). */
export interface ClientSummary {
  id: string | null;
  name: string;
  address: string;
  mode: 'channels' | 'mix' | null;
  codec: string | null;
  /** Box-measured WebSocket ping round trip, ms. */
  rttMs: number | null;
  /** The client's own report of its playback buffer, ms. */
  playbackBufferMs: number | null;
  /** rttMs / 2 + playbackBufferMs: the box's estimate of capture-to-ear delay beyond the box itself, ms. */
  latencyMs: number | null;
  drops: number;
  bytesSent: number;
  connectedS: number;
  /** How the audio travels now: "ws", "udp" or "webrtc". */
  transport: string;
  /** The client's reports: lost packets recovered from redundancy, lost packets concealed (null until reported). */
  recovered: number | null;
  concealed: number | null;
}

/**
 * The health snapshot: the payload of `<prefix>/<deviceId>/health` and the
 * `health` part of /api/status. Built from declared shapes only; docs/mqtt.md
 * shows an example.
 */
export interface HealthSnapshot {
  /** When the snapshot was built, ISO 8601. */
  ts: string;
  uptimeS: number;
  version: string;
  cpu: { loadPct: number | null; coresPct: number[]; tempC: number | null };
  mem: { usedPct: number | null; usedBytes: number | null; totalBytes: number | null };
  disk: DiskSample | null;
  net: NetSample[];
  throttle: ThrottleSample | null;
  audio: {
    state: AudioState;
    /** The capture source's own state (starting, running, no-device, retrying, error, stopped). */
    captureState: CaptureStatus['state'];
    source: CaptureStatus['kind'];
    device: string;
    format: string | null;
    channels: number | null;
    rate: number | null;
    periodFrames: number;
    periods: number;
    xruns: number;
    lastError: string | null;
    jitterP99Ms: number;
  };
  pool: { size: number; utilizationPct: number; deadlineMisses: number; skippedPeriods: number };
  clients: { count: number; maxLatencyMs: number | null; drops: number; bytesSent: number };
  /** The state dir: the box streams on when it cannot save, and says so here. */
  state: StateSaving;
  recording: RecordingHealth;
  /** When the system figures were sampled (ISO 8601), null before the first sample or with sampling off. */
  systemSampledAt: string | null;
}

export function audioState(s: CaptureStatus['state']): AudioState {
  if (s === 'running') return 'running';
  if (s === 'error' || s === 'stopped') return 'error';
  return 'no-device';
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

export function summarizeClient(c: ClientInfo): ClientSummary {
  const latency = c.rttMs === null && c.playbackBufferMs === null ? null : round3((c.rttMs ?? 0) / 2 + (c.playbackBufferMs ?? 0));
  return {
    id: c.clientId,
    name: c.name,
    address: c.address,
    mode: c.mode,
    codec: c.codec,
    rttMs: c.rttMs,
    playbackBufferMs: c.playbackBufferMs,
    latencyMs: latency,
    drops: c.drops,
    bytesSent: c.bytesSent,
    connectedS: c.connectedS,
    transport: c.transport.now,
    recovered: c.recovered,
    concealed: c.concealed,
  };
}

/** Combines the cached system sample with the service's figures. Pure: no I/O. */
export function buildHealthSnapshot(sys: SystemSample, f: ServiceFigures, now: Date = new Date()): HealthSnapshot {
  let maxLatency: number | null = null;
  let drops = 0;
  for (const c of f.clients) {
    drops += c.drops;
    const l = summarizeClient(c).latencyMs;
    if (l !== null && (maxLatency === null || l > maxLatency)) maxLatency = l;
  }
  const cap = f.capture;
  return {
    ts: now.toISOString(),
    uptimeS: f.uptimeS,
    version: f.version,
    cpu: { loadPct: sys.cpu?.loadPct ?? null, coresPct: sys.cpu?.coresPct ?? [], tempC: sys.cpu?.tempC ?? null },
    mem: { usedPct: sys.mem?.usedPct ?? null, usedBytes: sys.mem?.usedBytes ?? null, totalBytes: sys.mem?.totalBytes ?? null },
    disk: sys.disk,
    net: sys.net ?? [],
    throttle: sys.throttle,
    audio: {
      state: audioState(cap.state),
      captureState: cap.state,
      source: cap.kind,
      device: cap.device,
      format: cap.format?.format ?? null,
      channels: cap.format?.channels ?? null,
      rate: cap.format?.rate ?? null,
      periodFrames: cap.format?.periodFrames ?? f.periodFrames,
      periods: f.periods,
      xruns: cap.xruns,
      lastError: cap.lastError,
      jitterP99Ms: f.jitter.p99Ms,
    },
    pool: {
      size: f.pool.size,
      utilizationPct: Math.round(f.pool.utilization * 1000) / 10,
      deadlineMisses: f.pool.deadlineMisses,
      skippedPeriods: f.pool.skippedPeriods,
    },
    clients: { count: f.clients.length, maxLatencyMs: maxLatency, drops, bytesSent: f.bytesSent },
    state: { ...f.state },
    recording: { ...(f.recording ?? RECORDING_IDLE) },
    systemSampledAt: sys.sampledAt,
  };
}
