import type { MdnsPacket, MdnsRecord } from './mdns-transport';

/**
 * Which records heard on the group contest our names, and who keeps a name
 * when two devices announce it (RFC 6762 8.2). Pure functions of the records,
 * so both devices in a conflict reach the same verdict.
 */

/** DNS names compare without regard to ASCII case. */
export function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** A TXT record's data (a list of "key=value" strings or buffers) as one comparable string. */
export function txtKey(data: unknown): string {
  const items = Array.isArray(data) ? data.map((b) => (Buffer.isBuffer(b) ? b.toString('utf8') : String(b))) : [String(data)];
  return items.sort().join('\n');
}

/**
 * The records in a response (answers and additionals) that someone else holds
 * for one of `names`: goodbyes (TTL 0) do not count, nor A/AAAA records with
 * one of our own addresses (our echo, or an mDNS responder on this machine).
 * `ownAddresses` is called only when an address record needs it.
 */
export function foreignRecords(packet: MdnsPacket, names: readonly string[], ownAddresses: () => Set<string>): MdnsRecord[] {
  let own: Set<string> | null = null;
  const out: MdnsRecord[] = [];
  for (const r of [...(packet.answers ?? []), ...(packet.additionals ?? [])]) {
    if (r.ttl === 0 || !names.some((n) => sameName(n, r.name))) continue;
    if (r.type === 'A' || r.type === 'AAAA') {
      own ??= ownAddresses();
      if (own.has(String(r.data))) continue;
    }
    out.push(r);
  }
  return out;
}

/** The data of the records we announced, in the form tieBreak compares. */
export interface HeldRecords {
  /** Full name of the stream service, whose TXT record is compared. */
  streamFqdn: string;
  /** SRV port and target. */
  port: number;
  host: string;
  /** txtKey() of the stream TXT record announced. */
  txt: string;
  /** The lowest IPv4 address announced; "" when none. */
  ipv4: string;
}

export type TieBreak = { result: 'win' | 'lose' | 'same'; about: string };

/**
 * RFC 6762 8.2's rule, used after both devices announced: the record data that
 * sorts later keeps the name. One decision per packet, on the first kind of
 * record that differs (SRV, then the stream's TXT, then the lowest IPv4
 * address), so both devices decide alike. Equal data is our own echo (or an
 * identical twin that shows no difference): no conflict.
 */
export function tieBreak(held: HeldRecords, theirs: readonly MdnsRecord[]): TieBreak {
  const srv = theirs.find((r) => r.type === 'SRV');
  const txt = theirs.find((r) => r.type === 'TXT' && sameName(r.name, held.streamFqdn));
  const addrs = theirs.filter((r) => r.type === 'A').map((r) => String(r.data));
  const pairs: [string, string, string][] = [];
  if (srv) {
    const d = srv.data as { port?: number; target?: string };
    pairs.push([`${held.port} ${held.host}`, `${d.port} ${String(d.target).toLowerCase()}`, `SRV ${srv.name}`]);
  }
  if (txt) pairs.push([held.txt, txtKey(txt.data), `TXT ${txt.name}`]);
  if (addrs.length > 0) pairs.push([held.ipv4, addrs.sort()[0]!, `A ${held.host}`]);
  for (const [ours, other, about] of pairs) {
    if (ours === other) continue;
    return { result: ours < other ? 'lose' : 'win', about };
  }
  return { result: 'same', about: '' };
}
