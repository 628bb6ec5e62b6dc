import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { StreamConfig } from '../config/config-schema';
import { CLOSE } from '../protocol/close-codes';
import type { LatencyHistogram } from '../metrics/latency-histogram';
import type { Logger } from '../logging/logger';
import type { OutputRegistry } from '../pool/output-registry';
import type { UdpFlows } from './udp-flows';
import { ClientConnection, type ClientInfo } from './client-connection';

export interface StreamServerOptions {
  host: string;
  port: number;
  stream: StreamConfig;
}


/**
 * Where a stream client's text frames go: the control plane. Transport sits
 * below control and never imports it; the controller wires the two.
 */
export interface TextFrameHandler {
  onText(conn: ClientConnection, text: string): void;
}

/** What the server works with, given once at construction. */
export interface StreamServerDeps {
  outputs: OutputRegistry;
  /** Period arrival → packet handed to a client's socket (the send pool's histogram). */
  serverLatency: LatencyHistogram;
  /** Plain HTTP requests (the API, the dashboard). */
  http: http.RequestListener;
  /** Each client's control messages. */
  text: TextFrameHandler;
  /** Clients refused, for the event log; null: not reported. */
  events: EventSink | null;
  /** Audio over UDP (docs/protocol.md §12); null when the box offers none. */
  udp: UdpFlows | null;
  /** Browsers' data channels; a connection's end closes its peer. */
  webrtc: { release(conn: ClientConnection): void } | null;
  /** Largest datagram built with redundant copies (udp.maxDatagramBytes). */
  maxDatagramBytes: number;
  log: Logger;
}

/** Where the server reports clients coming and going (health/event-log.ts). */
export interface EventSink {
  add(kind: string, fields: Record<string, string | number | boolean | null>): unknown;
}

/** Takes over an upgrade request for its path (another WebSocketServer in noServer mode). */
export type UpgradeRoute = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;

const kConn = Symbol('stagebox.connection');
const kServer = Symbol('stagebox.server');
type TaggedSocket = WebSocket & { [kConn]?: ClientConnection };

/** How long a closing client may take before its socket is destroyed, ms. */
const CLOSE_GRACE_MS = 500;

/**
 * One HTTP server for streams and the HTTP API. Each WebSocket becomes a
 * ClientConnection; a periodic sweep (not a timer per client) enforces the
 * hello, heartbeat and stall timeouts. Handlers are module-level functions
 * reaching their connection through a symbol, so nothing is allocated per
 * message beyond what ws itself does.
 *
 * Admission: a connection is *pending* until it says hello, and pending
 * connections have a budget of their own (stream.maxPendingHandshakes, and
 * stream.maxPendingPerAddress per IP address), apart from
 * stream.maxClients. When a new connection finds the budget full, the oldest
 * pending one (of its address, or of all) is closed with 4013 to make room:
 * sockets that never say hello can delay nobody for longer than it takes a
 * real client to send its hello, and never count against maxClients, which
 * is checked at hello.
 */
export class StreamServer {
  readonly http: http.Server;
  private readonly wss: WebSocketServer;
  /** Connections that have said hello (and count against stream.maxClients). */
  readonly clients = new Set<ClientConnection>();
  /** Connections that have not said hello yet, oldest first (a Set iterates in insertion order). */
  private readonly pending = new Set<ClientConnection>();
  /** Pending connections per IP address. */
  private readonly pendingByIp = new Map<string, number>();
  /** Pending connections closed with 4013 to make room, since start. */
  private evictedHandshakes = 0;
  /**
   * Stalled clients closed with 4008 whose close frame still waits behind
   * audio in their socket: kept open until it is written (then the usual
   * grace) or until the deadline (performance.now(), ms).
   */
  private readonly draining = new Map<ClientConnection, number>();
  private readonly byId = new Map<string, ClientConnection>();
  private sweepTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private stopping = false;
  /** Audio bytes sent to clients that have gone (live clients count their own). */
  private bytesSentGone = 0;
  private readonly upgradeRoutes = new Map<string, UpgradeRoute>();
  private readonly outputs: OutputRegistry;
  private readonly serverLatency: LatencyHistogram;
  private readonly text: TextFrameHandler;
  private readonly events: EventSink | null;
  private readonly log: Logger;
  private readonly udp: UdpFlows | null;
  private readonly webrtc: StreamServerDeps['webrtc'];
  private readonly maxDatagramBytes: number;

  constructor(
    private readonly opts: StreamServerOptions,
    deps: StreamServerDeps,
  ) {
    this.outputs = deps.outputs;
    this.serverLatency = deps.serverLatency;
    this.text = deps.text;
    this.events = deps.events;
    this.log = deps.log;
    this.udp = deps.udp;
    this.webrtc = deps.webrtc;
    this.maxDatagramBytes = deps.maxDatagramBytes;
    this.http = http.createServer(deps.http);
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.stream.maxPayloadBytes,
      // Must stay off: audio frames are written raw to the socket (see client-connection.ts).
      perMessageDeflate: false,
      clientTracking: false,
    });
    this.http.on('upgrade', (req, socket, head) => {
      const route = this.upgradeRoutes.get(pathOf(req.url));
      if (route) return route(req, socket, head);
      socket.on('error', () => socket.destroy());
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req, socket));
    });
  }

  /**
   * WebSocket upgrades for `path` go to `route` instead of becoming stream
   * clients (the dashboards' live feed): they never count against
   * stream.maxClients and have no hello or heartbeat rules. Every other path
   * stays a stream client, as before.
   */
  addUpgradeRoute(path: string, route: UpgradeRoute): void {
    this.upgradeRoutes.set(path, route);
  }

  /** Listens; resolves with the bound port. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.http.once('error', onError);
      this.http.listen(this.opts.port, this.opts.host, () => {
        this.http.off('error', onError);
        resolve((this.http.address() as AddressInfo).port);
      });
      const s = this.opts.stream;
      this.sweepTimer = setInterval(this.sweep, Math.min(250, s.helloTimeoutMs / 2, s.stallTimeoutMs / 2));
      this.pingTimer = setInterval(this.pingAll, s.heartbeatIntervalMs);
    });
  }

  private accept(ws: WebSocket, req: http.IncomingMessage, socket: Duplex): void {
    const ip = req.socket.remoteAddress ?? '?';
    const address = `${ip}:${req.socket.remotePort ?? '?'}`;
    const conn = new ClientConnection(ws, socket, address, ip, this.opts.stream, this.serverLatency);
    (ws as TaggedSocket)[kConn] = conn;
    (ws as unknown as { [kServer]: StreamServer })[kServer] = this;
    ws.on('error', onSocketError);
    ws.on('close', onSocketClose);
    if (this.stopping) {
      ws.close(CLOSE.GOING_AWAY, 'service stopping');
      return;
    }
    this.makeRoomForPending(ip);
    this.pending.add(conn);
    this.pendingByIp.set(ip, (this.pendingByIp.get(ip) ?? 0) + 1);
    ws.on('message', onSocketMessage);
    ws.on('pong', onSocketPong);
    this.log.info({ address, clients: this.clients.size, pending: this.pending.size }, 'client connected');
  }

  /** Closes the oldest pending connection of `ip`, then the oldest of all, while either budget is full. */
  private makeRoomForPending(ip: string): void {
    const s = this.opts.stream;
    if ((this.pendingByIp.get(ip) ?? 0) >= s.maxPendingPerAddress) {
      for (const c of this.pending) {
        if (c.ip !== ip) continue;
        this.evict(c, `too many connections without hello from ${ip} (${s.maxPendingPerAddress}); closed the oldest`);
        break;
      }
    }
    if (this.pending.size >= s.maxPendingHandshakes) {
      const oldest = this.pending.values().next().value as ClientConnection;
      this.evict(oldest, `too many connections without hello (${s.maxPendingHandshakes}); closed the oldest`);
    }
  }

  private evict(conn: ClientConnection, reason: string): void {
    this.evictedHandshakes++;
    this.close(conn, CLOSE.HANDSHAKE_EVICTED, reason);
  }

  /**
   * Called on a valid hello: moves `conn` from the pending connections to
   * the clients, or closes it with 1013 when stream.maxClients clients have
   * said hello already. A hello that takes over the clientId of a live
   * connection is admitted even then: the older one is about to be closed
   * (4010), and a phone back from a Wi-Fi drop must get its place back.
   */
  admit(conn: ClientConnection, clientId: string): boolean {
    if (!this.pending.has(conn)) return !conn.closed;
    const max = this.opts.stream.maxClients;
    if (this.clients.size >= max && this.findClient(clientId) === null) {
      this.log.warn({ address: conn.address, clientId, maxClients: max }, 'client refused: server full');
      this.events?.add('client-refused', { address: conn.address, reason: 'server full' });
      this.close(conn, CLOSE.TRY_AGAIN_LATER, `server full: ${max} clients`);
      return false;
    }
    this.forgetPending(conn);
    this.clients.add(conn);
    if (this.udp) conn.flow = this.udp.open(conn);
    conn.maxDatagramBytes = this.maxDatagramBytes;
    return true;
  }

  private forgetPending(conn: ClientConnection): void {
    if (!this.pending.delete(conn)) return;
    const n = (this.pendingByIp.get(conn.ip) ?? 1) - 1;
    if (n > 0) this.pendingByIp.set(conn.ip, n);
    else this.pendingByIp.delete(conn.ip);
  }

  /** Connections waiting for their hello now, their budget, and how many were closed to make room since start. */
  pendingInfo(): { pending: number; maxPending: number; maxPendingPerAddress: number; evicted: number } {
    const s = this.opts.stream;
    return { pending: this.pending.size, maxPending: s.maxPendingHandshakes, maxPendingPerAddress: s.maxPendingPerAddress, evicted: this.evictedHandshakes };
  }

  /** Registers `clientId` for `conn`; returns the older connection it replaces. */
  claimClientId(conn: ClientConnection, clientId: string): ClientConnection | null {
    const old = this.byId.get(clientId);
    this.byId.set(clientId, conn);
    return old && old !== conn ? old : null;
  }

  /** The open connection that said hello with `clientId`, if any. */
  findClient(clientId: string): ClientConnection | null {
    const c = this.byId.get(clientId);
    return c && !c.closed ? c : null;
  }

  /**
   * Closes a client with a reason; its socket is destroyed if the close
   * handshake stalls. The audio queued for it is dropped first (detach), so
   * the close frame goes to the socket at once, behind only the packets the
   * socket already has (at most stream.maxInFlightPackets). A stalled client
   * (4008) cannot take even that until it reads again, so its socket is kept
   * until the close frame is written, for at most stream.stallTimeoutMs more:
   * a client that resumes reading in that time gets the 4008.
   */
  close(conn: ClientConnection, code: number, reason: string): void {
    if (conn.closed) return;
    this.detach(conn);
    this.log.info({ clientId: conn.clientId, address: conn.address, code, reason }, 'client closed by box');
    try {
      conn.ws.close(code, reason);
    } catch {
      conn.ws.terminate();
      return;
    }
    if (code === CLOSE.SEND_STALLED && conn.unwrittenBytes > 0) this.draining.set(conn, performance.now() + this.opts.stream.stallTimeoutMs);
    else terminateLater(conn);
  }

  /** Forgets a connection: subscription, id, queue. Idempotent. */
  detach(conn: ClientConnection): void {
    if (conn.closed) return;
    conn.markClosed();
    if (conn.flow) this.udp?.close(conn.flow);
    this.webrtc?.release(conn);
    this.forgetPending(conn);
    this.clients.delete(conn);
    this.bytesSentGone += conn.bytesSent;
    if (conn.output) this.outputs.unsubscribe(conn, conn.output);
    conn.output = null;
    if (conn.clientId !== null && this.byId.get(conn.clientId) === conn) this.byId.delete(conn.clientId);
  }

  onMessage(conn: ClientConnection, data: RawData, isBinary: boolean): void {
    conn.lastHeardAt = performance.now();
    if (isBinary) {
      this.close(conn, CLOSE.UNSUPPORTED_DATA, 'binary frames are not accepted from clients');
      return;
    }
    this.text.onText(conn, data.toString());
  }

  onClose(conn: ClientConnection, code: number, reason: Buffer): void {
    if (conn.closed) return;
    this.detach(conn);
    this.log.info({ clientId: conn.clientId, address: conn.address, code, reason: reason.toString() }, 'client disconnected');
  }

  private readonly sweep = (): void => {
    const now = performance.now();
    const s = this.opts.stream;
    // Oldest first: the first one still within its time ends the scan.
    for (const conn of this.pending) {
      if (now - conn.connectedAt <= s.helloTimeoutMs) break;
      this.close(conn, CLOSE.HELLO_TIMEOUT, `no hello within ${s.helloTimeoutMs} ms`);
    }
    for (const conn of this.clients) {
      if (now - conn.lastHeardAt > s.heartbeatTimeoutMs) {
        this.close(conn, CLOSE.HEARTBEAT_TIMEOUT, `nothing heard for ${s.heartbeatTimeoutMs} ms`);
      } else if (conn.isStalled(now, s.stallTimeoutMs)) {
        this.close(conn, CLOSE.SEND_STALLED, `socket accepted nothing for ${s.stallTimeoutMs} ms`);
      }
    }
    for (const [conn, deadline] of this.draining) {
      if (conn.ws.readyState === WebSocket.CLOSED) this.draining.delete(conn);
      else if (conn.unwrittenBytes === 0) {
        this.draining.delete(conn);
        terminateLater(conn);
      } else if (now > deadline) {
        this.draining.delete(conn);
        conn.ws.terminate();
        this.log.info({ clientId: conn.clientId, address: conn.address }, 'stalled client dropped: it read nothing more, so its 4008 close frame was never sent');
      }
    }
  };

  private readonly pingAll = (): void => {
    const now = performance.now();
    for (const conn of this.clients) {
      try {
        conn.pingSentAt = now;
        conn.ws.ping();
      } catch {
        // A socket closing under us; the close handler detaches it.
      }
    }
  };

  logSocketError(conn: ClientConnection | undefined, err: Error): void {
    this.log.warn({ clientId: conn?.clientId ?? null, address: conn?.address, err: err.message }, 'client socket error');
  }

  /** Audio bytes sent since start, to every client including those gone. */
  bytesSent(): number {
    let n = this.bytesSentGone;
    for (const c of this.clients) n += c.bytesSent;
    return n;
  }

  clientInfos(): ClientInfo[] {
    const now = performance.now();
    return [...this.clients].map((c) => c.info(now));
  }

  /** Closes every client with 1001 and stops listening. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    for (const conn of [...this.clients, ...this.pending]) this.close(conn, CLOSE.GOING_AWAY, 'service stopping');
    for (const conn of this.draining.keys()) conn.ws.terminate();
    this.draining.clear();
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
      setTimeout(resolve, CLOSE_GRACE_MS + 100).unref();
    });
  }
}

/** Destroys the socket if the closing handshake has not ended it within CLOSE_GRACE_MS. */
function terminateLater(conn: ClientConnection): void {
  const t = setTimeout(() => conn.ws.terminate(), CLOSE_GRACE_MS);
  t.unref();
}

/** The path of a request URL, without its query. */
function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function serverOf(ws: WebSocket): StreamServer | undefined {
  return (ws as unknown as { [kServer]?: StreamServer })[kServer];
}

function onSocketMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  const conn = (this as TaggedSocket)[kConn];
  if (conn && !conn.closed) serverOf(this)?.onMessage(conn, data, isBinary);
}

function onSocketPong(this: WebSocket): void {
  const conn = (this as TaggedSocket)[kConn];
  if (!conn) return;
  conn.lastHeardAt = performance.now();
  if (conn.pingSentAt > 0) {
    conn.rttMs = Math.round((conn.lastHeardAt - conn.pingSentAt) * 1000) / 1000;
    conn.pingSentAt = 0;
  }
}

function onSocketClose(this: WebSocket, code: number, reason: Buffer): void {
  const conn = (this as TaggedSocket)[kConn];
  if (conn) serverOf(this)?.onClose(conn, code, reason);
}

function onSocketError(this: WebSocket, err: Error): void {
  // ws emits 'close' after 'error' (1009 for oversized frames, bad frames); the close handler detaches.
  const conn = (this as TaggedSocket)[kConn];
  serverOf(this)?.logSocketError(conn, err);
}
