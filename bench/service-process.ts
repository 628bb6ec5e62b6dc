/**
 * Starts the real service (dist/src/main.js) as its own process on a free
 * loopback port with a temp config, waits for capture to run, and stops it
 * the way systemd would (SIGTERM, then SIGKILL).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { removeDir, trackChild, trackDir } from './cleanup';
import { getJson, type HttpTarget } from './http-json';
import { captureStateOf, parseStatus, type ServiceStatus } from './service-status';

/** dist/bench/ → repo root. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const SERVICE_MAIN = path.join(REPO_ROOT, 'dist', 'src', 'main.js');

const READY_TIMEOUT_MS = 15_000;
const READY_POLL_MS = 100;
const STOP_GRACE_MS = 5000;
const KILL_WAIT_MS = 2000;
const LOG_TAIL_LINES = 30;

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StopInfo {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stopMs: number;
  /** SIGTERM was not enough within STOP_GRACE_MS. */
  killed: boolean;
}

/**
 * V8 flags the box runs with (systemd/stagebox.service's ExecStart, make run):
 * the bench starts the service the same way, so it measures what ships.
 * A test (test/systemd/unit-file.test.ts) keeps the three in step.
 */
export const NODE_FLAGS = ['--max-semi-space-size=2'] as const;

/**
 * The appliance runs every thread of the service SCHED_FIFO 10
 * (systemd/stagebox.service: CPUSchedulingPolicy=fifo, priority 10), so that
 * nothing else on the box delays a period. The bench does the same through
 * chrt when the machine allows it, so it measures what ships: on a shared
 * development machine this is also what keeps other processes' load from
 * showing up as the box's own xruns.
 */
let realtime = false;
export const REALTIME_PREFIX = ['chrt', '-f', '10'] as const;

/** Asks for realtime scheduling; returns null when in effect, else why not. */
export function setRealtime(on: boolean): string | null {
  realtime = false;
  if (!on) return null;
  const probe = spawnSync(REALTIME_PREFIX[0], [...REALTIME_PREFIX.slice(1), 'true'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return `chrt -f 10 is not allowed here (${probe.error?.message ?? probe.stderr.trim()}); the service runs at normal priority`;
  realtime = true;
  return null;
}

export function realtimeInEffect(): boolean {
  return realtime;
}

/** Health monitoring in the benched service: "on" samples the system and publishes MQTT health every 1 s. */
export type Monitoring = 'on' | 'off';
let monitoring: Monitoring = 'on';
export function setMonitoring(m: Monitoring): void {
  monitoring = m;
}

export interface ServiceOptions {
  /** STAGEBOX_POOL_SIZE; undefined keeps the service default ("auto"). */
  poolSize?: number;
  maxClients?: number;
  /** log.level of the service (default "warn"); the boot scenario reads the info lines' arrival times. */
  logLevel?: string;
  /** admin.token (the record scenario drives the recording API with it). */
  adminToken?: string;
  /** false: normal priority even when the bench runs services realtime (the soak wants the box short of CPU). */
  realtime?: boolean;
  /** Keys merged over the bench's config sections (the soak plays a WAV: capture.wavFile; pool.inlineBudgetPct). */
  config?: { capture?: Record<string, unknown>; pool?: Record<string, unknown> };
  /** Extra environment for the service (device-loss: ALSA_CONFIG_PATH naming its FIFO-fed device). */
  env?: Record<string, string>;
  /** Run it in a network namespace of the harness (bench/net/net-harness.ts) instead of here. */
  netns?: ServiceNetns;
}

export interface ServiceNetns {
  /** Command prefix that runs a program in the namespace. */
  prefix: string[];
  /** Address the service listens on there. */
  host: string;
  /** A Unix socket here that reaches `port` on the namespace's loopback (for status and perf reset). */
  httpSocket(port: number): Promise<string>;
}

export class ServiceProcess {
  private exitInfo: ExitInfo | null = null;
  private readonly tail: string[] = [];
  private partial = '';
  readonly exited: Promise<ExitInfo>;
  /** performance.now() just before spawn(): the boot scenario's time zero. */
  spawnedAt = 0;
  /** performance.now() when a line with this pino "msg" first arrived on stdout. */
  readonly firstLineAt = new Map<string, number>();

  /** Where the bench's HTTP calls go: `port` on loopback, or a Unix socket into the service's namespace. */
  http: HttpTarget;

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    private readonly dir: string,
  ) {
    this.http = port;
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      }),
    );
    // Pipes must be drained or a chatty service would block on a full pipe.
    child.stdout?.on('data', (c: Buffer) => this.keepTail(c));
    child.stderr?.on('data', (c: Buffer) => this.keepTail(c));
  }

  static async start(opts: ServiceOptions = {}): Promise<ServiceProcess> {
    const brokerPort = monitoring === 'on' ? await pickFreePort() : 0;
    if (!existsSync(SERVICE_MAIN)) throw new Error(`${SERVICE_MAIN} does not exist; build first (npx tsc -p tsconfig.json)`);
    const port = await pickFreePort();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'stagebox-bench-'));
    trackDir(dir);
    const configPath = path.join(dir, 'config.json');
    const config = {
      capture: { device: 'test-signal', channels: 32, rate: 48000, periodFrames: 128, ...opts.config?.capture },
      ...(opts.config?.pool ? { pool: opts.config.pool } : {}),
      server: { host: opts.netns?.host ?? '127.0.0.1', port },
      stream: { maxClients: opts.maxClients ?? 2000 },
      log: { level: opts.logLevel ?? 'warn' },
      state: { dir: path.join(dir, 'state') },
      // Takes go to state.dir/recordings in the temp dir (no USB drive counts), removed with it.
      recording: { drives: [path.join(dir, 'drives')] },
      ...(opts.adminToken ? { admin: { token: opts.adminToken } } : {}),
      health: { systemIntervalS: monitoring === 'on' ? 1 : 0 },
      mqtt:
        monitoring === 'on'
          ? { enabled: true, healthIntervalS: 1, embeddedBroker: { host: '127.0.0.1', port: brokerPort } }
          : { enabled: false },
    };
    writeFileSync(configPath, JSON.stringify(config));
    const spawnedAt = performance.now();
    // In a namespace the prefix execs node in the end (nsenter, setpriv): the pid, the signals and /proc are node's.
    const argv = [...(opts.netns?.prefix ?? []), ...(realtime && opts.realtime !== false ? REALTIME_PREFIX : []), process.execPath, ...NODE_FLAGS, SERVICE_MAIN, '--config', configPath];
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: REPO_ROOT,
      env: serviceEnv(opts),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    trackChild(child);
    const svc = new ServiceProcess(child, port, dir);
    svc.spawnedAt = spawnedAt;
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (err) => reject(new Error(`cannot start the service: ${err.message}`)));
    });
    if (opts.netns) svc.http = await opts.netns.httpSocket(port);
    return svc;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get hasExited(): boolean {
    return this.exitInfo !== null;
  }

  logTail(): string {
    return [...this.tail, this.partial].filter((l) => l.length > 0).join('\n');
  }

  /** Polls /api/status until capture.state is "running"; bounded by READY_TIMEOUT_MS. */
  async waitRunning(): Promise<ServiceStatus> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let last = 'no answer yet';
    while (Date.now() < deadline) {
      if (this.exitInfo) {
        throw new Error(`service exited (code ${this.exitInfo.code}, signal ${this.exitInfo.signal}) before capture ran; its last output:\n${this.logTail()}`);
      }
      try {
        const json = await getJson(this.http, '/api/status', 1000);
        const state = captureStateOf(json);
        if (state === 'running') return parseStatus(json);
        last = `capture.state "${state}"`;
      } catch (err) {
        last = (err as Error).message;
      }
      await sleep(READY_POLL_MS);
    }
    throw new Error(`service on port ${this.port} not running within ${READY_TIMEOUT_MS / 1000} s (last: ${last}); its last output:\n${this.logTail()}`);
  }

  async stop(): Promise<StopInfo> {
    const t0 = Date.now();
    try {
      if (!this.exitInfo) {
        this.child.kill('SIGTERM');
        const graceful = await Promise.race([this.exited, deadline(STOP_GRACE_MS)]);
        if (!graceful) {
          this.child.kill('SIGKILL');
          const info = await Promise.race([this.exited, deadline(KILL_WAIT_MS)]);
          return { exitCode: info?.code ?? null, signal: info?.signal ?? 'SIGKILL', stopMs: Date.now() - t0, killed: true };
        }
      }
      const info = await this.exited;
      return { exitCode: info.code, signal: info.signal, stopMs: Date.now() - t0, killed: false };
    } finally {
      removeDir(this.dir);
    }
  }

  private keepTail(chunk: Buffer): void {
    const lines = (this.partial + chunk.toString('utf8')).split('\n');
    this.partial = lines.pop() ?? '';
    const now = performance.now();
    for (const line of lines) {
      if (line.length === 0) continue;
      const msg = /"msg":"([^"]*)"/.exec(line)?.[1];
      if (msg !== undefined && !this.firstLineAt.has(msg)) this.firstLineAt.set(msg, now);
      this.tail.push(line.length > 500 ? `${line.slice(0, 500)}…` : line);
      if (this.tail.length > LOG_TAIL_LINES) this.tail.shift();
    }
    if (this.partial.length > 4096) this.partial = this.partial.slice(-4096);
  }
}

/** Pool knobs a user may set around the whole bench (e.g. STAGEBOX_POOL_SIZE=0 make bench) to compare runs. */
const PASS_THROUGH_ENV = ['STAGEBOX_POOL_SIZE', 'STAGEBOX_POOL_INLINE_BUDGET_PCT'];

/**
 * Any other STAGEBOX_* variable in the bench's env (port, device, log
 * level...) would override the temp config, so it is not passed on.
 */
function serviceEnv(opts: ServiceOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('STAGEBOX_') || PASS_THROUGH_ENV.includes(k)) env[k] = v;
  }
  if (opts.poolSize !== undefined) env.STAGEBOX_POOL_SIZE = String(opts.poolSize);
  return { ...env, ...opts.env };
}

/** Binds port 0 on loopback and releases it: a small race, retried by the caller's error. */
export function pickFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A sleep for Promise.race deadlines: unref'd so a race already won never holds the process open. */
export function deadline(ms: number): Promise<null> {
  return new Promise((resolve) => setTimeout(() => resolve(null), ms).unref());
}
