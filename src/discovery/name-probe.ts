import type { MdnsRecord, MdnsTransport } from './mdns-transport';

/** Probe queries per candidate, and their spacing (RFC 6762 8.1). */
export const PROBES = 3;
export const PROBE_INTERVAL_MS = 250;

/** How a probe ended; exactly one is called, unless the probe is cancelled first. */
export interface ProbeOutcome {
  /** Three probes went unanswered: the names are ours to announce. */
  free(): void;
  /** Another device answered for one of the names. */
  taken(reason: string): void;
  /** A probe could not be sent. */
  failed(reason: string): void;
}

/**
 * Probes one candidate (RFC 6762 8.1): three queries with an ANY question for
 * each name (the services and the host), 250 ms apart, the first after a
 * random 0-250 ms so boxes powered on together do not probe in step. The
 * owner passes in what it hears (heard()); a foreign record for any of the
 * names means the candidate is taken.
 */
export class NameProbe {
  private timer: NodeJS.Timeout | null = null;
  private sent = 0;
  private over = false;

  /**
   * @param transport the socket to send the probes on
   * @param instanceName the instance name probed, for messages
   * @param names every name the candidate would own (service instance names and the host name)
   */
  constructor(
    private readonly transport: MdnsTransport,
    readonly instanceName: string,
    readonly names: readonly string[],
    private readonly outcome: ProbeOutcome,
  ) {}

  start(): void {
    this.after(Math.random() * PROBE_INTERVAL_MS);
  }

  /** Records another device holds for our names (already filtered by foreignRecords); any at all: taken. */
  heard(foreign: readonly MdnsRecord[]): void {
    if (this.over || foreign.length === 0) return;
    this.cancel();
    this.outcome.taken(`answer to the probe: ${foreign[0]!.type} ${foreign[0]!.name}`);
  }

  /** Stops without an outcome; late send callbacks do nothing. */
  cancel(): void {
    this.over = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private after(ms: number): void {
    this.timer = setTimeout(() => this.step(), ms);
    this.timer.unref();
  }

  private step(): void {
    this.timer = null;
    if (this.over) return;
    if (this.sent === PROBES) {
      this.over = true;
      this.outcome.free();
      return;
    }
    this.transport.queryAny([...this.names], (err) => {
      if (this.over) return;
      if (err) {
        this.over = true;
        this.outcome.failed(`probe for "${this.instanceName}": ${err.message}`);
        return;
      }
      this.sent++;
      this.after(PROBE_INTERVAL_MS);
    });
  }
}
