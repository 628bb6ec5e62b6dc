import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { CLOSE } from '../protocol/close-codes';
import type { LevelMeter } from './level-meter';
import type { Logger } from '../logging/logger';

export interface LiveFeedOptions {
  /** Most dashboards at once; the next is closed with 1013. */
  maxViewers: number;
  /** Status push interval, ms (default 1000). */
  statusIntervalMs?: number;
  /** Level push interval, ms (default 100). */
  levelsIntervalMs?: number;
  /** A viewer with more than this many bytes unsent misses pushes until it drains, bytes (default 256 KiB). */
  maxBufferedBytes?: number;
}


export interface LiveFeedStats {
  viewers: number;
  maxViewers: number;
  /** Pushes not sent because a viewer's socket still held too much (since start). */
  skippedPushes: number;
  /** Dashboards refused because maxViewers were open (since start). */
  refused: number;
}

const kFeed = Symbol('stagebox.liveFeed');
const kAlive = Symbol('stagebox.alive');
type Viewer = WebSocket & { [kFeed]?: LiveFeed; [kAlive]?: boolean };

/**
 * The meter reads the ring this often, ms: a few periods per read, so no
 * read holds the event loop long (32 channels: ~30 µs), and the ring (32
 * periods, 85 ms at 128 frames) is never lapped between reads.
 */
const COLLECT_MS = 25;
/** Every this many status pushes, viewers are pinged; one that did not answer the previous ping is dropped. */
const PING_EVERY = 5;
const TEXT = { binary: false } as const;
/** How long a closing viewer may take before its socket is destroyed, ms. */
const CLOSE_GRACE_MS = 500;

/**
 * The dashboards' WebSocket (`/api/live`): pushes the status JSON about once
 * a second and the channel peaks about ten times a second. Dashboards are
 * not stream clients: they have their own WebSocketServer (noServer mode,
 * reached through the stream server's upgrade routing), their own limit and
 * no hello. The timers, and with them the level metering, run only while at
 * least one dashboard is connected. Each push is serialised once and sent to
 * every viewer whose socket is not backed up; a slow phone misses pushes
 * instead of buffering them.
 */
export class LiveFeed {
  private readonly wss: WebSocketServer;
  readonly viewers = new Set<Viewer>();
  private statusTimer: NodeJS.Timeout | null = null;
  private levelsTimer: NodeJS.Timeout | null = null;
  private pushes = 0;
  private collects = 0;
  private readonly collectsPerPush: number;
  private skipped = 0;
  private refused = 0;
  private stopping = false;
  private readonly maxBuffered: number;

  constructor(
    private readonly opts: LiveFeedOptions,
    private readonly status: () => object,
    private readonly meter: LevelMeter,
    private readonly log: Logger,
  ) {
    this.maxBuffered = opts.maxBufferedBytes ?? 256 * 1024;
    this.collectsPerPush = Math.max(1, Math.round((opts.levelsIntervalMs ?? 100) / COLLECT_MS));
    // Viewers only listen; anything they send is ignored, and nothing large is accepted.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 1024, perMessageDeflate: false, clientTracking: false });
  }

  /**
   * The stream server's upgrade route for the feed's path. A page of another
   * site open in a browser on the stage network must not read the box's
   * status through the user's browser: an Origin other than the box's own
   * host is refused (non-browser clients send none).
   */
  readonly handleUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    const origin = req.headers.origin;
    if (origin !== undefined && !sameHost(origin, req.headers.host)) {
      this.log.warn({ origin, host: req.headers.host ?? null }, 'dashboard refused: foreign origin');
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws as Viewer, req));
  };

  private accept(ws: Viewer, req: http.IncomingMessage): void {
    ws.on('error', onViewerError);
    if (this.stopping) {
      ws.close(CLOSE.GOING_AWAY, 'service stopping');
      return;
    }
    const address = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    if (this.viewers.size >= this.opts.maxViewers) {
      this.refused++;
      this.log.warn({ address, maxViewers: this.opts.maxViewers }, 'dashboard refused: too many open');
      ws.close(CLOSE.TRY_AGAIN_LATER, `too many dashboards: ${this.opts.maxViewers} open`);
      return;
    }
    ws[kFeed] = this;
    ws[kAlive] = true;
    ws.on('close', onViewerClose);
    ws.on('pong', onViewerPong);
    this.viewers.add(ws);
    this.log.info({ address, viewers: this.viewers.size }, 'dashboard connected');
    if (this.viewers.size === 1) this.startTimers();
    // The newcomer gets the status at once rather than up to a second later.
    this.sendTo(ws, this.statusJson());
  }

  /** A viewer's socket closed. */
  remove(ws: Viewer): void {
    if (!this.viewers.delete(ws)) return;
    if (this.viewers.size === 0) this.stopTimers();
  }

  private startTimers(): void {
    this.meter.reset();
    this.statusTimer = setInterval(this.pushStatus, this.opts.statusIntervalMs ?? 1000);
    this.collects = 0;
    this.levelsTimer = setInterval(this.collectLevels, COLLECT_MS);
  }

  private stopTimers(): void {
    if (this.statusTimer) clearInterval(this.statusTimer);
    if (this.levelsTimer) clearInterval(this.levelsTimer);
    this.statusTimer = this.levelsTimer = null;
  }

  private statusJson(): Buffer {
    return Buffer.from(`{"type":"status","status":${JSON.stringify(this.status())}}`);
  }

  private readonly pushStatus = (): void => {
    const ping = ++this.pushes % PING_EVERY === 0;
    if (ping) {
      for (const ws of this.viewers) {
        if (!ws[kAlive]) {
          this.log.warn({}, 'dashboard dropped: no pong');
          ws.terminate();
          continue;
        }
        ws[kAlive] = false;
        ws.ping();
      }
    }
    this.broadcast(this.statusJson());
  };

  private readonly collectLevels = (): void => {
    this.meter.collect();
    if (++this.collects % this.collectsPerPush !== 0) return;
    this.meter.finish();
    this.broadcast(Buffer.from(this.meter.toJson()));
  };

  private broadcast(data: Buffer): void {
    for (const ws of this.viewers) this.sendTo(ws, data);
  }

  private sendTo(ws: Viewer, data: Buffer): void {
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > this.maxBuffered) {
      this.skipped++;
      return;
    }
    ws.send(data, TEXT);
  }

  snapshot(): LiveFeedStats {
    return { viewers: this.viewers.size, maxViewers: this.opts.maxViewers, skippedPushes: this.skipped, refused: this.refused };
  }

  /** Closes every dashboard with 1001; sockets that do not finish the handshake are destroyed. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.stopTimers();
    const all = [...this.viewers];
    for (const ws of all) ws.close(CLOSE.GOING_AWAY, 'service stopping');
    if (all.length === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, CLOSE_GRACE_MS);
      let left = all.length;
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      for (const ws of all) ws.once('close', () => --left === 0 && done());
    });
    for (const ws of all) ws.terminate();
  }
}

/** Whether an Origin header names the host the request was sent to. */
function sameHost(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}

function onViewerClose(this: Viewer): void {
  this[kFeed]?.remove(this);
}

function onViewerPong(this: Viewer): void {
  this[kAlive] = true;
}

function onViewerError(this: Viewer): void {
  // ws emits 'close' after 'error'; the close handler removes the viewer.
}
