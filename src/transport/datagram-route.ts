/**
 * Somewhere a connection's audio can go as datagrams (a UDP flow, a WebRTC
 * data channel): up once the client proved it receives there.
 */
export interface DatagramRoute {
  readonly up: boolean;
  /** Sends one datagram; never throws, never awaits. */
  send(bytes: Uint8Array): void;
  /** "ip:port" or a peer description, for status. */
  readonly where: string | null;
}
