import os from 'node:os';

/** What the service itself costs and how busy the host is, without the system collector. */
export interface ProcessUsageSnapshot {
  /** CPU time of this process over the last sample interval, percent of one core (can exceed 100). */
  cpuPct: number | null;
  /** Resident set size, MB. */
  rssMB: number;
  /** Host load average over one minute (runnable threads), from os.loadavg(). */
  loadAvg1m: number;
  /** Logical CPUs (os.availableParallelism()). */
  cores: number;
}

/**
 * Samples process.cpuUsage() once a second (its own timer, between start and
 * stop): cheap figures that need no /proc parsing. The system collector's
 * `system` object in the status has the host-wide ones.
 */
export class ProcessUsage {
  readonly name = 'process usage';
  private timer: NodeJS.Timeout | null = null;
  private lastCpu = process.cpuUsage();
  private lastAt = performance.now();
  private cpuPct: number | null = null;
  private readonly cores = os.availableParallelism();

  start(): void {
    this.timer ??= setInterval(() => this.sample(), 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  sample(): void {
    const now = performance.now();
    const cpu = process.cpuUsage();
    const wallUs = (now - this.lastAt) * 1000;
    if (wallUs > 0) {
      const used = cpu.user - this.lastCpu.user + (cpu.system - this.lastCpu.system);
      this.cpuPct = Math.round((used / wallUs) * 1000) / 10;
    }
    this.lastCpu = cpu;
    this.lastAt = now;
  }

  snapshot(): ProcessUsageSnapshot {
    return {
      cpuPct: this.cpuPct,
      rssMB: Math.round(process.memoryUsage.rss() / 1048576),
      loadAvg1m: Math.round(os.loadavg()[0]! * 100) / 100,
      cores: this.cores,
    };
  }
}
