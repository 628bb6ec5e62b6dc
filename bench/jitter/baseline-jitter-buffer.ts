/**
 * The client library's jitter buffer as it was before issue #12 (commit e099c63, src/client/jitter-buffer.ts),
 * frozen here as the baseline that the replay tool (bench/jitter-replay.ts) and the `wifi` bench run side by side
 * with today's buffer on the same arrival trace. Do not improve it: its job is to stay what was measured.
 * Only the names changed (BaselineJitterBuffer, Baseline… types).
 *
 * Adaptive jitter buffer for one stream of interleaved Float32 audio.
 *
 * Pure and clock-injected: no timers and no platform calls; the caller passes
 * the arrival time to push() and the playback time to pull() (same clock, ms).
 * pull() allocates nothing, so it can run in an AudioWorklet's process().
 *
 * How it keeps latency low and steady:
 * - Packets are placed by `seq` (each packet one slot of `frames` frames), so a
 *   gap is kept free and a reordered packet that arrives before its turn still
 *   plays. A packet whose turn has passed is dropped (`late`).
 * - A gap still empty when its turn comes is concealed (`conceal`, default
 *   'waveform'): the last stretch of audio is repeated at the period that best
 *   matches what came before it (a pitch period of a held note), held for
 *   5 ms and faded out over 15 ms, and crossfaded into the audio after the gap
 *   over 1 ms. A 2.7 ms packet lost from a note is then a short repeat of that
 *   note, not a click of silence. 'silence' plays zeros instead.
 * - Playback starts once `targetMs` of audio is buffered. On an underrun the
 *   missing part is concealed the same way (then silence), the target grows by
 *   two packets (at least 2 ms) and playback waits until the new target is
 *   buffered again; the audio then fades back in over 1 ms.
 * - Stable for `stableMs` with audio to spare: the target shrinks by
 *   `shrinkStepMs` per `shrinkWindowMs`, never below `minMs`.
 * - The buffered level (smoothed) is held at the target by slipping single
 *   frames: one frame dropped (or repeated) every few thousand, at most
 *   `maxSlipPpm`. This absorbs a box clock that runs faster or slower than
 *   the player's; between slips the samples pass through bit-exact.
 * - Far more than the target buffered (a burst after a stall): the oldest
 *   audio is dropped at once down to the target.
 *
 * Drift between the box clock and the client clock is estimated from the
 * lower envelope of (arrival − box time), one point per second, by a least
 * squares line over the last 32 s.
 */

export interface BaselineJitterBufferOptions {
  /** Sample rate, Hz. */
  rate: number;
  /** Interleaved channels per frame. */
  channels: number;
  /** Initial target latency, ms; default 10 (about 4 packets of 128 frames at 48 kHz, docs/protocol.md section 9). */
  targetMs?: number;
  /** Lowest target the buffer shrinks to, ms; default 2.5. */
  minMs?: number;
  /** Highest target the buffer grows to, ms; default 200. */
  maxMs?: number;
  /** No underrun for this long before the target shrinks, ms; default 5000. */
  stableMs?: number;
  /** Time between two shrink steps, ms; default 2000. */
  shrinkWindowMs?: number;
  /** One shrink step, ms; default 1. */
  shrinkStepMs?: number;
  /** Largest level correction by frame slips, parts per million of the frames played; default 2000. */
  maxSlipPpm?: number;
  /** What a lost packet plays as: 'waveform' (a repeat of the audio before it, fading out; default) or 'silence'. */
  conceal?: 'waveform' | 'silence';
}

export interface BaselineJitterBufferStats {
  /** Audio buffered ahead of the playback position, smoothed (about 0.5 s), ms. */
  latencyMs: number;
  /** The level the buffer steers to now, ms. */
  targetMs: number;
  /** Times playback ran dry (each starvation counts once). */
  underruns: number;
  /** Packets that arrived after their turn to play and were dropped. */
  late: number;
  /** Packets missing when a later one arrived and never filled in before their turn (their audio played as silence). */
  lost: number;
  /** Packets that arrived after a later one but still in time. */
  reordered: number;
  /** Box clock rate relative to the client clock, parts per million (positive: the box runs fast); 0 until known. */
  driftPpm: number;
  /** Frames buffered now. */
  bufferedFrames: number;
  /** Frames dropped (positive) or repeated (negative) to steer the level, in total. */
  slipFrames: number;
  /** Frames dropped at once because far more than the target was buffered. */
  droppedFrames: number;
  /** Frames put in for missing audio (see `conceal`): seq gaps not filled in later by a reordered packet, and the rest of a pull that ran dry. */
  concealedFrames: number;
}

const DRIFT_POINTS = 32;
const DRIFT_WINDOW_MS = 1000;
/** Remembered missing seqs, to recognise a reordered packet. */
const MISSING_SLOTS = 64;
/** A seq jump of more than this many packets is a new stretch of audio, not a gap to fill. */
const MAX_GAP_PACKETS = 256;
/** Level smoothing: time constant of the exponential average, ms. */
const LEVEL_TAU_MS = 500;
/** Shrink windows whose deepest level dip the target must still cover. */
const DIP_WINDOWS = 4;
const SHRINK_MARGIN_MS = 1;
/** An underrun grows the target by two packets, at least this much, ms. */
const GROW_MIN_MS = 2;
/** Slip rate per ms of level error: 1 ms off slips at 500 ppm, so a 200 ppm drift holds the level 0.4 ms off. */
const SLIP_GAIN_MS = 2000;
/** Waveform concealment: full level for this long, then a raised-cosine fade to silence over CONCEAL_FADE_MS. */
const CONCEAL_HOLD_MS = 5;
const CONCEAL_FADE_MS = 15;
/** Crossfade from the concealment into the audio after a gap, ms. */
const CONCEAL_MERGE_MS = 1;
/** Repetition periods searched, ms (a 1 kHz to 40 Hz fundamental: a bass's low E is 41 Hz), and the stretch they are matched against. */
const LAG_MIN_MS = 1;
const LAG_MAX_MS = 25;
const MATCH_MS = 2;

export class BaselineJitterBuffer {
  readonly rate: number;
  readonly channels: number;
  private readonly minMs: number;
  private readonly maxMs: number;
  private readonly stableMs: number;
  private readonly shrinkWindowMs: number;
  private readonly shrinkStepMs: number;
  private readonly maxSlip: number;
  private readonly concealWaveform: boolean;

  private readonly ring: Float32Array;
  /** Per ring frame: 1 where a seq gap left it empty, 0 where received audio is. */
  private readonly hole: Uint8Array;
  /** Ring capacity in frames. */
  private readonly cap: number;
  /** Absolute frame positions (float64 integers): next frame to play, and one past the last frame written. */
  private readPos = 0;
  private writeEnd = 0;
  /** The highest seq placed so far and the position of its first frame. */
  private lastSeq = 0;
  private lastSeqPos = 0;
  private packetFrames = 0;
  private started = false;

  private target: number;
  private playing = false;
  private levelMs = 0;
  private lastPullMs = NaN;
  private lastUnderrunMs = -Infinity;
  private windowStartMs = NaN;
  private windowMinFrames = Infinity;
  private slipAcc = 0;
  private pullFrames = 0;
  private readonly dips = new Float64Array(DIP_WINDOWS).fill(Infinity);
  private dipNext = 0;

  // Waveform concealment of the gap being played (in frames, at this rate).
  private readonly holdFrames: number;
  private readonly fadeFrames: number;
  private readonly mergeFrames: number;
  private readonly lagMin: number;
  private readonly lagMax: number;
  private readonly matchFrames: number;
  /** Stream position where the gap being concealed began; -1: none. */
  private concealAt = -1;
  /** Repetition period, frames; 0: nothing to repeat (silence). */
  private concealLag = 0;
  /** Frames put in since concealAt (the merge after the gap continues the count). */
  private concealN = 0;
  /** Frames of the crossfade into received audio still to play. */
  private mergeLeft = 0;
  /** The lag search's mono copy of the audio before a gap (lagMax + matchFrames frames). */
  private readonly hist: Float32Array;

  private readonly missing = new Uint32Array(MISSING_SLOTS);
  private readonly missingPos = new Float64Array(MISSING_SLOTS);
  private missingCount = 0;

  private underruns = 0;
  private late = 0;
  private lost = 0;
  private reordered = 0;
  private slipFrames = 0;
  private droppedFrames = 0;
  private concealedFrames = 0;

  // Drift: per window, the lowest (arrival − box) and the box time it was seen at.
  private readonly driftX = new Float64Array(DRIFT_POINTS);
  private readonly driftY = new Float64Array(DRIFT_POINTS);
  private driftCount = 0;
  private driftNext = 0;
  private driftBase = NaN;
  private winStart = NaN;
  private winMinY = Infinity;
  private winMinX = 0;
  private drift = 0;

  constructor(opts: BaselineJitterBufferOptions) {
    const { rate, channels } = opts;
    if (!Number.isInteger(rate) || rate < 1 || rate > 768000) throw new RangeError(`JitterBuffer rate is ${rate}; allowed: an integer 1-768000 Hz`);
    if (!Number.isInteger(channels) || channels < 1 || channels > 64) throw new RangeError(`JitterBuffer channels is ${channels}; allowed: an integer 1-64`);
    this.rate = rate;
    this.channels = channels;
    this.minMs = positive('minMs', opts.minMs ?? 2.5);
    this.maxMs = positive('maxMs', opts.maxMs ?? 200);
    if (this.minMs > this.maxMs) throw new RangeError(`JitterBuffer minMs ${this.minMs} is above maxMs ${this.maxMs}; minMs must be at most maxMs`);
    const targetMs = positive('targetMs', opts.targetMs ?? 10);
    if (targetMs < this.minMs || targetMs > this.maxMs) {
      throw new RangeError(`JitterBuffer targetMs is ${targetMs}; allowed: minMs-maxMs (${this.minMs}-${this.maxMs})`);
    }
    this.target = targetMs;
    this.stableMs = positive('stableMs', opts.stableMs ?? 5000);
    this.shrinkWindowMs = positive('shrinkWindowMs', opts.shrinkWindowMs ?? 2000);
    this.shrinkStepMs = positive('shrinkStepMs', opts.shrinkStepMs ?? 1);
    const ppm = opts.maxSlipPpm ?? 2000;
    if (!(ppm >= 0 && ppm <= 20000)) throw new RangeError(`JitterBuffer maxSlipPpm is ${ppm}; allowed: 0-20000`);
    this.maxSlip = ppm / 1e6;
    const conceal = opts.conceal ?? 'waveform';
    if (conceal !== 'waveform' && conceal !== 'silence') throw new RangeError(`JitterBuffer conceal is ${JSON.stringify(conceal)}; allowed: "waveform" or "silence"`);
    this.concealWaveform = conceal === 'waveform';
    const frames = (ms: number): number => Math.max(1, Math.round((ms * rate) / 1000));
    this.holdFrames = frames(CONCEAL_HOLD_MS);
    this.fadeFrames = frames(CONCEAL_FADE_MS);
    this.mergeFrames = frames(CONCEAL_MERGE_MS);
    this.lagMin = frames(LAG_MIN_MS);
    this.lagMax = Math.max(this.lagMin, frames(LAG_MAX_MS));
    this.matchFrames = frames(MATCH_MS);
    this.hist = new Float32Array(this.lagMax + this.matchFrames);
    // Room for the largest target twice over (the drop threshold) plus a burst.
    this.cap = Math.ceil(((2 * this.maxMs + 100) * rate) / 1000);
    this.ring = new Float32Array(this.cap * channels);
    this.hole = new Uint8Array(this.cap);
  }

  /**
   * Adds one packet. `samples` is interleaved (frames × channels) and copied.
   * `boxTimeNs` (the packet's captureNs) feeds the drift estimate; without it
   * the stream position is the box's clock. `discontinuity` (flag bit 0) starts
   * a new stretch of audio: the packet is placed right after what is buffered
   * (the audio the box lost is not made up with silence: by the time this
   * packet arrives that time has passed, and silence would only add latency).
   */
  push(seq: number, samples: Float32Array, arrivalMs: number, boxTimeNs?: bigint | number, discontinuity = false): void {
    const ch = this.channels;
    if (samples.length === 0 || samples.length % ch !== 0) {
      throw new RangeError(`JitterBuffer.push: ${samples.length} samples is not a whole number of ${ch}-channel frames`);
    }
    const frames = samples.length / ch;
    seq = seq >>> 0;
    let pos: number;
    let newest = true;
    if (!this.started || discontinuity || frames !== this.packetFrames) {
      pos = this.restart(frames, boxTimeNs !== undefined);
    } else {
      const d = (seq - this.lastSeq) | 0;
      if (d > MAX_GAP_PACKETS || d < -MAX_GAP_PACKETS) {
        pos = this.restart(frames, boxTimeNs !== undefined);
      } else if (d > 0) {
        pos = this.lastSeqPos + d * frames;
        for (let k = 1; k < d; k++) this.rememberMissing((this.lastSeq + k) >>> 0, this.lastSeqPos + k * frames);
      } else if (d === 0) {
        return; // a duplicate
      } else {
        newest = false;
        pos = this.lastSeqPos + d * frames;
        const slot = this.findMissing(seq);
        if (slot < 0) return; // a duplicate, or older than anything remembered
        this.forgetMissing(slot);
        if (pos + frames <= this.readPos) {
          this.late++;
          this.lost++;
          return;
        }
        this.reordered++;
        this.concealedFrames -= Math.min(frames, pos + frames - this.readPos);
      }
    }
    if (newest) {
      this.lastSeq = seq;
      this.lastSeqPos = pos;
    }
    this.started = true;
    this.packetFrames = frames;
    this.write(pos, samples, frames);
    this.trackDrift(arrivalMs, boxTimeNs, pos);
  }

  /** Places the next packet after what is buffered; forgets the seq history (and the drift, unless box times go on). */
  private restart(frames: number, boxTimes: boolean): number {
    this.missingCount = 0;
    this.packetFrames = frames;
    if (!boxTimes) this.resetDrift();
    // Before the first packet the playback position may have run on with silence; start from it.
    if (this.writeEnd < this.readPos) this.writeEnd = this.readPos;
    return this.writeEnd;
  }

  private write(pos: number, samples: Float32Array, frames: number): void {
    const ch = this.channels;
    let from = 0;
    if (pos < this.readPos) {
      // Partly late: keep what is still ahead of playback.
      from = this.readPos - pos;
      this.late++;
      if (from >= frames) return;
    }
    const end = pos + frames;
    // Silence for a gap between what was written and this packet.
    if (pos > this.writeEnd) this.fill(this.writeEnd, pos);
    // No room: the oldest audio goes (a burst far beyond every target).
    if (end - this.readPos > this.cap) {
      const drop = end - this.readPos - this.cap;
      this.readPos += drop;
      this.droppedFrames += drop;
      if (from < this.readPos - pos) from = Math.min(frames, this.readPos - pos);
    }
    // Copied by hand: subarray() would allocate a view per packet, and push may run in an AudioWorklet too.
    const ring = this.ring;
    for (let f = from; f < frames; ) {
      const at = (pos + f) % this.cap;
      const run = Math.min(frames - f, this.cap - at);
      for (let i = f * ch, o = at * ch, end = (f + run) * ch; i < end; i++, o++) ring[o] = samples[i]!;
      this.hole.fill(0, at, at + run);
      f += run;
    }
    if (end > this.writeEnd) this.writeEnd = end;
  }

  private fill(from: number, to: number): void {
    const ch = this.channels;
    for (let p = Math.max(from, this.readPos, to - this.cap); p < to; ) {
      const at = p % this.cap;
      const run = Math.min(to - p, this.cap - at);
      this.ring.fill(0, at * ch, (at + run) * ch);
      this.hole.fill(1, at, at + run);
      this.concealedFrames += run;
      p += run;
    }
  }

  private rememberMissing(seq: number, pos: number): void {
    this.lost++;
    if (this.missingCount === MISSING_SLOTS) {
      // Forget the oldest: it is long past its turn.
      this.missing.copyWithin(0, 1);
      this.missingPos.copyWithin(0, 1);
      this.missingCount--;
    }
    this.missing[this.missingCount] = seq;
    this.missingPos[this.missingCount] = pos;
    this.missingCount++;
  }

  private findMissing(seq: number): number {
    for (let i = 0; i < this.missingCount; i++) if (this.missing[i] === seq) return i;
    return -1;
  }

  private forgetMissing(slot: number): void {
    this.missing.copyWithin(slot, slot + 1, this.missingCount);
    this.missingPos.copyWithin(slot, slot + 1, this.missingCount);
    this.missingCount--;
    // Counted lost when the gap showed; it arrived after all.
    this.lost--;
  }

  /**
   * Fills `out` (interleaved, frames × channels) with the next audio, or
   * silence while (re)buffering. `nowMs` is the playback clock. Allocates nothing.
   */
  pull(out: Float32Array, nowMs: number): void {
    const ch = this.channels;
    const n = (out.length / ch) | 0;
    this.pullFrames = n;
    const rateMs = this.rate / 1000;
    let buffered = this.writeEnd - this.readPos;
    if (buffered < 0) buffered = 0;

    // Smoothed level, advanced by the time since the last pull.
    const dt = this.lastPullMs === this.lastPullMs ? Math.max(0, nowMs - this.lastPullMs) : 0;
    this.lastPullMs = nowMs;
    const bufferedMs = buffered / rateMs;
    const a = dt > 0 ? 1 - Math.exp(-dt / LEVEL_TAU_MS) : this.levelMs === 0 ? 1 : 0;
    this.levelMs += a * (bufferedMs - this.levelMs);

    if (!this.playing) {
      if (this.started && bufferedMs >= this.target) {
        this.playing = true;
        // Stable time counts from the first playback.
        if (this.lastUnderrunMs === -Infinity) this.lastUnderrunMs = nowMs;
        this.windowStartMs = nowMs;
        this.windowMinFrames = Infinity;
        this.levelMs = bufferedMs;
      } else {
        // Rebuffering after an underrun: the concealment runs on (fading out), else silence.
        if (this.concealAt >= 0 && this.concealWaveform) for (let o = 0; o < out.length; o += ch) this.concealed(out, o, 1, 0);
        else out.fill(0);
        return;
      }
    }

    this.adapt(nowMs, buffered);

    // Far too much buffered (a burst after a stall): drop the oldest down to the target.
    const targetFrames = Math.round(this.target * rateMs);
    const excess = buffered - targetFrames;
    if (excess > Math.max(targetFrames, 20 * rateMs)) {
      this.readPos += excess;
      this.droppedFrames += excess;
      buffered = targetFrames;
      this.levelMs = this.target;
      this.slipAcc = 0;
    } else {
      // Steer the smoothed level to the target by single-frame slips.
      const errMs = this.levelMs - this.target;
      // Playback starts with target … target + one packet buffered, so that much above the target is no error.
      const above = this.packetFrames / rateMs + 0.5;
      let rate = 0;
      if (errMs > above) rate = Math.min(this.maxSlip, (errMs - above) / SLIP_GAIN_MS);
      else if (errMs < -0.5) rate = Math.max(-this.maxSlip, (errMs + 0.5) / SLIP_GAIN_MS);
      this.slipAcc += rate * n;
    }

    let dropAt = -1;
    let repeatAt = -1;
    if (this.slipAcc >= 1 && buffered > n) {
      dropAt = n >> 1;
      this.slipAcc -= 1;
    } else if (this.slipAcc <= -1 && buffered >= n) {
      repeatAt = n >> 1;
      this.slipAcc += 1;
    }

    let src = this.readPos;
    let o = 0;
    for (let f = 0; f < n; f++) {
      if (f === dropAt) {
        src++;
        this.slipFrames++;
      }
      if (src >= this.writeEnd) break;
      this.frameAt(src, out, o);
      o += ch;
      if (f === repeatAt) {
        // Play this frame twice: the source does not advance.
        this.slipFrames--;
        f++;
        if (f < n) {
          for (let c = 0; c < ch; c++) out[o + c] = out[o - ch + c]!;
          o += ch;
        }
      }
      src++;
    }
    this.readPos = src;
    if (o < n * ch) {
      // Ran dry: the rest concealed (a repeat fading out) or silent, a larger target, and wait until it is buffered.
      this.concealedFrames += n - o / ch;
      if (this.concealWaveform) {
        if (this.concealAt < 0 || this.mergeLeft > 0) this.startConceal(src);
        for (; o < n * ch; o += ch) this.concealed(out, o, 1, 0);
      } else out.fill(0, o);
      this.underruns++;
      this.lastUnderrunMs = nowMs;
      this.target = Math.min(this.maxMs, this.target + Math.max(2 * (this.packetFrames / rateMs), GROW_MIN_MS));
      this.playing = false;
      this.slipAcc = 0;
      if (this.writeEnd < this.readPos) this.writeEnd = this.readPos;
    }
  }

  /** Writes the frame at stream position `src` to out[o …]: received audio, a gap's concealment, or the two crossfaded. */
  private frameAt(src: number, out: Float32Array, o: number): void {
    const ch = this.channels;
    const slot = src % this.cap;
    const at = slot * ch;
    if (this.hole[slot] === 1 && this.concealWaveform) {
      if (this.concealAt < 0 || this.mergeLeft > 0) this.startConceal(src);
      this.concealed(out, o, 1, 0);
      return;
    }
    if (this.concealAt >= 0 && this.mergeLeft === 0) this.mergeLeft = this.mergeFrames;
    if (this.mergeLeft === 0) {
      for (let c = 0; c < ch; c++) out[o + c] = this.ring[at + c]!;
      return;
    }
    // Raised cosine from the concealment (still running on) to the received audio.
    const w = 0.5 - 0.5 * Math.cos((Math.PI * (this.mergeFrames - this.mergeLeft + 1)) / (this.mergeFrames + 1));
    for (let c = 0; c < ch; c++) out[o + c] = this.ring[at + c]! * w;
    this.concealed(out, o, 1 - w, 1);
    if (--this.mergeLeft === 0) this.concealAt = -1;
  }

  /** Adds (add = 1) or writes (add = 0) the next concealment frame, times `scale`, at out[o …]. */
  private concealed(out: Float32Array, o: number, scale: number, add: number): void {
    const ch = this.channels;
    const k = this.concealN++;
    let g = 0;
    if (this.concealLag > 0 && k < this.holdFrames + this.fadeFrames) {
      g = k < this.holdFrames ? scale : scale * (0.5 + 0.5 * Math.cos((Math.PI * (k - this.holdFrames)) / this.fadeFrames));
    }
    const from = g === 0 ? 0 : ((this.concealAt - this.concealLag + (k % this.concealLag)) % this.cap) * ch;
    for (let c = 0; c < ch; c++) out[o + c] = (add === 1 ? out[o + c]! : 0) + g * this.ring[from + c]!;
  }

  /**
   * A gap begins at `h0`: picks the repetition period, the lag (lagMin-lagMax frames) whose stretch before it best
   * matches the last matchFrames before the gap (cross-correlation over the candidate's energy, on channels 0 and 1
   * summed, so the cost does not grow with the channel count). Every second lag on every second frame first, then
   * the best ±2 at full resolution: about 40 000 multiply-adds per gap at 48 kHz. Allocates nothing.
   */
  private startConceal(h0: number): void {
    this.concealAt = h0;
    this.concealN = 0;
    this.mergeLeft = 0;
    const m = this.matchFrames;
    // Only audio still in the ring behind the gap (and after the stream's start) can be repeated.
    const lagMax = Math.min(this.lagMax, h0 - m, this.cap - m - 1);
    if (lagMax < this.lagMin) {
      this.concealLag = 0;
      return;
    }
    const ch = this.channels;
    const two = ch > 1 ? 1 : 0;
    const hist = this.hist;
    const len = lagMax + m;
    for (let i = 0, p = h0 - len; i < len; i++, p++) {
      const at = (p % this.cap) * ch;
      hist[i] = this.ring[at]! + this.ring[at + two]!;
    }
    let best = this.lagMin;
    let bestScore = -Infinity;
    for (let lag = this.lagMin; lag <= lagMax; lag += 2) {
      const score = this.matchScore(lagMax, lag, 2);
      if (score > bestScore) {
        bestScore = score;
        best = lag;
      }
    }
    const from = Math.max(this.lagMin, best - 2);
    const to = Math.min(lagMax, best + 2);
    bestScore = -Infinity;
    for (let lag = from; lag <= to; lag++) {
      const score = this.matchScore(lagMax, lag, 1);
      if (score > bestScore) {
        bestScore = score;
        best = lag;
      }
    }
    this.concealLag = best;
  }

  /** How well the stretch `lag` frames back matches the last matchFrames of hist (which ends at `end` + matchFrames). */
  private matchScore(end: number, lag: number, step: number): number {
    const hist = this.hist;
    let xy = 0;
    let yy = 0;
    for (let i = 0; i < this.matchFrames; i += step) {
      const y = hist[end - lag + i]!;
      xy += hist[end + i]! * y;
      yy += y * y;
    }
    return yy > 0 ? xy / Math.sqrt(yy) : 0;
  }

  /** Slow shrink: after `stableMs` without an underrun, lower the target while the buffer never ran near empty. */
  private adapt(nowMs: number, buffered: number): void {
    if (buffered < this.windowMinFrames) this.windowMinFrames = buffered;
    if (nowMs - this.windowStartMs < this.shrinkWindowMs) return;
    const rateMs = this.rate / 1000;
    // How far the level dipped below its smoothed value: the jitter the target must cover. The target keeps the
    // deepest dip of the last few windows, one pull and a margin; what it has beyond that it may give up, slowly.
    this.dips[this.dipNext] = Math.max(0, this.levelMs - this.windowMinFrames / rateMs);
    this.dipNext = (this.dipNext + 1) % DIP_WINDOWS;
    let dip = 0;
    for (let i = 0; i < DIP_WINDOWS; i++) if (this.dips[i]! > dip) dip = this.dips[i]!;
    const spareMs = Math.min(this.levelMs, this.target) - dip - this.pullFrames / rateMs - SHRINK_MARGIN_MS;
    if (nowMs - this.lastUnderrunMs >= this.stableMs && spareMs > 0 && this.target > this.minMs) {
      this.target = Math.max(this.minMs, this.target - Math.min(this.shrinkStepMs, spareMs / 2));
    }
    this.windowStartMs = nowMs;
    this.windowMinFrames = Infinity;
  }

  private resetDrift(): void {
    this.driftCount = 0;
    this.driftNext = 0;
    this.driftBase = NaN;
    this.winStart = NaN;
    this.winMinY = Infinity;
  }

  private trackDrift(arrivalMs: number, boxTimeNs: bigint | number | undefined, pos: number): void {
    // Box time in ms; without a timestamp, the stream position is the box's sample clock.
    const box = boxTimeNs === undefined ? (pos * 1000) / this.rate : Number(boxTimeNs) / 1e6;
    if (this.driftBase !== this.driftBase) {
      this.driftBase = box;
      this.winStart = arrivalMs;
    }
    const x = box - this.driftBase;
    const y = arrivalMs - x;
    if (y < this.winMinY) {
      this.winMinY = y;
      this.winMinX = x;
    }
    if (arrivalMs - this.winStart < DRIFT_WINDOW_MS) return;
    this.driftX[this.driftNext] = this.winMinX;
    this.driftY[this.driftNext] = this.winMinY;
    this.driftNext = (this.driftNext + 1) % DRIFT_POINTS;
    if (this.driftCount < DRIFT_POINTS) this.driftCount++;
    this.winStart = arrivalMs;
    this.winMinY = Infinity;
    if (this.driftCount >= 4) this.drift = -slope(this.driftX, this.driftY, this.driftCount) * 1e6;
  }

  stats(): BaselineJitterBufferStats {
    return {
      latencyMs: this.levelMs,
      targetMs: this.target,
      underruns: this.underruns,
      late: this.late,
      lost: this.lost,
      reordered: this.reordered,
      driftPpm: this.drift,
      bufferedFrames: Math.max(0, this.writeEnd - this.readPos),
      slipFrames: this.slipFrames,
      droppedFrames: this.droppedFrames,
      concealedFrames: this.concealedFrames,
    };
  }
}

function positive(name: string, v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`JitterBuffer ${name} is ${v}; allowed: a finite number above 0`);
  return v;
}

/** Least-squares slope of y over x for the first `n` points. */
function slope(xs: Float64Array, ys: Float64Array, n: number): number {
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += xs[i]!;
    my += ys[i]!;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - mx;
    sxy += dx * (ys[i]! - my);
    sxx += dx * dx;
  }
  return sxx > 0 ? sxy / sxx : 0;
}
