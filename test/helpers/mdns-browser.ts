import type { EventEmitter } from 'node:events';
import { Bonjour, type Browser, type Service } from 'bonjour-service';
import type { MdnsRecord } from '../../src/discovery/mdns-transport';
import { waitFor } from './wait';

export interface SeenPacket {
  type: 'query' | 'response';
  from: string;
  answers: MdnsRecord[];
  additionals: MdnsRecord[];
}

interface MulticastDns extends EventEmitter {
  query(q: { questions: { name: string; type: string }[] }, cb?: (err: Error | null) => void): void;
  respond(res: { answers: MdnsRecord[] }, cb?: (err: Error | null) => void): void;
}

/** A browse or query is sent again this often while no matching answer came (one packet can be lost), ms. */
const REASK_MS = 500;
/** How often what was heard is looked at, ms: an answer is taken as soon as it is there. */
const CHECK_MS = 25;

/**
 * A phone's view of the stage network: a separate bonjour-service instance
 * (its own socket on 5353) that joins the mDNS group on one address only, so
 * its queries go out on that interface and nowhere else. Records every packet
 * it hears, browses service types and asks for single records.
 */
export class MdnsBrowser {
  readonly packets: SeenPacket[] = [];
  readonly errors: string[] = [];
  private readonly bonjour: Bonjour;
  private readonly mdns: MulticastDns;
  private readonly browsers: Browser[] = [];

  constructor(readonly iface: string) {
    // bind 0.0.0.0: a socket bound to a unicast address never hears multicast; `interface` picks where to join and send.
    this.bonjour = new Bonjour({ interface: iface, bind: '0.0.0.0' } as never);
    this.mdns = (this.bonjour as unknown as { server: { mdns: MulticastDns } }).server.mdns;
    hearOnlyTheStage(this.mdns, iface);
    this.mdns.on('error', (err: Error) => this.errors.push(err.message));
    this.mdns.on('warning', (err: Error) => this.errors.push(`warning: ${err.message}`));
    this.mdns.on('packet', (p: { type: 'query' | 'response'; answers?: MdnsRecord[]; additionals?: MdnsRecord[] }, rinfo: { address: string }) => {
      this.packets.push({ type: p.type, from: rinfo.address, answers: p.answers ?? [], additionals: p.additionals ?? [] });
    });
  }

  /** A live browser for `type` (e.g. "stagebox" for _stagebox._tcp); its `services` list follows updates and goodbyes. */
  browse(type: string): Browser {
    const b = this.bonjour.find({ type });
    this.browsers.push(b);
    return b;
  }

  /**
   * Browses `type`, asking again every REASK_MS (a single query can be lost),
   * until `pred` holds for the services found; rejects after `timeoutMs`
   * with what was found.
   */
  async waitForServices(type: string, pred: (found: Service[]) => boolean, timeoutMs: number, what: string): Promise<Service[]> {
    const b = this.browse(type);
    let askedAt = performance.now();
    try {
      return await waitFor(
        () => {
          if (pred(b.services)) return [...b.services];
          if (performance.now() - askedAt >= REASK_MS) {
            b.update();
            askedAt = performance.now();
          }
          return undefined;
        },
        {
          timeoutMs,
          intervalMs: CHECK_MS,
          what: `mDNS browse _${type}._tcp: ${what}`,
          describe: () => `found: ${JSON.stringify(b.services.map(describe))}; errors: ${this.errors.join('; ')}`,
        },
      );
    } finally {
      b.stop();
    }
  }

  /** Asks for `type` records of `name` (again every REASK_MS) until a matching answer arrives; resolves with the answers. */
  query(name: string, type: string, timeoutMs: number, pred: (answers: MdnsRecord[]) => boolean = (a) => a.length > 0): Promise<MdnsRecord[]> {
    const from = this.packets.length;
    let askedAt = -Infinity;
    return waitFor(
      () => {
        for (const p of this.packets.slice(from)) {
          if (p.type !== 'response') continue;
          const answers = p.answers.filter((r) => r.name.toLowerCase() === name.toLowerCase() && r.type === type);
          if (pred(answers)) return answers;
        }
        if (performance.now() - askedAt >= REASK_MS) {
          this.mdns.query({ questions: [{ name, type }] });
          askedAt = performance.now();
        }
        return undefined;
      },
      { timeoutMs, intervalMs: CHECK_MS, what: `mDNS query ${type} ${name}: a matching answer`, describe: () => `errors: ${this.errors.join('; ')}` },
    );
  }

  /**
   * Publishes a service of another device on the stage network (bonjour-service
   * probes it, then announces it and answers for it); resolves once announced.
   */
  publish(config: { name: string; type: string; port: number; host: string }): Promise<Service> {
    const s = this.bonjour.publish(config);
    return new Promise((resolve, reject) => {
      s.once('up', () => resolve(s));
      s.once('error', reject);
    });
  }

  /**
   * A device that claims every name matching `pattern`: it answers each query
   * about one (a probe) with an SRV record for a service name, an A record with
   * this browser's address for a host name. Returns how to stop it.
   */
  squat(pattern: RegExp): () => void {
    const onQuery = (q: { questions?: { name: string; type: string }[] }): void => {
      const answers: MdnsRecord[] = [];
      for (const { name } of q.questions ?? []) {
        if (!pattern.test(name)) continue;
        answers.push(name.endsWith('._tcp.local') ? { name, type: 'SRV', ttl: 120, data: { port: 9, target: 'squatter.local', priority: 0, weight: 0 } } : { name, type: 'A', ttl: 120, data: this.iface });
      }
      if (answers.length > 0) this.mdns.respond({ answers }, (err) => {
          if (err) this.errors.push(`squat: ${err.message}`);
        });
    };
    this.mdns.on('query', onQuery);
    return () => this.mdns.off('query', onQuery);
  }

  /** Sends an unsolicited response, as another device announcing these records would. */
  announce(records: MdnsRecord[]): Promise<void> {
    return new Promise((resolve, reject) => this.mdns.respond({ answers: records }, (err) => (err ? reject(err) : resolve())));
  }

  close(): Promise<void> {
    for (const b of this.browsers) b.stop();
    return new Promise((resolve) => this.bonjour.destroy(() => resolve()));
  }
}

/**
 * Drops packets from outside the browser's /24 before anyone (bonjour-service's
 * browser and responder included) sees them. Linux hands a socket every
 * datagram for a group that any socket in the namespace joined, on any
 * interface (IP_MULTICAST_ALL, which Node cannot turn off), so without this a
 * browser in the test's namespace also hears the boxes of other test runs on
 * the same machine, each on a veth of its own. A phone hears only its network.
 */
function hearOnlyTheStage(mdns: MulticastDns, iface: string): void {
  const subnet = iface.slice(0, iface.lastIndexOf('.') + 1);
  const emit = mdns.emit.bind(mdns);
  mdns.emit = (event: string | symbol, ...args: unknown[]): boolean => {
    const from = (args[1] as { address?: string } | undefined)?.address;
    if ((event === 'packet' || event === 'query' || event === 'response') && !from?.startsWith(subnet)) return false;
    return emit(event, ...args);
  };
}

/** A found service in a line, for failure messages. */
export function describe(s: Service): object {
  return { name: s.name, type: s.type, host: s.host, port: s.port, txt: s.txt as unknown, addresses: s.addresses };
}

/** A TXT record's data (a list of "key=value" buffers) as an object. */
export function txtObject(data: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of Array.isArray(data) ? data : []) {
    const s = Buffer.isBuffer(item) ? item.toString('utf8') : String(item);
    const eq = s.indexOf('=');
    if (eq > 0) out[s.slice(0, eq)] = s.slice(eq + 1);
  }
  return out;
}
