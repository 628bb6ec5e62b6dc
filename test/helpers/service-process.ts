import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withTimeout } from './wait';

/** Repository root: this file runs from dist/test/helpers/. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const MAIN_JS = path.join(REPO_ROOT, 'dist', 'src', 'main.js');

/** One pino JSON log line (non-JSON stdout lines are kept with msg = the raw text). */
export interface LogLine {
  level?: number;
  msg?: string;
  [key: string]: unknown;
}

export interface StopResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** SIGTERM to exit, measured (logged, never asserted). */
  ms: number;
  /** True when the process had to be killed with SIGKILL after the grace period. */
  killed: boolean;
}

/** A child env without any STAGEBOX_* the test runner itself may have, plus `extra`. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('STAGEBOX_') && k !== 'ALSA_CONFIG_PATH') env[k] = v;
  return { ...env, ...extra };
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

const tempDirs: string[] = [];
/** Writes `text` to a fresh temp file; returns its path. Removed by removeTempDirs(). */
export function writeTempFile(name: string, text: string | Uint8Array): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stagebox-test-'));
  tempDirs.push(dir);
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}
export function removeTempDirs(): void {
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Deep-merges plain objects (arrays and scalars replace). */
function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)) {
      out[k] = merge(b as Record<string, unknown>, v as Record<string, unknown>);
    } else out[k] = v;
  }
  return out;
}

/**
 * Every test service listens on 127.0.0.1, on a port the kernel picks, and logs at info (the "listening" line);
 * its embedded MQTT broker too (never 1883, which a developer's own broker may hold). mDNS is off: it would
 * multicast on every interface; test/discovery turns it on inside a network namespace of its own.
 */
export const BASE_CONFIG = {
  server: { host: '127.0.0.1', port: 0 },
  mqtt: { embeddedBroker: { host: '127.0.0.1', port: 0 } },
  discovery: { enabled: false },
  log: { level: 'info' },
};

export interface StartOptions {
  /** Merged over BASE_CONFIG and written to a temp file passed with --config. */
  config?: Record<string, unknown>;
  env?: Record<string, string>;
  /** Bound on reaching "listening", ms (default 15000). */
  startTimeoutMs?: number;
  label?: string;
  /** Node options before the script (e.g. --inspect=127.0.0.1:0). */
  nodeArgs?: string[];
  /**
   * A command that execs node in the end (e.g. unshare -m ... sh -c '...; exec "$@"'): node's
   * command line is appended to it. Each step must exec, so the child's pid stays the service's.
   */
  wrap?: string[];
  /** The script to run (default dist/src/main.js), e.g. an installed tree's bin/stagebox.js. */
  mainJs?: string;
  /** The child's working directory (default the repository root). */
  cwd?: string;
  /**
   * Another Node and app tree instead of this one (the arm64 check): runs
   * `command ...args <appRoot>/dist/src/main.js` in appRoot. Default: process.execPath on REPO_ROOT.
   */
  runtime?: { command: string; args: string[]; appRoot: string };
}

export class ServiceProcess {
  readonly logs: LogLine[] = [];
  stderr = '';
  port = 0;
  exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly logWaiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  private stopping: Promise<StopResult> | null = null;

  constructor(
    readonly proc: ChildProcess,
    readonly label: string,
    readonly configPath: string,
  ) {
    live.add(proc);
    let buf = '';
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() === '') continue;
        let entry: LogLine;
        try {
          const parsed: unknown = JSON.parse(line);
          entry = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as LogLine) : { msg: line };
        } catch {
          entry = { msg: line };
        }
        this.logs.push(entry);
        for (const w of [...this.logWaiters]) {
          if (w.pred(entry)) {
            this.logWaiters.splice(this.logWaiters.indexOf(w), 1);
            w.resolve(entry);
          }
        }
      }
    });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        live.delete(proc);
        this.exit = { code, signal };
        resolve({ code, signal });
      });
    });
  }

  /** A short account of the process for failure messages: exit, stderr, last log lines. */
  describe(lines = 8): string {
    const tail = this.logs
      .slice(-lines)
      .map((l) => JSON.stringify(l))
      .join('\n    ');
    return `[${this.label}] exit=${JSON.stringify(this.exit)} stderr=${JSON.stringify(this.stderr.slice(-2000))}\n  last log lines:\n    ${tail}`;
  }

  /** Resolves with the first log line (already seen or future) matching `pred`. */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs: number, what: string): Promise<LogLine> {
    const seen = this.logs.find(pred);
    if (seen) return Promise.resolve(seen);
    let waiter: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void };
    const p = new Promise<LogLine>((resolve, reject) => {
      waiter = { pred, resolve };
      this.logWaiters.push(waiter);
      void this.exited.then(() => reject(new Error(`service exited before logging ${what}: ${this.describe()}`)));
    });
    return withTimeout(p, timeoutMs, `log line ${what} from ${this.describe()}`).finally(() => {
      const i = this.logWaiters.indexOf(waiter);
      if (i >= 0) this.logWaiters.splice(i, 1);
    });
  }

  /** Waits for the process to exit on its own (bounded). */
  waitForExit(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return withTimeout(this.exited, timeoutMs, `service exit: ${this.describe()}`);
  }

  /** SIGTERM; SIGKILL after `graceMs` (5 s). Idempotent. */
  stop(graceMs = 5000): Promise<StopResult> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      const t0 = performance.now();
      if (this.exit) return { ...this.exit, ms: 0, killed: false };
      this.proc.kill('SIGTERM');
      let killed = false;
      const timer = setTimeout(() => {
        killed = true;
        this.proc.kill('SIGKILL');
      }, graceMs);
      const r = await withTimeout(this.exited, graceMs + 5000, `service exit after SIGTERM/SIGKILL: ${this.describe()}`).finally(() =>
        clearTimeout(timer),
      );
      return { ...r, ms: Math.round(performance.now() - t0), killed };
    })();
    return this.stopping;
  }
}

const started = new Set<ServiceProcess>();

/**
 * Starts `node dist/src/main.js --config <tmp>` and resolves once the service
 * logged "listening" with its port. Rejects (and kills the process) if it
 * exits or stays silent for startTimeoutMs.
 */
export async function startService(opts: StartOptions = {}): Promise<ServiceProcess> {
  // Each service keeps its state in a temp dir of its own unless the test names one.
  const stateDir = path.dirname(writeTempFile('.keep', ''));
  const config = merge(merge(BASE_CONFIG, { state: { dir: stateDir } }), opts.config ?? {});
  const configPath = writeTempFile('stagebox.json', JSON.stringify(config, null, 2));
  const rt = opts.runtime ?? { command: process.execPath, args: [], appRoot: REPO_ROOT };
  const argv = [rt.command, ...rt.args, ...(opts.nodeArgs ?? []), opts.mainJs ?? path.join(rt.appRoot, 'dist', 'src', 'main.js'), '--config', configPath];
  const cmd = [...(opts.wrap ?? []), ...argv];
  const proc = spawn(cmd[0]!, cmd.slice(1), {
    cwd: opts.cwd ?? rt.appRoot,
    env: childEnv(opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const svc = new ServiceProcess(proc, opts.label ?? 'stagebox', configPath);
  started.add(svc);
  try {
    const line = await svc.waitForLog((l) => l.msg === 'listening', opts.startTimeoutMs ?? 15000, '"listening"');
    if (typeof line.port !== 'number' || !Number.isInteger(line.port) || line.port <= 0) {
      throw new Error(`"listening" log line has no usable numeric port: ${JSON.stringify(line)}`);
    }
    svc.port = line.port;
  } catch (err) {
    await svc.stop(1000).catch(() => undefined);
    throw err;
  }
  return svc;
}

/** Stops every service this process started (for after() hooks); logs the stop times. */
export async function stopAllServices(): Promise<void> {
  const all = [...started];
  started.clear();
  await Promise.all(all.map((s) => s.stop().catch(() => undefined)));
  removeTempDirs();
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the run was cut short because stdout matched `stopWhen` (e.g. the service started listening). */
  stoppedEarly: boolean;
}

/** Runs the CLI to completion (bounded; killed and rejected after timeoutMs). */
export function runCli(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number; stopWhen?: RegExp } = {}): Promise<CliResult> {
  const timeoutMs = opts.timeoutMs ?? 15000;
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [MAIN_JS, ...args], { cwd: REPO_ROOT, env: childEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    let stdout = '';
    let stderr = '';
    let stoppedEarly = false;
    proc.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      if (opts.stopWhen && !stoppedEarly && opts.stopWhen.test(stdout)) {
        stoppedEarly = true;
        proc.kill('SIGKILL');
      }
    });
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`stagebox ${args.join(' ')} did not exit within ${timeoutMs} ms; stdout=${JSON.stringify(stdout.slice(-1000))} stderr=${JSON.stringify(stderr.slice(-1000))}`));
    }, timeoutMs);
    proc.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(proc);
      resolve({ code, signal, stdout, stderr, stoppedEarly });
    });
  });
}
