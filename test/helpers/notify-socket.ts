import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withTimeout } from './wait';

/** One datagram systemd would have received: its fields and when it arrived (performance.now(), ms). */
export interface NotifyMessage {
  fields: Record<string, string>;
  raw: string;
  at: number;
}

// Python's socket module has AF_UNIX datagram sockets (Node's dgram has not);
// python3 is in the Makefile's APT_PACKAGES. One JSON line per datagram. A line
// "<n>" on stdin asks for a sync: everything already queued on the socket is
// read (without blocking), then {"synced": n} is printed.
const RECEIVER = `
import json, os, select, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
name = sys.argv[1]
s.bind('\\0' + name[1:] if name.startswith('@') else name)
print(json.dumps({"bound": True}), flush=True)
pending = b''
def emit(d):
    print(json.dumps({"msg": d.decode('utf-8', 'replace')}), flush=True)
while True:
    r, _, _ = select.select([s, 0], [], [])
    if s in r:
        emit(s.recv(65536))
    if 0 in r:
        chunk = os.read(0, 4096)
        if not chunk:
            break
        pending += chunk
        while b'\\n' in pending:
            line, pending = pending.split(b'\\n', 1)
            while True:
                try:
                    emit(s.recv(65536, socket.MSG_DONTWAIT))
                except BlockingIOError:
                    break
            print(json.dumps({"synced": int(line)}), flush=True)
`;

/**
 * Stands in for systemd's notify socket (systemd cannot run as PID 1 here):
 * a real AF_UNIX datagram socket bound at a temp path or an abstract name,
 * collecting every message the service sends.
 */
export class NotifySocket {
  readonly messages: NotifyMessage[] = [];
  private syncs = 0;
  private readonly syncWaiters = new Map<number, () => void>();
  private readonly waiters: { pred: (m: NotifyMessage) => boolean; resolve: (m: NotifyMessage) => void }[] = [];
  private constructor(
    readonly address: string,
    private readonly proc: ChildProcess,
    private readonly dir: string | null,
  ) {}

  /** Binds a receiver; `abstract` picks an @name instead of a path. */
  static async open(opts: { abstract?: boolean } = {}): Promise<NotifySocket> {
    let dir: string | null = null;
    let address: string;
    if (opts.abstract) address = `@stagebox-test-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
    else {
      dir = mkdtempSync(path.join(os.tmpdir(), 'stagebox-notify-'));
      address = path.join(dir, 'notify');
    }
    const proc = spawn('python3', ['-c', RECEIVER, address], { stdio: ['pipe', 'pipe', 'pipe'] });
    const sock = new NotifySocket(address, proc, dir);
    let stderr = '';
    proc.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    let buf = '';
    const bound = new Promise<void>((resolve, reject) => {
      proc.once('exit', (code) => reject(new Error(`notify receiver exited (${code}): ${stderr}`)));
      proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = JSON.parse(buf.slice(0, nl)) as { bound?: boolean; msg?: string; synced?: number };
          buf = buf.slice(nl + 1);
          if (line.bound) resolve();
          else if (line.msg !== undefined) sock.push(line.msg);
          else if (line.synced !== undefined) sock.synced(line.synced);
        }
      });
    });
    await withTimeout(bound, 10000, 'python3 notify receiver to bind');
    return sock;
  }

  private push(raw: string): void {
    const fields: Record<string, string> = {};
    for (const l of raw.split('\n')) {
      const i = l.indexOf('=');
      if (i > 0) fields[l.slice(0, i)] = l.slice(i + 1);
    }
    const m = { fields, raw, at: performance.now() };
    this.messages.push(m);
    for (const w of [...this.waiters]) {
      if (w.pred(m)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  }

  /** The first message (seen or future, after index `from`) matching `pred`. */
  waitFor(pred: (m: NotifyMessage) => boolean, timeoutMs: number, what: string, from = 0): Promise<NotifyMessage> {
    const seen = this.messages.slice(from).find(pred);
    if (seen) return Promise.resolve(seen);
    let w!: { pred: (m: NotifyMessage) => boolean; resolve: (m: NotifyMessage) => void };
    const p = new Promise<NotifyMessage>((resolve) => {
      w = { pred, resolve };
      this.waiters.push(w);
    });
    return withTimeout(p, timeoutMs, `notify message ${what}; got: ${JSON.stringify(this.messages.slice(-8).map((m) => m.raw))}`).finally(() => {
      const i = this.waiters.indexOf(w);
      if (i >= 0) this.waiters.splice(i, 1);
    });
  }

  /**
   * Resolves once every datagram sent to the socket before this call is in
   * `messages`: the receiver drains what the kernel has queued, then answers.
   * A sender's sendto() has queued its datagram by the time it returns, so
   * after a service has exited (or after anything it was seen to do),
   * sync() makes "nothing more came" a fact instead of a wait.
   */
  sync(timeoutMs = 5000): Promise<void> {
    const n = ++this.syncs;
    const done = new Promise<void>((resolve) => this.syncWaiters.set(n, resolve));
    this.proc.stdin!.write(`${n}\n`);
    return withTimeout(done, timeoutMs, `notify receiver to drain its socket (sync ${n})`).finally(() => this.syncWaiters.delete(n));
  }

  private synced(n: number): void {
    this.syncWaiters.get(n)?.();
  }

  /** Messages carrying field `key`, from index `from`. */
  with(key: string, from = 0): NotifyMessage[] {
    return this.messages.slice(from).filter((m) => key in m.fields);
  }

  close(): void {
    this.proc.kill('SIGKILL');
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
