import type { Logger } from '../logging/logger';
import { foreignRecords, tieBreak, txtKey, type HeldRecords } from './conflict-rules';
import type { DiscoveryState, DiscoveryStatus } from './discovery-status';
import { HTTP_SERVICE_TYPE, MAX_NAME_TRIES, STREAM_SERVICE_TYPE, candidateName, hostFqdn, serviceFqdns, streamTxt, type AdvertisedCapture } from './dns-sd-records';
import { announcedAddresses, localAddresses, MdnsTransport, type MdnsPacket, type MdnsRecord, type PublishedService } from './mdns-transport';
import { NameProbe } from './name-probe';

/** Retry after a socket or send failure: doubles from the first to the last, ms. */
const RETRY_FIRST_MS = 5000;
const RETRY_MAX_MS = 300_000;
/** Re-announcements (TXT or address change) at most this often, ms: a flapping device cannot flood the group. */
const REFRESH_MIN_INTERVAL_MS = 1000;
/**
 * How often the addresses are compared with those announced, ms. Our own look:
 * multicast-dns looks every 5 s too, but tells only when it joined the group
 * on an interface it had not joined, not when an interface got another address.
 */
const ADDRESS_CHECK_MS = 5000;

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
  /** Audio transports offered, for the TXT record's `transports`. */
  transports?: readonly string[];
  log: Logger;
}

/**
 * Announces the box with mDNS/DNS-SD: the stream as
 * `<name>._stagebox._tcp.local` with a TXT record (protocol, channels, rate,
 * device id, dashboard path, version), the dashboard as
 * `<name>._http._tcp.local`, both on host `<name>.local`.
 *
 * The life cycle: probe a candidate (name-probe.ts); when another device
 * answers, take the next name (<name>-2 …, services and host together); when
 * the probes go unanswered, publish and announce with the cache-flush bit
 * (mdns-transport.ts). Once announced, a conflicting announcement is settled
 * by RFC 6762 8.2 (conflict-rules.ts), and a TXT or address change is
 * announced again under the same name, at most once a second.
 *
 * Control plane only: a handful of packets at start, on a capture format
 * change and on address changes. Every socket or send failure is logged,
 * counted in status() and retried with backoff; nothing here throws into the
 * service.
 */
export class MdnsAdvertiser {
  private transport: MdnsTransport | null = null;
  private probe: NameProbe | null = null;
  private state: DiscoveryState = 'probing';
  /** Index of the candidate name (0: the configured name). */
  private attempt = 0;
  private name: string | null = null;
  private capture: AdvertisedCapture = { channels: null, rate: null };
  private txt: Record<string, string> = {};
  /** What was last announced (this.txt may be newer, waiting for the next refresh); null before the first. */
  private held: HeldRecords | null = null;
  private addressKey = '';
  private renames = 0;
  private announcements = 0;
  private errors = 0;
  private lastError: string | null = null;
  private retryMs = RETRY_FIRST_MS;
  private retryAt: number | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private lastRefreshAt = 0;
  private lastAssertAt = 0;
  private refreshTimer: NodeJS.Timeout | null = null;
  private addressTimer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: MdnsAdvertiserOptions) {}

  /** Opens the mDNS socket and starts probing. Never throws; failures end up in status(). */
  start(capture: AdvertisedCapture): void {
    this.capture = { ...capture };
    this.txt = streamTxt(this.opts, this.capture);
    this.addressTimer = setInterval(() => this.checkAddresses(), ADDRESS_CHECK_MS);
    this.addressTimer.unref();
    if (this.open()) this.probeCandidate();
  }

  /** The capture format changed: the TXT record follows (re-announced, at most once a second). */
  captureChanged(capture: AdvertisedCapture): void {
    if (capture.channels === this.capture.channels && capture.rate === this.capture.rate) return;
    this.capture = { ...capture };
    this.txt = streamTxt(this.opts, this.capture);
    this.opts.log.info({ txt: this.txt, state: this.state }, 'mDNS: capture format changed; TXT record updated');
    if (this.state === 'announced') this.scheduleRefresh();
  }

  status(): DiscoveryStatus {
    return {
      enabled: true,
      state: this.state,
      configuredName: this.opts.name,
      name: this.name,
      host: this.name === null ? null : this.host(),
      services: this.name === null ? [] : this.fqdns(this.name),
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
    this.probe?.cancel();
    this.probe = null;
    for (const t of [this.retryTimer, this.refreshTimer]) if (t) clearTimeout(t);
    if (this.addressTimer) clearInterval(this.addressTimer);
    this.retryTimer = null;
    this.refreshTimer = null;
    this.addressTimer = null;
    this.retryAt = null;
    const transport = this.transport;
    if (!transport) return;
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
    });
    const goodbye = new Promise<boolean>((resolve) => {
      if (!wasAnnounced) return resolve(false);
      try {
        transport.goodbye((err) => resolve(!err));
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

  private fqdns(name: string): string[] {
    return serviceFqdns(name, this.opts.dashboardPath !== null);
  }

  /** The host name that goes with the current candidate. */
  private host(): string {
    return hostFqdn(this.opts.name, this.attempt);
  }

  /** A fresh transport; false (and the failure handled) when it cannot be created. */
  private open(): boolean {
    try {
      const transport: MdnsTransport = MdnsTransport.open({
        socketError: (err) => this.fail(`mDNS socket: ${err.message}`),
        answerError: (err) => this.onAnswerError(err),
        response: (packet) => this.onResponse(packet),
      });
      this.transport = transport;
      return true;
    } catch (err) {
      this.fail(`mDNS socket: ${(err as Error).message}`);
      return false;
    }
  }

  /** Closes the transport without goodbyes (its broadcasts stop; the socket closes). */
  private close(): void {
    const transport = this.transport;
    this.transport = null;
    try {
      transport?.close();
    } catch (err) {
      this.opts.log.debug({ err: (err as Error).message }, 'mDNS: closing the socket failed');
    }
  }

  private fail(reason: string): void {
    if (this.state === 'stopped') return;
    this.probe?.cancel();
    this.probe = null;
    this.errors++;
    this.lastError = reason;
    this.state = 'error';
    this.close();
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    this.retryAt = Date.now() + delay;
    this.opts.log.warn({ err: reason, name: this.name, retryInMs: delay }, 'mDNS announcement failed (streaming is not affected); retrying');
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.retryAt = null;
      if (this.state === 'error' && this.open()) this.probeCandidate();
    }, delay);
    this.retryTimer.unref();
  }

  private onAnswerError(err: Error): void {
    if (this.state === 'stopped') return;
    this.errors++;
    this.lastError = `mDNS answer: ${err.message}`;
    this.opts.log.warn({ err: err.message }, 'mDNS: sending an answer failed');
  }

  /** Probes the current candidate name, or gives up (and retries later from the first) after the last one. */
  private probeCandidate(): void {
    const transport = this.transport;
    if (!transport) return;
    if (this.attempt >= MAX_NAME_TRIES) {
      const last = candidateName(this.opts.name, MAX_NAME_TRIES - 1);
      this.attempt = 0;
      this.fail(`no free name: "${this.opts.name}" to "${last}" are all in use on the network`);
      return;
    }
    const name = candidateName(this.opts.name, this.attempt);
    this.name = name;
    this.state = 'probing';
    this.probe = new NameProbe(transport, name, [...this.fqdns(name), this.host()], {
      free: () => {
        this.probe = null;
        this.announce();
      },
      taken: (reason) => {
        this.probe = null;
        this.nextName(reason);
      },
      failed: (reason) => this.fail(reason),
    });
    this.probe.start();
  }

  private nextName(reason: string): void {
    const taken = this.name;
    this.renames++;
    this.attempt++;
    this.opts.log.info({ taken, next: candidateName(this.opts.name, this.attempt), reason }, `mDNS: the name "${taken}" is in use on the network; trying the next`);
    this.probeCandidate();
  }

  private services(name: string): PublishedService[] {
    const host = this.host();
    const out: PublishedService[] = [{ name, type: STREAM_SERVICE_TYPE, port: this.opts.port, host, txt: this.txt }];
    if (this.opts.dashboardPath !== null) out.push({ name, type: HTTP_SERVICE_TYPE, port: this.opts.port, host, txt: { path: this.opts.dashboardPath, deviceid: this.opts.deviceId } });
    return out;
  }

  /**
   * Publishes both services, then sends their unique records (SRV, TXT, A/AAAA)
   * once more with the cache-flush bit, which bonjour-service never sets: a
   * phone that cached an older TXT record replaces it instead of keeping both.
   * That send's callback is the only place a failed announcement shows.
   */
  private announce(): void {
    const transport = this.transport;
    const name = this.name;
    if (!transport || name === null) return;
    let records: MdnsRecord[];
    try {
      records = transport.publish(this.services(name));
    } catch (err) {
      this.fail(`publishing "${name}": ${(err as Error).message}`);
      return;
    }
    const addresses = announcedAddresses();
    this.addressKey = addresses.join(',');
    this.held = {
      streamFqdn: this.fqdns(name)[0]!,
      port: this.opts.port,
      host: this.host(),
      txt: txtKey(Object.entries(this.txt).map(([k, v]) => `${k}=${v}`)),
      ipv4: addresses.filter((a) => a.includes('.'))[0] ?? '',
    };
    transport.respond(
      records.map((r) => ({ ...r, flush: true })),
      (err) => {
        if (transport !== this.transport || this.state === 'stopped') return;
        if (err) {
          this.fail(`announcing "${name}": ${err.message}`);
          return;
        }
        const first = this.state !== 'announced';
        this.state = 'announced';
        this.retryMs = RETRY_FIRST_MS;
        this.announcements++;
        if (first) {
          this.opts.log.info(
            { name, configuredName: this.opts.name, host: this.host(), services: this.fqdns(name), port: this.opts.port, txt: this.txt },
            name === this.opts.name ? `mDNS: announced as "${name}"` : `mDNS: announced as "${name}" ("${this.opts.name}" was in use on the network)`,
          );
        }
      },
    );
  }

  /** An address came, went or changed since the last announcement: announce again (A/AAAA with cache-flush). */
  private checkAddresses(): void {
    if (this.state === 'announced' && announcedAddresses().join(',') !== this.addressKey) this.scheduleRefresh();
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
   * held: a fresh transport (bonjour-service re-broadcasts the records it was
   * given at publish time, so the old one must go) without goodbyes, so
   * browsers see an update, not the box leaving and coming back.
   */
  private refresh(): void {
    if (this.state !== 'announced') return;
    this.lastRefreshAt = Date.now();
    this.close();
    if (this.open()) this.announce();
  }

  /** Answers to our probes, and announcements by others of the names we hold. */
  private onResponse(packet: MdnsPacket): void {
    const probing = this.state === 'probing' && this.probe !== null;
    if (!probing && this.state !== 'announced') return;
    const names = probing ? this.probe!.names : [...this.fqdns(this.name!), this.host()];
    const foreign = foreignRecords(packet, names, localAddresses);
    if (foreign.length === 0) return;
    if (probing) {
      this.probe!.heard(foreign);
      return;
    }
    const verdict = tieBreak(this.held!, foreign);
    if (verdict.result === 'lose') {
      // No goodbyes: an identical twin's records may have the same data, and the winner re-announces with cache-flush anyway.
      this.close();
      if (this.open()) this.nextName(`announced by another device: ${verdict.about}`);
    } else if (verdict.result === 'win') this.reassert();
  }

  /** We keep the name: say so again (at most once a second) so the other device sees our records and renames. */
  private reassert(): void {
    if (Date.now() - this.lastAssertAt < REFRESH_MIN_INTERVAL_MS) return;
    this.lastAssertAt = Date.now();
    this.scheduleRefresh();
  }
}
