import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { StreamConfig } from '../config/config-schema';
import { CLOSE } from '../protocol/close-codes';
import type { LatencyHistogram } from '../metrics/latency-histogram';
import type { Logger } from '../logging/logger';
import type { OutputRegistry } from '../pool/output-registry';
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
 */
export class StreamServer {
  readonly http: http.Server;
  private readonly wss: WebSocketServer;
  readonly clients = new Set<ClientConnection>();
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

  constructor(
    private readonly opts: StreamServerOptions,
    deps: StreamServerDeps,
  ) {
    this.outputs = deps.outputs;
    this.serverLatency = deps.serverLatency;
    this.text = deps.text;
    this.events = deps.events;
    this.log = deps.log;
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
    if (this.clients.size >= this.opts.stream.maxClients) {
      this.log.warn({ address, maxClients: this.opts.stream.maxClients }, 'client refused: server full');
      this.events?.add('client-refused', { address, reason: 'server full' });
      ws.close(CLOSE.TRY_AGAIN_LATER, `server full: ${this.opts.stream.maxClients} clients`);
      return;
    }
    this.clients.add(conn);
    ws.on('message', onSocketMessage);
    ws.on('pong', onSocketPong);
    this.log.info({ address, clients: this.clients.size }, 'client connected');
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

  /** Closes a client with a reason; its socket is destroyed if the close handshake stalls. */
  close(conn: ClientConnection, code: number, reason: string): void {
    if (conn.closed) return;
    this.detach(conn);
    this.log.info({ clientId: conn.clientId, address: conn.address, code, reason }, 'client closed by box');
    try {
      conn.ws.close(code, reason);
    } catch {
      conn.ws.terminate();
    }
    const t = setTimeout(() => conn.ws.terminate(), CLOSE_GRACE_MS);
    t.unref();
  }

  /** Forgets a connection: subscription, id, queue. Idempotent. */
  detach(conn: ClientConnection): void {
    if (conn.closed) return;
    conn.markClosed();
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
    for (const conn of this.clients) {
      if (conn.clientId === null && now - conn.connectedAt > s.helloTimeoutMs) {
        this.close(conn, CLOSE.HELLO_TIMEOUT, `no hello within ${s.helloTimeoutMs} ms`);
      } else if (now - conn.lastHeardAt > s.heartbeatTimeoutMs) {
        this.close(conn, CLOSE.HEARTBEAT_TIMEOUT, `nothing heard for ${s.heartbeatTimeoutMs} ms`);
      } else if (conn.isStalled(now, s.stallTimeoutMs)) {
        this.close(conn, CLOSE.SEND_STALLED, `socket accepted nothing for ${s.stallTimeoutMs} ms`);
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
    for (const conn of [...this.clients]) this.close(conn, CLOSE.GOING_AWAY, 'service stopping');
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
      setTimeout(resolve, CLOSE_GRACE_MS + 100).unref();
    });
  }
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
