import WebSocket from 'ws';
import { parsePacket, type ParsedPacket } from '../../src/protocol';
import { withTimeout } from './wait';

/** A JSON control message from the box. */
export interface BoxMessage {
  type: string;
  [key: string]: unknown;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

export interface ConnectOptions {
  timeoutMs?: number;
  /** Keep parsed packets (default true). Off for clients that only need counts. */
  keepPackets?: boolean;
  /** Also keep a copy of each packet's bytes, in `rawPackets` (default false). */
  keepRaw?: boolean;
  label?: string;
  /** Address of the box (default 127.0.0.1; test/discovery reaches a box in a network namespace). */
  host?: string;
  /** Source address (default: the system's choice, 127.0.0.1 over loopback). */
  localAddress?: string;
}

/**
 * A small test client for the stream protocol: records every text message
 * and every binary packet (parsed), and offers bounded waits on them.
 */
export class StreamClient {
  readonly messages: BoxMessage[] = [];
  readonly packets: ParsedPacket[] = [];
  /** With keepRaw: each packet's bytes, index for index with `packets`. */
  readonly rawPackets: Uint8Array[] = [];
  /** Binary frames that did not parse as packets, or whose header breaks the format (should stay empty). */
  readonly badPackets: string[] = [];
  /** For each entry of `messages`: how many packets had arrived before it (the socket's order). */
  readonly packetsBeforeMessage: number[] = [];
  packetCount = 0;
  closeInfo: CloseInfo | null = null;
  readonly closed: Promise<CloseInfo>;
  private readonly listeners = new Set<() => void>();
  readonly label: string;
  private readonly keepPackets: boolean;
  private readonly keepRaw: boolean;

  private constructor(
    readonly ws: WebSocket,
    opts: ConnectOptions,
  ) {
    this.label = opts.label ?? 'client';
    this.keepPackets = opts.keepPackets ?? true;
    this.keepRaw = opts.keepRaw ?? false;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        try {
          const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
          const p = parsePacket(bytes);
          const problem = headerProblem(bytes, p);
          if (problem) this.badPackets.push(`seq ${p.seq}: ${problem}`);
          this.packetCount++;
          if (this.keepPackets) this.packets.push(p);
          if (this.keepPackets && this.keepRaw) this.rawPackets.push(Uint8Array.from(bytes));
        } catch (err) {
          this.badPackets.push((err as Error).message);
        }
      } else {
        let msg: BoxMessage;
        try {
          msg = JSON.parse(data.toString('utf8')) as BoxMessage;
        } catch {
          msg = { type: '(unparseable)', text: data.toString('utf8') };
        }
        this.messages.push(msg);
        this.packetsBeforeMessage.push(this.packetCount);
      }
      this.notify();
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => {
        this.closeInfo = { code, reason: reason.toString('utf8') };
        resolve(this.closeInfo);
        this.notify();
      });
    });
    // Errors (e.g. the box destroying the socket) surface as a close; keep them from crashing the runner.
    ws.on('error', () => undefined);
  }

  static connect(port: number, opts: ConnectOptions = {}): Promise<StreamClient> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const host = opts.host ?? '127.0.0.1';
    const ws = new WebSocket(`ws://${host}:${port}/`, { perMessageDeflate: false, handshakeTimeout: timeoutMs, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    const client = new StreamClient(ws, opts);
    return withTimeout(
      new Promise<StreamClient>((resolve, reject) => {
        ws.once('open', () => resolve(client));
        ws.once('error', (err) => reject(new Error(`${client.label}: connect to ${host}:${port} failed: ${err.message}`)));
      }),
      timeoutMs,
      `${client.label}: WebSocket open on port ${port}`,
    );
  }

  /** Connects, says hello and waits for welcome. */
  static async open(port: number, clientId: string, opts: ConnectOptions & { name?: string } = {}): Promise<StreamClient> {
    const c = await StreamClient.connect(port, { label: clientId, ...opts });
    await c.hello(clientId, opts.name);
    return c;
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  /** Resolves when `check` returns a value (re-evaluated on every frame and on close). */
  private until<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const now = check();
    if (now !== undefined) return Promise.resolve(now);
    let listener!: () => void;
    const p = new Promise<T>((resolve, reject) => {
      listener = () => {
        const v = check();
        if (v !== undefined) resolve(v);
        else if (this.closeInfo) reject(new Error(`${this.label}: connection closed (${JSON.stringify(this.closeInfo)}) while waiting for ${what}; ${this.summary()}`));
      };
      this.listeners.add(listener);
      if (this.closeInfo) listener();
    });
    return withTimeout(p, timeoutMs, `${this.label}: ${what}; ${this.summary()}`).finally(() => this.listeners.delete(listener));
  }

  summary(): string {
    const last = this.messages.slice(-3).map((m) => JSON.stringify(m).slice(0, 200));
    return `(${this.packetCount} packets, ${this.messages.length} messages, last: ${last.join(' | ') || 'none'}, close: ${JSON.stringify(this.closeInfo)})`;
  }

  send(msg: object | string): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  /** Waits for a message (after index `from`) of `type` that also satisfies `pred`. */
  waitForMessage(type: string, opts: { timeoutMs?: number; from?: number; pred?: (m: BoxMessage) => boolean } = {}): Promise<BoxMessage> {
    const from = opts.from ?? 0;
    return this.until(
      () => this.messages.slice(from).find((m) => m.type === type && (opts.pred ? opts.pred(m) : true)),
      opts.timeoutMs ?? 5000,
      `a "${type}" message`,
    );
  }

  /** Waits until at least `n` packets in total have arrived. */
  waitForPackets(n: number, timeoutMs = 5000): Promise<number> {
    return this.until(() => (this.packetCount >= n ? this.packetCount : undefined), timeoutMs, `${n} packets`);
  }

  async hello(clientId: string, name?: string, timeoutMs = 5000): Promise<BoxMessage> {
    const from = this.messages.length;
    const msg: Record<string, unknown> = { type: 'hello', protocol: 1, clientId };
    if (name !== undefined) msg.name = name;
    this.send(msg);
    return this.waitForMessage('welcome', { from, timeoutMs });
  }

  async subscribe(channels: number[], codec: 'pcm16' | 'pcm24' | 'deflate', timeoutMs = 5000): Promise<BoxMessage> {
    const from = this.messages.length;
    this.send({ type: 'subscribe', channels, codec });
    const reply = await this.until(
      () => this.messages.slice(from).find((m) => m.type === 'subscribed' || m.type === 'error'),
      timeoutMs,
      `reply to subscribe ${JSON.stringify(channels)} ${codec}`,
    );
    if (reply.type !== 'subscribed') throw new Error(`${this.label}: subscribe ${JSON.stringify(channels)} ${codec} refused: ${JSON.stringify(reply)}`);
    return reply;
  }

  /** Sends `msg` and waits for the next "error" message; returns it. */
  async expectError(msg: object | string, timeoutMs = 5000): Promise<BoxMessage> {
    const from = this.messages.length;
    this.send(msg);
    return this.waitForMessage('error', { from, timeoutMs });
  }

  waitForClose(timeoutMs = 5000): Promise<CloseInfo> {
    return withTimeout(this.closed, timeoutMs, `${this.label}: close; ${this.summary()}`);
  }

  /** Round trip through the control channel: proves the connection is open and answering. */
  async ping(id: number, timeoutMs = 5000): Promise<BoxMessage> {
    const from = this.messages.length;
    this.send({ type: 'ping', id });
    return this.waitForMessage('pong', { from, timeoutMs, pred: (m) => m.id === id });
  }

  /** Packets received from index `from` on. */
  packetsFrom(from: number): ParsedPacket[] {
    return this.packets.slice(from);
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
  }

  terminate(): void {
    this.ws.terminate();
  }
}

/** What is wrong with a packet header per the wire format, or null. */
export function headerProblem(bytes: Uint8Array, p: ParsedPacket): string | null {
  const n = p.channels.length;
  if (p.version !== 1) return `protocol version ${p.version}, expected 1`;
  const hb = 36 + ((n + 3) & ~3);
  if (p.headerBytes !== hb) return `headerBytes ${p.headerBytes} for ${n} channels, expected ${hb}`;
  if (bytes[34] !== 0 || bytes[35] !== 0) return `reserved bytes 34..35 are ${bytes[34]}, ${bytes[35]}; expected 0`;
  for (let i = 36 + n; i < hb; i++) if (bytes[i] !== 0) return `header padding byte ${i} is ${bytes[i]}; expected 0`;
  if (n < 1 || n > 64) return `channelCount ${n}`;
  return null;
}

/** Index of the first pair of consecutive packets whose seq is not +1 (mod 2^32), or -1. */
export function firstSeqGap(packets: readonly ParsedPacket[]): number {
  for (let i = 1; i < packets.length; i++) {
    if (packets[i]!.seq !== ((packets[i - 1]!.seq + 1) >>> 0)) return i;
  }
  return -1;
}

/** Describes the seq gaps of a packet list, for failure messages. */
export function describeSeqGaps(packets: readonly ParsedPacket[], max = 5): string {
  const gaps: string[] = [];
  for (let i = 1; i < packets.length && gaps.length < max; i++) {
    const a = packets[i - 1]!.seq;
    const b = packets[i]!.seq;
    if (b !== ((a + 1) >>> 0)) gaps.push(`#${i}: ${a} -> ${b}`);
  }
  return gaps.length ? gaps.join(', ') : 'none';
}
