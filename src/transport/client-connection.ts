import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import type { PacketCodec } from '../protocol';
import type { LatencyHistogram } from '../metrics/latency-histogram';
import type { Output, PacketSink } from '../pool/output-registry';
import { audioDatagramBytes, MAX_REDUNDANCY, MAX_SPACING, writeAudioDatagram } from '../protocol/datagram';
import type { AudioTransport } from '../protocol/messages';
import { PacketQueue } from './packet-queue';
import type { FlowOwner, UdpFlow } from './udp-flows';
import { withDiscontinuity } from './ws-frame';
import type { DatagramRoute } from './datagram-route';

export interface ClientLimits {
  sendQueuePackets: number;
  maxInFlightPackets: number;
}

/** Public view of a client, for status. */
export interface ClientInfo {
  clientId: string | null;
  name: string;
  address: string;
  /** "channels" (raw channels), "mix" (a personal mix rendered on the box) or null (nothing yet). */
  mode: 'channels' | 'mix' | null;
  /** Codec of the stream: a channel codec, or for a mix pcm16, pcm24 or opus. */
  codec: PacketCodec | null;
  channels: number[];
  /** Gain the mix's limiter took off in the last period, dB (null when not mixing). */
  limiterReductionDb: number | null;
  sentPackets: number;
  /** Audio bytes handed to the socket (WebSocket frames, headers included). */
  bytesSent: number;
  drops: number;
  queued: number;
  rttMs: number | null;
  playbackBufferMs: number | null;
  underruns: number | null;
  /** Reported by the client: lost packets a redundant copy brought back, and lost packets it concealed. */
  recovered: number | null;
  concealed: number | null;
  connectedS: number;
  /** What the client asked for, and what its audio uses now (a datagram transport falls back to "ws" while its route is down). */
  transport: { asked: AudioTransport; now: AudioTransport; redundancy: number; spacing: number; where: string | null; datagrams: number };
}

/**
 * One WebSocket client: its subscription, its bounded send queue and its
 * counters. Audio frames (already framed once per packet, shared by every
 * subscriber) go straight to the socket while fewer than maxInFlightPackets
 * are unwritten; after that they wait in the queue, which drops the oldest
 * when full. Nothing here ever awaits.
 *
 * A seq gap is always flagged: after the queue dropped packets, the next
 * packet sent to this client is a copy of the shared frame with the
 * discontinuity flag set (the shared frame is never touched).
 *
 * Audio bypasses ws's sender and is written whole to the raw socket: with
 * permessage-deflate off, ws writes each of its own frames synchronously and
 * whole too, so frames never interleave.
 */
export class ClientConnection implements PacketSink, FlowOwner {
  clientId: string | null = null;
  name = '';
  output: Output | null = null;
  /** Round trip of the box's last WebSocket ping, ms. */
  rttMs: number | null = null;
  pingSentAt = 0;
  /** The client's last report of its playback buffer, ms, and underruns. */
  playbackBufferMs: number | null = null;
  underruns: number | null = null;
  /** The client's reports of packets recovered from redundancy and packets it concealed (null until it reports them). */
  recovered: number | null = null;
  concealed: number | null = null;
  sentPackets = 0;
  bytesSent = 0;
  drops = 0;
  closed = false;
  readonly connectedAt = performance.now();
  lastHeardAt = performance.now();
  /** Last time the socket accepted a write (or the client became idle). */
  lastWriteAt = performance.now();
  private inFlight = 0;
  private readonly queue: PacketQueue;
  /** Packets were dropped from the queue since the last send: the next one sent carries the discontinuity flag. */
  private gapPending = false;
  /** The transport the client asked for, its redundancy, and its datagram routes. */
  private asked: AudioTransport = 'ws';
  private redundancy = 0;
  private spacing = 1;
  /** The packets chosen for one datagram (reused). */
  private readonly picked: Uint8Array[] = [];
  /** This connection's UDP flow (opened at hello when the box offers UDP). */
  flow: UdpFlow | null = null;
  /** Its WebRTC data channel, once a peer connection is up. */
  webrtc: DatagramRoute | null = null;
  /** The last packets sent as datagrams, newest first: the copies a datagram carries (views of the shared frames). */
  private readonly history: Uint8Array[] = [];
  private datagrams = 0;
  /** Largest datagram built with redundant copies (udp.maxDatagramBytes). */
  maxDatagramBytes = 1472;
  constructor(
    readonly ws: WebSocket,
    private readonly socket: Duplex,
    /** "ip:port", for logs and status. */
    readonly address: string,
    /** The peer's IP alone: what per-address limits count by (a reconnect gets a new port, not a new IP). */
    readonly ip: string,
    private readonly limits: ClientLimits,
    private readonly serverLatency: LatencyHistogram,
  ) {
    this.queue = new PacketQueue(limits.sendQueuePackets);
  }

  pushPacket(packet: Buffer, arrivalMs: number): void {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return;
    const route = this.route();
    if (route !== null) {
      this.sendDatagram(route, packet, arrivalMs);
      return;
    }
    if (this.inFlight < this.limits.maxInFlightPackets && this.queue.length === 0) {
      this.send(packet, arrivalMs);
    } else if (this.queue.push(packet, arrivalMs)) {
      this.drops++;
      this.gapPending = true;
    }
  }

  /** True when the client has audio waiting that its socket has not taken for longer than `ms`. */
  isStalled(now: number, ms: number): boolean {
    return this.inFlight >= this.limits.maxInFlightPackets && now - this.lastWriteAt > ms;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Bytes handed to the socket that it has not written to the kernel yet (audio and control frames). */
  get unwrittenBytes(): number {
    return this.socket.writableLength;
  }

  /** Drops queued audio (when the subscription or mix changes); the next packet is flagged if any was queued. */
  clearQueue(): void {
    if (this.queue.length > 0) this.gapPending = true;
    this.queue.clear();
    // Copies of the old stream must not ride in the new one's datagrams.
    this.history.length = 0;
  }

  /** Where the client wants its audio; `redundancy` copies per datagram, `spacing` packets apart (datagram transports). */
  setTransport(asked: AudioTransport, redundancy: number, spacing = 1): void {
    if (asked !== this.asked) {
      this.asked = asked;
      this.queue.clear();
      this.history.length = 0;
    }
    this.redundancy = Math.max(0, Math.min(MAX_REDUNDANCY, redundancy));
    this.spacing = Math.max(1, Math.min(MAX_SPACING, spacing));
  }

  /** The transport the client asked for, and the one its audio uses now. */
  get transport(): { asked: AudioTransport; now: AudioTransport; redundancy: number; spacing: number } {
    return { asked: this.asked, now: this.route() === this.webrtc && this.webrtc !== null ? 'webrtc' : this.route() ? 'udp' : 'ws', redundancy: this.redundancy, spacing: this.spacing };
  }

  /** The UDP flow's address proved itself: audio goes there now, if the client asked for UDP. */
  onFlowUp(flow: UdpFlow): void {
    this.onRouteUp('udp', flow.info.address);
  }

  /** The UDP flow went silent: audio falls back to the WebSocket; the mix or subscription stays. */
  onFlowDown(_flow: UdpFlow, reason: string): void {
    this.onRouteDown('udp', reason);
  }

  /** A datagram route of kind `kind` is up: the client that asked for it is told its audio travels there now. */
  onRouteUp(kind: 'udp' | 'webrtc', where: string | null): void {
    if (this.asked === kind) this.notify({ type: 'transport', audio: kind, redundancy: this.redundancy, spacing: this.spacing, address: where });
  }

  /** A datagram route went down: audio falls back to the WebSocket; the mix or subscription stays. */
  onRouteDown(kind: 'udp' | 'webrtc', reason: string): void {
    if (this.asked !== kind) return;
    this.history.length = 0;
    this.notify({ type: 'transport', audio: 'ws', redundancy: 0, reason });
  }

  /** A message about this connection's own transport, from the transport layer itself. */
  notify(msg: object): void {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(JSON.stringify(msg));
  }

  private route(): DatagramRoute | null {
    if (this.asked === 'udp') return this.flow?.up ? this.flow : null;
    if (this.asked === 'webrtc') return this.webrtc?.up ? this.webrtc : null;
    return null;
  }

  /**
   * One datagram per packet: the packet and copies of `redundancy` earlier
   * ones, `spacing` packets apart, as many as fit udp.maxDatagramBytes. A
   * datagram that cannot go out is lost like one the network lost: the
   * client's redundancy and concealment handle it, nothing waits.
   */
  private sendDatagram(route: DatagramRoute, frame: Buffer, arrivalMs: number): void {
    const len = frame[1]! & 0x7f;
    const packet = frame.subarray(len < 126 ? 2 : len === 126 ? 4 : 10);
    const h = this.history;
    h.unshift(packet);
    if (h.length > this.redundancy * this.spacing + 1) h.length = this.redundancy * this.spacing + 1;
    const picked = this.picked;
    picked.length = 0;
    picked.push(packet);
    for (let i = this.spacing; i < h.length && picked.length <= this.redundancy; i += this.spacing) {
      picked.push(h[i]!);
      if (audioDatagramBytes(picked) > this.maxDatagramBytes) {
        picked.pop();
        break;
      }
    }
    const out = Buffer.allocUnsafe(audioDatagramBytes(picked));
    writeAudioDatagram(out, picked);
    route.send(out);
    this.datagrams++;
    this.sentPackets++;
    this.bytesSent += out.length;
    this.lastWriteAt = performance.now();
    this.serverLatency.record(performance.now() - arrivalMs);
  }

  markClosed(): void {
    this.closed = true;
    this.queue.clear();
  }

  info(now: number): ClientInfo {
    return {
      clientId: this.clientId,
      name: this.name,
      address: this.address,
      mode: this.output ? (this.output.mix ? 'mix' : 'channels') : null,
      codec: this.output?.codec ?? null,
      channels: this.output ? [...this.output.channels] : [],
      limiterReductionDb: this.output?.mix ? Math.round(this.output.mix.limiter.gainReductionDb * 100) / 100 : null,
      sentPackets: this.sentPackets,
      bytesSent: this.bytesSent,
      drops: this.drops,
      queued: this.queue.length,
      rttMs: this.rttMs,
      playbackBufferMs: this.playbackBufferMs,
      underruns: this.underruns,
      recovered: this.recovered,
      concealed: this.concealed,
      connectedS: Math.round((now - this.connectedAt) / 1000),
      transport: { ...this.transport, where: this.route()?.where ?? null, datagrams: this.datagrams },
    };
  }

  private send(packet: Buffer, arrivalMs: number): void {
    if (this.gapPending) {
      this.gapPending = false;
      packet = withDiscontinuity(packet);
    }
    if (this.inFlight === 0) this.lastWriteAt = performance.now();
    this.inFlight++;
    this.sentPackets++;
    this.bytesSent += packet.length;
    this.socket.write(packet, this.onWritten);
    this.serverLatency.record(performance.now() - arrivalMs);
  }

  /** Socket wrote a packet to the kernel (or failed): send what waits. Bound once, no closure per send. */
  private readonly onWritten = (err?: Error | null): void => {
    this.inFlight--;
    this.lastWriteAt = performance.now();
    if (err || this.closed || this.ws.readyState !== WebSocket.OPEN) return;
    while (this.inFlight < this.limits.maxInFlightPackets && this.queue.length > 0) {
      const arrival = this.queue.peekArrival();
      this.send(this.queue.shift()!, arrival);
    }
  };
}
