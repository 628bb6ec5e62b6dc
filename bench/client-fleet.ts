/**
 * Parent-side handle on the forked bench-clients process: request/reply over
 * IPC, every request bounded by a timeout.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { ChurnStats, ClientSpec, ConnectResult, FleetReply, FleetRequest, FleetStats, WifiListenerStats } from './bench-ipc';
import { trackChild } from './cleanup';
import { deadline } from './service-process';

const REQUEST_TIMEOUT_MS = 10_000;
const EXIT_WAIT_MS = 3000;
/** Per client on top of the base connect timeout: big fleets connect while the box is streaming. */
const CONNECT_MS_PER_CLIENT = 25;
const PER_CLIENT_TIMEOUT_MS = 10_000;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

interface Pending {
  resolve(reply: FleetReply): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class ClientFleet {
  private nextRid = 1;
  private readonly pending = new Map<number, Pending>();
  private exitInfo: string | null = null;
  private readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exitInfo = `bench client process exited (code ${code}, signal ${signal})`;
        for (const p of this.pending.values()) {
          clearTimeout(p.timer);
          p.reject(new Error(this.exitInfo));
        }
        this.pending.clear();
        resolve();
      }),
    );
    child.on('message', (msg: FleetReply) => {
      const p = this.pending.get(msg.rid);
      if (!p) return;
      this.pending.delete(msg.rid);
      clearTimeout(p.timer);
      if (msg.op === 'error') p.reject(new Error(`bench clients: ${msg.message}`));
      else p.resolve(msg);
    });
  }

  /** `prefix`: a command that runs node elsewhere (a harness namespace); the IPC channel's fd survives its execs. */
  static start(prefix: string[] = []): ClientFleet {
    // The child's stdout goes to our stderr: our stdout carries only the JSON report lines.
    const where = prefix.length > 0 ? { execPath: prefix[0]!, execArgv: [...prefix.slice(1), process.execPath] } : { execArgv: [] };
    const child = fork(path.join(__dirname, 'bench-clients.js'), [], { stdio: ['ignore', 2, 2, 'ipc'], ...where });
    trackChild(child);
    return new ClientFleet(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** `perClientTimeoutMs`: how long one client may take to connect and subscribe (default 10 s). */
  async connect(port: number, clients: ClientSpec[], perClientTimeoutMs = PER_CLIENT_TIMEOUT_MS): Promise<ConnectResult> {
    const timeoutMs = perClientTimeoutMs + clients.length * CONNECT_MS_PER_CLIENT;
    const r = await this.request({ op: 'connect', port, clients, perClientTimeoutMs }, timeoutMs);
    if (r.op !== 'connect') throw new Error(`bench clients: expected a connect reply, got ${r.op}`);
    return r.result;
  }

  async reset(): Promise<void> {
    await this.request({ op: 'reset' }, REQUEST_TIMEOUT_MS);
  }

  async stats(): Promise<FleetStats> {
    const r = await this.request({ op: 'stats' }, REQUEST_TIMEOUT_MS);
    if (r.op !== 'stats') throw new Error(`bench clients: expected a stats reply, got ${r.op}`);
    return r.stats;
  }

  /** The wifi listeners' window; each writes its arrival trace to `<traceDir>/<traceName>-<label>.csv`. */
  async wifi(traceDir: string, traceName: string): Promise<{ listeners: WifiListenerStats[]; pooledBufferMs: WifiListenerStats['bufferMs'] }> {
    const r = await this.request({ op: 'wifi', traceDir, traceName }, REQUEST_TIMEOUT_MS);
    if (r.op !== 'wifi') throw new Error(`bench clients: expected a wifi reply, got ${r.op}`);
    return { listeners: r.listeners, pooledBufferMs: r.pooledBufferMs };
  }

  /** Closes normal clients beyond the first `keep`; resolves with how many remain. */
  async trim(keep: number): Promise<number> {
    const r = await this.request({ op: 'trim', keep }, REQUEST_TIMEOUT_MS);
    if (r.op !== 'trim') throw new Error(`bench clients: expected a trim reply, got ${r.op}`);
    return r.clients;
  }

  /** Starts churn: `perSecond` new clients a second (specs in turn), each leaving after `lifetimeMs`. */
  async churnStart(port: number, perSecond: number, lifetimeMs: number, specs: ClientSpec[]): Promise<void> {
    await this.request({ op: 'churn-start', port, perSecond, lifetimeMs, specs }, REQUEST_TIMEOUT_MS);
  }

  /** Stops starting churn clients, closes the ones still open; resolves with what churn did. */
  async churnStop(): Promise<ChurnStats> {
    const r = await this.request({ op: 'churn-stop' }, REQUEST_TIMEOUT_MS);
    if (r.op !== 'churn-stop') throw new Error(`bench clients: expected a churn-stop reply, got ${r.op}`);
    return r.churn;
  }

  /** Asks the child to close its sockets and exit; kills it if it does not. */
  async close(): Promise<void> {
    if (this.exitInfo === null) {
      try {
        await this.request({ op: 'close' }, EXIT_WAIT_MS);
      } catch {
        // Falls through to the kill below.
      }
    }
    const gone = await Promise.race([this.exited.then(() => true), deadline(EXIT_WAIT_MS).then(() => false)]);
    if (!gone) {
      this.child.kill('SIGKILL');
      await Promise.race([this.exited, deadline(EXIT_WAIT_MS)]);
    }
  }

  private request(body: DistributiveOmit<FleetRequest, 'rid'>, timeoutMs: number): Promise<FleetReply> {
    if (this.exitInfo !== null) return Promise.reject(new Error(this.exitInfo));
    const rid = this.nextRid++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(rid);
        reject(new Error(`bench clients: no reply to ${body.op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(rid, { resolve, reject, timer });
      this.child.send({ ...body, rid } as FleetRequest);
    });
  }
}
