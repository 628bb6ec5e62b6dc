import { execFile } from 'node:child_process';
import { access, constants as fsConstants, readdir, readFile, statfs } from 'node:fs/promises';
import path from 'node:path';
import si from 'systeminformation';

/** CPU figures from /proc/stat deltas. */
export interface CpuSample {
  /** Total load since the previous sample, percent 0-100. */
  loadPct: number;
  /** Per core, percent 0-100. */
  coresPct: number[];
  /** CPU package temperature, °C; null where the platform does not report one. */
  tempC: number | null;
}

export interface MemSample {
  totalBytes: number;
  /** Used by programs (excludes buffers and page cache). */
  usedBytes: number;
  usedPct: number;
}

/** The filesystem holding state.dir. */
export interface DiskSample {
  mount: string;
  fs: string;
  sizeBytes: number;
  usedBytes: number;
  usedPct: number;
}

export interface NetSample {
  iface: string;
  /** "up", "down", or what the kernel says. */
  operstate: string;
  /** Link speed, Mbit/s; null when the driver does not say (Wi-Fi, virtual links). */
  speedMbps: number | null;
  /** Receive and transmit throughput since the previous sample, bytes/s; null on the first sample. */
  rxBytesPerS: number | null;
  txBytesPerS: number | null;
}

/**
 * Raspberry Pi firmware flags (vcgencmd get_throttled). null on platforms
 * without vcgencmd.
 */
export interface ThrottleSample {
  raw: string;
  underVoltage: boolean;
  frequencyCapped: boolean;
  throttled: boolean;
  softTempLimit: boolean;
  underVoltageOccurred: boolean;
  throttledOccurred: boolean;
}

/** The latest of every system figure; each part may be null (not sampled yet, unavailable, or failed). */
export interface SystemSample {
  /** When the last round of sampling finished (ISO 8601); null before the first. */
  sampledAt: string | null;
  cpu: CpuSample | null;
  mem: MemSample | null;
  disk: DiskSample | null;
  net: NetSample[] | null;
  throttle: ThrottleSample | null;
  /** Calls skipped because the previous call of the same kind was still running. */
  skippedCalls: number;
  /** Calls that failed or timed out (the figure keeps its last value). */
  failedCalls: number;
}

export interface SystemCollectorOptions {
  /** Seconds between samples; 0 never samples. */
  intervalS: number;
  /** Directory whose filesystem is reported as the disk. */
  stateDir: string;
  log: { warn(obj: object, msg: string): void };
}

/** A call slower than this is abandoned for this round (and not started again until it returns), ms. */
const CALL_TIMEOUT_MS = 10_000;
const VCGENCMD_PATHS = ['/usr/bin/vcgencmd', '/opt/vc/bin/vcgencmd'];
/** vcgencmd is a process spawn (a fork on the main thread): at most this often, ms. */
const THROTTLE_MIN_INTERVAL_MS = 30_000;
/** Thermal zone types that are the CPU, best first (Raspberry Pi, x86, other ARM boards). */
const CPU_THERMAL_TYPES = ['cpu-thermal', 'x86_pkg_temp', 'soc-thermal', 'cpu_thermal'];

/** One kind of call: never two at once; its last value kept. Exported for its test. */
export class Probe<T> {
  private busy = false;
  value: T | null = null;

  constructor(
    readonly name: string,
    private readonly call: () => Promise<T | null>,
  ) {}

  /** Runs the call unless the previous one is still out; resolves when this round's answer (or its timeout) is in. */
  run(stats: { skippedCalls: number; failedCalls: number }, onError: (name: string, err: Error) => void): Promise<void> {
    if (this.busy) {
      stats.skippedCalls++;
      return Promise.resolve();
    }
    this.busy = true;
    const done = this.call().then(
      (v) => {
        this.value = v;
      },
      (err: Error) => {
        stats.failedCalls++;
        onError(this.name, err);
      },
    );
    void done.finally(() => {
      this.busy = false;
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        stats.failedCalls++;
        onError(this.name, new Error(`no answer within ${CALL_TIMEOUT_MS} ms (still running; not restarted until it returns)`));
        resolve();
      }, CALL_TIMEOUT_MS);
      timer.unref();
    });
    return Promise.race([done, timeout]).finally(() => clearTimeout(timer));
  }
}

/** The CPU temperature from /sys/class/thermal (no process spawned), °C; null where there is none. */
async function readCpuTemp(): Promise<number | null> {
  let zones: string[];
  try {
    zones = (await readdir('/sys/class/thermal')).filter((z) => z.startsWith('thermal_zone')).sort();
  } catch {
    return null;
  }
  let best: { rank: number; milli: number } | null = null;
  for (const z of zones) {
    try {
      const [type, temp] = await Promise.all([readFile(`/sys/class/thermal/${z}/type`, 'utf8'), readFile(`/sys/class/thermal/${z}/temp`, 'utf8')]);
      const milli = Number(temp.trim());
      if (!Number.isFinite(milli)) continue;
      const i = CPU_THERMAL_TYPES.indexOf(type.trim());
      const rank = i < 0 ? CPU_THERMAL_TYPES.length : i;
      if (best === null || rank < best.rank) best = { rank, milli };
    } catch {
      // a zone that cannot be read (permissions, a driver error) is skipped
    }
  }
  return best === null ? null : best.milli / 1000;
}

/** One line of /proc/stat: jiffies busy and in total, since boot. */
export interface CpuTicks {
  busy: number;
  total: number;
}

/**
 * Parses the "cpu" and "cpuN" lines of /proc/stat: the total first, then
 * each core. Idle and iowait count as idle; guest time is already inside
 * user and nice, so it is not added again.
 */
export function parseProcStat(text: string): { total: CpuTicks; cores: CpuTicks[] } | null {
  let total: CpuTicks | null = null;
  const cores: CpuTicks[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('cpu')) continue;
    const f = line.trim().split(/\s+/);
    const n = f.slice(1, 9).map(Number);
    if (n.length < 4 || n.some((x) => !Number.isFinite(x))) continue;
    const sum = n.reduce((a, b) => a + b, 0);
    const ticks = { busy: sum - n[3]! - (n[4] ?? 0), total: sum };
    if (f[0] === 'cpu') total = ticks;
    else cores.push(ticks);
  }
  return total ? { total, cores } : null;
}

/** Busy share between two readings, percent; since boot when there is no previous one. */
export function loadPct(prev: CpuTicks | undefined, next: CpuTicks): number {
  const busy = next.busy - (prev?.busy ?? 0);
  const total = next.total - (prev?.total ?? 0);
  return total > 0 ? round1(Math.min(100, Math.max(0, (busy / total) * 100))) : 0;
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}

/** The mount point holding `dir`: the longest mount that is a path prefix of it. */
export function mountHolding<T extends { mount: string }>(mounts: readonly T[], dir: string): T | null {
  const target = path.resolve(dir);
  let best: T | null = null;
  for (const m of mounts) {
    const mp = m.mount;
    const holds = mp === '/' || target === mp || target.startsWith(mp.endsWith('/') ? mp : `${mp}/`);
    if (holds && (best === null || mp.length > best.mount.length)) best = m;
  }
  return best;
}

/** Decodes `throttled=0x50005` (bits from the Raspberry Pi firmware documentation). */
export function parseThrottled(text: string): ThrottleSample | null {
  const m = /throttled=(0x[0-9a-fA-F]+)/.exec(text);
  if (!m) return null;
  const v = Number.parseInt(m[1]!, 16);
  return {
    raw: m[1]!,
    underVoltage: (v & 0x1) !== 0,
    frequencyCapped: (v & 0x2) !== 0,
    throttled: (v & 0x4) !== 0,
    softTempLimit: (v & 0x8) !== 0,
    underVoltageOccurred: (v & 0x10000) !== 0,
    throttledOccurred: (v & 0x40000) !== 0,
  };
}

async function findVcgencmd(): Promise<string | null> {
  for (const p of VCGENCMD_PATHS) {
    try {
      await access(p, fsConstants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

function runVcgencmd(bin: string): Promise<ThrottleSample | null> {
  return new Promise((resolve, reject) => {
    execFile(bin, ['get_throttled'], { timeout: 5000 }, (err, stdout) => {
      if (err) reject(new Error(`${bin} get_throttled: ${err.message}`));
      else resolve(parseThrottled(stdout));
    });
  });
}

/**
 * Samples the machine every `intervalS` and keeps the latest figures: memory
 * through systeminformation, CPU load, temperature, disk and network from
 * /proc, /sys and statfs directly. Nothing here is on the audio path:
 * every call is asynchronous, each kind runs at most once at a time, and
 * readers only ever get the cached sample (`latest()`).
 *
 * Why not systeminformation for all of it: its cpuTemperature() spawns three
 * processes (a shell loop, sensors, vcgencmd) and fsSize() spawns df on every
 * call, and Node forks a child on the main thread: measured 5-6 ms of
 * event-loop block per call, which showed in the seed bench's p99 at a 1 s
 * interval (BENCHMARKS.md, 2026-11-24). Its currentLoad() (5.33.23) runs
 * `cat /proc/stat | grep cpu` through execSync on Linux, on every call: a
 * CPU profile of the seed bench showed it blocking the event loop 7-15 ms
 * once a second, so the load is read from /proc/stat here, asynchronously.
 * The only spawn left is vcgencmd on a Raspberry Pi, at most every 30 s.
 */
export class SystemCollector {
  private timer: NodeJS.Timeout | null = null;
  private readonly stats = { skippedCalls: 0, failedCalls: 0 };
  private sampledAt: string | null = null;
  private readonly probes: {
    cpu: Probe<CpuSample>;
    mem: Probe<MemSample>;
    disk: Probe<DiskSample>;
    net: Probe<NetSample[]>;
    throttle: Probe<ThrottleSample>;
  };
  private vcgencmd: string | null | undefined;
  private throttleAt = -Infinity;
  private readonly lastErrorLogged = new Map<string, string>();
  private prevNet = new Map<string, { rx: number; tx: number; at: number }>();
  private prevCpu: { total: CpuTicks; cores: CpuTicks[] } | null = null;

  constructor(private readonly opts: SystemCollectorOptions) {
    this.probes = {
      cpu: new Probe('cpu', () => this.sampleCpu()),
      mem: new Probe('mem', () => this.sampleMem()),
      disk: new Probe('disk', () => this.sampleDisk()),
      net: new Probe('net', () => this.sampleNet()),
      throttle: new Probe('throttle', () => this.sampleThrottle()),
    };
  }

  start(): void {
    if (this.opts.intervalS === 0 || this.timer) return;
    void this.sampleNow();
    this.timer = setInterval(() => void this.sampleNow(), this.opts.intervalS * 1000);
    // Health must never keep a stopping process alive.
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One round of every probe (each skipped if its previous call is still out); resolves when all answered or timed out. */
  async sampleNow(): Promise<void> {
    const onError = (name: string, err: Error): void => {
      // Log a failing figure once per distinct message, not every interval.
      if (this.lastErrorLogged.get(name) === err.message) return;
      this.lastErrorLogged.set(name, err.message);
      this.opts.log.warn({ figure: name, err: err.message }, 'system figure unavailable');
    };
    await Promise.all(Object.values(this.probes).map((p: Probe<unknown>) => p.run(this.stats, onError)));
    this.sampledAt = new Date().toISOString();
  }

  /** The cached figures (never waits, never calls out). */
  latest(): SystemSample {
    const p = this.probes;
    return {
      sampledAt: this.sampledAt,
      cpu: p.cpu.value,
      mem: p.mem.value,
      disk: p.disk.value,
      net: p.net.value,
      throttle: p.throttle.value,
      skippedCalls: this.stats.skippedCalls,
      failedCalls: this.stats.failedCalls,
    };
  }

  private async sampleCpu(): Promise<CpuSample> {
    const [statText, t] = await Promise.all([readFile('/proc/stat', 'utf8'), readCpuTemp()]);
    const stat = parseProcStat(statText);
    if (!stat) throw new Error('/proc/stat has no "cpu" line');
    const prev = this.prevCpu;
    this.prevCpu = stat;
    return {
      loadPct: loadPct(prev?.total, stat.total),
      coresPct: stat.cores.map((c, i) => loadPct(prev?.cores[i], c)),
      tempC: typeof t === 'number' && Number.isFinite(t) && t > -50 ? round1(t) : null,
    };
  }

  private async sampleMem(): Promise<MemSample> {
    const m = await si.mem();
    return { totalBytes: m.total, usedBytes: m.active, usedPct: m.total > 0 ? round1((m.active / m.total) * 100) : 0 };
  }

  private async sampleDisk(): Promise<DiskSample | null> {
    const mounts = (await readFile('/proc/self/mounts', 'utf8'))
      .split('\n')
      .map((l) => l.split(' '))
      .filter((f) => f.length >= 3)
      .map((f) => ({ fs: f[0]!, mount: f[1]!.replace(/\\040/g, ' ') }));
    const m = mountHolding(mounts, this.opts.stateDir);
    if (!m) return null;
    const st = await statfs(m.mount);
    const size = st.blocks * st.bsize;
    // As df counts it: used = total - free; use% against what non-root users can have.
    const used = (st.blocks - st.bfree) * st.bsize;
    const avail = st.bavail * st.bsize;
    return { mount: m.mount, fs: m.fs, sizeBytes: size, usedBytes: used, usedPct: used + avail > 0 ? round1((used / (used + avail)) * 100) : 0 };
  }

  private async sampleNet(): Promise<NetSample[]> {
    const now = performance.now();
    const next = new Map<string, { rx: number; tx: number; at: number }>();
    const out: NetSample[] = [];
    for (const iface of (await readdir('/sys/class/net')).sort()) {
      if (iface === 'lo') continue;
      const dir = `/sys/class/net/${iface}`;
      const [operstate, speed, rxText, txText] = await Promise.all(
        ['operstate', 'speed', 'statistics/rx_bytes', 'statistics/tx_bytes'].map((f) => readFile(`${dir}/${f}`, 'utf8').then((t) => t.trim(), () => null)),
      );
      const speedMbps = speed === null ? NaN : Number(speed);
      let rx: number | null = null;
      let tx: number | null = null;
      if (rxText !== null && txText !== null) {
        const cur = { rx: Number(rxText), tx: Number(txText), at: now };
        next.set(iface, cur);
        const prev = this.prevNet.get(iface);
        if (prev && now > prev.at) {
          const dt = (now - prev.at) / 1000;
          rx = Math.max(0, Math.round((cur.rx - prev.rx) / dt));
          tx = Math.max(0, Math.round((cur.tx - prev.tx) / dt));
        }
      }
      out.push({ iface, operstate: operstate ?? 'unknown', speedMbps: speedMbps > 0 ? speedMbps : null, rxBytesPerS: rx, txBytesPerS: tx });
    }
    this.prevNet = next;
    return out;
  }

  private async sampleThrottle(): Promise<ThrottleSample | null> {
    if (this.vcgencmd === undefined) this.vcgencmd = await findVcgencmd();
    if (this.vcgencmd === null) return null;
    const now = performance.now();
    if (now - this.throttleAt < THROTTLE_MIN_INTERVAL_MS) return this.probes.throttle.value;
    this.throttleAt = now;
    return runVcgencmd(this.vcgencmd);
  }
}
