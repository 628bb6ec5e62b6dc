/**
 * The client's half of an audio flow over UDP (docs/protocol.md §12): binds
 * its socket to the connection with the token from `welcome`, answers the
 * box's challenge, keeps the flow alive, and hands every audio packet of
 * every datagram on, newest last, with the ones it already had dropped and
 * the ones that only a redundant copy brought counted as recovered.
 * Portable: the socket is injected (Node: dgram; Android: a DatagramSocket).
 */
import {
  BIND_BYTES,
  DatagramError,
  encodeConfirm,
  encodeTokenTime,
  KIND,
  parseBoxDatagram,
} from '../protocol/datagram.js';
import { FLAG_MIX, OFFSET } from '../protocol/packet-header.js';

/** The part of a UDP socket the link uses. */
export interface DatagramSocketLike {
  send(bytes: Uint8Array): void;
  onmessage: ((bytes: Uint8Array) => void) | null;
  close(): void;
}
/** Opens a socket that sends to the box's UDP port (`host` as in the WebSocket URL). */
export type CreateDatagramSocket = (host: string, port: number) => DatagramSocketLike;

export interface DatagramLinkStats {
  /** The box confirmed this address and sends audio here. */
  up: boolean;
  datagrams: number;
  packets: number;
  /** Packets that arrived only as a redundant copy: losses repaired before any concealment. */
  recovered: number;
  /** Copies of packets that had already arrived. */
  duplicates: number;
  badDatagrams: number;
  /** Round trip of the last keepalive, ms. */
  rttMs: number | null;
}

export interface DatagramLinkOptions {
  socket: DatagramSocketLike;
  /** The connection's UDP token (16 bytes); null for a route that belongs to the connection already (a WebRTC data channel): no BIND, no keepalive. */
  token: Uint8Array | null;
  now: () => number;
  /** Each new audio packet, in the order it should be played (oldest first within a datagram). */
  onPacket(bytes: Uint8Array, recovered: boolean): void;
  /** The box confirmed the flow (audio comes over UDP from now on) or stopped hearing it. */
  onState(up: boolean): void;
  /** `lost` datagrams in a row never came (a gap in the seqs their first packets carry). */
  onLossBurst?(lost: number): void;
  /** Keepalive period, ms; default 500 (the box falls back after udp.flowTimeoutMs without one). */
  keepaliveMs?: number;
}

/** Seqs remembered for duplicate detection: a little more than the redundancy can bring back. */
const SEEN_WINDOW = 64;

export class DatagramLink {
  readonly stats: DatagramLinkStats = { up: false, datagrams: 0, packets: 0, recovered: 0, duplicates: 0, badDatagrams: 0, rttMs: null };
  private timer: ReturnType<typeof setInterval> | null = null;
  private newest = -1;
  /** Codec, channel count, mix flag and frames of the last packet: what tells one stream from the next. */
  private stream = -1;
  /** Seq of the first packet of the last audio datagram: gaps in it are datagrams lost, copies or not. */
  private lastPrimary = -1;
  /** Bit i: seq (newest - i) has arrived. */
  private seen = 0n;

  constructor(private readonly opts: DatagramLinkOptions) {
    if (opts.token !== null && opts.token.length !== 16) throw new RangeError(`udp token is ${opts.token.length} bytes; allowed: 16`);
  }

  start(): void {
    this.opts.socket.onmessage = this.onDatagram;
    if (this.opts.token === null) return;
    this.bind();
    this.timer = setInterval(this.keepalive, this.opts.keepaliveMs ?? 500);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.opts.socket.onmessage = null;
    this.opts.socket.close();
    this.setUp(false);
  }

  /** A new stretch of audio (a discontinuity, another stream): forget what was seen. */
  resetSeen(): void {
    this.newest = -1;
    this.lastPrimary = -1;
    this.seen = 0n;
  }

  private bind(): void {
    this.opts.socket.send(encodeTokenTime(KIND.BIND, this.opts.token!, this.opts.now()));
  }

  private readonly keepalive = (): void => {
    // Until the box confirms the address, a keepalive is a bind (the first may have been lost).
    this.opts.socket.send(encodeTokenTime(KIND.KEEPALIVE, this.opts.token!, this.opts.now()));
  };

  private readonly onDatagram = (bytes: Uint8Array): void => {
    let d;
    try {
      d = parseBoxDatagram(bytes);
    } catch (err) {
      if (!(err instanceof DatagramError)) throw err;
      this.stats.badDatagrams++;
      return;
    }
    switch (d.kind) {
      case KIND.CHALLENGE:
        if (this.opts.token !== null) this.opts.socket.send(encodeConfirm(this.opts.token, d.nonce));
        return;
      case KIND.BOUND:
        this.setUp(true);
        return;
      case KIND.PONG:
        if (d.clientMs > 0) this.stats.rttMs = this.opts.now() - d.clientMs;
        this.setUp(true);
        return;
      case KIND.AUDIO: {
        this.stats.datagrams++;
        if (!this.stats.up) this.setUp(true);
        // Oldest copy first, so a repaired packet is handed on before the one that carried it.
        for (let i = d.packets.length - 1; i >= 0; i--) this.offer(d.packets[i]!, i > 0);
        // After the offers: a new stream has reset what the gap is measured from.
        this.countBurst(d.packets[0]!);
        return;
      }
    }
  };

  private offer(packet: Uint8Array, copy: boolean): void {
    if (packet.length < OFFSET.flags + 1) return;
    const v = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
    const seq = v.getUint32(OFFSET.seq, true);
    // Another stream (a new subscription, a mix in another codec) numbers its packets afresh: what was seen of
    // the old one says nothing about it. The box never mixes two streams in one datagram.
    const stream = packet[OFFSET.codec]! | (packet[OFFSET.channelCount]! << 8) | ((packet[OFFSET.flags]! & FLAG_MIX) << 16) | (v.getUint16(OFFSET.frames, true) * 0x1000000);
    if (stream !== this.stream) {
      this.resetSeen();
      this.stream = stream;
    }
    if (!this.firstSight(seq)) {
      this.stats.duplicates++;
      return;
    }
    this.stats.packets++;
    if (copy) this.stats.recovered++;
    this.opts.onPacket(packet, copy);
  }

  private countBurst(primary: Uint8Array): void {
    if (primary.length < OFFSET.seq + 4) return;
    const seq = new DataView(primary.buffer, primary.byteOffset, primary.byteLength).getUint32(OFFSET.seq, true);
    const ahead = (seq - this.lastPrimary) >>> 0;
    // A reordered datagram (behind) or a new stream (far ahead) is no loss.
    if (this.lastPrimary >= 0 && ahead >= 2 && ahead <= SEEN_WINDOW) this.opts.onLossBurst?.(ahead - 1);
    if (this.lastPrimary < 0 || (ahead !== 0 && ahead < 0x8000_0000)) this.lastPrimary = seq;
  }

  /** Records `seq`; false when it was seen already (or is too old to tell). */
  private firstSight(seq: number): boolean {
    if (this.newest < 0) {
      this.newest = seq;
      this.seen = 1n;
      return true;
    }
    const ahead = (seq - this.newest) >>> 0;
    if (ahead !== 0 && ahead < 0x8000_0000) {
      this.seen = ahead >= SEEN_WINDOW ? 1n : ((this.seen << BigInt(ahead)) | 1n) & ((1n << BigInt(SEEN_WINDOW)) - 1n);
      this.newest = seq;
      return true;
    }
    const back = (this.newest - seq) >>> 0;
    if (back >= SEEN_WINDOW) {
      // Far behind: a stream that started its numbering again (an Opus encoder made anew), not a copy that late
      // (SEEN_WINDOW periods is more than any redundancy reaches). Start over from it.
      this.newest = seq;
      this.seen = 1n;
      return true;
    }
    const bit = 1n << BigInt(back);
    if (this.seen & bit) return false;
    this.seen |= bit;
    return true;
  }

  private setUp(up: boolean): void {
    if (this.stats.up === up) return;
    this.stats.up = up;
    this.opts.onState(up);
  }
}

/** Bytes of a BIND, for a caller sizing buffers. */
export const BIND_DATAGRAM_BYTES = BIND_BYTES;
