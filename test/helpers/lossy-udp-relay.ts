import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

/**
 * A UDP relay on loopback between the box's ICE candidate and a peer, which
 * drops the box → peer datagrams that `drop` picks: network loss on demand,
 * deterministic, without a network namespace. The peer is given the relay's
 * port in place of the box's (rewriteCandidate); the box learns the relay's
 * other socket as the peer's (peer-reflexive) address.
 */
export class LossyUdpRelay {
  /** Datagrams box → peer, and how many of them were dropped. */
  forwarded = 0;
  dropped = 0;
  private readonly toPeer: Socket = createSocket('udp4');
  private readonly toBox: Socket = createSocket('udp4');
  private peer: RemoteInfo | null = null;
  /** While held (a link-wide Wi-Fi stall), datagrams both ways wait here, in order. */
  private held: { toPeer: Buffer[]; toBox: Buffer[] } | null = null;

  private constructor(
    private readonly boxPort: number,
    /** Decides per box → peer datagram (its bytes) whether it is lost. */
    public drop: (datagram: Buffer) => boolean,
  ) {
    this.toPeer.on('message', (msg, from) => {
      this.peer = from;
      if (this.held) this.held.toBox.push(msg);
      else this.toBox.send(msg, this.boxPort, '127.0.0.1');
    });
    this.toBox.on('message', (msg) => {
      if (this.peer === null) return;
      if (this.drop(msg)) {
        this.dropped++;
        return;
      }
      this.forwarded++;
      if (this.held) this.held.toPeer.push(msg);
      else this.toPeer.send(msg, this.peer.port, this.peer.address);
    });
  }

  static async start(boxPort: number, drop: (datagram: Buffer) => boolean): Promise<LossyUdpRelay> {
    const relay = new LossyUdpRelay(boxPort, drop);
    await Promise.all([relay.toPeer, relay.toBox].map((s) => new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve))));
    return relay;
  }

  get port(): number {
    return this.toPeer.address().port;
  }

  /** The box's answer with its loopback candidate's port replaced by the relay's. */
  rewriteAnswer(sdp: string): string {
    return sdp.replace(/(a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 )(\d+)/, (_, head: string) => `${head}${this.port}`);
  }

  /** A stall: from now on nothing passes either way until release(). */
  hold(): void {
    this.held ??= { toPeer: [], toBox: [] };
  }

  /**
   * The stall ends: what waited goes on in order, a few datagrams per turn of the event loop (as an access point
   * drains its queue at the link's rate, not in one instant that would overflow the receiver's socket buffer).
   */
  async release(): Promise<number> {
    const held = this.held;
    if (!held) return 0;
    const n = held.toPeer.length + held.toBox.length;
    while (held.toPeer.length > 0 || held.toBox.length > 0) {
      for (const m of held.toBox.splice(0, 8)) this.toBox.send(m, this.boxPort, '127.0.0.1');
      for (const m of held.toPeer.splice(0, 8)) this.toPeer.send(m, this.peer!.port, this.peer!.address);
      await new Promise((r) => setImmediate(r));
    }
    this.held = null;
    return n;
  }

  close(): void {
    this.toPeer.close();
    this.toBox.close();
  }
}

/** The port of the box's loopback host candidate in an SDP. */
export function candidatePort(sdp: string): number {
  const m = /a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host/.exec(sdp);
  if (!m) throw new Error(`no 127.0.0.1 host candidate in:\n${sdp}`);
  return Number(m[1]);
}
