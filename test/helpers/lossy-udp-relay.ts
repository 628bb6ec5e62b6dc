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

  private constructor(
    private readonly boxPort: number,
    /** Decides per box → peer datagram (its bytes) whether it is lost. */
    public drop: (datagram: Buffer) => boolean,
  ) {
    this.toPeer.on('message', (msg, from) => {
      this.peer = from;
      this.toBox.send(msg, this.boxPort, '127.0.0.1');
    });
    this.toBox.on('message', (msg) => {
      if (this.peer === null) return;
      if (this.drop(msg)) {
        this.dropped++;
        return;
      }
      this.forwarded++;
      this.toPeer.send(msg, this.peer.port, this.peer.address);
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
