/**
 * Adaptive jitter buffer for one stream of interleaved Float32 audio.
 *
 * Pure and clock-injected: no timers and no platform calls; the caller passes
 * the arrival time to push() and the playback time to pull() (same clock, ms).
 * push() and pull() allocate nothing, so they can run in an AudioWorklet.
 *
 * What it steers is the playout delay P: how long after the fastest recent
 * packets' transit a frame plays (delay-manager.ts). Network jitter does not
 * move P; the buffer does, and only where it chooses to:
 * - The target comes from the link's behaviour: the delay manager counts, for
 *   every possible target, how many underruns it would have caused per minute,
 *   and takes the one that minimises latency + `eventCostMs` × events/min
 *   (latency up to `freeMs` counting as none).
 *   Rare stalls are ridden through (not covered, and they leave the target
 *   alone); frequent holds (phone power save) are covered.
 * - P is held at the target by time-stretching (time-stretch.ts): a whole
 *   period of the audio skipped or played again with a 2 ms crossfade where
 *   the audio matches itself; by single-frame slips for the last ms (a clock
 *   that drifts); and after an underrun by where playback resumes: at the
 *   target, so the audio that came too late is skipped while the concealment
 *   covers the gap, not kept as latency. A stall costs one dropout, never
 *   a minute of extra latency.
 * - Packets are placed by `seq` (each packet one slot of `frames` frames), so a
 *   gap is kept free and a reordered packet that arrives before its turn still
 *   plays. A packet whose turn has passed is dropped (`late`).
 * - Missing audio (a gap still empty when its turn comes, or a buffer that ran
 *   dry) is concealed (concealment.ts, `conceal` 'waveform', default): the audio
 *   before it repeated at its period, fading out, crossfaded into what follows.
 *   'silence' plays zeros instead and holds P by frame slips only, so every
 *   frame played is one the box sent.
 *
 * The box clock's drift against the player's is estimated too (drift-estimator.ts).
 */
import { Concealment, concealmentHistoryFrames } from './concealment.js';
import { DelayManager } from './delay-manager.js';
import { DriftEstimator } from './drift-estimator.js';
import { PeriodSearch } from './period-search.js';
import { TimeStretcher } from './time-stretch.js';

export interface JitterBufferOptions {
  /** Sample rate, Hz. */
  rate: number;
  /** Interleaved channels per frame. */
  channels: number;
  /** Target playout delay until the link has been watched for 5 s (it may rise sooner, not fall), ms; default 10 (docs/protocol.md section 9). */
  targetMs?: number;
  /** Lowest target, ms; default 2.5. */
  minMs?: number;
  /** Highest target, ms; default 200. */
  maxMs?: number;
  /** ms of steady latency one audible event (dropout) per minute is worth, when choosing the target; default 2. */
  eventCostMs?: number;
  /** Playout delay that costs nothing, ms: up to it the target covers every dropout it can; default 8. */
  freeMs?: number;
  /** Largest level correction by frame slips, parts per million of the frames played; default 2000. */
  maxSlipPpm?: number;
  /**
   * What missing audio plays as: 'waveform' (a repeat of the audio before it, fading out; default) or 'silence'
   * (zeros, and no time-stretching either: every frame played is one the box sent, or silence).
   */
  conceal?: 'waveform' | 'silence';
}

export interface JitterBufferStats {
  /** Audio buffered ahead of the playback position, smoothed (about 0.5 s), ms. */
  latencyMs: number;
  /** The playout delay the buffer steers to now, ms (buffered audio plus the wait for the next packet, over the fastest recent transit). */
  targetMs: number;
  /** The playout delay now, ms (0 until playing). */
  playoutMs: number;
  /** Times playback ran dry (each starvation counts once): an audible event. */
  underruns: number;
  /** Gaps of missing packets concealed when their turn came (each gap once): an audible event. */
  concealedLosses: number;
  /** underruns + concealedLosses. */
  audibleEvents: number;
  /** Audio played that was not received audio (concealment or silence for missing audio, after playback started), ms. */
  concealedMs: number;
  /** Packets that arrived after their turn to play and were dropped (or skipped when playback resumed at the target). */
  late: number;
  /** Packets missing when a later one arrived and never filled in before their turn. */
  lost: number;
  /** Packets that arrived after a later one but still in time. */
  reordered: number;
  /** Packets that arrived after a later one, whose turn had begun, and whose remaining frames still played. */
  recoveredLate: number;
  /** Box clock rate relative to the client clock, parts per million (positive: the box runs fast); 0 until known. */
  driftPpm: number;
  /** Frames buffered now. */
  bufferedFrames: number;
  /** Frames dropped (positive) or repeated (negative) by single-frame slips, in total. */
  slipFrames: number;
  /** Time-stretch splices made, and the audio they skipped (accelerate) and played again (expand), ms. */
  stretches: number;
  acceleratedMs: number;
  expandedMs: number;
  /** Frames dropped at once: skipped when playback resumed at the target, or far more buffered than the target. */
  droppedFrames: number;
  /** Frames of concealment or silence played for missing audio (concealedMs in frames). */
  concealedFrames: number;
}

/** Remembered missing seqs, to recognise a reordered packet. */
const MISSING_SLOTS = 64;
/** A seq jump of more than this many packets is a new stretch of audio, not a gap to fill. */
const MAX_GAP_PACKETS = 256;
/** Level smoothing: time constant of the exponential average, ms. */
const LEVEL_TAU_MS = 500;
/** P is held within [target, target + BAND_MS]. */
const BAND_MS = 1;
/** Off by more than this beyond the band, the error is stretched away; closer, slipped. */
const STRETCH_BEYOND_MS = 1.5;
/** Slip rate per ms of error: 1 ms off slips at 500 ppm; closer to the middle of the band than SLIP_DEAD_MS, none. */
const SLIP_DEAD_MS = 0.1;
const SLIP_GAIN_MS = 2000;
/** A stretch attempt at most every this many pulls while the error lasts. */
const STRETCH_EVERY_PULLS = 4;
/** Stretching changes the tempo by at most this fraction (a splice of lag frames, then lag / MAX_STRETCH_RATE frames untouched). */
const MAX_STRETCH_RATE = 0.1;
/** More than this much above the target (and the target itself), the excess goes at once in one splice. */
const DROP_ABOVE_MS = 30;
/** Starting or resuming needs the rest of the pull and half a packet buffered. */
const RESUME_EXTRA_PACKET = 0.5;

export class JitterBuffer {
  readonly rate: number;
  readonly channels: number;
  private readonly rateMs: number;
  private readonly maxSlip: number;
  private readonly concealWaveform: boolean;

  private readonly ring: Float32Array;
  /** Per ring frame: 1 where a seq gap left it empty, 0 where received audio is. */
  private readonly hole: Uint8Array;
  /** Ring capacity in frames. */
  private readonly cap: number;
  /** Frames kept behind the playback position for concealment and expand. */
  private readonly history: number;
  /** Absolute frame positions (float64 integers): next frame to play, and one past the last frame written. */
  private readPos = 0;
  private writeEnd = 0;
  /** The highest seq placed so far and the position of its first frame. */
  private lastSeq = 0;
  private lastSeqPos = 0;
  private packetFrames = 0;
  private started = false;
  /** Playing received audio (false before the first start and after an underrun, until resumed). */
  private playing = false;
  /** Playback has started at least once (concealed time counts from then). */
  private everPlayed = false;

  private readonly dm: DelayManager;
  private readonly drift = new DriftEstimator();
  private readonly conceal: Concealment;
  private readonly stretch: TimeStretcher;

  private levelMs = 0;
  private lastPullMs = NaN;
  private slipAcc = 0;
  private playout = 0;
  /** Pulls until the next stretch attempt; frames until stretching may splice again. */
  private stretchWait = 0;
  private stretchRest = 0;

  private readonly missing = new Uint32Array(MISSING_SLOTS);
  private readonly missingPos = new Float64Array(MISSING_SLOTS);
  private missingCount = 0;

  private underruns = 0;
  private concealedLosses = 0;
  private late = 0;
  private lost = 0;
  private reordered = 0;
  private recoveredLate = 0;
  private slipFrames = 0;
  private stretches = 0;
  private acceleratedFrames = 0;
  private expandedFrames = 0;
  private droppedFrames = 0;
  private concealedFrames = 0;

  constructor(opts: JitterBufferOptions) {
    const { rate, channels } = opts;
    if (!Number.isInteger(rate) || rate < 1 || rate > 768000) throw new RangeError(`JitterBuffer rate is ${rate}; allowed: an integer 1-768000 Hz`);
    if (!Number.isInteger(channels) || channels < 1 || channels > 64) throw new RangeError(`JitterBuffer channels is ${channels}; allowed: an integer 1-64`);
    this.rate = rate;
    this.channels = channels;
    this.rateMs = rate / 1000;
    const minMs = positive('minMs', opts.minMs ?? 2.5);
    const maxMs = positive('maxMs', opts.maxMs ?? 200);
    if (minMs > maxMs) throw new RangeError(`JitterBuffer minMs ${minMs} is above maxMs ${maxMs}; minMs must be at most maxMs`);
    const targetMs = positive('targetMs', opts.targetMs ?? 10);
    if (targetMs < minMs || targetMs > maxMs) throw new RangeError(`JitterBuffer targetMs is ${targetMs}; allowed: minMs-maxMs (${minMs}-${maxMs})`);
    const eventCostMs = opts.eventCostMs ?? 2;
    if (!(eventCostMs >= 0 && eventCostMs <= 1000)) throw new RangeError(`JitterBuffer eventCostMs is ${eventCostMs}; allowed: 0-1000`);
    const ppm = opts.maxSlipPpm ?? 2000;
    if (!(ppm >= 0 && ppm <= 20000)) throw new RangeError(`JitterBuffer maxSlipPpm is ${ppm}; allowed: 0-20000`);
    this.maxSlip = ppm / 1e6;
    const conceal = opts.conceal ?? 'waveform';
    if (conceal !== 'waveform' && conceal !== 'silence') throw new RangeError(`JitterBuffer conceal is ${JSON.stringify(conceal)}; allowed: "waveform" or "silence"`);
    this.concealWaveform = conceal === 'waveform';
    const freeMs = opts.freeMs ?? 8;
    if (!(freeMs >= 0 && freeMs <= 1000)) throw new RangeError(`JitterBuffer freeMs is ${freeMs}; allowed: 0-1000`);
    this.dm = new DelayManager({ initialMs: targetMs, minMs, maxMs, eventCostMs, freeMs });
    // Room for the largest target with a burst on top, plus the history concealment and expand read.
    const search = new PeriodSearch(Math.max(concealmentHistoryFrames(rate), Math.ceil((20 * rate) / 1000)));
    this.history = concealmentHistoryFrames(rate);
    this.cap = Math.ceil(((2 * maxMs + 100) * rate) / 1000) + this.history;
    this.ring = new Float32Array(this.cap * channels);
    this.hole = new Uint8Array(this.cap);
    this.conceal = new Concealment(this.ring, this.cap, channels, rate, search);
    this.stretch = new TimeStretcher(this.ring, this.cap, channels, rate, search);
  }

  /**
   * Adds one packet. `samples` is interleaved (frames × channels) and copied.
   * `boxTimeNs` (the packet's captureNs) feeds the drift estimate; without it
   * the stream position is the box's clock. `discontinuity` (flag bit 0)
   * without a seq gap starts a new stretch of audio: the packet is placed
   * right after what is buffered (audio the box lost without counting it in
   * seq, an xrun or a reopen, is not made up with silence: by the time this
   * packet arrives that time has passed, and silence would only add latency).
   * A flagged seq gap (periods the box skipped, or dropped from this client's
   * queue) is a gap like any other: its periods get their slots.
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
    const boxTimes = boxTimeNs !== undefined;
    if (!this.started || frames !== this.packetFrames) {
      pos = this.restart(frames, boxTimes);
    } else {
      const d = (seq - this.lastSeq) | 0;
      if ((discontinuity && d <= 1) || d > MAX_GAP_PACKETS || d < -MAX_GAP_PACKETS) {
        pos = this.restart(frames, boxTimes);
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
        if (pos < this.readPos) this.recoveredLate++;
        else this.reordered++;
      }
    }
    if (newest) {
      this.lastSeq = seq;
      this.lastSeqPos = pos;
    }
    this.started = true;
    this.packetFrames = frames;
    this.write(pos, samples, frames);
    const boxEndMs = boxTimes ? Number(boxTimeNs) / 1e6 : (pos + frames) / this.rateMs;
    this.dm.arrived(boxEndMs, arrivalMs, newest);
    this.drift.add(boxEndMs, arrivalMs);
  }

  /** Places the next packet after what is buffered; forgets the seq history (and the clock, unless box times go on). */
  private restart(frames: number, boxTimes: boolean): number {
    this.missingCount = 0;
    this.packetFrames = frames;
    if (!boxTimes) {
      this.drift.reset();
      this.dm.restartClock();
    }
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
      if (from >= frames) {
        this.late++;
        return;
      }
    }
    const end = pos + frames;
    // Silence for a gap between what was written and this packet.
    if (pos > this.writeEnd) this.fill(this.writeEnd, pos);
    // No room (a burst far beyond every target): the oldest audio goes, keeping the history behind playback.
    const room = this.cap - this.history;
    if (end - this.readPos > room) {
      const drop = end - this.readPos - room;
      this.readPos += drop;
      this.droppedFrames += drop;
      this.stretch.active = false;
      if (from < this.readPos - pos) from = Math.min(frames, this.readPos - pos);
    }
    // Copied by hand: subarray() would allocate a view per packet, and push may run in an AudioWorklet too.
    const ring = this.ring;
    for (let f = from; f < frames; ) {
      const at = (pos + f) % this.cap;
      const run = Math.min(frames - f, this.cap - at);
      for (let i = f * ch, o = at * ch, e = (f + run) * ch; i < e; i++, o++) ring[o] = samples[i]!;
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

  /** Box time of stream position `pos`, ms, from the newest packet (the stream is contiguous in box time behind it). */
  private boxTimeOf(pos: number): number {
    return this.dm.newestBoxEndMs - (this.lastSeqPos + this.packetFrames - pos) / this.rateMs;
  }

  /**
   * Fills `out` (interleaved, frames × channels) with the next audio, or
   * silence while waiting to (re)start. `nowMs` is the playback clock. Allocates nothing.
   */
  pull(out: Float32Array, nowMs: number): void {
    const ch = this.channels;
    const n = (out.length / ch) | 0;
    const rateMs = this.rateMs;
    let buffered = this.writeEnd - this.readPos;
    if (buffered < 0) buffered = 0;

    // Smoothed level, advanced by the time since the last pull.
    const dt = this.lastPullMs === this.lastPullMs ? Math.max(0, nowMs - this.lastPullMs) : 0;
    this.lastPullMs = nowMs;
    const bufferedMs = buffered / rateMs;
    const a = dt > 0 ? 1 - Math.exp(-dt / LEVEL_TAU_MS) : this.levelMs === 0 ? 1 : 0;
    this.levelMs += a * (bufferedMs - this.levelMs);

    if (this.started) this.dm.observe(nowMs, n / rateMs);
    const target = this.dm.targetMs;
    // Frames of this pull before playback (re)starts.
    let lead = 0;
    if (!this.playing) {
      const wasPlayed = this.everPlayed;
      lead = this.resume(nowMs, n, target);
      if (lead < 0 || lead > 0) {
        // Waiting (the whole pull, or up to the frame that is due): the concealment runs on (fading out), else silence.
        const wait = lead < 0 ? n : lead;
        if (this.concealWaveform) this.conceal.runOn(out, 0, wait);
        else out.fill(0, 0, wait * ch);
        if (wasPlayed) this.concealedFrames += wait;
        if (lead < 0) return;
      }
    }

    let dropAt = -1;
    let repeatAt = -1;
    if (lead === 0) {
      // Playout delay, and its distance from the middle of the band [target, target + BAND_MS].
      const p = this.dm.playoutMs(nowMs, this.boxTimeOf(this.readPos));
      this.playout = p;
      const err = p - target - BAND_MS / 2;
      if (!this.stretch.active && !this.conceal.active) {
        const jump = Math.min(Math.floor(err * rateMs), buffered - n - this.stretch.spliceFrames);
        if (err > Math.max(DROP_ABOVE_MS, target) && jump > 0) {
          // Far too late (the clock moved, or a backlog after a long wait): the excess goes at once.
          this.jump(jump);
        } else if (Math.abs(err) > BAND_MS / 2 + STRETCH_BEYOND_MS && this.concealWaveform && --this.stretchWait <= 0) {
          this.stretchWait = STRETCH_EVERY_PULLS;
          if (this.stretchRest <= 0) this.tryStretch(err, buffered, n);
        }
        if (!this.stretch.active) {
          // Slip single frames toward the middle of the band, all the time: a drifting clock then sits a little off
          // the middle (0.4 ms at 200 ppm), inside the band, rather than at its edge.
          let r = 0;
          if (Math.abs(err) > SLIP_DEAD_MS) r = Math.max(-this.maxSlip, Math.min(this.maxSlip, err / SLIP_GAIN_MS));
          this.slipAcc += r * n;
          if (this.slipAcc >= 1 && buffered > n) {
            dropAt = n >> 1;
            this.slipAcc -= 1;
          } else if (this.slipAcc <= -1 && buffered >= n) {
            repeatAt = n >> 1;
            this.slipAcc += 1;
          }
          if (r === 0) this.slipAcc = 0;
        }
      }
    }

    let src = this.readPos;
    let o = lead * ch;
    for (let f = lead; f < n; f++) {
      if (this.stretch.active) {
        this.stretch.frame(out, o);
        o += ch;
        if (!this.stretch.active) src = this.stretch.next;
        continue;
      }
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
    this.stretchRest -= n;
    if (o < n * ch) {
      // Ran dry: the rest concealed (a repeat fading out) or silent; wait until playback can resume at the target.
      const rest = n - o / ch;
      this.concealedFrames += rest;
      if (this.concealWaveform) this.conceal.dry(src, out, o, rest);
      else out.fill(0, o);
      this.underruns++;
      this.playing = false;
      this.slipAcc = 0;
      if (this.writeEnd < this.readPos) this.writeEnd = this.readPos;
    }
  }

  /**
   * Not playing: starts (or resumes after an underrun) where the frame at the playback position is due, that is
   * where its playout delay reaches the target: within this pull (returns how many frames of it come first), or
   * at once, skipping the audio that is later than that (returns 0). Returns -1 while nothing is due yet.
   */
  private resume(nowMs: number, n: number, target: number): number {
    if (!this.started || this.writeEnd <= this.readPos || this.dm.floorMs !== this.dm.floorMs) return -1;
    const want = target + BAND_MS / 2;
    // The position whose playout delay is `want` at the start of this pull.
    const due = this.lastSeqPos + this.packetFrames - (this.dm.newestBoxEndMs - (nowMs - this.dm.floorMs - want)) * this.rateMs;
    // Keep a pull and half a packet ahead, even when the newest packet is late against the floor.
    const extra = Math.ceil(RESUME_EXTRA_PACKET * this.packetFrames);
    let lead = 0;
    // A millionth of a frame is rounding, not a frame to wait for.
    if (due < this.readPos - 1e-6) {
      lead = Math.ceil(this.readPos - due - 1e-6);
      if (lead >= n || this.writeEnd - this.readPos < n - lead + extra) return -1;
    } else {
      const to = Math.min(Math.round(due), this.writeEnd - n - extra);
      if (to < this.readPos) return -1;
      if (to > this.readPos) {
        this.late += Math.floor((to - this.readPos) / this.packetFrames);
        this.droppedFrames += to - this.readPos;
        this.readPos = to;
      }
    }
    this.playing = true;
    this.everPlayed = true;
    this.slipAcc = 0;
    this.stretch.active = false;
    this.stretchRest = 0;
    return lead;
  }

  /** Tries one splice toward the target: skip ahead when P is above it, play a period again when below. */
  private tryStretch(err: number, buffered: number, n: number): void {
    const sign: 1 | -1 = err > 0 ? 1 : -1;
    const st = this.stretch;
    const at = this.readPos;
    // Remove or add at most the error (plus half the band), and never more than is buffered or kept behind.
    let lagMax = Math.floor((Math.abs(err) + BAND_MS / 2) * this.rateMs);
    if (sign > 0) lagMax = Math.min(lagMax, buffered - n - st.spliceFrames);
    else lagMax = Math.min(lagMax, at, buffered >= st.spliceFrames ? st.lagMax : 0);
    if (lagMax < st.lagMin) return;
    if (this.holesIn(sign > 0 ? at : at - lagMax, sign > 0 ? at + lagMax + st.spliceFrames : at + st.spliceFrames)) return;
    // The further off, the less perfect a match it takes.
    const off = Math.abs(err);
    const minScore = off > 10 ? 0.6 : off > 5 ? 0.75 : 0.9;
    const lag = st.plan(at, sign, st.lagMin, lagMax, minScore);
    if (lag === 0) return;
    st.start(at, sign, lag);
    this.stretches++;
    if (sign > 0) this.acceleratedFrames += lag;
    else this.expandedFrames += lag;
    this.stretchRest = Math.ceil(lag / MAX_STRETCH_RATE);
  }

  /** Skips `frames` at once: crossfaded over 2 ms (a plain jump in 'silence' mode). */
  private jump(frames: number): void {
    if (this.concealWaveform && !this.holesIn(this.readPos, this.readPos + frames + this.stretch.spliceFrames)) {
      this.stretch.start(this.readPos, 1, frames);
    } else this.readPos += frames;
    this.droppedFrames += frames;
  }

  private holesIn(from: number, to: number): boolean {
    for (let p = Math.max(0, from); p < to; p++) if (this.hole[p % this.cap] === 1) return true;
    return false;
  }

  /** Writes the frame at stream position `src` to out[o …]: received audio, a gap's concealment, or the two crossfaded. */
  private frameAt(src: number, out: Float32Array, o: number): void {
    const slot = src % this.cap;
    const hole = this.hole[slot] === 1;
    if (hole) {
      if (this.wasReceived(src - 1)) this.concealedLosses++;
      this.concealedFrames++;
    }
    if (this.concealWaveform) {
      this.conceal.frame(src, hole, out, o);
      return;
    }
    const at = slot * this.channels;
    for (let c = 0; c < this.channels; c++) out[o + c] = hole ? 0 : this.ring[at + c]!;
  }

  /** Whether stream position `pos` held received audio (a gap that follows it is a new loss). */
  private wasReceived(pos: number): boolean {
    return pos >= 0 && this.hole[pos % this.cap] === 0;
  }

  stats(): JitterBufferStats {
    const frameMs = 1 / this.rateMs;
    return {
      latencyMs: this.levelMs,
      targetMs: this.dm.targetMs,
      playoutMs: this.playing ? this.playout : 0,
      underruns: this.underruns,
      concealedLosses: this.concealedLosses,
      audibleEvents: this.underruns + this.concealedLosses,
      concealedMs: this.concealedFrames * frameMs,
      late: this.late,
      lost: this.lost,
      reordered: this.reordered,
      recoveredLate: this.recoveredLate,
      driftPpm: this.drift.ppm,
      bufferedFrames: Math.max(0, this.writeEnd - this.readPos),
      slipFrames: this.slipFrames,
      stretches: this.stretches,
      acceleratedMs: this.acceleratedFrames * frameMs,
      expandedMs: this.expandedFrames * frameMs,
      droppedFrames: this.droppedFrames,
      concealedFrames: this.concealedFrames,
    };
  }
}

function positive(name: string, v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`JitterBuffer ${name} is ${v}; allowed: a finite number above 0`);
  return v;
}
