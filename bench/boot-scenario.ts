/**
 * The `boot` scenario (issue #5 item 7): time from process start to the
 * first audio packet served to a client that was already waiting, and the
 * service's resident memory at idle and with 32 clients.
 */
import { readFileSync } from 'node:fs';
import WebSocket, { type RawData } from 'ws';
import type { ClientSpec } from './bench-ipc';
import { rotation } from './channel-sets';
import { ClientFleet } from './client-fleet';
import { getJson } from './http-json';
import { median, round, stopFields, type ReportLine } from './report';
import { ServiceProcess, sleep, type StopInfo } from './service-process';
import { parseStatus } from './service-status';

/** Boots measured; the report gives their median and max. */
export const BOOT_REPEATS = 5;
/** Issue #5 item 7: first packet within 2 s of process start on this machine. */
export const BOOT_TARGET_MS = 2000;
/** Issue #5 item 7: resident memory with 32 clients, for boards with 512 MB. */
export const RSS_TARGET_MB = 120;

const SOURCE_CHANNELS = 32;
const LOAD_CLIENTS = 32;
/** The waiting client retries a refused connection this often. */
const RETRY_MS = 5;
/** Bound on one boot: spawn to first packet. */
const BOOT_TIMEOUT_MS = 15_000;
/** Quiet time after the first packet (client gone) before idle RSS is read. */
const IDLE_SETTLE_MS = 3000;
const IDLE_SAMPLE_MS = 2000;
const RSS_SAMPLE_EVERY_MS = 250;
/** Longest RSS window with the 32 clients, s. */
const LOAD_WINDOW_MAX_S = 10;

interface BootTimes {
  /** Spawn to the first accepted WebSocket upgrade (the server listens). */
  connectMs: number;
  /** Spawn to "subscribed". */
  subscribedMs: number;
  /** Spawn to the first binary packet: the boot time. */
  firstPacketMs: number;
  /** Refused connection attempts before the server listened. */
  refused: number;
  /** Spawn to the arrival of the service's own log lines (pino writes asynchronously: upper bounds). */
  logMs: Record<string, number | null>;
}

/** Phases the service logs at info, in start-up order. */
const LOG_PHASES: Record<string, string> = {
  starting: 'stagebox starting',
  stateLoaded: 'state loaded',
  listening: 'listening',
  ready: 'ready',
};

/**
 * A client that is already trying when the service starts: retries refused
 * connections every RETRY_MS, then hello + subscribe to every channel, and
 * resolves at the first binary packet. Bounded by BOOT_TIMEOUT_MS.
 */
function waitForFirstPacket(port: number, t0: number): Promise<Omit<BootTimes, 'logMs'>> {
  return new Promise((resolve, reject) => {
    const deadline = t0 + BOOT_TIMEOUT_MS;
    let refused = 0;
    let connectMs = 0;
    let subscribedMs = 0;
    let ws: WebSocket | null = null;
    let done = false;
    const finish = (err: Error | null, times?: Omit<BootTimes, 'logMs'>): void => {
      if (done) return;
      done = true;
      ws?.terminate();
      if (err) reject(err);
      else resolve(times!);
    };
    const attempt = (): void => {
      if (done) return;
      if (performance.now() > deadline) {
        finish(new Error(`boot: no first packet within ${BOOT_TIMEOUT_MS} ms of spawn (${refused} refused connects)`));
        return;
      }
      const sock = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false, handshakeTimeout: BOOT_TIMEOUT_MS });
      ws = sock;
      sock.on('error', (err: NodeJS.ErrnoException) => {
        if (done || sock !== ws) return;
        if (err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET') {
          refused++;
          setTimeout(attempt, RETRY_MS);
        } else finish(new Error(`boot: client error ${err.code ?? ''} ${err.message}`));
      });
      sock.on('open', () => {
        connectMs = performance.now() - t0;
        sock.send(JSON.stringify({ type: 'hello', protocol: 1, clientId: 'boot-waiter', name: 'bench' }));
        sock.send(JSON.stringify({ type: 'subscribe', channels: rotation(0, SOURCE_CHANNELS), codec: 'pcm16' }));
      });
      sock.on('message', (data: RawData, isBinary: boolean) => {
        if (isBinary) {
          finish(null, { connectMs, subscribedMs, firstPacketMs: performance.now() - t0, refused });
          return;
        }
        const msg = JSON.parse(data.toString()) as { type?: string; code?: string; message?: string };
        if (msg.type === 'subscribed') subscribedMs = performance.now() - t0;
        else if (msg.type === 'error') finish(new Error(`boot: box answered error ${msg.code ?? '?'}: ${msg.message ?? ''}`));
      });
      sock.on('close', () => {
        if (!done && connectMs > 0) finish(new Error('boot: the box closed the waiting client before the first packet'));
      });
    };
    attempt();
  });
}

/** VmRSS, RssAnon, RssFile (MB) and Threads of `pid` from /proc; null once it is gone. */
function readProcStatus(pid: number): { rssMb: number; anonMb: number; fileMb: number; threads: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, 'm').exec(text)?.[1] ?? NaN) / 1024;
    return { rssMb: kb('VmRSS'), anonMb: kb('RssAnon'), fileMb: kb('RssFile'), threads: Number(/^Threads:\s+(\d+)/m.exec(text)?.[1] ?? NaN) };
  } catch {
    return null;
  }
}

interface RssWindow {
  medianMb: number | null;
  maxMb: number | null;
  /** Anonymous and file-backed parts at the max sample. */
  anonMb: number | null;
  fileMb: number | null;
  threads: number | null;
  samples: number;
}

/** Samples /proc/<pid>/status every RSS_SAMPLE_EVERY_MS for `ms`. */
async function sampleRss(pid: number, ms: number): Promise<RssWindow> {
  const samples: { rssMb: number; anonMb: number; fileMb: number; threads: number }[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const s = readProcStatus(pid);
    if (s) samples.push(s);
    await sleep(RSS_SAMPLE_EVERY_MS);
  }
  if (samples.length === 0) return { medianMb: null, maxMb: null, anonMb: null, fileMb: null, threads: null, samples: 0 };
  const sorted = samples.map((s) => s.rssMb).sort((a, b) => a - b);
  const top = samples.reduce((a, b) => (b.rssMb > a.rssMb ? b : a));
  return { medianMb: median(sorted), maxMb: sorted[sorted.length - 1]!, anonMb: top.anonMb, fileMb: top.fileMb, threads: top.threads, samples: samples.length };
}

/** One boot: spawn, wait for the first packet with a client that was already trying. */
async function boot(): Promise<{ svc: ServiceProcess; times: BootTimes }> {
  const svc = await ServiceProcess.start({ logLevel: 'info' });
  try {
    const t = await Promise.race([
      waitForFirstPacket(svc.port, svc.spawnedAt),
      svc.exited.then((e) => {
        throw new Error(`boot: the service exited (code ${e.code}, signal ${e.signal}) before the first packet; its last output:\n${svc.logTail()}`);
      }),
    ]);
    const logMs: Record<string, number | null> = {};
    for (const [key, msg] of Object.entries(LOG_PHASES)) {
      const at = svc.firstLineAt.get(msg);
      logMs[key] = at === undefined ? null : round(at - svc.spawnedAt, 1);
    }
    return { svc, times: { ...t, logMs } };
  } catch (err) {
    await svc.stop();
    throw err;
  }
}

export interface BootContext {
  seconds: number;
  log(msg: string): void;
}

/**
 * BOOT_REPEATS boots; the last service stays up for the memory figures:
 * idle (its waiting client gone, settled), then 32 clients on all channels.
 */
export async function runBoot(ctx: BootContext): Promise<ReportLine> {
  const runs: BootTimes[] = [];
  let last: ServiceProcess | null = null;
  for (let i = 0; i < BOOT_REPEATS; i++) {
    const { svc, times } = await boot();
    runs.push(times);
    ctx.log(`boot: ${i + 1}/${BOOT_REPEATS}: first packet ${Math.round(times.firstPacketMs)} ms after spawn (server accepted at ${Math.round(times.connectMs)} ms)`);
    if (i < BOOT_REPEATS - 1) await svc.stop();
    else last = svc;
    // Let the previous service's exit and the page cache settle between boots.
    if (i < BOOT_REPEATS - 1) await sleep(500);
  }
  const svc = last!;
  let fleet: ClientFleet | null = null;
  let stop: StopInfo;
  const line: ReportLine = { scenario: 'boot' };
  try {
    ctx.log(`boot: idle ${IDLE_SETTLE_MS / 1000} s, then RSS for ${IDLE_SAMPLE_MS / 1000} s...`);
    await sleep(IDLE_SETTLE_MS);
    const idle = await sampleRss(svc.pid, IDLE_SAMPLE_MS);
    const status = parseStatus(await getJson(svc.port, '/api/status', 10_000));
    fleet = ClientFleet.start();
    const specs: ClientSpec[] = Array.from({ length: LOAD_CLIENTS }, (_, i) => ({
      clientId: `boot-c-${String(i).padStart(4, '0')}`,
      channels: rotation(i, SOURCE_CHANNELS),
      codec: 'pcm16',
      stalled: false,
    }));
    const r = await fleet.connect(svc.port, specs);
    if (r.failed > 0) throw new Error(`boot: ${r.failed} of ${LOAD_CLIENTS} clients could not connect; first: ${r.firstError ?? '?'}`);
    const windowS = Math.min(ctx.seconds, LOAD_WINDOW_MAX_S);
    ctx.log(`boot: ${LOAD_CLIENTS} clients x ${SOURCE_CHANNELS} channels, RSS for ${windowS} s...`);
    const loaded = await sampleRss(svc.pid, windowS * 1000);
    const stats = await fleet.stats();
    if (svc.hasExited) throw new Error(`boot: the service exited during the memory window; its last output:\n${svc.logTail()}`);

    const boots = runs.map((b) => b.firstPacketMs).sort((a, b) => a - b);
    const bootMedian = median(boots);
    const bootMax = boots[boots.length - 1]!;
    const rssMax = loaded.maxMb;
    Object.assign(line, {
      repeats: BOOT_REPEATS,
      bootTargetMs: BOOT_TARGET_MS,
      bootMsMedian: round(bootMedian, 1),
      bootMsMax: round(bootMax, 1),
      bootTargetMet: bootMax <= BOOT_TARGET_MS,
      bootMs: runs.map((b) => round(b.firstPacketMs, 1)),
      connectMs: runs.map((b) => round(b.connectMs, 1)),
      subscribedMs: runs.map((b) => round(b.subscribedMs, 1)),
      refusedConnects: runs.map((b) => b.refused),
      logMs: runs.map((b) => b.logMs),
      poolSize: status.pool.size,
      rssTargetMb: RSS_TARGET_MB,
      idleRssMbMedian: round(idle.medianMb, 1),
      idleRssMbMax: round(idle.maxMb, 1),
      idleThreads: idle.threads,
      clients: LOAD_CLIENTS,
      channelsPerClient: SOURCE_CHANNELS,
      codec: 'pcm16',
      seconds: windowS,
      rssMbMedian: round(loaded.medianMb, 1),
      rssMbMax: round(rssMax, 1),
      rssAnonMb: round(loaded.anonMb, 1),
      rssFileMb: round(loaded.fileMb, 1),
      threads: loaded.threads,
      rssTargetMet: rssMax !== null && rssMax <= RSS_TARGET_MB,
      loadClientsOpen: stats.open,
      loadMinPackets: stats.minPackets,
    });
    ctx.log(
      `boot: first packet median ${Math.round(bootMedian)} ms, max ${Math.round(bootMax)} ms (target <= ${BOOT_TARGET_MS} ms): ${bootMax <= BOOT_TARGET_MS ? 'met' : 'MISSED'}`,
    );
    ctx.log(
      `boot: RSS idle ${round(idle.medianMb, 1)} MB; with ${LOAD_CLIENTS} clients median ${round(loaded.medianMb, 1)} MB, max ${round(rssMax, 1)} MB (target <= ${RSS_TARGET_MB} MB): ${line.rssTargetMet ? 'met' : 'MISSED'}`,
    );
  } finally {
    stop = await svc.stop();
    await fleet?.close();
  }
  return { ...line, ...stopFields(stop) };
}
