import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let clockTicks: number | null = null;

/** USER_HZ for /proc/<pid>/stat times; 100 on every common Linux if getconf is missing. */
function clkTck(): number {
  if (clockTicks !== null) return clockTicks;
  try {
    const v = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000 }).trim());
    clockTicks = Number.isFinite(v) && v > 0 ? v : 100;
  } catch {
    clockTicks = 100;
  }
  return clockTicks;
}

/** utime + stime of every thread of `pid` (worker threads included), in ticks; null once it is gone. */
export function readCpuTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may contain spaces and parens: parse after the last ')'. Fields 14, 15 are utime, stime.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]);
  } catch {
    return null;
  }
}

export function readRssMb(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

export interface ProcUsage {
  /** CPU time over wall time, percent of one core (may exceed 100 with worker threads). */
  cpuPct: number | null;
  /** Highest resident set size seen while sampling. */
  rssMb: number | null;
}

/** CPU and RSS of one process over a window; RSS polled because it peaks mid-run. */
export class ProcSampler {
  private startTicks: number | null = null;
  private startNs = 0n;
  private maxRss: number | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly pid: number) {}

  start(intervalMs = 500): void {
    clkTck(); // resolve before the window: getconf must not run while measuring
    this.startTicks = readCpuTicks(this.pid);
    this.startNs = process.hrtime.bigint();
    this.maxRss = readRssMb(this.pid);
    this.timer = setInterval(() => this.sampleRss(), intervalMs);
  }

  stop(): ProcUsage {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sampleRss();
    const ticks = readCpuTicks(this.pid);
    const wallS = Number(process.hrtime.bigint() - this.startNs) / 1e9;
    const cpuPct = ticks === null || this.startTicks === null || wallS <= 0 ? null : ((ticks - this.startTicks) / clkTck() / wallS) * 100;
    return { cpuPct, rssMb: this.maxRss };
  }

  private sampleRss(): void {
    const rss = readRssMb(this.pid);
    if (rss !== null) this.maxRss = Math.max(this.maxRss ?? 0, rss);
  }
}
