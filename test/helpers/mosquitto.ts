import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { sleep, withTimeout } from './wait';

/**
 * A self-signed certificate for 127.0.0.1 (subjectAltName IP:127.0.0.1) made
 * by openssl in `dir`; it is its own CA.
 */
export function selfSignedCert(dir: string): { certFile: string; keyFile: string } {
  const certFile = path.join(dir, 'server.crt');
  const keyFile = path.join(dir, 'server.key');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
    { stdio: 'ignore' },
  );
  return { certFile, keyFile };
}

/** A port the kernel says is free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** True once something accepts TCP connections on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

export interface MosquittoOptions {
  /** Port to listen on (default: a free one). Kept across stop()/start(). */
  port?: number;
  /** When set, anonymous clients are refused and this user is the only login. */
  user?: { username: string; password: string };
  /** When set, the listener speaks TLS with this server certificate and key (PEM paths). */
  tls?: { certFile: string; keyFile: string };
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

/**
 * A real Mosquitto broker (Debian's) on a loopback port, with a config of its
 * own in a temp dir: `listener <port> 127.0.0.1`, no persistence, anonymous
 * or one user from a password file made by mosquitto_passwd.
 */
export class Mosquitto {
  readonly dir: string;
  readonly configPath: string;
  port = 0;
  output = '';
  private proc: ChildProcess | null = null;

  private tls = false;

  private constructor() {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'stagebox-mosquitto-'));
    this.configPath = path.join(this.dir, 'mosquitto.conf');
  }

  static async create(opts: MosquittoOptions = {}): Promise<Mosquitto> {
    const m = new Mosquitto();
    m.port = opts.port ?? (await freePort());
    m.tls = opts.tls !== undefined;
    const lines = [`listener ${m.port} 127.0.0.1`, 'persistence false', 'log_dest stderr', 'log_type error', 'log_type warning', 'log_type notice', 'log_type information', 'user root'];
    if (opts.tls) lines.push(`certfile ${opts.tls.certFile}`, `keyfile ${opts.tls.keyFile}`);
    if (opts.user) {
      const pw = path.join(m.dir, 'passwords');
      execFileSync('mosquitto_passwd', ['-c', '-b', pw, opts.user.username, opts.user.password], { stdio: 'ignore' });
      lines.push('allow_anonymous false', `password_file ${pw}`);
    } else {
      lines.push('allow_anonymous true');
    }
    writeFileSync(m.configPath, `${lines.join('\n')}\n`);
    return m;
  }

  /** Starts the broker; resolves once it accepts connections (bounded). */
  async start(timeoutMs = 10000): Promise<void> {
    if (this.proc) return;
    const proc = spawn('mosquitto', ['-c', this.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    running.add(proc);
    proc.stdout!.setEncoding('utf8').on('data', (c: string) => (this.output += c));
    proc.stderr!.setEncoding('utf8').on('data', (c: string) => (this.output += c));
    proc.once('exit', () => {
      running.delete(proc);
      if (this.proc === proc) this.proc = null;
    });
    const deadline = Date.now() + timeoutMs;
    while (!(await accepts(this.port))) {
      if (this.proc !== proc) throw new Error(`mosquitto exited at start; output: ${this.output.slice(-1500)}`);
      if (Date.now() > deadline) throw new Error(`mosquitto not accepting on 127.0.0.1:${this.port} after ${timeoutMs} ms; output: ${this.output.slice(-1500)}`);
      await sleep(50);
    }
  }

  /** SIGKILL: the broker vanishes as if its machine died. */
  async kill(): Promise<void> {
    await this.end('SIGKILL');
  }

  async stop(): Promise<void> {
    await this.end('SIGTERM');
  }

  private async end(signal: NodeJS.Signals): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    await withTimeout(exited, 5000, `mosquitto exit after ${signal}`);
  }

  get url(): string {
    return `${this.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${this.port}`;
  }

  async remove(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
