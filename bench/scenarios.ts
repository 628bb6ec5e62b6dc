/**
 * The bench scenarios. The source is always the built-in test signal:
 * 32 channels @ 48 kHz, 128-frame periods (2.67 ms).
 */
import type { BenchCodec, ClientSpec } from './bench-ipc';
import { BenchSession, WARMUP_MS, type Measurement } from './bench-session';
import { runBoot } from './boot-scenario';
import { runDeviceLoss } from './device-loss-scenario';
import { runSoak } from './soak-scenario';
import { runRecord } from './record-scenario';
import { distinctSubsets, firstChannels, rotation } from './channel-sets';
import { personalMix } from './personal-mix';
import { clampedQuantile, failedCriteria, measurementFields, round, stopFields, type LoadShape, type ReportLine } from './report';
import { sleep, type StopInfo } from './service-process';
import { runWifi, WIFI_DEFAULT_SECONDS } from './wifi-scenario';

export const SCENARIO_NAMES = ['seed', 'wide', 'udp-wide', 'slow-client', 'ramp', 'shared', 'udp-shared', 'deflate', 'mix-pcm', 'mix-opus', 'boot', 'device-loss', 'library', 'soak', 'wifi', 'record'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

export interface BenchContext {
  seconds: number;
  /** SECONDS (--seconds) was given; without it a scenario may use its own default (wifi: 60 s). */
  secondsGiven?: boolean;
  log(msg: string): void;
}

const SOURCE_CHANNELS = 32;
const SUBSET = 16;
const SEED_CLIENTS = 10;
const WIDE_CLIENTS = 32;

/** Client counts the ramps try, in order; the last is stream.maxClients of the bench config. */
const RAMP_LADDER = [10, 25, 50, 100, 150, 200, 300, 400, 500, 600, 800, 1000, 1250, 1500, 2000] as const;
/** The bound for one ramp at SECONDS=10. */
const RAMP_BUDGET_MS = 180_000;
/** A step whose client process used more CPU than this was probably limited by the bench, not the box. */
const CLIENT_SATURATED_PCT = 85;

/** Seed-style subsets for every scenario that needs them: one list, so a count is always a prefix. */
let subsetCache: number[][] | null = null;
function subsets(count: number): number[][] {
  if (!subsetCache || subsetCache.length < count) subsetCache = distinctSubsets(Math.max(count, RAMP_LADDER[RAMP_LADDER.length - 1]!), SUBSET, SOURCE_CHANNELS);
  return subsetCache.slice(0, count);
}

function specsFor(scenario: string, lists: number[][], codec: BenchCodec, stalled = false): ClientSpec[] {
  const tag = stalled ? 'stalled' : 'c';
  const udp = scenario.startsWith('udp-') ? { transport: 'udp' as const, redundancy: UDP_REDUNDANCY } : {};
  return lists.map((channels, i) => ({ clientId: `${scenario}-${tag}-${String(i).padStart(4, '0')}`, channels, codec, stalled, ...udp }));
}

/** Copies of the previous packet in each datagram for the udp- scenarios (the library's default k). */
const UDP_REDUNDANCY = 1;

interface FixedLoad {
  normal: ClientSpec[];
  stalled: ClientSpec[];
  shape: LoadShape;
  /** STAGEBOX_POOL_SIZE for this scenario; undefined keeps the service's "auto". */
  poolSize?: number;
}

function fixedLoad(name: Exclude<ScenarioName, 'ramp' | 'shared' | 'udp-shared' | 'boot' | 'device-loss' | 'soak' | 'wifi' | 'record'>): FixedLoad {
  switch (name) {
    case 'seed':
      return { normal: specsFor(name, subsets(SEED_CLIENTS), 'pcm16'), stalled: [], shape: { clients: SEED_CLIENTS, channelsPerClient: SUBSET, codec: 'pcm16' } };
    case 'wide':
    case 'udp-wide': {
      // udp-wide: the same load with every client's audio over UDP (the WebSocket stays for control).
      const lists = Array.from({ length: WIDE_CLIENTS }, (_, i) => rotation(i, SOURCE_CHANNELS));
      return { normal: specsFor(name, lists, 'pcm16'), stalled: [], shape: { clients: WIDE_CLIENTS, channelsPerClient: SOURCE_CHANNELS, codec: 'pcm16' } };
    }
    case 'slow-client': {
      // The stalled client gets the next distinct subset: its own output, as a real phone would.
      const lists = subsets(SEED_CLIENTS + 1);
      return {
        normal: specsFor(name, lists.slice(0, SEED_CLIENTS), 'pcm16'),
        stalled: specsFor(name, lists.slice(SEED_CLIENTS), 'pcm16', true),
        shape: { clients: SEED_CLIENTS, channelsPerClient: SUBSET, codec: 'pcm16' },
      };
    }
    case 'deflate':
      return { normal: specsFor(name, subsets(SEED_CLIENTS), 'deflate'), stalled: [], shape: { clients: SEED_CLIENTS, channelsPerClient: SUBSET, codec: 'deflate' } };
    case 'mix-pcm': {
      // 32 musicians, each a different stereo mix of all 32 channels.
      const all = firstChannels(SOURCE_CHANNELS);
      const normal = specsFor(name, Array.from({ length: WIDE_CLIENTS }, () => all), 'pcm16').map((spec, i) => ({ ...spec, mix: personalMix(i) }));
      return { normal, stalled: [], shape: { clients: WIDE_CLIENTS, channelsPerClient: SOURCE_CHANNELS, codec: 'pcm16' } };
    }
    case 'library': {
      // seed's load, but every client is the client library with its jitter buffer played in real time.
      const normal = specsFor(name, subsets(SEED_CLIENTS), 'pcm16').map((spec) => ({ ...spec, viaLibrary: true }));
      return { normal, stalled: [], shape: { clients: SEED_CLIENTS, channelsPerClient: SUBSET, codec: 'pcm16' } };
    }
    case 'mix-opus': {
      // mix-pcm's 32 mixes, encoded as Opus in 5 ms frames.
      const all = firstChannels(SOURCE_CHANNELS);
      const normal = specsFor(name, Array.from({ length: WIDE_CLIENTS }, () => all), 'opus').map((spec, i) => ({ ...spec, mix: personalMix(i, 'opus') }));
      return { normal, stalled: [], shape: { clients: WIDE_CLIENTS, channelsPerClient: SOURCE_CHANNELS, codec: 'opus' } };
    }
  }
}

export async function runScenario(name: ScenarioName, ctx: BenchContext): Promise<ReportLine> {
  if (name === 'ramp') return runRamp(name, (n) => subsets(n), ctx);
  if (name === 'boot') return runBoot(ctx);
  if (name === 'device-loss') return runDeviceLoss(ctx);
  if (name === 'soak') return runSoak(ctx);
  if (name === 'wifi') return runWifi({ ...ctx, seconds: ctx.secondsGiven ? ctx.seconds : WIFI_DEFAULT_SECONDS });
  if (name === 'record') return runRecord(ctx);
  if (name === 'shared' || name === 'udp-shared') return runRamp(name, (n) => Array.from({ length: n }, () => firstChannels(SUBSET)), ctx);
  return runFixed(name, fixedLoad(name), ctx);
}

async function runFixed(name: ScenarioName, load: FixedLoad, ctx: BenchContext): Promise<ReportLine> {
  ctx.log(`${name}: starting the service`);
  const session = await BenchSession.open({ poolSize: load.poolSize });
  let line: ReportLine = { scenario: name };
  let stop: StopInfo;
  try {
    await session.addClients([...load.normal, ...load.stalled]);
    const extra = load.stalled.length > 0 ? ` + ${load.stalled.length} stalled` : '';
    ctx.log(`${name}: ${load.normal.length} clients${extra} (pool ${session.poolSize}), warming up ${WARMUP_MS / 1000} s, measuring ${ctx.seconds} s...`);
    await sleep(WARMUP_MS);
    const m = await session.measure(ctx.seconds);
    line = { ...line, ...measurementFields(load.shape, m) };
    if (m.slow) {
      line.slowClients = load.stalled.length;
      line.slowClientDrops = m.slow.maxDrops;
      line.slowClientMaxQueued = m.slow.maxQueued;
      line.slowClientClosedByBox = m.slow.closedByBox;
      line.slowClientClosedAfterS = m.slow.closedAfterS;
    }
  } finally {
    stop = await session.close();
  }
  return { ...line, ...stopFields(stop) };
}

/** A udp- ramp step counts only if every client's audio really came over UDP. */
function rampCriteria(name: ScenarioName, m: Measurement, count: number): string[] {
  const failed = failedCriteria(m, count);
  const onUdp = m.fleet.audioTransports.udp ?? 0;
  if (name.startsWith('udp-') && onUdp < m.fleet.open) failed.push(`notOnUdp=${m.fleet.open - onUdp}`);
  return failed;
}

interface RampStep {
  phase: 'probe' | 'confirm';
  clients: number;
  seconds: number;
  pass: boolean;
  failed: string[];
  [metric: string]: unknown;
}

function stepRecord(phase: RampStep['phase'], clients: number, m: Measurement, failed: string[]): RampStep {
  const clientCpuPct = round(m.clientProcess.cpuPct, 1);
  const step: RampStep = {
    phase,
    clients,
    seconds: m.seconds,
    pass: failed.length === 0,
    failed,
    deadlineMisses: m.after.pool.deadlineMisses,
    drops: m.normalDrops,
    lostPackets: m.fleet.lostPackets,
    serverLatencyP99Ms: clampedQuantile(m.after.perf.serverLatency, m.after.perf.serverLatency.p99Ms),
    e2eLatencyP99Ms: clampedQuantile(m.fleet.e2e, m.fleet.e2e.p99Ms),
    captureBlockP99Ms: clampedQuantile(m.after.perf.captureBlock, m.after.perf.captureBlock.p99Ms),
    cpuPct: round(m.service.cpuPct, 1),
    clientCpuPct,
    audioTransports: m.fleet.audioTransports,
    udpSendErrors: m.after.udpSendErrors - m.before.udpSendErrors,
  };
  if (failed.length > 0 && clientCpuPct !== null && clientCpuPct >= CLIENT_SATURATED_PCT) {
    step.hint = `bench client process at ${clientCpuPct}% CPU: this limit may be the bench's, not the box's`;
  }
  return step;
}

function errorStep(phase: RampStep['phase'], clients: number, seconds: number, err: unknown): RampStep {
  return { phase, clients, seconds, pass: false, failed: [`error: ${(err as Error).message.split('\n')[0]}`] };
}

/**
 * Most clients served cleanly (no deadline miss, no drop, no lost packet):
 * one service, clients added step by step with a short probe each, stopping
 * at the first failing step (a step fails when two probes in a row fail);
 * then the best count is confirmed for the full duration on the same,
 * warmed-up service after closing the extra clients. A freshly started
 * service misses deadlines for a few seconds after hundreds of clients
 * connect (JIT, GC); that start-up transient is not steady-state capacity.
 * Bounded by the ladder and RAMP_BUDGET_MS.
 */
async function runRamp(name: ScenarioName, channelLists: (n: number) => number[][], ctx: BenchContext): Promise<ReportLine> {
  const t0 = Date.now();
  const probeS = Math.round(Math.max(3, ctx.seconds / 3) * 10) / 10;
  const confirmReserveMs = ctx.seconds * 1000 + 15_000;
  const stepsDeadline = t0 + Math.max(60_000, RAMP_BUDGET_MS - confirmReserveMs);
  const all = specsFor(name, channelLists(RAMP_LADDER[RAMP_LADDER.length - 1]!), 'pcm16');
  const steps: RampStep[] = [];
  let firstProbe: Probe | null = null;
  let confirm: Probe | null = null;
  let stoppedBy = 'ladder-end';
  let msPerClient = 10;
  let stop: StopInfo;

  ctx.log(`${name}: starting the service`);
  const session = await BenchSession.open({});
  try {
    for (const count of RAMP_LADDER) {
      const have = session.clientCount;
      const estimateMs = (count - have) * msPerClient + WARMUP_MS + probeS * 1000 + 1000;
      if (Date.now() + estimateMs > stepsDeadline) {
        stoppedBy = 'time-budget';
        break;
      }
      ctx.log(`${name}: ${count} clients, probing ${probeS} s...`);
      let m: Measurement;
      try {
        const tc = Date.now();
        await session.addClients(all.slice(have, count));
        msPerClient = Math.max(2, (Date.now() - tc) / (count - have));
        await sleep(WARMUP_MS);
        m = await session.measure(probeS);
      } catch (err) {
        steps.push(errorStep('probe', count, probeS, err));
        stoppedBy = 'failed-step';
        break;
      }
      let failed = rampCriteria(name, m, count);
      steps.push(stepRecord('probe', count, m, failed));
      firstProbe ??= { clients: count, m, failed };
      // On a shared 2-core box one descheduled period is a miss: a step fails only if a second probe fails too.
      if (failed.length > 0 && Date.now() + probeS * 1000 + 1000 <= stepsDeadline) {
        ctx.log(`${name}: ${count} clients failed (${failed.join(', ')}); probing once more...`);
        try {
          m = await session.measure(probeS);
          failed = rampCriteria(name, m, count);
          steps.push({ ...stepRecord('probe', count, m, failed), retry: true });
        } catch (err) {
          steps.push({ ...errorStep('probe', count, probeS, err), retry: true });
          failed = ['error'];
        }
      }
      if (failed.length > 0) {
        ctx.log(`${name}: ${count} clients failed: ${failed.join(', ')}`);
        stoppedBy = 'failed-step';
        break;
      }
    }
    confirm = await confirmBest(name, session, steps, ctx, t0);
  } finally {
    stop = await session.close();
  }

  const confirmed = confirm !== null && confirm.failed.length === 0;
  const shown = confirm ?? firstProbe;
  const bestProbe = Math.max(0, ...steps.filter((s) => s.phase === 'probe' && s.pass).map((s) => s.clients));
  const line: ReportLine = { scenario: name };
  if (shown) Object.assign(line, measurementFields({ clients: shown.clients, channelsPerClient: SUBSET, codec: 'pcm16' }, shown.m));
  else Object.assign(line, { clients: 0, channelsPerClient: SUBSET, codec: 'pcm16' });
  // null: short probes passed but the full-length run did not confirm any count.
  line.maxCleanClients = confirmed ? confirm!.clients : bestProbe === 0 ? 0 : null;
  line.maxCleanClientsProbe = bestProbe;
  line.confirmed = confirmed;
  line.rampStoppedBy = stoppedBy;
  line.rampProbeSeconds = probeS;
  line.rampElapsedS = Math.round((Date.now() - t0) / 1000);
  line.rampSteps = steps;
  return { ...line, ...stopFields(stop) };
}

interface Probe {
  clients: number;
  m: Measurement;
  failed: string[];
}

/**
 * Full-length run at the best probe-passing count, then (while that fails and
 * the ramp's time budget is left) at each passing count below it, so a count
 * the short probes flattered does not hide the one the machine holds for the
 * whole window. Clients above the count are closed first; the service keeps
 * running, so it is warm.
 */
async function confirmBest(name: ScenarioName, session: BenchSession, steps: RampStep[], ctx: BenchContext, t0: number): Promise<Probe | null> {
  const passing = [...new Set(steps.filter((s) => s.phase === 'probe' && s.pass).map((s) => s.clients))].sort((a, b) => b - a);
  let confirm: Probe | null = null;
  for (const count of passing) {
    if (!session.serviceAlive) {
      steps.push(errorStep('confirm', count, ctx.seconds, new Error('the service is no longer running')));
      break;
    }
    if (confirm && Date.now() + ctx.seconds * 1000 + 5000 > t0 + RAMP_BUDGET_MS) break;
    ctx.log(`${name}: confirming ${count} clients for ${ctx.seconds} s...`);
    let m: Measurement;
    try {
      await session.trimTo(count);
      await sleep(WARMUP_MS);
      m = await session.measure(ctx.seconds);
    } catch (err) {
      steps.push(errorStep('confirm', count, ctx.seconds, err));
      continue;
    }
    const failed = rampCriteria(name, m, count);
    confirm = { clients: count, m, failed };
    steps.push(stepRecord('confirm', count, m, failed));
    if (failed.length === 0) break;
    ctx.log(`${name}: confirmation of ${count} clients failed: ${failed.join(', ')}`);
  }
  return confirm;
}
