import type { RTCDataChannel, RTCPeerConnection } from 'werift';
import type { Logger } from '../logging/logger';
import { AUDIO_CHANNEL_INIT, AUDIO_CHANNEL_LABEL, type PeerCloseReason } from '../protocol/webrtc';
import { skipHandshakeSequenceNumbers } from './dtls-record-sequence';
import { holdCongestionWindow } from './sctp-audio-window';
import { enforcePartialReliability } from './sctp-partial-reliability';
import { checkOffer } from './sdp-offer';
import { WebRtcError } from './webrtc-error';

/**
 * The audio channel's congestion-window floor (sctp-audio-window.ts): 256 KiB in flight covers a 300 ms Wi-Fi stall
 * (the longest the profiles have) even at three copies a datagram (2.2 KB × 112 periods), so during a stall the box
 * keeps sending into the link as over UDP instead of queueing behind the window and dropping at maxBufferedBytes.
 * 64 KiB (150 ms at one copy) dropped 33-44 datagrams a stall on busy-venue (BENCHMARKS.md, wifi run 4).
 */
const AUDIO_CWND_FLOOR_BYTES = 256 * 1024;

/** Options of {@link WebRtcPeers}; checked by the constructor. */
export interface WebRtcPeersOptions {
  /**
   * ICE host candidates the box offers (see ice-host-addresses.ts); at least one. A function is asked at each
   * offer: a box's addresses change when it is plugged into another network.
   */
  hostAddresses: readonly string[] | (() => readonly string[]);
  /** Most peer connections at once; the next offer gets `too-many-peers`. Default 64. */
  maxPeers?: number;
  /** A peer whose audio channel is not open this long after its answer is closed (`timeout`), ms. Default 10000. */
  connectTimeoutMs?: number;
  /**
   * Bytes a channel may hold unsent before send() drops instead (the data
   * channel's bufferedAmount, as the WebSocket's queue bounds packets).
   * Default 16384: 13-27 AUDIO datagrams of 600-1200 bytes, 35-70 ms of audio.
   */
  maxBufferedBytes?: number;
  logger?: Logger;
  /** The peer's audio channel opened: audio may go to it from now on. */
  onOpen?: (connId: number) => void;
  /** The peer is gone (not called for a peer that never got past answer()); the caller falls back to the WebSocket. */
  onClose?: (connId: number, reason: PeerCloseReason) => void;
}

export type PeerState = 'connecting' | 'open' | 'closed';

/** Counters of one peer, for /api/status, /metrics and the dashboard. */
export interface PeerStats {
  state: PeerState;
  /** AUDIO datagrams handed to the data channel. */
  messagesSent: number;
  /** Datagrams dropped: channel not open yet, closed, or over maxBufferedBytes. */
  messagesDropped: number;
  bytesSent: number;
  /** Bytes the channel holds unsent now. */
  bufferedBytes: number;
}

const DEFAULTS = { maxPeers: 64, connectTimeoutMs: 10_000, maxBufferedBytes: 16_384 };

type Werift = typeof import('werift');
let werift: Promise<Werift> | null = null;

/**
 * werift is loaded on the first offer, not at start: loading it takes about
 * 0.5 s of CPU and 28 MB of RSS (this machine), which a box whose listeners
 * all use the WebSocket or UDP never needs.
 */
function loadWerift(): Promise<Werift> {
  werift ??= import('werift');
  return werift;
}

/** One browser's peer connection and its audio channel. */
class Peer {
  channel: RTCDataChannel | null = null;
  state: PeerState = 'connecting';
  messagesSent = 0;
  messagesDropped = 0;
  bytesSent = 0;
  timer: NodeJS.Timeout | null = null;
  closing: Promise<void> = Promise.resolve();

  constructor(
    readonly connId: number,
    readonly pc: RTCPeerConnection,
  ) {}
}

function positiveInt(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(`WebRtcPeers option ${name} is ${value}; allowed: an integer 1-${max}`);
  }
  return value;
}

/**
 * The box side of WebRTC data channels for browsers: one peer connection per
 * WebSocket connection (keyed by the caller's connection id), answering the
 * browser's offer with host candidates only; the browser creates the audio
 * channel (protocol/webrtc.ts) and the box accepts it, refusing any other.
 *
 * Signalling is one offer and one answer, each with all its candidates
 * (no trickle): the box gathers its host candidates in a few milliseconds and
 * Chromium on plain http:// accepts a complete answer as it accepts any.
 *
 * send() is the hot path: it never throws and never awaits; a channel that
 * is not open or holds more than maxBufferedBytes drops the datagram and
 * counts it. answer() never rejects with anything but a {@link WebRtcError}
 * whose code the caller sends back.
 */
export class WebRtcPeers {
  private readonly peers = new Map<number, Peer>();
  private readonly hostAddresses: () => readonly string[];
  private readonly maxPeers: number;
  private readonly connectTimeoutMs: number;
  private readonly maxBufferedBytes: number;
  private stopped = false;

  constructor(private readonly options: WebRtcPeersOptions) {
    const given = options.hostAddresses;
    if (typeof given === 'function') this.hostAddresses = given;
    else if (!Array.isArray(given) || given.length === 0) {
      throw new TypeError(`WebRtcPeers option hostAddresses is ${JSON.stringify(given)}; allowed: at least one IP address, or a function giving them`);
    } else {
      const fixed = [...given];
      this.hostAddresses = () => fixed;
    }
    this.maxPeers = positiveInt('maxPeers', options.maxPeers ?? DEFAULTS.maxPeers, 4096);
    this.connectTimeoutMs = positiveInt('connectTimeoutMs', options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs, 600_000);
    this.maxBufferedBytes = positiveInt('maxBufferedBytes', options.maxBufferedBytes ?? DEFAULTS.maxBufferedBytes, 16 * 1024 * 1024);
  }

  /** Peer connections now (connecting or open). */
  get size(): number {
    return this.peers.size;
  }

  /**
   * Answers a browser's offer for connection `connId`; resolves with the
   * answer's SDP (candidates included). A second offer on the same connection
   * replaces its peer (`replaced`). Rejects only with {@link WebRtcError}.
   */
  async answer(connId: number, offerSdp: unknown): Promise<string> {
    if (this.stopped) throw new WebRtcError('webrtc-unavailable', 'the box is stopping; WebRTC offers are no longer answered');
    const offer = checkOffer(offerSdp);
    let RTCPeerConnectionClass: Werift['RTCPeerConnection'];
    try {
      RTCPeerConnectionClass = (await loadWerift()).RTCPeerConnection;
    } catch (err) {
      werift = null;
      this.options.logger?.error({ err }, 'webrtc: werift cannot be loaded');
      throw new WebRtcError('webrtc-unavailable', `the WebRTC stack cannot be loaded: ${(err as Error).message}`);
    }
    // After the load, which may have waited: stop() or another offer may have come meanwhile.
    if (this.stopped) throw new WebRtcError('webrtc-unavailable', 'the box is stopping; WebRTC offers are no longer answered');
    this.close(connId, 'replaced');
    if (this.peers.size >= this.maxPeers) {
      throw new WebRtcError('too-many-peers', `${this.peers.size} WebRTC peer connections are open; allowed: ${this.maxPeers} (audio stays on the WebSocket)`);
    }
    const hosts = this.hostAddresses();
    if (hosts.length === 0) throw new WebRtcError('webrtc-unavailable', 'the box has no network address to offer as an ICE candidate');
    const pc = new RTCPeerConnectionClass({
      iceServers: [],
      // werift's own gathering skips veth and tun interfaces and adds every
      // other one; the box offers exactly where its HTTP server listens.
      iceUseIpv4: false,
      iceUseIpv6: false,
      iceAdditionalHostAddresses: [...hosts],
    });
    const peer = new Peer(connId, pc);
    this.peers.set(connId, peer);
    pc.onDataChannel.subscribe((channel) => this.onChannel(peer, channel));
    pc.connectionStateChange.subscribe((state) => {
      // Not on "disconnected": ICE recovers from that by itself (a Wi-Fi stall), and audio meanwhile just drops.
      if (state === 'failed' || state === 'closed') void this.closePeer(peer, 'failed');
    });
    peer.timer = setTimeout(() => {
      if (peer.state === 'connecting') void this.closePeer(peer, 'timeout');
    }, this.connectTimeoutMs);
    peer.timer.unref();
    try {
      await pc.setRemoteDescription({ type: 'offer', sdp: offer.sdp });
      const sctp = pc.sctpTransport;
      if (!sctp?.sctp) throw new WebRtcError('bad-sdp', 'offer sdp gave no SCTP transport; allowed: a data-channel offer');
      try {
        enforcePartialReliability(sctp.sctp);
        holdCongestionWindow(sctp.sctp, AUDIO_CWND_FLOOR_BYTES);
        skipHandshakeSequenceNumbers(sctp.transport);
      } catch (err) {
        // A werift that no longer has what the fixes replace: never run the audio channel reliably by accident.
        this.options.logger?.error({ err }, 'webrtc: werift fix cannot be applied');
        throw new WebRtcError('webrtc-unavailable', (err as Error).message);
      }
      await pc.setLocalDescription(await pc.createAnswer());
      const answer = pc.localDescription?.sdp;
      if (!answer) throw new WebRtcError('webrtc-unavailable', 'the WebRTC stack produced no answer');
      if (peer.state === 'closed') throw new WebRtcError('webrtc-unavailable', 'the peer connection closed while answering');
      return answer;
    } catch (err) {
      this.closeQuietly(peer);
      if (err instanceof WebRtcError) throw err;
      // werift's parser throws plain errors for SDP it cannot use.
      throw new WebRtcError('bad-sdp', `offer sdp was not accepted: ${(err as Error)?.message ?? String(err)}`);
    }
  }

  /**
   * Sends one AUDIO datagram to `connId`'s browser; true if handed to the
   * channel. Never throws, never awaits. werift transmits later, so the bytes
   * must not change after the call (one datagram may go to many peers). A
   * Buffer is passed on as it is; another Uint8Array costs a view.
   */
  send(connId: number, datagram: Uint8Array): boolean {
    const peer = this.peers.get(connId);
    if (peer === undefined) return false;
    const channel = peer.channel;
    if (peer.state !== 'open' || channel === null || channel.bufferedAmount + datagram.byteLength > this.maxBufferedBytes) {
      peer.messagesDropped++;
      return false;
    }
    try {
      channel.send(Buffer.isBuffer(datagram) ? datagram : Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength));
    } catch {
      // werift throws for a message over the association's maximum size or a
      // channel closing under us: a drop, like any other.
      peer.messagesDropped++;
      return false;
    }
    peer.messagesSent++;
    peer.bytesSent += datagram.byteLength;
    return true;
  }

  /** Counters of `connId`'s peer, or null if it has none. */
  stats(connId: number): PeerStats | null {
    const peer = this.peers.get(connId);
    if (peer === undefined) return null;
    return {
      state: peer.state,
      messagesSent: peer.messagesSent,
      messagesDropped: peer.messagesDropped,
      bytesSent: peer.bytesSent,
      bufferedBytes: peer.channel?.bufferedAmount ?? 0,
    };
  }

  /** Closes `connId`'s peer connection, if any (`reason` goes to onClose). */
  close(connId: number, reason: PeerCloseReason = 'closed'): void {
    const peer = this.peers.get(connId);
    if (peer !== undefined) void this.closePeer(peer, reason);
  }

  /** Closes every peer (`stopped`) and answers no more offers. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.peers.values()].map((peer) => this.closePeer(peer, 'stopped')));
  }

  private onChannel(peer: Peer, channel: RTCDataChannel): void {
    const fits = channel.label === AUDIO_CHANNEL_LABEL && channel.ordered === AUDIO_CHANNEL_INIT.ordered &&
      channel.maxRetransmits === AUDIO_CHANNEL_INIT.maxRetransmits && channel.maxPacketLifeTime === null;
    if (peer.channel !== null || !fits) {
      this.options.logger?.warn(
        { connId: peer.connId, label: channel.label, ordered: channel.ordered, maxRetransmits: channel.maxRetransmits, maxPacketLifeTime: channel.maxPacketLifeTime },
        `webrtc: refused data channel; allowed: one "${AUDIO_CHANNEL_LABEL}" channel, ordered false, maxRetransmits 0`,
      );
      void this.closePeer(peer, 'bad-channel');
      return;
    }
    peer.channel = channel;
    const opened = (): void => {
      if (peer.state !== 'connecting') return;
      peer.state = 'open';
      if (peer.timer) clearTimeout(peer.timer);
      peer.timer = null;
      this.options.onOpen?.(peer.connId);
    };
    channel.stateChanged.subscribe((state) => {
      if (state === 'open') opened();
      else if (state === 'closed') void this.closePeer(peer, 'failed');
    });
    if (channel.readyState === 'open') opened();
  }

  /** Resolves when werift has closed the connection (its sockets too); never rejects. */
  private closePeer(peer: Peer, reason: PeerCloseReason): Promise<void> {
    if (peer.state === 'closed') return peer.closing;
    const announced = this.peers.get(peer.connId) === peer;
    peer.state = 'closed';
    if (peer.timer) clearTimeout(peer.timer);
    peer.timer = null;
    if (announced) this.peers.delete(peer.connId);
    this.options.logger?.info({ connId: peer.connId, reason, sent: peer.messagesSent, dropped: peer.messagesDropped }, 'webrtc: peer closed');
    peer.closing = peer.pc.close().catch(() => undefined);
    if (announced) this.options.onClose?.(peer.connId, reason);
    return peer.closing;
  }

  /** A peer that failed inside answer(): gone without onClose (the caller got the error instead). */
  private closeQuietly(peer: Peer): void {
    if (this.peers.get(peer.connId) === peer) this.peers.delete(peer.connId);
    void this.closePeer(peer, 'failed');
  }
}
