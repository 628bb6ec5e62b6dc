import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { withTimeout } from './wait';

/**
 * A deliberately minimal WebSocket client over a raw TCP socket: it does the
 * handshake and sends masked text frames, records every frame the box sends,
 * and never answers anything (no pong, no close reply) — the part a real
 * library does for you and a broken client does not.
 */

export interface RawFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

export const OPCODE = { text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

export class RawWsClient {
  readonly frames: RawFrame[] = [];
  ended = false;
  private buf = Buffer.alloc(0);
  private upgraded = false;
  private readonly listeners = new Set<() => void>();

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      this.parse();
      this.notify();
    });
    socket.on('close', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('error', () => undefined);
  }

  /** `localAddress`: the source address (any of 127.0.0.0/8 reaches the box over loopback: one "host" each). */
  static async connect(port: number, timeoutMs = 5000, localAddress?: string): Promise<RawWsClient> {
    const socket = net.connect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) });
    const c = new RawWsClient(socket);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('error', reject);
      }),
      timeoutMs,
      `raw TCP connect to 127.0.0.1:${port}`,
    );
    const key = randomBytes(16).toString('base64');
    socket.write(
      `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    await c.until(() => c.upgraded || undefined, timeoutMs, 'HTTP 101 upgrade response');
    return c;
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  private parse(): void {
    if (!this.upgraded) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.subarray(0, end).toString('latin1');
      if (!/^HTTP\/1\.1 101/.test(head)) throw new Error(`upgrade refused: ${head.split('\r\n')[0]}`);
      this.upgraded = true;
      this.buf = this.buf.subarray(end + 4);
    }
    for (;;) {
      if (this.buf.length < 2) return;
      const b0 = this.buf[0]!;
      const b1 = this.buf[1]!;
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      const maskOff = off;
      if (masked) off += 4;
      if (this.buf.length < off + len) return;
      let payload = Buffer.from(this.buf.subarray(off, off + len));
      if (masked) {
        const mask = this.buf.subarray(maskOff, maskOff + 4);
        payload = Buffer.from(payload.map((x, i) => x ^ mask[i % 4]!));
      }
      this.frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload });
      this.buf = this.buf.subarray(off + len);
    }
  }

  until<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const v = check();
    if (v !== undefined) return Promise.resolve(v);
    let l!: () => void;
    const p = new Promise<T>((resolve, reject) => {
      l = () => {
        const x = check();
        if (x !== undefined) resolve(x);
        else if (this.ended) reject(new Error(`raw client: socket closed while waiting for ${what}; frames: ${this.describe()}`));
      };
      this.listeners.add(l);
    });
    return withTimeout(p, timeoutMs, `raw client: ${what}; frames: ${this.describe()}`).finally(() => this.listeners.delete(l));
  }

  describe(): string {
    const counts = new Map<number, number>();
    for (const f of this.frames) counts.set(f.opcode, (counts.get(f.opcode) ?? 0) + 1);
    return JSON.stringify(Object.fromEntries(counts)) + (this.ended ? ' (socket ended)' : '');
  }

  /** Sends one masked frame (clients must mask). */
  sendFrame(opcode: number, payload: Buffer): void {
    const mask = randomBytes(4);
    const len = payload.length;
    const head = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len]) : Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 0xff]);
    if (len > 0xffff) throw new RangeError('raw client frames are at most 65535 bytes');
    const body = Buffer.from(payload.map((x, i) => x ^ mask[i % 4]!));
    this.socket.write(Buffer.concat([head, mask, body]));
  }

  sendText(obj: object): void {
    this.sendFrame(OPCODE.text, Buffer.from(JSON.stringify(obj), 'utf8'));
  }

  texts(): Record<string, unknown>[] {
    return this.frames.filter((f) => f.opcode === OPCODE.text).map((f) => JSON.parse(f.payload.toString('utf8')) as Record<string, unknown>);
  }

  /** Resolves with the close code of the box's close frame. */
  async waitForCloseFrame(timeoutMs: number): Promise<{ code: number; reason: string }> {
    const f = await this.until(() => this.frames.find((x) => x.opcode === OPCODE.close), timeoutMs, 'a close frame');
    return { code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005, reason: f.payload.subarray(2).toString('utf8') };
  }

  destroy(): void {
    this.socket.destroy();
  }
}
