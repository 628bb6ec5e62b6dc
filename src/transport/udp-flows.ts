import { randomBytes, timingSafeEqual } from 'node:crypto';
import dgram from 'node:dgram';
import type { Logger } from '../logging/logger';
import type { DatagramRoute } from './datagram-route';
import {
  DatagramError,
  encodeChallenge,
  encodeTimes,
  KIND,
  NONCE_BYTES,
  parseClientDatagram,
  tokenToHex,
} from '../protocol/datagram';

/** How a UDP flow is doing, for its connection's status line. */
export interface FlowInfo {
  /** "ip:port" the audio goes to, or null while no address is confirmed. */
  address: string | null;
  datagrams: number;
  bytes: number;
  sendErrors: number;
  roams: number;
}

/** Told when a flow's confirmed address starts or stops receiving audio. */
export interface FlowOwner {
  onFlowUp(flow: UdpFlow): void;
  onFlowDown(flow: UdpFlow, reason: string): void;
}

/** One connection's UDP flow: its token, and the one address that proved it can receive there. */
export class UdpFlow implements DatagramRoute {
  /** performance.now() of the last datagram from the confirmed address. */
  lastHeardAt = 0;
  address: string | null = null;
  port = 0;
  /** Challenges sent to addresses that have not confirmed yet, by "ip:port" (a handful at most). */
  readonly challenges = new Map<string, Uint8Array>();
  readonly info: FlowInfo = { address: null, datagrams: 0, bytes: 0, sendErrors: 0, roams: 0 };
  closed = false;

  constructor(
    readonly token: Uint8Array,
    readonly owner: FlowOwner,
    private readonly sender: (flow: UdpFlow, bytes: Uint8Array) => void,
    private readonly onSendError: () => void,
  ) {}

  send(bytes: Uint8Array): void {
    this.sender(this, bytes);
  }

  get where(): string | null {
    return this.info.address;
  }

  /** The send callback, bound once per flow: nothing is allocated per datagram for it. */
  readonly sent = (err: Error | null): void => {
    if (!err) return;
    this.info.sendErrors++;
    this.onSendError();
  };

  get tokenHex(): string {
    return tokenToHex(this.token);
  }

  get up(): boolean {
    return this.address !== null && !this.closed;
  }
}

/** Datagrams the box received but did not act on, by reason (never logged one by one). */
export interface UdpRejects {
  malformed: number;
  oversized: number;
  badToken: number;
  badNonce: number;
  flood: number;
}

export interface UdpStats {
  enabled: boolean;
  port: number | null;
  flows: number;
  flowsUp: number;
  received: number;
  rejected: UdpRejects;
  challenges: number;
  timeouts: number;
  roams: number;
  sent: number;
  sendErrors: number;
}

export interface UdpFlowsOptions {
  host: string;
  port: number;
  /** A confirmed flow with no datagram from its client this long falls back to the WebSocket, ms. */
  flowTimeoutMs: number;
  /** Datagrams one source (ip:port) may send a second before the rest are dropped, and its burst. */
  sourceRatePerSecond: number;
  sourceBurst: number;
  log: Logger;
}

/** The largest datagram a client ever needs to send (CONFIRM, 36 bytes); anything larger is not ours. */
const MAX_CLIENT_DATAGRAM = 64;
/** Unconfirmed addresses one flow keeps a challenge for (a phone roams between a few at most). */
const MAX_CHALLENGES = 4;
/** Sources tracked for the flood limit; beyond it the oldest are forgotten. */
const MAX_SOURCES = 4096;

/**
 * The box's UDP socket for audio over datagrams (docs/protocol.md §12). A
 * connection opens a flow and gets its token (sent in `welcome`); the client
 * binds an address to it with the token and proves the address can receive
 * by echoing a challenge, so the box never sends audio to an address that
 * did not ask for it, and never more bytes to an unconfirmed address than it
 * received from it. A phone that roams is followed once its new address
 * proves itself; a flow that goes silent falls back to the WebSocket.
 * Nothing here logs per datagram: rejects are counted.
 */
export class UdpFlows {
  readonly name = 'udp';
  private socket: dgram.Socket | null = null;
  private boundPort: number | null = null;
  private readonly byToken = new Map<string, UdpFlow>();
  private readonly sources = new Map<string, { tokens: number; at: number }>();
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly st = {
    received: 0,
    rejected: { malformed: 0, oversized: 0, badToken: 0, badNonce: 0, flood: 0 } as UdpRejects,
    challenges: 0,
    timeouts: 0,
    roams: 0,
    sent: 0,
    sendErrors: 0,
  };

  constructor(private readonly opts: UdpFlowsOptions) {}

  /** Binds the socket; resolves with the port. */
  start(): Promise<number> {
    const family = this.opts.host.includes(':') ? 'udp6' : 'udp4';
    const socket = dgram.createSocket({ type: family, reuseAddr: false });
    this.socket = socket;
    socket.on('message', this.onMessage);
    return new Promise((resolve, reject) => {
      const failed = (err: Error): void => {
        this.socket = null;
        socket.close();
        reject(new Error(`udp ${this.opts.host}:${this.opts.port}: ${err.message}`));
      };
      socket.once('error', failed);
      socket.bind(this.opts.port, this.opts.host, () => {
        socket.off('error', failed);
        socket.on('error', (err) => this.opts.log.warn({ err: err.message }, 'udp socket error'));
        this.boundPort = socket.address().port;
        this.sweepTimer = setInterval(this.sweep, Math.max(100, Math.min(1000, this.opts.flowTimeoutMs / 4)));
        this.sweepTimer.unref();
        resolve(this.boundPort);
      });
    });
  }

  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    for (const f of this.byToken.values()) f.closed = true;
    this.byToken.clear();
    const s = this.socket;
    this.socket = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  get port(): number | null {
    return this.boundPort;
  }

  /** A new flow for a connection, with a fresh random token. */
  open(owner: FlowOwner): UdpFlow {
    let token: Uint8Array;
    do token = randomBytes(16);
    while (this.byToken.has(tokenToHex(token)));
    const flow = new UdpFlow(token, owner, this.sendTo, this.countSendError);
    this.byToken.set(flow.tokenHex, flow);
    return flow;
  }

  /** The connection is gone: its token is stale from now on. */
  close(flow: UdpFlow): void {
    flow.closed = true;
    this.byToken.delete(flow.tokenHex);
  }

  /** Sends one datagram to the flow's confirmed address; never throws, never awaits. */
  private readonly sendTo = (flow: UdpFlow, bytes: Uint8Array): void => {
    const s = this.socket;
    if (!s || flow.address === null) return;
    flow.info.datagrams++;
    flow.info.bytes += bytes.length;
    this.st.sent++;
    s.send(bytes, flow.port, flow.address, flow.sent);
  };

  private readonly countSendError = (): void => {
    this.st.sendErrors++;
  };

  stats(): UdpStats {
    let up = 0;
    for (const f of this.byToken.values()) if (f.up) up++;
    return { enabled: true, port: this.boundPort, flows: this.byToken.size, flowsUp: up, ...this.st, rejected: { ...this.st.rejected } };
  }

  private readonly onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    this.st.received++;
    if (msg.length > MAX_CLIENT_DATAGRAM) {
      this.st.rejected.oversized++;
      return;
    }
    const source = `${rinfo.address}:${rinfo.port}`;
    if (!this.admit(source)) {
      this.st.rejected.flood++;
      return;
    }
    let d;
    try {
      d = parseClientDatagram(msg);
    } catch (err) {
      if (!(err instanceof DatagramError)) throw err;
      this.st.rejected.malformed++;
      return;
    }
    const flow = this.byToken.get(tokenToHex(d.token));
    if (!flow) {
      this.st.rejected.badToken++;
      return;
    }
    const now = performance.now();
    const confirmed = flow.address === rinfo.address && flow.port === rinfo.port;
    switch (d.kind) {
      case KIND.BIND:
      case KIND.KEEPALIVE:
        if (confirmed) {
          flow.lastHeardAt = now;
          this.reply(encodeTimes(d.kind === KIND.BIND ? KIND.BOUND : KIND.PONG, d.clientMs, process.hrtime.bigint()), rinfo);
        } else {
          // A new address (first bind, or the phone roamed): it must show it can receive before audio goes there.
          this.challenge(flow, source, d.clientMs, rinfo);
        }
        return;
      case KIND.CONFIRM: {
        const nonce = flow.challenges.get(source);
        if (!nonce || !timingSafeEqual(nonce, d.nonce)) {
          this.st.rejected.badNonce++;
          return;
        }
        flow.challenges.delete(source);
        const roamed = flow.address !== null && !confirmed;
        flow.address = rinfo.address;
        flow.port = rinfo.port;
        flow.info.address = source;
        flow.lastHeardAt = now;
        if (roamed) {
          flow.info.roams++;
          this.st.roams++;
        }
        this.reply(encodeTimes(KIND.BOUND, 0, process.hrtime.bigint()), rinfo);
        flow.owner.onFlowUp(flow);
        return;
      }
    }
  };

  /** One challenge per datagram received, never larger than it (28 bytes for 28): no amplification. */
  private challenge(flow: UdpFlow, source: string, clientMs: number, rinfo: dgram.RemoteInfo): void {
    let nonce = flow.challenges.get(source);
    if (!nonce) {
      if (flow.challenges.size >= MAX_CHALLENGES) flow.challenges.delete(flow.challenges.keys().next().value!);
      nonce = randomBytes(NONCE_BYTES);
      flow.challenges.set(source, nonce);
    }
    this.st.challenges++;
    this.reply(encodeChallenge(nonce, clientMs), rinfo);
  }

  private reply(bytes: Uint8Array, rinfo: dgram.RemoteInfo): void {
    this.socket?.send(bytes, rinfo.port, rinfo.address, this.replySent);
  }

  private readonly replySent = (err: Error | null): void => {
    if (err) this.st.sendErrors++;
  }

  /** Token bucket per source ip:port; a legitimate client sends about one datagram a second. */
  private admit(source: string): boolean {
    const now = performance.now();
    let b = this.sources.get(source);
    if (!b) {
      if (this.sources.size >= MAX_SOURCES) this.sources.delete(this.sources.keys().next().value!);
      b = { tokens: this.opts.sourceBurst, at: now };
      this.sources.set(source, b);
    }
    b.tokens = Math.min(this.opts.sourceBurst, b.tokens + ((now - b.at) / 1000) * this.opts.sourceRatePerSecond);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private readonly sweep = (): void => {
    const now = performance.now();
    for (const f of this.byToken.values()) {
      if (f.address === null || now - f.lastHeardAt <= this.opts.flowTimeoutMs) continue;
      f.address = null;
      f.info.address = null;
      this.st.timeouts++;
      f.owner.onFlowDown(f, `no datagram from the client for ${this.opts.flowTimeoutMs} ms`);
    }
  };
}
