import type { EventEmitter } from 'node:events';
import os from 'node:os';
import { Bonjour, type Service } from 'bonjour-service';
import type { Logger } from '../logging/logger';

/** DNS-SD service type of the audio stream (`_stagebox._tcp`); the dashboard is `_http._tcp`. */
export const STREAM_SERVICE_TYPE = 'stagebox';
export const HTTP_SERVICE_TYPE = 'http';
/** Names tried before giving up: <name>, <name>-2 … <name>-16. */
export const MAX_NAME_TRIES = 16;
/** Probe queries per name, and their spacing (RFC 6762 8.1). */
const PROBES = 3;
const PROBE_INTERVAL_MS = 250;
/** Retry after a socket or send failure: doubles from the first to the last, ms. */
const RETRY_FIRST_MS = 5000;
const RETRY_MAX_MS = 300_000;
/** Re-announcements (TXT or address change) at most this often, ms: a flapping device cannot flood the group. */
const REFRESH_MIN_INTERVAL_MS = 1000;

/** What the stream TXT record says about capture; null while the box has no capture format. */
export interface AdvertisedCapture {
  channels: number | null;
  rate: number | null;
}

export interface MdnsAdvertiserOptions {
  /** Instance name wanted (discovery.name); a conflict turns it into <name>-2, <name>-3, … */
  name: string;
  /** TCP port of the stream server and dashboard (SRV port of both services). */
  port: number;
  /** The box's device id: the same as MQTT's topic level (mqtt.deviceId or the sanitised host name). */
  deviceId: string;
  /** Stream protocol version (docs/protocol.md). */
  protocol: number;
  /** Software version. */
  version: string;
  /** Path of the dashboard page; null: no dashboard, so no _http._tcp service. */
  dashboardPath: string | null;
  log: Logger;
}

export type DiscoveryState = 'off' | 'probing' | 'announced' | 'error' | 'stopped';

/** The discovery part of GET /api/status. */
export interface DiscoveryStatus {
  enabled: boolean;
  state: DiscoveryState;
  /** The instance name wanted (config). */
  configuredName: string | null;
  /** The instance name probed or announced: differs from configuredName after a conflict. */
  name: string | null;
  /** SRV target, e.g. "stagebox.local". */
  host: string | null;
  /** Full service instance names announced, e.g. "stagebox._stagebox._tcp.local". */
  services: string[];
  /** The stream service's TXT record. */
  txt: Record<string, string>;
  /** Names given up because another device held them. */
  renames: number;
  /** Times the records were sent unsolicited (first announcement, TXT or address changes). */
  announcements: number;
  errors: number;
  lastError: string | null;
  /** Next retry after an error, ms from the status time; null when none is due. */
  retryInMs: number | null;
}

export function discoveryOffStatus(): DiscoveryStatus {
  return { enabled: false, state: 'off', configuredName: null, name: null, host: null, services: [], txt: {}, renames: 0, announcements: 0, errors: 0, lastError: null, retryInMs: null };
}

/** The parts of multicast-dns (bonjour-service's transport) used here; bonjour-service types it as any. */
interface MdnsRecord {
  name: string;
  type: string;
  ttl?: number;
  data: unknown;
  flush?: boolean;
}
interface MdnsPacket {
  answers?: MdnsRecord[];
  additionals?: MdnsRecord[];
}
interface MulticastDns extends EventEmitter {
  query(q: { questions: { name: string; type: string }[] }, cb: (err: Error | null) => void): void;
  respond(res: { answers: MdnsRecord[] }, cb: (err: Error | null) => void): void;
}

/** The n-th name to try (0: the name itself), cut so it stays within 63 bytes. */
export function candidateName(base: string, n: number): string {
  if (n === 0) return base;
  const suffix = `-${n + 1}`;
  const chars = [...base];
  while (chars.length > 1 && Buffer.byteLength(chars.join('') + suffix, 'utf8') > 63) chars.pop();
  return chars.join('') + suffix;
}

/** The host label for an instance name: lower case, runs of anything but a-z, 0-9 and "-" as "-". */
export function hostLabel(name: string): string {
  const label = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return label === '' ? 'stagebox' : label;
}

function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) out.add(a.address);
  return out;
}

/** The addresses bonjour-service puts in A/AAAA records (it skips internal ones), as one comparable string. */
function announcedAddressKey(): string {
  const out: string[] = [];
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (!a.internal) out.push(a.address);
  return out.sort().join(',');
}

function txtKey(data: unknown): string {
  const items = Array.isArray(data) ? data.map((b) => (Buffer.isBuffer(b) ? b.toString('utf8') : String(b))) : [String(data)];
  return items.sort().join('\n');
}

function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/**
 * Announces the box with mDNS/DNS-SD (bonjour-service): the stream as
 * `<name>._stagebox._tcp.local` with a TXT record (protocol, channels, rate,
 * device id, dashboard path), the dashboard as `<name>._http._tcp.local`, both
 * on host `<name>.local`.
 *
 * bonjour-service probes but on a conflict only prints to the console and gives
 * up, so probing and renaming are done here: three ANY queries for the three
 * names; an answer from anyone else means the name is taken, and the next
 * candidate (<name>-2 …) is probed. A conflicting announcement seen later (two
 * boxes that probed at the same moment) is settled as RFC 6762 8.2 does: the
 * box whose record data sorts lower renames.
 *
 * Control plane only: a handful of packets at start, on a capture format
 * change and on address changes. Every socket or send failure is logged,
 * counted in status() and retried with backoff; nothing here throws into the
 * service.
 */
export class MdnsAdvertiser {
  private bonjour: Bonjour | null = null;
  private mdns: MulticastDns | null = null;
  private state: DiscoveryState = 'probing';
  private attempt = 0;
  private name: string | null = null;
  private probeNames: string[] = [];
  private conflictSeen = false;
  private capture: AdvertisedCapture = { channels: null, rate: null };
  private txt: Record<string, string> = {};
  private renames = 0;
  private announcements = 0;
  private errors = 0;
  private lastError: string | null = null;
  private retryMs = RETRY_FIRST_MS;
  private retryAt: number | null = null;
  private addressKey = '';
  private lastRefreshAt = 0;
  private lastAssertAt = 0;
  private refreshTimer: NodeJS.Timeout | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Bumped whenever a probe or an announcement is abandoned, so its late callbacks do nothing. */
  private generation = 0;
  /** Bumped whenever the socket is closed, so its late events do nothing. */
  private instance = 0;
  /** The TXT record last announced (this.txt may be newer, waiting for the next refresh). */
  private announcedTxt = '';

  constructor(private readonly opts: MdnsAdvertiserOptions) {}

  /** Opens the mDNS socket and starts probing. Never throws; failures end up in status(). */
  start(capture: AdvertisedCapture): void {
    this.capture = { ...capture };
    this.txt = this.streamTxt();
    if (this.open()) this.probe();
  }

  /** The capture format changed: the TXT record follows (re-announced, at most once a second). */
  captureChanged(capture: AdvertisedCapture): void {
    if (capture.channels === this.capture.channels && capture.rate === this.capture.rate) return;
    this.capture = { ...capture };
    this.txt = this.streamTxt();
    this.opts.log.info({ txt: this.txt, state: this.state }, 'mDNS: capture format changed; TXT record updated');
    if (this.state === 'announced') this.scheduleRefresh();
  }

  status(): DiscoveryStatus {
    const fqdns = this.name === null ? [] : this.serviceFqdns(this.name);
    return {
      enabled: true,
      state: this.state,
      configuredName: this.opts.name,
      name: this.name,
      host: this.name === null ? null : this.hostFqdn(),
      services: fqdns,
      txt: { ...this.txt },
      renames: this.renames,
      announcements: this.announcements,
      errors: this.errors,
      lastError: this.lastError,
      retryInMs: this.retryAt === null ? null : Math.max(0, this.retryAt - Date.now()),
    };
  }

  /**
   * Sends goodbyes (the records with TTL 0) if announced, then closes the
   * socket; gives up after `timeoutMs` so a stuck send cannot delay SIGTERM.
   */
  async stop(timeoutMs = 500): Promise<void> {
    const wasAnnounced = this.state === 'announced';
    this.state = 'stopped';
    this.generation++;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    this.retryAt = null;
    const b = this.bonjour;
    if (!b) return;
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
    });
    const goodbye = new Promise<boolean>((resolve) => {
      if (!wasAnnounced) return resolve(false);
      try {
        b.unpublishAll((err?: Error | null) => resolve(!err));
      } catch (err) {
        this.opts.log.warn({ err: (err as Error).message }, 'mDNS: goodbye failed');
        resolve(false);
      }
    });
    const sent = await Promise.race([goodbye, bounded]);
    clearTimeout(timer);
    this.close();
    if (sent) this.opts.log.info({ name: this.name }, 'mDNS: goodbye sent; stopped');
    else if (wasAnnounced) this.opts.log.warn({ name: this.name, timeoutMs }, 'mDNS: goodbye not sent (failed or took too long); stopped anyway');
  }

  private streamTxt(): Record<string, string> {
    const txt: Record<string, string> = { protocol: String(this.opts.protocol) };
    if (this.capture.channels !== null) txt.channels = String(this.capture.channels);
    if (this.capture.rate !== null) txt.rate = String(this.capture.rate);
    txt.deviceid = this.opts.deviceId;
    if (this.opts.dashboardPath !== null) txt.dashboard = this.opts.dashboardPath;
    txt.version = this.opts.version;
    return txt;
  }

  private serviceFqdns(name: string): string[] {
    const out = [`${name}._${STREAM_SERVICE_TYPE}._tcp.local`];
    if (this.opts.dashboardPath !== null) out.push(`${name}._${HTTP_SERVICE_TYPE}._tcp.local`);
    return out;
  }

  /** The host name that goes with the current candidate: <label>.local, <label>-2.local, … */
  private hostFqdn(): string {
    return `${candidateName(hostLabel(this.opts.name), this.attempt)}.local`;
  }

  private later(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  /** A new bonjour-service instance (one UDP socket on 5353, joined to 224.0.0.251 on every interface). */
  private open(): boolean {
    const inst = ++this.instance;
    try {
      const b = new Bonjour({}, (err: Error) => this.onSendError(inst, 'answer', err));
      // Reaching in is the only way to hear the socket: bonjour-service leaves multicast-dns's 'error' unhandled, which would throw.
      const mdns = (b as unknown as { server: { mdns: MulticastDns } }).server.mdns;
      mdns.on('error', (err: Error) => {
        if (inst === this.instance) this.fail(`mDNS socket: ${err.message}`);
      });
      mdns.on('warning', (err: Error) => this.opts.log.debug({ err: err.message }, 'mDNS: socket warning'));
      mdns.on('response', (packet: MdnsPacket) => {
        if (inst === this.instance) this.onResponse(packet);
      });
      mdns.on('networkInterface', () => {
        if (inst === this.instance && this.state === 'announced' && announcedAddressKey() !== this.addressKey) this.scheduleRefresh();
      });
      this.bonjour = b;
      this.mdns = mdns;
      return true;
    } catch (err) {
      this.fail(`mDNS socket: ${(err as Error).message}`);
      return false;
    }
  }

  /** Closes the instance without goodbyes (its broadcasts stop; the socket closes). */
  private close(): void {
    this.instance++;
    const b = this.bonjour;
    this.bonjour = null;
    this.mdns = null;
    if (!b) return;
    try {
      b.destroy();
    } catch (err) {
      this.opts.log.debug({ err: (err as Error).message }, 'mDNS: closing the socket failed');
    }
  }

  private fail(reason: string): void {
    if (this.state === 'stopped') return;
    this.generation++;
    this.errors++;
    this.lastError = reason;
    this.state = 'error';
    this.close();
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    this.retryAt = Date.now() + delay;
    this.opts.log.warn({ err: reason, name: this.name, retryInMs: delay }, 'mDNS announcement failed (streaming is not affected); retrying');
    this.later(() => {
      this.retryAt = null;
      if (this.state === 'error' && this.open()) this.probe();
    }, delay);
  }

  private onSendError(inst: number, what: string, err: Error): void {
    if (inst !== this.instance || this.state === 'stopped') return;
    this.errors++;
    this.lastError = `mDNS ${what}: ${err.message}`;
    this.opts.log.warn({ err: err.message }, `mDNS: sending an ${what} failed`);
  }

  /** Probes the current candidate name (RFC 6762 8.1): three queries 250 ms apart, the first after 0-250 ms. */
  private probe(): void {
    const mdns = this.mdns;
    if (!mdns) return;
    if (this.attempt >= MAX_NAME_TRIES) {
      const last = candidateName(this.opts.name, MAX_NAME_TRIES - 1);
      this.attempt = 0;
      this.fail(`no free name: "${this.opts.name}" to "${last}" are all in use on the network`);
      return;
    }
    const gen = ++this.generation;
    const name = candidateName(this.opts.name, this.attempt);
    this.name = name;
    this.probeNames = [...this.serviceFqdns(name), this.hostFqdn()];
    this.conflictSeen = false;
    this.state = 'probing';
    const questions = this.probeNames.map((n) => ({ name: n, type: 'ANY' }));
    let sent = 0;
    const step = (): void => {
      if (gen !== this.generation) return;
      if (sent === PROBES) {
        this.announce();
        return;
      }
      mdns.query({ questions }, (err) => {
        if (gen !== this.generation) return;
        if (err) {
          this.fail(`probe for "${name}": ${err.message}`);
          return;
        }
        sent++;
        this.later(step, PROBE_INTERVAL_MS);
      });
    };
    this.later(step, Math.random() * PROBE_INTERVAL_MS);
  }

  private nextName(reason: string): void {
    const taken = this.name;
    this.renames++;
    this.attempt++;
    this.opts.log.info({ taken, next: candidateName(this.opts.name, this.attempt), reason }, `mDNS: the name "${taken}" is in use on the network; trying the next`);
    this.probe();
  }

  private publishAll(name: string): Service[] {
    const b = this.bonjour!;
    const host = this.hostFqdn();
    const out = [b.publish({ name, type: STREAM_SERVICE_TYPE, port: this.opts.port, host, txt: this.txt, probe: false })];
    if (this.opts.dashboardPath !== null) {
      out.push(b.publish({ name, type: HTTP_SERVICE_TYPE, port: this.opts.port, host, txt: { path: this.opts.dashboardPath, deviceid: this.opts.deviceId }, probe: false }));
    }
    return out;
  }

  /**
   * Publishes both services, then sends their unique records (SRV, TXT, A/AAAA)
   * once more with the cache-flush bit, which bonjour-service never sets: a
   * phone that cached an older TXT record replaces it instead of keeping both.
   * That send's callback is the only place a failed announcement shows.
   */
  private announce(): void {
    const mdns = this.mdns;
    const name = this.name;
    if (!mdns || name === null) return;
    const gen = this.generation;
    let services: Service[];
    try {
      services = this.publishAll(name);
    } catch (err) {
      this.fail(`publishing "${name}": ${(err as Error).message}`);
      return;
    }
    this.addressKey = announcedAddressKey();
    this.announcedTxt = txtKey(Object.entries(this.txt).map(([k, v]) => `${k}=${v}`));
    this.sendFlush(services, gen, (ok) => {
      if (!ok) return;
      const first = this.state !== 'announced';
      this.state = 'announced';
      this.retryMs = RETRY_FIRST_MS;
      this.announcements++;
      if (first) {
        this.opts.log.info(
          { name, configuredName: this.opts.name, host: this.hostFqdn(), services: this.serviceFqdns(name), port: this.opts.port, txt: this.txt },
          name === this.opts.name ? `mDNS: announced as "${name}"` : `mDNS: announced as "${name}" ("${this.opts.name}" was in use on the network)`,
        );
      }
    });
  }

  private sendFlush(services: Service[], gen: number, done: (ok: boolean) => void): void {
    const records: MdnsRecord[] = services.flatMap((s) => s.records()).filter((r) => r.type !== 'PTR').map((r) => ({ ...r, flush: true }));
    this.mdns!.respond({ answers: records }, (err) => {
      if (gen !== this.generation) return;
      if (err) {
        this.fail(`announcing "${this.name}": ${err.message}`);
        done(false);
      } else done(true);
    });
  }

  private scheduleRefresh(): void {
    if (this.refreshTimer) return;
    const wait = Math.max(0, this.lastRefreshAt + REFRESH_MIN_INTERVAL_MS - Date.now());
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      this.refresh();
    }, wait);
    this.refreshTimer.unref();
  }

  /**
   * Announces the current TXT record and addresses under the name already
   * held: a fresh instance (bonjour-service re-broadcasts the records it was
   * given at publish time, so the old instance must go) without goodbyes,
   * so browsers see an update, not the box leaving and coming back.
   */
  private refresh(): void {
    if (this.state !== 'announced') return;
    this.lastRefreshAt = Date.now();
    this.close();
    if (this.open()) this.announce();
  }

  /** Answers to our probes, and announcements by others of the names we hold. */
  private onResponse(packet: MdnsPacket): void {
    if (this.state !== 'probing' && this.state !== 'announced') return;
    const mine = this.probeNames;
    let own: Set<string> | null = null;
    const foreign: MdnsRecord[] = [];
    for (const r of [...(packet.answers ?? []), ...(packet.additionals ?? [])]) {
      if (r.ttl === 0 || !mine.some((n) => sameName(n, r.name))) continue;
      if (r.type === 'A' || r.type === 'AAAA') {
        own ??= localAddresses();
        if (own.has(String(r.data))) continue;
      }
      foreign.push(r);
    }
    if (foreign.length === 0) return;
    if (this.state === 'probing') {
      if (this.conflictSeen) return;
      this.conflictSeen = true;
      this.nextName(`answer to the probe: ${foreign[0]!.type} ${foreign[0]!.name}`);
      return;
    }
    const verdict = this.tieBreak(foreign);
    if (verdict.result === 'lose') {
      // No goodbyes: an identical twin's records may have the same data, and the winner re-announces with cache-flush anyway.
      this.close();
      if (this.open()) this.nextName(`announced by another device: ${verdict.about}`);
    } else if (verdict.result === 'win') this.reassert();
  }

  /**
   * RFC 6762 8.2's rule, used after both announced: the record data that sorts
   * later keeps the name. One decision per packet, on the first kind of record
   * that differs (SRV, then TXT, then IPv4 address), so both devices decide
   * alike. Equal data is our own echo (or an identical twin that shows no
   * difference): no conflict.
   */
  private tieBreak(records: MdnsRecord[]): { result: 'win' | 'lose' | 'same'; about: string } {
    const name = this.name!;
    const srv = records.find((r) => r.type === 'SRV');
    const txt = records.find((r) => r.type === 'TXT' && sameName(r.name, this.serviceFqdns(name)[0]!));
    const addrs = records.filter((r) => r.type === 'A').map((r) => String(r.data));
    const pairs: [string, string, string][] = [];
    if (srv) {
      const d = srv.data as { port?: number; target?: string };
      pairs.push([`${this.opts.port} ${this.hostFqdn()}`, `${d.port} ${String(d.target).toLowerCase()}`, `SRV ${srv.name}`]);
    }
    if (txt) pairs.push([this.announcedTxt, txtKey(txt.data), `TXT ${txt.name}`]);
    if (addrs.length > 0) {
      const ownV4 = this.addressKey.split(',').filter((a) => a.includes('.'));
      pairs.push([ownV4.sort()[0] ?? '', addrs.sort()[0]!, `A ${this.hostFqdn()}`]);
    }
    for (const [ours, theirs, about] of pairs) {
      if (ours === theirs) continue;
      return { result: ours < theirs ? 'lose' : 'win', about };
    }
    return { result: 'same', about: '' };
  }

  /** We keep the name: say so again (at most once a second) so the other device sees our records and renames. */
  private reassert(): void {
    if (Date.now() - this.lastAssertAt < REFRESH_MIN_INTERVAL_MS) return;
    this.lastAssertAt = Date.now();
    this.scheduleRefresh();
  }
}
