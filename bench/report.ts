/** Turns a measurement into the flat JSON line the bench prints per scenario. */
import type { LatencySummary } from '../src/metrics/latency-histogram';
import type { BenchCodec } from './bench-ipc';
import type { Measurement } from './bench-session';
import type { StopInfo } from './service-process';

export type ReportLine = Record<string, unknown>;

export interface LoadShape {
  clients: number;
  channelsPerClient: number;
  codec: BenchCodec;
}

export function round(x: number | null, digits = 3): number | null {
  if (x === null || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Median of an ascending list (at least one value). */
export function median(sorted: readonly number[]): number {
  const m = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[m]! : (sorted[m - 1]! + sorted[m]!) / 2;
}

/**
 * The histogram reports a bucket's upper edge, which can exceed the largest
 * sample actually seen; clamping keeps p999 <= max in the report.
 */
export function clampedQuantile(s: LatencySummary, v: number): number | null {
  return round(s.count === 0 ? null : Math.min(v, s.maxMs));
}

function quantiles(prefix: string, s: LatencySummary): ReportLine {
  const q = (v: number): number | null => clampedQuantile(s, v);
  return {
    [`${prefix}P50Ms`]: q(s.p50Ms),
    [`${prefix}P99Ms`]: q(s.p99Ms),
    [`${prefix}P999Ms`]: q(s.p999Ms),
    [`${prefix}MaxMs`]: round(s.count === 0 ? null : s.maxMs),
    [`${prefix}Count`]: s.count,
  };
}

export function measurementFields(load: LoadShape, m: Measurement): ReportLine {
  const { before, after, fleet } = m;
  const line: ReportLine = {
    clients: load.clients,
    channelsPerClient: load.channelsPerClient,
    codec: load.codec,
    poolSize: after.pool.size,
    inlineBudgetPct: after.pool.inlineBudgetPct,
    mixCostUsPerPeriod: after.pool.mixCostUsPerPeriod,
    seconds: m.seconds,
    ...quantiles('serverLatency', after.perf.serverLatency),
    ...quantiles('e2eLatency', fleet.e2e),
    captureBlockP99Ms: clampedQuantile(after.perf.captureBlock, after.perf.captureBlock.p99Ms),
    captureBlockMaxMs: round(after.perf.captureBlock.maxMs),
    deadlineMisses: after.pool.deadlineMisses,
    drops: m.normalDrops,
    lostPackets: fleet.lostPackets,
    discontinuities: fleet.discontinuities,
    // Cumulative counters in status: reported as the change over the window.
    inlinePeriods: after.pool.inlinePeriods - before.pool.inlinePeriods,
    pooledPeriods: after.pool.pooledPeriods - before.pool.pooledPeriods,
    inlineMixPeriods: after.pool.inlineMixPeriods - before.pool.inlineMixPeriods,
    pooledMixPeriods: after.pool.pooledMixPeriods - before.pool.pooledMixPeriods,
    skippedPeriods: after.pool.skippedPeriods - before.pool.skippedPeriods,
    xruns: after.capture.xruns - before.capture.xruns,
    encodeErrors: after.pool.encodeErrors - before.pool.encodeErrors,
    poolUtilization: round(after.pool.utilization),
    packetsPerClientMin: fleet.minPackets,
    packetsPerClientMax: fleet.maxPackets,
    disconnectedClients: fleet.clients - fleet.open,
    cpuPct: round(m.service.cpuPct, 1),
    rssMb: round(m.service.rssMb, 1),
    clientCpuPct: round(m.clientProcess.cpuPct, 1),
  };
  if (Object.keys(fleet.closes).length > 0) line.clientCloseCodes = fleet.closes;
  if (fleet.audioTransports.udp !== undefined) {
    line.audioTransports = fleet.audioTransports;
    line.udpRecovered = fleet.recovered;
    line.udpSendErrors = after.udpSendErrors - before.udpSendErrors;
  }
  if (fleet.jitter) {
    const j = fleet.jitter;
    Object.assign(line, quantiles('jitterBufferLatency', j.bufferLatency));
    line.jitterUnderruns = j.underruns;
    line.jitterLate = j.late;
    line.jitterLost = j.lost;
    line.jitterTargetMsMedian = round(j.targetMsMedian);
    line.jitterTargetMsMax = round(j.targetMsMax);
    line.jitterDriftPpmMedian = round(j.driftPpmMedian, 1);
    line.playerTickP99Ms = clampedQuantile(j.playerTick, j.playerTick.p99Ms);
    line.playerTickMaxMs = round(j.playerTick.count === 0 ? null : j.playerTick.maxMs);
  }
  if (fleet.malformed > 0) line.malformedPackets = fleet.malformed;
  if (load.codec === 'deflate' || load.codec === 'opus') line.compressionRatio = round(fleet.payloadBytes > 0 ? fleet.pcm16Bytes / fleet.payloadBytes : null);
  return line;
}

export function stopFields(stop: StopInfo): ReportLine {
  return { serviceExitCode: stop.exitCode, serviceSignal: stop.signal, serviceStopMs: stop.stopMs, serviceKilled: stop.killed };
}

/** Which clean-run criteria a measurement fails; empty when clean. */
export function failedCriteria(m: Measurement, expectedClients: number): string[] {
  const failed: string[] = [];
  if (m.after.pool.deadlineMisses > 0) failed.push(`deadlineMisses=${m.after.pool.deadlineMisses}`);
  if (m.normalDrops > 0) failed.push(`drops=${m.normalDrops}`);
  if (m.fleet.lostPackets > 0) failed.push(`lostPackets=${m.fleet.lostPackets}`);
  const skipped = m.after.pool.skippedPeriods - m.before.pool.skippedPeriods;
  if (skipped > 0) failed.push(`skippedPeriods=${skipped}`);
  if (m.fleet.open < expectedClients) failed.push(`disconnected=${expectedClients - m.fleet.open}`);
  else if (m.fleet.minPackets === 0) failed.push('a client received nothing');
  return failed;
}
