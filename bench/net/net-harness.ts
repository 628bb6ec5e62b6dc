/**
 * The impaired-network harness: the box in one network namespace, listeners in
 * another, a router namespace between them whose forwarded packets pass
 * through nh-impair (native/net-impair/) in both directions.
 *
 *   box ns              router ns (nh-impair)            listener ns
 *   nhb0 10.77.1.2 ──── nhr0 10.77.1.1 │ nhr1 10.77.2.1 ──── nhl0 10.77.2.10, .11, ...
 *
 * Listener i has its own address and its own link model (its own queues, its
 * own seed), as every phone has its own Wi-Fi link.
 *
 * Nothing here has a name in the host's namespace: the three namespaces are
 * anonymous (unshare), alive only while a process is in them, and every
 * process this harness starts (the two holders, nh-impair, whatever runs
 * through prefix()) dies with the process that started it (parent-death
 * signal). So a SIGKILLed run leaves nothing: its children die, the
 * namespaces go with their last process, and the veths and rules with them.
 * Within the namespaces names start with "nh".
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeDir, trackChild, trackDir } from '../cleanup';
import { deadline, REPO_ROOT } from '../service-process';
import { parseImpairLine, type ImpairReport } from './impair-report';
import { impairArgs, type NetProfile } from './net-profile';

export const IMPAIR_BIN = path.join(REPO_ROOT, 'build', 'native', 'nh-impair');
export const BOX_ADDR = '10.77.1.2';
const ROUTER_BOX_ADDR = '10.77.1.1';
const ROUTER_LISTENER_ADDR = '10.77.2.1';
export const MAX_LISTENERS = 16;
/** Fixed MACs, so every neighbour entry is static: no ARP on the links, no first packet waiting for one. */
const MAC = { box: '02:6e:68:01:00:02', routerBox: '02:6e:68:01:00:01', listener: '02:6e:68:02:00:02', routerListener: '02:6e:68:02:00:01' };

export function listenerAddr(i: number): string {
  return `10.77.2.${10 + i}`;
}

const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21;
const TOOLS: [string, string][] = [
  ['unshare', 'util-linux'],
  ['nsenter', 'util-linux'],
  ['setpriv', 'util-linux'],
  ['ip', 'iproute2'],
  ['iptables-restore', 'iptables'],
];
const START_TIMEOUT_MS = 5000;
const REPORT_TIMEOUT_MS = 5000;
const COMMAND_TIMEOUT_MS = 5000;

/** Thrown when the harness cannot run here at all; the bench skips the scenario with its message. */
export class HarnessUnavailableError extends Error {
  override readonly name = 'HarnessUnavailableError';
}

function onPath(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    try {
      accessSync(path.join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      // next
    }
  }
  return false;
}

/** Why the harness cannot run here, in one sentence, or null when it can. */
export function harnessUnavailable(): string | null {
  if (process.platform !== 'linux') return `the impaired-network harness needs Linux network namespaces; this is ${process.platform}`;
  const eff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  const caps = eff === undefined ? 0n : BigInt(`0x${eff}`);
  const missing = [CAP_SYS_ADMIN, CAP_NET_ADMIN].filter((c) => (caps & (1n << BigInt(c))) === 0n).map((c) => (c === CAP_SYS_ADMIN ? 'CAP_SYS_ADMIN' : 'CAP_NET_ADMIN'));
  if (missing.length > 0) {
    return `the impaired-network harness needs ${missing.join(' and ')} to make network namespaces and links (run it as root); this process does not have ${missing.length > 1 ? 'them' : 'it'}`;
  }
  for (const [cmd, pkg] of TOOLS) {
    if (!onPath(cmd)) return `the impaired-network harness needs the ${cmd} command (Debian package ${pkg}; make deps installs it)`;
  }
  if (!existsSync(IMPAIR_BIN)) return `the impaired-network harness needs ${path.relative(REPO_ROOT, IMPAIR_BIN)} (make build builds it)`;
  return null;
}

/** The appliance's sysctl file: its per-namespace TCP settings are the box namespace's too. */
const BOX_SYSCTL = path.join(REPO_ROOT, 'rootfs-overlay', 'etc', 'sysctl.d', '90-stagebox.conf');

/** `net.ipv4.tcp_*` keys and values of the appliance's sysctl file (the ones a network namespace has of its own). */
export function boxTcpSysctls(): [string, string][] {
  const out: [string, string][] = [];
  for (const line of readFileSync(BOX_SYSCTL, 'utf8').split('\n')) {
    const m = /^\s*(net\.ipv4\.tcp_[a-z_]+)\s*=\s*([0-9][0-9 \t]*?)\s*$/.exec(line);
    if (m) out.push([m[1]!, m[2]!.replace(/\s+/g, ' ')]);
  }
  return out;
}

export interface HarnessOptions {
  profile: NetProfile;
  /** Listener links, 1-16: each its own address and its own model. */
  listeners: number;
  /** Seeds every model; the same seed and the same traffic give the same drops and delays. */
  seed: number;
  /** nh-impair and the namespace holders stop after this long whatever happens. */
  maxSeconds: number;
}

export type NsName = 'box' | 'listener';

function run(args: string[], input?: string): string {
  const r = spawnSync(args[0]!, args.slice(1), { input, encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS });
  if (r.error || r.status !== 0) {
    const why = r.error?.message ?? (r.stderr.trim() || `exit code ${r.status}`);
    throw new Error(`${args.join(' ')} failed: ${why}`);
  }
  return r.stdout;
}

function netnsOf(pid: number | 'self'): string {
  return readlinkSync(`/proc/${pid}/ns/net`);
}

/** Resolves once `child` runs `comm` (unshare and setpriv have exec'd it: its namespace and death signal are set). */
async function waitExec(child: ChildProcess, comm: string, what: string): Promise<void> {
  const until = Date.now() + START_TIMEOUT_MS;
  const own = netnsOf('self');
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited at once (code ${child.exitCode}, signal ${child.signalCode})`);
    try {
      if (readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim() === comm && netnsOf(child.pid!) !== own) return;
    } catch {
      // not there yet
    }
    if (Date.now() > until) throw new Error(`${what} did not start within ${START_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** nh-impair's stdout as parsed lines, handed to whoever waits for the next one. */
class LineReader {
  private partial = '';
  private readonly queue: ReturnType<typeof parseImpairLine>[] = [];
  private waiter: { resolve(l: ReturnType<typeof parseImpairLine>): void; reject(e: Error): void } | null = null;
  private ended: Error | null = null;

  feed(chunk: Buffer): void {
    const lines = (this.partial + chunk.toString('utf8')).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      let parsed: ReturnType<typeof parseImpairLine>;
      try {
        parsed = parseImpairLine(line);
      } catch (err) {
        this.end(err as Error);
        return;
      }
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        w.resolve(parsed);
      } else this.queue.push(parsed);
    }
  }

  end(err: Error): void {
    this.ended ??= err;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(err);
  }

  async next(timeoutMs: number, what: string): Promise<ReturnType<typeof parseImpairLine>> {
    const queued = this.queue.shift();
    if (queued) return queued;
    if (this.ended) throw this.ended;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await new Promise((resolve, reject) => {
        this.waiter = { resolve, reject };
        timer = setTimeout(() => {
          this.waiter = null;
          reject(new Error(`nh-impair: no ${what} within ${timeoutMs} ms`));
        }, timeoutMs);
      });
    } finally {
      clearTimeout(timer);
    }
  }
}

export class NetHarness {
  private stopped: Promise<ImpairReport | null> | null = null;
  private readonly extra = new Set<ChildProcess>();
  /** Holds boxSocket's sockets; made on first use, so a harness without one leaves no directory behind even when killed. */
  private tmp: string | null = null;

  private constructor(
    private readonly holders: Record<NsName, ChildProcess>,
    private readonly impair: ChildProcess,
    private readonly reader: LineReader,
    private readonly stderrTail: string[],
    /** Addresses of the listener links, in link order. */
    readonly listenerAddrs: string[],
    /** nh-impair's time zero, CLOCK_MONOTONIC ms. */
    readonly t0Ms: number,
  ) {}

  static async start(opts: HarnessOptions): Promise<NetHarness> {
    const why = harnessUnavailable();
    if (why) throw new HarnessUnavailableError(why);
    const n = opts.listeners;
    if (!Number.isInteger(n) || n < 1 || n > MAX_LISTENERS) throw new RangeError(`NetHarness listeners is ${n}; allowed: an integer 1-${MAX_LISTENERS}`);
    if (!Number.isInteger(opts.seed) || opts.seed < 0) throw new RangeError(`NetHarness seed is ${opts.seed}; allowed: an integer >= 0`);
    if (!(opts.maxSeconds > 0 && opts.maxSeconds <= 86400)) throw new RangeError(`NetHarness maxSeconds is ${opts.maxSeconds}; allowed: 0-86400 s`);

    // The holders outlive nh-impair by a little, so that a final report is never cut off by a vanishing link.
    const holdS = String(Math.ceil(opts.maxSeconds) + 10);
    const holder = (): ChildProcess => {
      const c = spawn('unshare', ['--net', '--', 'setpriv', '--pdeathsig', 'KILL', '--', 'sleep', holdS], { stdio: 'ignore' });
      trackChild(c);
      return c;
    };
    const holders = { box: holder(), listener: holder() };
    const impair = spawn('unshare', ['--net', '--', IMPAIR_BIN, '--links', String(n), '--seed', String(opts.seed), '--max-seconds', String(opts.maxSeconds), ...impairArgs(opts.profile)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    trackChild(impair);
    const reader = new LineReader();
    const stderrTail: string[] = [];
    impair.stdout!.on('data', (c: Buffer) => reader.feed(c));
    impair.stderr!.on('data', (c: Buffer) => {
      stderrTail.push(...c.toString('utf8').split('\n').filter((l) => l.trim() !== ''));
      stderrTail.splice(0, Math.max(0, stderrTail.length - 10));
    });
    // 'close', not 'exit': 'exit' can come before the last of stdout is read, and would end the reader ahead of the
    // final report nh-impair printed as it stopped (stop() then returned null: a CI run failed on it).
    impair.once('close', (code, signal) => reader.end(new Error(`nh-impair exited (code ${code}, signal ${signal})${stderrTail.length ? `: ${stderrTail.join(' / ')}` : ''}`)));

    const addrs = Array.from({ length: n }, (_, i) => listenerAddr(i));
    try {
      const ready = await reader.next(START_TIMEOUT_MS, 'ready line');
      if (ready.type !== 'ready') throw new Error(`nh-impair: expected its ready line first, got a ${ready.type}`);
      await waitExec(holders.box, 'sleep', 'the box namespace holder');
      await waitExec(holders.listener, 'sleep', 'the listener namespace holder');
      const h = new NetHarness(holders, impair, reader, stderrTail, addrs, ready.t0Ms);
      h.wire();
      return h;
    } catch (err) {
      for (const c of [impair, holders.box, holders.listener]) c.kill('SIGKILL');
      throw err;
    }
  }

  private nsPath(pid: number): string {
    return `/proc/${pid}/ns/net`;
  }

  private inNs(pid: number, args: string[], input?: string): string {
    return run(['nsenter', `--net=${this.nsPath(pid)}`, '--', ...args], input);
  }

  /** Links, addresses, static neighbours, forwarding and the NFQUEUE rules. */
  private wire(): void {
    const box = this.holders.box.pid!;
    const lis = this.holders.listener.pid!;
    const router = this.impair.pid!;
    run(['ip', 'link', 'add', 'nhb0', 'address', MAC.box, 'netns', String(box), 'type', 'veth', 'peer', 'name', 'nhr0', 'address', MAC.routerBox, 'netns', String(router)]);
    run(['ip', 'link', 'add', 'nhl0', 'address', MAC.listener, 'netns', String(lis), 'type', 'veth', 'peer', 'name', 'nhr1', 'address', MAC.routerListener, 'netns', String(router)]);
    const batch = (lines: string[]): string => `${lines.join('\n')}\n`;
    // IPv4 only, as the harness's addresses are: without this each veth gets an IPv6 link-local address seconds after it
    // comes up, and Chromium in the listeners' namespace takes that for a network change and aborts every request in
    // flight (net::ERR_NETWORK_CHANGED; the page test then never connected in some runs).
    const noIpv6 = '[ ! -d /proc/sys/net/ipv6 ] || { echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; }';
    for (const ns of [box, lis, router]) this.inNs(ns, ['sh', '-c', noIpv6]);
    this.inNs(box, ['ip', '-batch', '-'], batch([
      'link set lo up',
      `addr add ${BOX_ADDR}/24 dev nhb0`,
      'link set nhb0 up',
      `neigh add ${ROUTER_BOX_ADDR} lladdr ${MAC.routerBox} dev nhb0 nud permanent`,
      `route add default via ${ROUTER_BOX_ADDR} dev nhb0`,
    ]));
    this.inNs(lis, ['ip', '-batch', '-'], batch([
      'link set lo up',
      ...this.listenerAddrs.map((a) => `addr add ${a}/24 dev nhl0`),
      'link set nhl0 up',
      `neigh add ${ROUTER_LISTENER_ADDR} lladdr ${MAC.routerListener} dev nhl0 nud permanent`,
      `route add default via ${ROUTER_LISTENER_ADDR} dev nhl0`,
    ]));
    this.inNs(router, ['ip', '-batch', '-'], batch([
      'link set lo up',
      `addr add ${ROUTER_BOX_ADDR}/24 dev nhr0`,
      `addr add ${ROUTER_LISTENER_ADDR}/24 dev nhr1`,
      'link set nhr0 up',
      'link set nhr1 up',
      `neigh add ${BOX_ADDR} lladdr ${MAC.box} dev nhr0 nud permanent`,
      ...this.listenerAddrs.map((a) => `neigh add ${a} lladdr ${MAC.listener} dev nhr1 nud permanent`),
    ]));
    this.inNs(router, ['sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
    // The box's TCP as the appliance sets it (send buffer cap, notsent_lowat): how much audio a stalled link piles up depends on it.
    const tcp = boxTcpSysctls();
    if (tcp.length > 0) this.inNs(box, ['sh', '-c', tcp.map(([k, v]) => `echo '${v}' > /proc/sys/${k.replace(/\./g, '/')}`).join('; ')]);
    // Everything forwarded goes through a queue; nothing else is forwarded at all (policy DROP).
    const rules = this.listenerAddrs.flatMap((a, i) => [
      `-A nh-impair -i nhr0 -o nhr1 -d ${a}/32 -j NFQUEUE --queue-num ${2 * i}`,
      `-A nh-impair -i nhr1 -o nhr0 -s ${a}/32 -j NFQUEUE --queue-num ${2 * i + 1}`,
    ]);
    this.inNs(router, ['iptables-restore'], batch(['*filter', ':FORWARD DROP [0:0]', ':nh-impair - [0:0]', '-A FORWARD -j nh-impair', ...rules, 'COMMIT']));
  }

  /**
   * Command prefix that runs a program inside the box's or the listeners'
   * namespace; the program dies with the process that spawns it.
   */
  prefix(ns: NsName): string[] {
    return ['nsenter', `--net=${this.nsPath(this.holders[ns].pid!)}`, '--', 'setpriv', '--pdeathsig', 'KILL', '--'];
  }

  /** The three namespaces (as /proc/<pid>/ns/net names them: "net:[inode]"), to check they are gone after a stop. */
  namespaces(): { box: string; listener: string; router: string } {
    return { box: netnsOf(this.holders.box.pid!), listener: netnsOf(this.holders.listener.pid!), router: netnsOf(this.impair.pid!) };
  }

  /** PIDs of the harness's own processes (holders and nh-impair). */
  pids(): number[] {
    return [this.holders.box.pid!, this.holders.listener.pid!, this.impair.pid!];
  }

  /**
   * A Unix socket here that reaches TCP `port` on the box's loopback: the
   * bench's HTTP calls to the service (status, perf reset) go through it,
   * never across the impaired link.
   */
  async boxSocket(port: number): Promise<string> {
    if (this.tmp === null) {
      this.tmp = mkdtempSync(path.join(os.tmpdir(), 'nh-harness-'));
      trackDir(this.tmp);
    }
    const sock = path.join(this.tmp, `box-${port}.sock`);
    const c = spawn(this.prefix('box')[0]!, [...this.prefix('box').slice(1), process.execPath, path.join(__dirname, 'ns-forward.js'), sock, '127.0.0.1', String(port)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    trackChild(c);
    this.extra.add(c);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the box socket forwarder did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      c.stdout!.once('data', () => {
        clearTimeout(timer);
        resolve();
      });
      c.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the box socket forwarder exited (code ${code})`));
      });
    });
    return sock;
  }

  /** What nh-impair did since the last snapshot (or its start); starts a new interval. */
  async snapshot(): Promise<ImpairReport> {
    if (this.stopped) throw new Error('NetHarness.snapshot: the harness is stopped');
    this.impair.kill('SIGUSR1');
    const line = await this.reader.next(REPORT_TIMEOUT_MS, 'report');
    if (line.type !== 'report') throw new Error(`nh-impair: expected a report, got a ${line.type} line`);
    return line;
  }

  /** Stops nh-impair (its final report: since the last snapshot), the holders and the forwarders. Idempotent. */
  stop(): Promise<ImpairReport | null> {
    this.stopped ??= this.doStop();
    return this.stopped;
  }

  private async doStop(): Promise<ImpairReport | null> {
    let report: ImpairReport | null = null;
    this.impair.kill('SIGTERM');
    try {
      const line = await this.reader.next(REPORT_TIMEOUT_MS, 'final report');
      if (line.type === 'report') report = line;
    } catch {
      // Exited already (max-seconds) or hung: the final report is lost, the rest still goes.
    }
    const all = [this.impair, this.holders.box, this.holders.listener, ...this.extra];
    for (const c of all) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.race([Promise.all(all.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r))))), deadline(REPORT_TIMEOUT_MS)]);
    if (this.tmp !== null) removeDir(this.tmp);
    return report;
  }

  /** nh-impair's last lines on stderr, for error messages. */
  stderr(): string {
    return this.stderrTail.join('\n');
  }
}
