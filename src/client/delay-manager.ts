/**
 * Where the jitter buffer should play: the target playout delay, from how the link has behaved.
 *
 * Playout delay P is how late, after the fastest recent packets' transit, the buffer plays a frame:
 * P = now − (box time of the frame playing) − floor, where floor is the smallest (arrival − box time) of the last
 * 2 s (NetEq's relative delay: it needs no common clock, and a drifting clock moves the floor with it). Network
 * jitter does not change P; only the buffer does (by stretching, slipping, or resuming after an underrun).
 *
 * What the link asks of P: at each pull, the playout delay that pull needed to find all its frames,
 * need = now − (box time of the end of the newest packet) + pull length − floor. A pull runs dry exactly when
 * P < need. So every rise of `need` through a level ℓ is one underrun a buffer at P = ℓ would have had: the
 * manager counts these up-crossings per level (0.25 ms steps up to 400 ms), with a memory that fades over 30 s
 * (over 5 s, from at most 2 a second, at a level not crossed for 5 s: a link that got better brings the
 * target down within half a minute even after minutes of trouble), which gives the audible-event rate per minute
 * of every possible target at once.
 *
 * The target is the level that minimises  max(ℓ, freeMs) + eventCostMs × (events per minute at ℓ):  a latency of
 * ℓ ms against dropouts, each dropout a minute worth `eventCostMs` ms of steady latency, and latency below freeMs
 * (well inside what a musician notices) worth nothing, so there every level that saves a dropout is taken. This tells stalls from jitter without
 * a threshold: a 200 ms stall twice a minute would cost 200 ms of latency to cover but saves only two events, so
 * it is ridden through (and leaves the target where it was), while Wi-Fi power save holding 60 ms five times a
 * second is covered, because not covering it means hundreds of events a minute. Compare NetEq's delay manager:
 * a histogram of relative delays (20 ms buckets) read at a fixed quantile, where stalls push the quantile up.
 *
 * Allocates nothing after construction.
 */

const BUCKET_MS = 0.25;
const BUCKETS = 1600;
/** The floor: the smallest transit in each of 8 slots of 250 ms of arrival time. */
const FLOOR_SLOTS = 8;
const FLOOR_SLOT_MS = 250;
/** The target is chosen again this often, ms. */
const DECIDE_MS = 1000;
/** Up-crossings fade with this time constant, ms; at a level with none for QUIET_MS, with QUIET_MEMORY_MS (the link got better: come down in seconds, not minutes). */
const MEMORY_MS = 30000;
const QUIET_MS = 5000;
const QUIET_MEMORY_MS = 5000;
/** A level gone quiet counts at most this many up-crossings per second watched: more was simply always bad, and a count far above it would only take longer to fade. */
const MAX_EVENTS_PER_S = 2;
/** Rates are counted over at least this much time, so the first seconds' events do not count as hundreds a minute. */
const MIN_SPAN_MS = 10000;
/**
 * Until the link has been watched this long the target only rises from the initial one, ms: rare excursions (a late
 * player tick, a hiccup every few seconds) must have had a chance to show before it goes below it.
 */
const LEARN_MS = 5000;
/** The target stays above the median of the smallest needs of the last this many decision intervals. */
const FLOOR_INTERVALS = 8;
/** A pull later than this after the one before (a suspended player) is not counted as watched time. */
const MAX_PULL_GAP_MS = 100;

export interface DelayManagerOptions {
  /** Target until the link has been watched for 5 s (it may rise before then, not fall), ms. */
  initialMs: number;
  minMs: number;
  maxMs: number;
  /** ms of steady latency one audible event per minute is worth. */
  eventCostMs: number;
  /** Playout delay that costs nothing, ms: below it the target takes every level that saves a dropout. */
  freeMs: number;
}

export class DelayManager {
  /** The target playout delay, ms. */
  targetMs: number;
  /** Smallest (arrival − box time) of the last 2 s, ms; NaN before the first packet. */
  floorMs = NaN;
  /** Box time of the end of the newest packet (highest seq), ms; NaN before the first. */
  newestBoxEndMs = NaN;
  /** The last pull's needed playout delay, ms (NaN before the first packet). */
  needMs = NaN;

  private readonly initialMs: number;
  private readonly minMs: number;
  private readonly maxMs: number;
  private readonly eventCostMs: number;
  private readonly freeMs: number;
  private readonly slotMin = new Float64Array(FLOOR_SLOTS).fill(Infinity);
  private slot = 0;
  private slotStartMs = NaN;
  /** Up-crossings of level b × BUCKET_MS, faded. */
  private readonly up = new Float64Array(BUCKETS);
  /** When each level was last crossed, ms. */
  private readonly lastUp = new Float64Array(BUCKETS).fill(-Infinity);
  /** Watched time, faded the same way, ms. */
  private spanMs = 0;
  private watchedMs = 0;
  private lastPullMs = NaN;
  private nextDecideMs = NaN;
  /** Smallest need of the interval running now, and of the last FLOOR_INTERVALS ones. */
  private intervalMin = Infinity;
  private readonly mins = new Float64Array(FLOOR_INTERVALS);
  private readonly sorted = new Float64Array(FLOOR_INTERVALS);
  private minsNext = 0;
  private minsCount = 0;

  constructor(o: DelayManagerOptions) {
    this.targetMs = o.initialMs;
    this.initialMs = o.initialMs;
    this.minMs = o.minMs;
    this.maxMs = o.maxMs;
    this.eventCostMs = o.eventCostMs;
    this.freeMs = o.freeMs;
  }

  /** A packet arrived: the box time of its end and its arrival, ms. `newest`: it has the highest seq so far. */
  arrived(boxEndMs: number, arrivalMs: number, newest: boolean): void {
    if (this.slotStartMs !== this.slotStartMs) this.slotStartMs = arrivalMs;
    if (arrivalMs - this.slotStartMs >= FLOOR_SLOTS * FLOOR_SLOT_MS) {
      // Nothing for 2 s: start the floor afresh.
      this.slotMin.fill(Infinity);
      this.slotStartMs = arrivalMs;
    }
    while (arrivalMs - this.slotStartMs >= FLOOR_SLOT_MS) {
      this.slot = (this.slot + 1) % FLOOR_SLOTS;
      this.slotMin[this.slot] = Infinity;
      this.slotStartMs += FLOOR_SLOT_MS;
    }
    const transit = arrivalMs - boxEndMs;
    if (transit < this.slotMin[this.slot]!) this.slotMin[this.slot] = transit;
    let f = Infinity;
    for (let i = 0; i < FLOOR_SLOTS; i++) if (this.slotMin[i]! < f) f = this.slotMin[i]!;
    this.floorMs = f;
    if (newest) this.newestBoxEndMs = boxEndMs;
  }

  /** Box times restart (a new stretch of audio without box timestamps): forget the floor, keep what was learnt. */
  restartClock(): void {
    this.slotMin.fill(Infinity);
    this.slotStartMs = NaN;
    this.floorMs = NaN;
    this.newestBoxEndMs = NaN;
    this.needMs = NaN;
  }

  /** Playout delay of a frame whose box time is `boxMs`, played at `nowMs`. */
  playoutMs(nowMs: number, boxMs: number): number {
    return nowMs - boxMs - this.floorMs;
  }

  /** At each pull of `pullMs` of audio at `nowMs`: counts what this pull needed; chooses the target once a second. */
  observe(nowMs: number, pullMs: number): void {
    if (this.newestBoxEndMs !== this.newestBoxEndMs) return;
    const need = nowMs - this.newestBoxEndMs + pullMs - this.floorMs;
    const prev = this.needMs;
    this.needMs = need;
    if (need < this.intervalMin) this.intervalMin = need;
    if (prev === prev && prev > this.targetMs && need <= this.targetMs) {
      // An excursion above the target (an underrun, unless the buffer was above its target) just ended: decide now,
      // with the whole excursion counted. Never during the rise: a stall would drag the target up after it.
      this.decide();
    }
    if (prev === prev && need > prev) {
      const b0 = Math.max(0, Math.floor(prev / BUCKET_MS) + 1);
      const b1 = Math.min(BUCKETS - 1, Math.floor(need / BUCKET_MS));
      for (let b = b0; b <= b1; b++) {
        this.up[b]!++;
        this.lastUp[b] = nowMs;
      }
    }
    const dt = this.lastPullMs === this.lastPullMs ? nowMs - this.lastPullMs : 0;
    this.lastPullMs = nowMs;
    if (dt > 0 && dt < MAX_PULL_GAP_MS) {
      this.spanMs += dt;
      this.watchedMs += dt;
    }
    if (this.nextDecideMs !== this.nextDecideMs) this.nextDecideMs = nowMs + DECIDE_MS;
    if (nowMs >= this.nextDecideMs) {
      this.nextDecideMs = nowMs + DECIDE_MS;
      this.fade(nowMs);
      this.decide();
    }
  }

  /** Audible events per minute the link would have caused at target `ms`, as counted now. */
  eventsPerMinAt(ms: number): number {
    const b = Math.min(BUCKETS - 1, Math.max(0, Math.ceil(ms / BUCKET_MS - 1e-9)));
    return (this.up[b]! * 60000) / Math.max(this.spanMs, MIN_SPAN_MS);
  }

  private medianMin(): number {
    // The interval running now counts too until 8 have ended. Insertion sort into a scratch copy: no allocation.
    const m = this.sorted;
    let k = 0;
    const add = (v: number): void => {
      let j = k++;
      for (; j > 0 && m[j - 1]! > v; j--) m[j] = m[j - 1]!;
      m[j] = v;
    };
    for (let i = 0; i < this.minsCount; i++) add(this.mins[i]!);
    if (k < FLOOR_INTERVALS && this.intervalMin !== Infinity) add(this.intervalMin);
    return k === 0 ? 0 : m[k >> 1]!;
  }

  /** Once a second: the memory fades, faster at quiet levels. */
  private fade(nowMs: number): void {
    if (this.intervalMin !== Infinity) {
      this.mins[this.minsNext] = this.intervalMin;
      this.minsNext = (this.minsNext + 1) % FLOOR_INTERVALS;
      if (this.minsCount < FLOOR_INTERVALS) this.minsCount++;
    }
    this.intervalMin = Infinity;
    const fade = Math.exp(-DECIDE_MS / MEMORY_MS);
    const quietFade = Math.exp(-DECIDE_MS / QUIET_MEMORY_MS);
    const cap = (MAX_EVENTS_PER_S * Math.max(this.spanMs, MIN_SPAN_MS)) / 1000;
    for (let b = 0; b < BUCKETS; b++) this.up[b] = nowMs - this.lastUp[b]! > QUIET_MS ? Math.min(cap, this.up[b]!) * quietFade : this.up[b]! * fade;
    this.spanMs *= fade;
  }

  private decide(): void {
    // A level the need never fell below within an interval has no up-crossings there, yet a buffer at that level
    // would have run dry at every pull: the target stays above the smallest need of most recent intervals (the
    // median of the last 8, so that a stall covering a whole interval does not count).
    const low = Math.max(this.minMs, this.medianMin());
    const perEvent = (this.eventCostMs * 60000) / Math.max(this.spanMs, MIN_SPAN_MS);
    const b0 = Math.max(0, Math.ceil(Math.min(low, this.maxMs) / BUCKET_MS - 1e-9));
    const b1 = Math.min(BUCKETS - 1, Math.floor(this.maxMs / BUCKET_MS + 1e-9));
    let best = b1;
    let bestCost = Infinity;
    for (let b = b0; b <= b1; b++) {
      const cost = Math.max(b * BUCKET_MS, this.freeMs) + perEvent * this.up[b]!;
      if (cost < bestCost) {
        bestCost = cost;
        best = b;
      }
    }
    let target = Math.min(this.maxMs, Math.max(this.minMs, best * BUCKET_MS));
    if (this.watchedMs < LEARN_MS) target = Math.max(target, this.initialMs);
    this.targetMs = target;
  }
}
