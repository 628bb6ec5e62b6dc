/** One service event: what happened, when, and the values that say which. */
export interface ServiceEvent {
  /** Increases by one per event for the life of the process; a reader can tell what it has missed. */
  seq: number;
  /** Wall-clock time, ms since the epoch (for people; order by seq). */
  at: number;
  /** Short kebab-case name: "client-joined", "device-lost", "overload", ... (health-watcher's event types, plus "service-started" and "client-refused"). */
  kind: string;
  /** Flat values (ids, addresses, counts, states); never audio, never credentials. */
  fields: Record<string, string | number | boolean | null>;
}

export type EventListener = (e: ServiceEvent) => void;

/**
 * The last few service events, kept in a fixed ring (oldest forgotten
 * first), for the dashboard and anything else that reports them (MQTT).
 * Nothing here runs on the audio path: events come from state changes and
 * a once-a-second health check, never from a period.
 */
export class EventLog {
  private readonly ring: (ServiceEvent | undefined)[];
  private next = 0;
  private readonly listeners = new Set<EventListener>();

  /** `capacity`: events kept (default 50). */
  constructor(readonly capacity = 50) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity: got ${capacity}; allowed: an integer >= 1`);
    this.ring = new Array<ServiceEvent | undefined>(capacity);
  }

  /** Records an event and tells every listener; returns it. A listener that throws does not stop the others. */
  add(kind: string, fields: ServiceEvent['fields'] = {}): ServiceEvent {
    const e: ServiceEvent = { seq: this.next + 1, at: Date.now(), kind, fields };
    this.ring[this.next % this.capacity] = e;
    this.next++;
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // A reporter's failure is its own; the log and the other listeners carry on.
      }
    }
    return e;
  }

  /** Up to `limit` (default all kept) most recent events, oldest first. */
  recent(limit = this.capacity): ServiceEvent[] {
    const n = Math.min(limit, this.capacity, this.next);
    const out: ServiceEvent[] = [];
    for (let s = this.next - n; s < this.next; s++) out.push(this.ring[s % this.capacity]!);
    return out;
  }

  /** Seq of the newest event (0 before the first). */
  get lastSeq(): number {
    return this.next;
  }

  /** Calls `listener` for every later event; returns the function that stops it. */
  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
