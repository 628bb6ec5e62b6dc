import { TokenBucket } from './token-bucket';

/** What becomes of one control message: handled, dropped (over the rate), or the sender is flooding (close 4029). */
export type RateVerdict = 'pass' | 'drop' | 'flood';

/** The window over which dropped messages are counted, ms. */
export const FLOOD_WINDOW_MS = 1000;

/**
 * The control-message rate rule of docs/protocol.md section 3, for one
 * connection. A token bucket (`ratePerSecond` refill, `burst` size) passes
 * messages; the others are dropped. The sender is flooding once more than
 * 2 × `ratePerSecond` messages were dropped within FLOOD_WINDOW_MS (1 s).
 *
 * Why those numbers: a client sending s messages a second for long gets r of
 * them through and has s − r dropped per second, so it is closed when
 * s − r > 2r, that is when it sends more than three times the rate (150/s by
 * default) for a second; a client a little over the rate, or twice it, is
 * only rate-limited. A burst at once is closed when it exceeds the bucket plus
 * 2r (200 by default); a burst just over the bucket is not. A drop count
 * over a window, unlike drops in a row, cannot be reset by the one message
 * that the bucket lets through every 1/r seconds of a paced flood.
 *
 * Time is an input (`now`, ms); nothing is allocated until the first drop,
 * then one ring of the last 2r + 1 drop times.
 */
export class ControlRateLimiter {
  private readonly bucket: TokenBucket;
  /** Drops within the window that are still allowed; one more is a flood. */
  readonly floodDrops: number;
  private dropTimes: Float64Array | null = null;
  private next = 0;
  private count = 0;

  constructor(ratePerSecond: number, burst: number, now: number) {
    this.bucket = new TokenBucket(ratePerSecond, burst, now);
    this.floodDrops = 2 * ratePerSecond;
  }

  take(now: number): RateVerdict {
    if (this.bucket.take(now)) return 'pass';
    const size = this.floodDrops + 1;
    const ring = (this.dropTimes ??= new Float64Array(size));
    ring[this.next] = now;
    this.next = (this.next + 1) % size;
    if (this.count < size) this.count++;
    // With the ring full, `next` is the oldest of the last floodDrops + 1 drops.
    return this.count === size && now - ring[this.next]! < FLOOD_WINDOW_MS ? 'flood' : 'drop';
  }
}
