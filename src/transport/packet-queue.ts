/**
 * Bounded FIFO of packets that drops the oldest when full: late audio is
 * worthless, so a slow client loses old packets, never new ones. Fixed
 * arrays, no allocation per packet.
 */
export class PacketQueue {
  private readonly packets: (Buffer | undefined)[];
  private readonly arrivals: Float64Array;
  private head = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`queue capacity: got ${capacity}; allowed: an integer >= 1`);
    this.packets = new Array<Buffer | undefined>(capacity).fill(undefined);
    this.arrivals = new Float64Array(capacity);
  }

  get length(): number {
    return this.count;
  }

  /** Appends; returns true when the oldest packet had to be dropped to make room. */
  push(packet: Buffer, arrivalMs: number): boolean {
    let dropped = false;
    if (this.count === this.capacity) {
      this.packets[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
      this.count--;
      dropped = true;
    }
    const at = (this.head + this.count) % this.capacity;
    this.packets[at] = packet;
    this.arrivals[at] = arrivalMs;
    this.count++;
    return dropped;
  }

  /** Arrival time of the oldest packet (valid only when length > 0). */
  peekArrival(): number {
    return this.arrivals[this.head]!;
  }

  /** Removes and returns the oldest packet, or undefined when empty. */
  shift(): Buffer | undefined {
    if (this.count === 0) return undefined;
    const p = this.packets[this.head];
    this.packets[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.count--;
    return p;
  }

  clear(): void {
    this.packets.fill(undefined);
    this.head = this.count = 0;
  }
}
