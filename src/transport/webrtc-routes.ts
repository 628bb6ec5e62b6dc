import type { WebRtcConfig } from '../config/config-schema';
import type { Logger } from '../logging/logger';
import type { PeerCloseReason } from '../protocol/webrtc';
import type { ClientConnection } from './client-connection';
import type { DatagramRoute } from './datagram-route';
import { iceHostAddresses } from './ice-host-addresses';
import { WebRtcPeers, type PeerStats } from './webrtc-peers';

/** The box's WebRTC figures, for /api/status, /metrics and the dashboard. */
export interface WebRtcStatus {
  enabled: true;
  peers: number;
  maxPeers: number;
  /** Offers answered, and refused (bad-sdp, too-many-peers, webrtc-unavailable), since start. */
  answered: number;
  refused: number;
}

/** A connection's data channel as a datagram route: up while the channel is open. */
class DataChannelRoute implements DatagramRoute {
  up = false;
  readonly where = 'webrtc data channel';
  constructor(
    private readonly peers: WebRtcPeers,
    private readonly connId: number,
  ) {}

  send(bytes: Uint8Array): void {
    this.peers.send(this.connId, bytes);
  }

  stats(): PeerStats | null {
    return this.peers.stats(this.connId);
  }
}

/**
 * Ties WebRTC peer connections to client connections: the offer comes over a
 * client's WebSocket, its peer's data channel becomes that connection's
 * `webrtc` route, and the connection's end closes the peer. The audio goes
 * there once the client asks for transport "webrtc" and the channel is open;
 * until then, and after the channel closes, it goes over the WebSocket.
 */
export class WebRtcRoutes {
  private readonly peers: WebRtcPeers;
  private readonly byId = new Map<number, ClientConnection>();
  private readonly ids = new WeakMap<ClientConnection, number>();
  private nextId = 1;
  private answered = 0;
  private refused = 0;

  constructor(
    private readonly config: WebRtcConfig,
    listenHost: string,
    private readonly log: Logger,
  ) {
    this.peers = new WebRtcPeers({
      hostAddresses: () => iceHostAddresses(listenHost),
      maxPeers: config.maxPeers,
      connectTimeoutMs: config.connectTimeoutMs,
      maxBufferedBytes: config.maxBufferedBytes,
      logger: log,
      onOpen: (id) => this.onOpen(id),
      onClose: (id, reason) => this.onClose(id, reason),
    });
  }

  /** Answers `conn`'s offer; rejects only with a WebRtcError, whose code goes back to that client. */
  async offer(conn: ClientConnection, sdp: unknown): Promise<string> {
    let id = this.ids.get(conn);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(conn, id);
    }
    this.byId.set(id, conn);
    // One route per connection: a new offer's peer takes the same id, so the route follows it.
    if (!(conn.webrtc instanceof DataChannelRoute)) conn.webrtc = new DataChannelRoute(this.peers, id);
    try {
      const answer = await this.peers.answer(id, sdp);
      this.answered++;
      return answer;
    } catch (err) {
      this.refused++;
      // A refused offer leaves an open channel as it was (bad-sdp is found before the old peer is touched).
      if (this.peers.stats(id) === null) this.forget(id, conn);
      throw err;
    }
  }

  /** The connection is gone: so is its peer. */
  release(conn: ClientConnection): void {
    const id = this.ids.get(conn);
    if (id === undefined) return;
    this.peers.close(id, 'closed');
    this.forget(id, conn);
  }

  status(): WebRtcStatus {
    return { enabled: true, peers: this.peers.size, maxPeers: this.config.maxPeers, answered: this.answered, refused: this.refused };
  }

  /** Counters of `conn`'s peer, if it has one. */
  stats(conn: ClientConnection): PeerStats | null {
    const id = this.ids.get(conn);
    return id === undefined ? null : this.peers.stats(id);
  }

  stop(): Promise<void> {
    return this.peers.stop();
  }

  private onOpen(id: number): void {
    const conn = this.byId.get(id);
    const route = conn?.webrtc;
    if (!conn || !(route instanceof DataChannelRoute)) return;
    route.up = true;
    this.log.info({ clientId: conn.clientId, address: conn.address }, 'webrtc: data channel open');
    conn.onRouteUp('webrtc', route.where);
  }

  private onClose(id: number, reason: PeerCloseReason): void {
    const conn = this.byId.get(id);
    const route = conn?.webrtc;
    if (!conn || !(route instanceof DataChannelRoute)) return;
    const wasUp = route.up;
    route.up = false;
    // A peer replaced by a new offer keeps the route: the new peer's channel takes it up again.
    if (reason !== 'replaced') this.forget(id, conn);
    if (reason !== 'replaced' && reason !== 'closed' && reason !== 'stopped') {
      this.log.info({ clientId: conn.clientId, address: conn.address, reason }, 'webrtc: data channel gone; audio over the WebSocket');
    }
    if (wasUp) conn.onRouteDown('webrtc', `the WebRTC data channel closed (${reason})`);
  }

  private forget(id: number, conn: ClientConnection): void {
    if (this.byId.get(id) !== conn) return;
    this.byId.delete(id);
    if (conn.webrtc instanceof DataChannelRoute) conn.webrtc = null;
  }
}
