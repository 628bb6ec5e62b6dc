import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import type { PacketCodec } from '../protocol';
import type { LatencyHistogram } from '../metrics/latency-histogram';
import type { Output, PacketSink } from '../pool/output-registry';
import { PacketQueue } from './packet-queue';
import { withDiscontinuity } from './ws-frame';

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
  connectedS: number;
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
export class ClientConnection implements PacketSink {
  clientId: string | null = null;
  name = '';
  output: Output | null = null;
  /** Round trip of the box's last WebSocket ping, ms. */
  rttMs: number | null = null;
  pingSentAt = 0;
  /** The client's last report of its playback buffer, ms, and underruns. */
  playbackBufferMs: number | null = null;
  underruns: number | null = null;
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
      connectedS: Math.round((now - this.connectedAt) / 1000),
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
