import { MixSlab } from '../engine/mix-slab';

/** Distinct mixes a registry without a send pool's slab can hold (tests); the service sizes it from stream.maxClients. */
const DEFAULT_MIX_CAPACITY = 256;

/** Every mix slot is taken: a new distinct mix cannot be rendered. */
export class MixCapacityError extends RangeError {}

/**
 * The slots of the mix slab (shared memory a mix's render state lives in).
 * A removed mix's slot may still be read by a worker rendering its last
 * period, so with a send pool attached a freed slot becomes reusable only at
 * the next commit, when no render is in flight.
 */
export class MixSlots {
  private slabRef: MixSlab | null = null;
  private free: number[] = [];
  /** Slots of removed mixes a worker may still be rendering; free again at the next commit. */
  private released: number[] = [];
  private deferReuse = false;

  /** The send pool's slab, shared with its workers. Set before any mix exists. */
  attach(slab: MixSlab): void {
    this.slabRef = slab;
    this.free = Array.from({ length: slab.capacity }, (_, i) => slab.capacity - 1 - i);
    this.released = [];
    this.deferReuse = true;
  }

  /** The slab, made on first use when no pool attached one (a registry on its own, in tests). */
  slab(periodFrames: number): MixSlab {
    if (!this.slabRef) {
      // No pool renders from it, so a freed slot is reusable at once.
      this.slabRef = new MixSlab(DEFAULT_MIX_CAPACITY, periodFrames);
      this.free = Array.from({ length: DEFAULT_MIX_CAPACITY }, (_, i) => DEFAULT_MIX_CAPACITY - 1 - i);
    }
    if (this.slabRef!.periodFrames < periodFrames) {
      throw new RangeError(`mix: period of ${periodFrames} frames; the mix slab was sized for ${this.slabRef!.periodFrames}`);
    }
    return this.slabRef!;
  }

  /** @throws MixCapacityError when every slot is taken. */
  take(): number {
    const slot = this.free.pop();
    if (slot === undefined) {
      throw new MixCapacityError(`the box already renders ${this.slabRef!.capacity} distinct mixes, its most; share a mix or use raw channels`);
    }
    return slot;
  }

  /** A slot taken but never used (its mix could not be set up): free at once. */
  giveBack(slot: number): void {
    this.free.push(slot);
  }

  /** A removed mix's slot: reusable after the next commit when a pool may be rendering it, at once otherwise. */
  release(slot: number): void {
    (this.deferReuse ? this.released : this.free).push(slot);
  }

  /** Between two mix periods: released slots become free. */
  commit(): void {
    if (this.released.length === 0) return;
    for (const s of this.released) this.free.push(s);
    this.released.length = 0;
  }
}
