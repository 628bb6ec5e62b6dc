/**
 * The `soak` scenario (issue #15): the box short of CPU for minutes, with
 * steady clients and churn, every packet checked against the source. The
 * service plays a self-identifying pattern WAV (bench/stream-verifier.ts);
 * busy processes take the cores away from it. Two phases on fresh services:
 * the pool as it ships ("auto": the measured inline/pool decision), then
 * every period through the workers (`pool.inlineBudgetPct: 0`), the path on
 * which a pool a ring behind once sent stale and mislabelled audio.
 * Overload is the point: misses, xruns and skipped periods are expected and
 * reported; anomalies (reordered, repeated, unflagged gaps, audio that is not
 * the source at its samplePos) must be 0.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ClientSpec } from './bench-ipc';
import { WARMUP_MS, BenchSession } from './bench-session';
import { distinctSubsets } from './channel-sets';
import { removeDir, trackChild, trackDir } from './cleanup';
import { round, stopFields, type ReportLine } from './report';
import { sleep } from './service-process';
import { ANOMALY_KINDS, patternWav } from './stream-verifier';

/** One phase's window is this many times --seconds (default 10 s: 90 s a phase, 3 min in all). */
export const SOAK_WINDOW_FACTOR = 9;
const SOURCE_CHANNELS = 32;
const STEADY_CLIENTS = 20;
const CHANNELS_PER_CLIENT = 4;
const CHURN_PER_SECOND = 10;
const CHURN_LIFETIME_MS = 2000;
/** Busy processes per core. */
const HOGS_PER_CORE = 3;

interface Phase {
  name: 'auto' | 'pool-forced';
  pool: Record<string, unknown>;
}
const PHASES: readonly Phase[] = [
  { name: 'auto', pool: {} },
  { name: 'pool-forced', pool: { inlineBudgetPct: 0 } },
];

/** Busy processes, one per core, for the length of a phase: the box is short of CPU, as on a loaded board. */
function startCpuHog(count: number): { stop(): void } {
  const kids = Array.from({ length: count }, () => {
    const c = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
    trackChild(c);
    return c;
  });
  return {
    stop: () => {
      for (const c of kids) c.kill('SIGKILL');
    },
  };
}

function specs(tag: string, count: number, seed: number): ClientSpec[] {
  return distinctSubsets(count, CHANNELS_PER_CLIENT, SOURCE_CHANNELS, seed).map((channels, i) => ({
    clientId: `soak-${tag}-${String(i).padStart(3, '0')}`,
    channels,
    codec: i % 2 === 0 ? 'pcm16' : 'pcm24',
    stalled: false,
    verify: true,
  }));
}

async function runPhase(phase: Phase, wav: string, windowS: number, hogs: number, log: (m: string) => void): Promise<ReportLine> {
  // Normal priority, unlike the other scenarios: the busy processes must be able to take the CPU from the box.
  const session = await BenchSession.open({ realtime: false, config: { capture: { device: 'auto', wavFile: wav }, pool: phase.pool } });
  const out: ReportLine = { phase: phase.name };
  let hog: { stop(): void } | null = null;
  try {
    await session.addClients(specs('steady', STEADY_CLIENTS, 0x50a4));
    await session.fleet.churnStart(session.service.port, CHURN_PER_SECOND, CHURN_LIFETIME_MS, specs('churn', 16, 0xc4a7));
    await sleep(WARMUP_MS);
    log(`soak ${phase.name}: ${STEADY_CLIENTS} steady clients, ${CHURN_PER_SECOND} new clients/s, ${hogs} busy processes, ${windowS} s...`);
    hog = startCpuHog(hogs);
    const m = await session.measure(windowS);
    hog.stop();
    hog = null;
    const churn = await session.fleet.churnStop();
    const v = m.fleet.verify;
    const anomalies = v ? ANOMALY_KINDS.reduce((n, k) => n + v.counts.anomalies[k], 0) : null;
    Object.assign(out, {
      seconds: windowS,
      poolSize: m.after.pool.size,
      inlineBudgetPct: m.after.pool.inlineBudgetPct,
      packetsChecked: v?.counts.checked ?? 0,
      anomalies,
      anomaliesByKind: v?.counts.anomalies ?? null,
      anomalyExamples: v?.examples ?? [],
      verifyingClients: v?.clients ?? 0,
      churnStarted: churn.started,
      churnConnected: churn.connected,
      churnFailed: churn.failed,
      churnFirstError: churn.firstError,
      churnCloseCodes: churn.closes,
      deadlineMisses: m.after.pool.deadlineMisses,
      skippedPeriods: m.after.pool.skippedPeriods - m.before.pool.skippedPeriods,
      inlinePeriods: m.after.pool.inlinePeriods - m.before.pool.inlinePeriods,
      pooledPeriods: m.after.pool.pooledPeriods - m.before.pool.pooledPeriods,
      xruns: m.after.capture.xruns - m.before.capture.xruns,
      drops: m.normalDrops,
      lostPackets: m.fleet.lostPackets,
      discontinuities: m.fleet.discontinuities,
      steadyClientsOpen: m.fleet.open,
      cpuPct: round(m.service.cpuPct, 1),
      clientCpuPct: round(m.clientProcess.cpuPct, 1),
    });
  } finally {
    hog?.stop();
    Object.assign(out, stopFields(await session.close()));
  }
  return out;
}

export async function runSoak(ctx: { seconds: number; log(msg: string): void }): Promise<ReportLine> {
  const windowS = Math.round(ctx.seconds * SOAK_WINDOW_FACTOR);
  const hogs = HOGS_PER_CORE * os.availableParallelism();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stagebox-soak-'));
  trackDir(dir);
  const wav = path.join(dir, 'pattern.wav');
  writeFileSync(wav, patternWav(SOURCE_CHANNELS, 48000));
  const phases: ReportLine[] = [];
  try {
    for (const phase of PHASES) phases.push(await runPhase(phase, wav, windowS, hogs, ctx.log));
  } finally {
    removeDir(dir);
  }
  const sum = (k: string): number => phases.reduce((n, p) => n + (typeof p[k] === 'number' ? (p[k] as number) : 0), 0);
  return {
    scenario: 'soak',
    serviceRealtime: false,
    steadyClients: STEADY_CLIENTS,
    channelsPerClient: CHANNELS_PER_CLIENT,
    churnPerSecond: CHURN_PER_SECOND,
    busyProcesses: hogs,
    packetsChecked: sum('packetsChecked'),
    anomalies: sum('anomalies'),
    skippedPeriods: sum('skippedPeriods'),
    deadlineMisses: sum('deadlineMisses'),
    xruns: sum('xruns'),
    phases,
  };
}
