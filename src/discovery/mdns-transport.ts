import type { EventEmitter } from 'node:events';
import os from 'node:os';
import { Bonjour, type Service } from 'bonjour-service';

/** A DNS resource record as multicast-dns (bonjour-service's transport) decodes and encodes it. */
export interface MdnsRecord {
  name: string;
  type: string;
  ttl?: number;
  data: unknown;
  flush?: boolean;
}

export interface MdnsPacket {
  answers?: MdnsRecord[];
  additionals?: MdnsRecord[];
}

/** One DNS-SD service to publish (SRV and TXT of `<name>._<type>._tcp.local`, PTRs, A/AAAA of `host`). */
export interface PublishedService {
  name: string;
  type: string;
  port: number;
  host: string;
  txt: Record<string, string>;
}

/** What a transport reports; nothing is reported after close(). */
export interface MdnsTransportEvents {
  /** The socket failed (bind, group membership): this transport is finished. */
  socketError(err: Error): void;
  /** bonjour-service failed to send one of its own answers to someone's query; the socket stays usable. */
  answerError(err: Error): void;
  /** A response heard on the group (anyone's, our own echoes included). */
  response(packet: MdnsPacket): void;
}

/** The parts of multicast-dns used here; bonjour-service types it as any. */
interface MulticastDns extends EventEmitter {
  query(q: { questions: { name: string; type: string }[] }, cb: (err: Error | null) => void): void;
  respond(res: { answers: MdnsRecord[] }, cb: (err: Error | null) => void): void;
}

/** Every address of this machine, internal ones included: an A/AAAA record with one of them is our own. */
export function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) out.add(a.address);
  return out;
}

/** The addresses bonjour-service puts in A/AAAA records (it skips internal ones), sorted. */
export function announcedAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (!a.internal) out.push(a.address);
  return out.sort();
}

/**
 * One bonjour-service instance: a UDP socket on 5353 (SO_REUSEADDR), joined to
 * 224.0.0.251 on every interface, that answers queries for what was published
 * and re-broadcasts it a few times. The only module that touches
 * bonjour-service, and the one place that reaches into it: multicast-dns's
 * `error` event, which bonjour-service leaves unhandled (an exception that
 * would end the process when port 5353 is held without SO_REUSEADDR), and its
 * raw query and respond, for probing and for the cache-flush bit the library
 * never sets.
 *
 * bonjour-service re-broadcasts the records it was given at publish time, so
 * a change of TXT record or addresses needs a fresh transport.
 */
export class MdnsTransport {
  private closed = false;

  private constructor(
    private readonly bonjour: Bonjour,
    private readonly mdns: MulticastDns,
  ) {}

  /** Opens the socket; throws when it cannot even be created (a failed bind comes later, as socketError). */
  static open(events: MdnsTransportEvents): MdnsTransport {
    let self: MdnsTransport | null = null;
    const live = (): boolean => self !== null && !self.closed;
    const bonjour = new Bonjour({}, (err: Error) => {
      if (live()) events.answerError(err);
    });
    const mdns = (bonjour as unknown as { server: { mdns: MulticastDns } }).server.mdns;
    self = new MdnsTransport(bonjour, mdns);
    mdns.on('error', (err: Error) => {
      if (live()) events.socketError(err);
    });
    mdns.on('response', (packet: MdnsPacket) => {
      if (live()) events.response(packet);
    });
    return self;
  }

  /** Sends one query with an ANY question per name (a probe, RFC 6762 8.1). */
  queryAny(names: string[], cb: (err: Error | null) => void): void {
    this.mdns.query({ questions: names.map((name) => ({ name, type: 'ANY' })) }, cb);
  }

  /**
   * Publishes the services (bonjour-service answers for them from now on and
   * broadcasts them) without bonjour-service's own probe, which only prints a
   * conflict; returns their records that are unique to this box (all but the
   * shared PTRs), to be announced with the cache-flush bit.
   */
  publish(services: PublishedService[]): MdnsRecord[] {
    const published: Service[] = services.map((s) => this.bonjour.publish({ ...s, probe: false }));
    return published.flatMap((s) => s.records()).filter((r) => r.type !== 'PTR');
  }

  /** Sends an unsolicited response with these answers. */
  respond(answers: MdnsRecord[], cb: (err: Error | null) => void): void {
    this.mdns.respond({ answers }, cb);
  }

  /** Sends goodbyes (TTL 0) for everything published; cb gets whether they went out. */
  goodbye(cb: (err: Error | null) => void): void {
    this.bonjour.unpublishAll((err?: Error | null) => cb(err ?? null));
  }

  /** Closes the socket without goodbyes (its broadcasts stop); later events are dropped. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.bonjour.destroy();
  }
}
