/**
 * The part of GET /api/status the bench reads, checked once at the edge so a
 * contract drift fails with the missing key instead of a NaN in the report.
 */
import type { LatencySummary } from '../src/metrics/latency-histogram';

export interface StatusClient {
  clientId: string | null;
  drops: number;
  sentPackets: number;
  queued: number;
}

export interface ServiceStatus {
  capture: { state: string; xruns: number; discardedPeriods: number; lastError: string | null; reopenCount: number; stuckReaders: number };
  pool: {
    size: number;
    /** Absent from older services: null. */
    inlineBudgetPct: number | null;
    /** Median µs to render all mixes of a period; null from a service without mixes. */
    mixCostUsPerPeriod: number | null;
    periods: number;
    inlinePeriods: number;
    pooledPeriods: number;
    /** Periods whose mixes rendered inline / in the workers; 0 from an older service. */
    inlineMixPeriods: number;
    pooledMixPeriods: number;
    skippedPeriods: number;
    deadlineMisses: number;
    encodeErrors: number;
    utilization: number;
  };
  perf: { serverLatency: LatencySummary; captureBlock: LatencySummary };
  clients: StatusClient[];
  /** Datagrams the kernel refused (udp.sendErrors; 0 without UDP or from an older service). */
  udpSendErrors: number;
}

type Obj = Record<string, unknown>;

function obj(v: unknown, where: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`status: ${where} is not an object`);
  return v as Obj;
}

function num(o: Obj, key: string, where: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`status: ${where}.${key} is ${JSON.stringify(v)}; a number expected`);
  return v;
}

function summary(v: unknown, where: string): LatencySummary {
  const o = obj(v, where);
  return { count: num(o, 'count', where), p50Ms: num(o, 'p50Ms', where), p99Ms: num(o, 'p99Ms', where), p999Ms: num(o, 'p999Ms', where), maxMs: num(o, 'maxMs', where) };
}

export function parseStatus(json: unknown): ServiceStatus {
  const root = obj(json, 'root');
  const capture = obj(root.capture, 'capture');
  const pool = obj(root.pool, 'pool');
  const perf = obj(root.perf, 'perf');
  if (!Array.isArray(root.clients)) throw new Error('status: clients is not an array');
  const optNum = (o: Obj, k: string): number => (typeof o[k] === 'number' ? (o[k] as number) : 0);
  return {
    capture: {
      state: String(capture.state),
      xruns: optNum(capture, 'xruns'),
      discardedPeriods: optNum(capture, 'discardedPeriods'),
      lastError: typeof capture.lastError === 'string' ? capture.lastError : null,
      reopenCount: optNum(capture, 'reopenCount'),
      stuckReaders: optNum(capture, 'stuckReaders'),
    },
    pool: {
      size: num(pool, 'size', 'pool'),
      inlineBudgetPct: typeof pool.inlineBudgetPct === 'number' ? pool.inlineBudgetPct : null,
      mixCostUsPerPeriod: typeof pool.mixCostUsPerPeriod === 'number' ? pool.mixCostUsPerPeriod : null,
      periods: optNum(pool, 'periods'),
      inlinePeriods: num(pool, 'inlinePeriods', 'pool'),
      pooledPeriods: num(pool, 'pooledPeriods', 'pool'),
      inlineMixPeriods: optNum(pool, 'inlineMixPeriods'),
      pooledMixPeriods: optNum(pool, 'pooledMixPeriods'),
      skippedPeriods: optNum(pool, 'skippedPeriods'),
      deadlineMisses: num(pool, 'deadlineMisses', 'pool'),
      encodeErrors: optNum(pool, 'encodeErrors'),
      utilization: optNum(pool, 'utilization'),
    },
    perf: { serverLatency: summary(perf.serverLatency, 'perf.serverLatency'), captureBlock: summary(perf.captureBlock, 'perf.captureBlock') },
    udpSendErrors: typeof root.udp === 'object' && root.udp !== null ? optNum(root.udp as Obj, 'sendErrors') : 0,
    clients: (root.clients as unknown[]).map((c, i) => {
      const o = obj(c, `clients[${i}]`);
      return {
        clientId: typeof o.clientId === 'string' ? o.clientId : null,
        drops: num(o, 'drops', `clients[${i}]`),
        sentPackets: optNum(o, 'sentPackets'),
        queued: optNum(o, 'queued'),
      };
    }),
  };
}

/** State only, for the readiness wait: tolerant of a status that is still incomplete. */
export function captureStateOf(json: unknown): string {
  if (typeof json !== 'object' || json === null) return '(no status)';
  const capture = (json as Obj).capture;
  if (typeof capture !== 'object' || capture === null) return '(no capture)';
  return String((capture as Obj).state);
}
