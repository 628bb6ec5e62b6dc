/**
 * The `wifi` scenario: what musicians hear across Wi-Fi-like links. The real
 * service runs in the harness's box namespace; LISTENERS library clients (each
 * a personal stereo mix, pcm16, on its own link with its own model) run in the
 * listener namespace, pulled in real time by a player timer as `library` does.
 * One run per profile of bench/net-profiles/ (lan first), one JSON line with
 * all of them side by side. Each listener's arrival trace goes to
 * build/bench-traces/<profile>-<listener>.csv.
 */
import path from 'node:path';
import type { ClientSpec, WifiListenerStats } from './bench-ipc';
import { BenchSession, type Measurement } from './bench-session';
import { firstChannels } from './channel-sets';
import type { ImpairReport, DirectionReport } from './net/impair-report';
import { BOX_ADDR, harnessUnavailable, NetHarness } from './net/net-harness';
import { loadProfile, profileNames } from './net/net-profile';
import { personalMix } from './personal-mix';
import { stallOutcomes } from './stall-recovery';
import { round, stopFields, type ReportLine } from './report';
import type { BenchContext } from './scenarios';
import { REPO_ROOT, sleep, type StopInfo } from './service-process';

const LISTENERS = 4;
/** Every run meets the same network: the same seed gives the same drops and the same stall schedule. */
const SEED = 1;
/** Connect, first buffering; the target the buffer has grown to by then is kept (as a phone would). */
const WARMUP_MS = 3000;
/** The window per profile when SECONDS is not given. */
export const WIFI_DEFAULT_SECONDS = 60;
export const TRACE_DIR = path.join(REPO_ROOT, 'build', 'bench-traces');
/** Setup, warm-up and teardown per profile, on top of the window. */
const PROFILE_OVERHEAD_MS = 60_000;

/**
 * Transports each profile runs with, side by side (WIFI_TRANSPORTS to choose): the WebSocket, UDP datagrams with
 * one redundant copy (issue #13's k = 1), and `webrtc`, the same datagrams over a WebRTC data channel (werift playing
 * the browser, as `stagebox listen --transport webrtc` does), all three through the client library and its jitter
 * buffer, so they differ only in the transport. `page-webrtc` and `page-ws` are the listener page in headless
 * Chromium (BROWSER_LISTENERS of them) over its data channel or over the WebSocket (?transport=ws): the browser's
 * whole path, whose audible events on this machine mostly measure the page's timer-driven audio (BENCHMARKS.md).
 */
export type WifiTransport = 'ws' | 'udp' | 'webrtc' | 'page-webrtc' | 'page-ws';
const TRANSPORT_NAMES: readonly WifiTransport[] = ['ws', 'udp', 'webrtc', 'page-webrtc', 'page-ws'];
/** How the audio of a run's listeners travels: the page's runs name the page's transport. */
const wireTransport = (t: WifiTransport): 'ws' | 'udp' | 'webrtc' => (t === 'page-webrtc' ? 'webrtc' : t === 'page-ws' ? 'ws' : t);
export const WIFI_TRANSPORTS: readonly WifiTransport[] = (process.env.WIFI_TRANSPORTS ?? 'ws,udp,webrtc')
  .split(',')
  .map((t) => t.trim())
  .filter((t): t is WifiTransport => (TRANSPORT_NAMES as readonly string[]).includes(t));
/**
 * One page: Chromium takes the listener namespace's first address for its sockets, so every page would share link
 * l0 (and a page costs the bench far more CPU than a library listener). Compare it with the others' l0.
 */
const BROWSER_LISTENERS = 1;
const BROWSER_CONNECT_MS = 30_000;
const UDP_REDUNDANCY = Number(process.env.WIFI_UDP_REDUNDANCY ?? 1);
/** 'auto' (the library's default: follows the loss bursts) or a fixed 1-8. */
const UDP_SPACING: number | 'auto' = process.env.WIFI_UDP_SPACING === undefined || process.env.WIFI_UDP_SPACING === 'auto' ? 'auto' : Number(process.env.WIFI_UDP_SPACING);

/** Issue #12's profiles, mildest first; any other file of bench/net-profiles/ runs after them. */
const ORDER = ['lan', 'office-wifi', 'busy-venue', 'phone-powersave'];

/** Every profile, or those WIFI_PROFILES names (comma-separated), in this order. */
export function wifiProfiles(): string[] {
  const names = profileNames();
  const all = [...ORDER.filter((n) => names.includes(n)), ...names.filter((n) => !ORDER.includes(n))];
  const only = process.env.WIFI_PROFILES?.split(',').map((n) => n.trim()).filter((n) => n.length > 0);
  if (!only) return all;
  const unknown = only.filter((n) => !all.includes(n));
  if (unknown.length > 0) throw new Error(`WIFI_PROFILES: no profile ${unknown.map((n) => JSON.stringify(n)).join(', ')}; allowed: ${all.join(', ')}`);
  return only;
}

/** The most the whole scenario may take (run-bench's watchdog). */
export function wifiBudgetMs(seconds: number): number {
  return wifiProfiles().length * WIFI_TRANSPORTS.length * (seconds * 1000 + PROFILE_OVERHEAD_MS);
}

export async function runWifi(ctx: BenchContext): Promise<ReportLine> {
  const why = harnessUnavailable();
  if (why) {
    ctx.log(`wifi: skipped: ${why}`);
    return { scenario: 'wifi', skipped: why };
  }
  const profiles: ReportLine[] = [];
  for (const name of wifiProfiles()) {
    for (const transport of WIFI_TRANSPORTS) {
      // One run that cannot start (a page that never connects) must not lose the others' results.
      try {
        profiles.push(await runProfile(name, transport, ctx));
      } catch (err) {
        const error = (err as Error).message.split('\n')[0]!;
        ctx.log(`wifi: ${name} over ${transport}: failed: ${error}`);
        profiles.push({ profile: name, transport, error });
      }
    }
  }
  ctx.log(`wifi: per listener-minute (${LISTENERS} listeners x ${ctx.seconds} s each):`);
  ctx.log('wifi:   profile/transport    audible  outside gaps>buffer  underruns  conc.loss  conc.ms  buffer p50/p99 ms  target end/max ms  stall recovery med/max s  box xruns/skipped/holds');
  for (const p of profiles) {
    const cell = (v: unknown, w: number): string => String(v ?? '-').padStart(w);
    ctx.log(
      `wifi:   ${`${String(p.profile)}/${String(p.transport)}`.padEnd(20)} ${cell(p.audibleEventsPerMin, 7)}  ${cell(p.eventsOutsideLongGapsPerMin, 19)}  ${cell(p.underrunsPerMin, 9)}  ${cell(p.concealedLossEventsPerMin, 9)}  ${cell(p.concealedMsPerMin, 7)}  ${cell(`${p.bufferP50Ms}/${p.bufferP99Ms}`, 17)}  ${cell(`${p.targetSettledMs}/${p.targetMaxMs}`, 17)}  ${cell(`${p.stallRecoveryMedianS}/${p.stallRecoveryMaxS}`, 24)}  ${cell(`${p.boxXruns}/${p.boxSkippedPeriods}/${p.boxHolds}`, 17)}`,
    );
  }
  return { scenario: 'wifi', seconds: ctx.seconds, listeners: LISTENERS, seed: SEED, mix: 'stereo pcm16 of 32 channels', transports: WIFI_TRANSPORTS, udpRedundancy: UDP_REDUNDANCY, udpSpacing: UDP_SPACING, traces: path.relative(REPO_ROOT, TRACE_DIR), profiles };
}

async function runProfile(name: string, transport: WifiTransport, ctx: BenchContext): Promise<ReportLine> {
  const profile = loadProfile(name);
  ctx.log(`wifi: ${name} over ${transport}: starting the harness and the service`);
  const harness = await NetHarness.start({ profile, listeners: LISTENERS, seed: SEED, maxSeconds: (WARMUP_MS + ctx.seconds * 1000 + PROFILE_OVERHEAD_MS) / 1000 });
  let session: BenchSession | null = null;
  let stop: StopInfo | null = null;
  let line: ReportLine = { profile: name, transport };
  try {
    // 0.0.0.0 as on a box: the listeners come in on BOX_ADDR, the bench's own HTTP calls on loopback.
    session = await BenchSession.open({ netns: { prefix: harness.prefix('box'), host: '0.0.0.0', httpSocket: (port) => harness.boxSocket(port) } }, harness.prefix('listener'));
    const all = firstChannels(32);
    const browser = transport === 'page-webrtc' || transport === 'page-ws';
    const specs: ClientSpec[] = browser
      ? Array.from({ length: BROWSER_LISTENERS }, (_, i) => ({
          clientId: `wifi-${name}-page${i}`,
          channels: [0, 1],
          codec: 'pcm16',
          stalled: false,
          host: BOX_ADDR,
          wifiLabel: `l${i}`,
          browser: true,
          transport: wireTransport(transport),
        }))
      : harness.listenerAddrs.map((addr, i) => ({
          clientId: `wifi-${name}-l${i}`,
          channels: all,
          codec: 'pcm16',
          stalled: false,
          mix: personalMix(i),
          viaLibrary: true,
          host: BOX_ADDR,
          localAddress: addr,
          wifiLabel: `l${i}`,
          transport,
          redundancy: UDP_REDUNDANCY,
          spacing: UDP_SPACING,
        }));
    // A page loads, starts its audio and opens its data channel across the impaired link: power-save holds slow that.
    await session.addClients(specs, browser ? BROWSER_CONNECT_MS : undefined);
    ctx.log(`wifi: ${name}: ${specs.length} ${browser ? 'listener page(s) in Chromium' : 'listeners'}, warming up ${WARMUP_MS / 1000} s, measuring ${ctx.seconds} s...`);
    await sleep(WARMUP_MS);
    await harness.snapshot(); // the warm-up's impairments are not the window's
    const m = await session.measure(ctx.seconds);
    const net = await harness.snapshot();
    const wifi = await session.fleet.wifi(TRACE_DIR, `${name}-${transport}`);
    line = { transport, ...summarize(name, transport, m, net, wifi.listeners, wifi.pooledBufferMs) };
  } finally {
    if (session) stop = await session.close();
    await harness.stop();
  }
  return stop ? { ...line, ...stopFields(stop) } : line;
}

const median = (xs: number[]): number | null => (xs.length === 0 ? null : [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1]!);
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

/** One direction of every link, pooled: counts summed, delay quantiles as the median (max: the largest) over links. */
function networkSide(dirs: DirectionReport[]): ReportLine {
  const bursts = Array.from({ length: 8 }, (_, i) => sum(dirs.map((d) => d.dropBursts[i]!)));
  const stalls = dirs.flatMap((d) => d.stalls);
  return {
    packets: sum(dirs.map((d) => d.packets)),
    dropped: sum(dirs.map((d) => d.dropped)),
    overflow: sum(dirs.map((d) => d.overflow)),
    dropBursts: bursts,
    delayP50Ms: round(median(dirs.map((d) => d.delayMs.p50))),
    delayP95Ms: round(median(dirs.map((d) => d.delayMs.p95))),
    delayP99Ms: round(median(dirs.map((d) => d.delayMs.p99))),
    delayMaxMs: round(Math.max(...dirs.map((d) => d.delayMs.max))),
    stalls: stalls.length,
    stallsOver100Ms: stalls.filter((s) => s.durationMs > 100).length,
    stallHeld: sum(stalls.map((s) => s.held)),
    holds: sum(dirs.map((d) => d.holds.count)),
    holdHeld: sum(dirs.map((d) => d.holds.held)),
  };
}

function summarize(name: string, transport: WifiTransport, m: Measurement, net: ImpairReport, ls: WifiListenerStats[], pooled: WifiListenerStats['bufferMs']): ReportLine {
  const minutes = sum(ls.map((l) => (l.toMs - l.fromMs) / 60_000));
  const perMin = (n: number): number | null => (minutes > 0 ? round(n / minutes, 2) : null);
  const stalls = ls.flatMap((l, i) => stallOutcomes(l, net.links[i]!.down.stalls));
  const recovered = stalls.map((s) => s.recoveryS).filter((v): v is number => v !== null);
  const underruns = sum(ls.map((l) => l.underruns));
  const concealed = sum(ls.map((l) => l.concealedLossEvents));
  const { before, after, fleet } = m;
  return {
    profile: name,
    seconds: m.seconds,
    listeners: ls.length,
    audibleEventsPerMin: perMin(underruns + concealed),
    underrunsPerMin: perMin(underruns),
    concealedLossEventsPerMin: perMin(concealed),
    // Issue #12's measure: events apart from gaps in arrival longer than the buffer (and apart from stalls of 100 ms+).
    // null for the page: it hands over no arrival times to classify by.
    eventsOutsideLongGapsPerMin: ls.every((l) => l.outsideLongGaps !== null) ? perMin(sum(ls.map((l) => l.outsideLongGaps!))) : null,
    eventsOutsideStallsPerMin: ls.every((l) => l.outsideStalls !== null) ? perMin(sum(ls.map((l) => l.outsideStalls!))) : null,
    concealedMsPerMin: perMin(sum(ls.map((l) => l.concealedMs))),
    skipEventsPerMin: perMin(sum(ls.map((l) => l.skipEvents))),
    skippedMsPerMin: perMin(sum(ls.map((l) => l.skippedMs))),
    bufferP50Ms: round(pooled?.p50 ?? null, 2),
    bufferP99Ms: round(pooled?.p99 ?? null, 2),
    bufferMaxMs: round(pooled?.max ?? null, 2),
    targetSettledMs: round(median(ls.flatMap((l) => (l.targetEndMs === null ? [] : [l.targetEndMs]))), 2),
    targetMaxMs: round(Math.max(0, ...ls.map((l) => l.targetMaxMs ?? 0)), 2),
    stalls: stalls.length,
    stallRecoveryMedianS: round(median(recovered), 2),
    stallRecoveryMaxS: recovered.length ? round(Math.max(...recovered), 2) : null,
    stallsNotRecovered: stalls.length - recovered.length,
    latePackets: sum(ls.map((l) => l.late)),
    lostPackets: sum(ls.map((l) => l.lost)),
    concealedLossPackets: sum(ls.map((l) => l.concealedLossPackets)),
    seqGaps: sum(ls.map((l) => l.seqGaps)),
    recoveredPackets: sum(ls.map((l) => l.recovered)),
    // Listeners still on the transport asked for at the end of the window (a datagram flow can fall back to the WebSocket).
    listenersOnTransportAtEnd: ls.filter((l) => l.transportNow === wireTransport(transport)).length,
    spacingAtEnd: ls.map((l) => l.spacingAtEnd),
    e2eLatencyP50Ms: round(fleet.e2e.count ? Math.min(fleet.e2e.p50Ms, fleet.e2e.maxMs) : null),
    e2eLatencyP99Ms: round(fleet.e2e.count ? Math.min(fleet.e2e.p99Ms, fleet.e2e.maxMs) : null),
    playerTickP99Ms: round(fleet.jitter ? Math.min(fleet.jitter.playerTick.p99Ms, fleet.jitter.playerTick.maxMs) : null),
    boxXruns: after.capture.xruns - before.capture.xruns,
    // Every listener sees the box's holds; the most any one saw (a listener's own network loss can hide one).
    boxHolds: ls.every((l) => l.boxStalls !== null) ? Math.max(0, ...ls.map((l) => l.boxStalls!)) : null,
    boxHoldMaxMs: ls.every((l) => l.boxStallMaxMs !== null) ? round(Math.max(0, ...ls.map((l) => l.boxStallMaxMs!)), 1) : null,
    boxSkippedPeriods: after.pool.skippedPeriods - before.pool.skippedPeriods,
    // The perf reset zeroes deadlineMisses; xruns and skippedPeriods run on.
    boxDeadlineMisses: after.pool.deadlineMisses,
    boxDrops: m.normalDrops,
    discontinuities: fleet.discontinuities,
    disconnectedListeners: fleet.clients - fleet.open,
    cpuPct: round(m.service.cpuPct, 1),
    clientCpuPct: round(m.clientProcess.cpuPct, 1),
    network: {
      down: networkSide(net.links.map((l) => l.down)),
      up: networkSide(net.links.map((l) => l.up)),
      kernelDropped: net.kernelDropped,
      userDropped: net.userDropped,
    },
    stallDetail: stalls,
    /** nh-impair's own report of the window, every link and direction, as it printed it. */
    harness: net,
    perListener: ls.map((l) => ({
      listener: l.label,
      underruns: l.underruns,
      concealedLossEvents: l.concealedLossEvents,
      concealedMs: round(l.concealedMs, 1),
      bufferP50Ms: round(l.bufferMs?.p50 ?? null, 2),
      bufferP99Ms: round(l.bufferMs?.p99 ?? null, 2),
      targetEndMs: round(l.targetEndMs, 2),
      targetMaxMs: round(l.targetMaxMs, 2),
      late: l.late,
      lost: l.lost,
      packets: l.packets,
      trace: l.trace ? path.relative(REPO_ROOT, l.trace) : null,
    })),
  };
}
