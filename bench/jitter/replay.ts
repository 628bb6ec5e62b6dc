/**
 * Plays an arrival trace through a jitter buffer in simulated time: each packet is pushed at its arrival time,
 * and a player pulls `pullFrames` frames every pullFrames / rate of its own clock, as an audio callback would.
 * Deterministic (no wall clock anywhere), and far faster than real time. Reports what a musician would hear:
 * audible events (underruns and concealed losses, apart), concealed ms, buffer latency, where the target sits, and
 * how long the buffer takes to come back after each stall.
 *
 * The packets carry a music-like test signal (two voices of harmonic notes with attacks and decays, a little
 * noise), so a time-stretcher or a concealment that searches the audio finds what it would find in music.
 */
import { LatencyHistogram } from '../../src/metrics/latency-histogram';
import type { ArrivalTrace } from './arrival-trace';
import { lastAtOrBefore } from './sorted-search';

/** What the replay reads from a buffer after each pull: counters since it was made. */
export interface ReplayCounters {
  underruns: number;
  /** Gaps of missing packets concealed (or played as silence) when their turn came: one per gap. */
  concealedLosses: number;
  concealedFrames: number;
  late: number;
  lost: number;
  targetMs: number;
  /** The buffer's smoothed level, ms. */
  latencyMs: number;
  bufferedFrames: number;
  /** Frames removed (positive) and inserted (negative, as a count: positive) by time-stretching or slips, and dropped at once. */
  acceleratedFrames: number;
  expandedFrames: number;
  droppedFrames: number;
}

/** A jitter buffer as the replay drives it (the library's and the frozen baseline each get an adapter). */
export interface ReplaySubject {
  readonly name: string;
  push(seq: number, samples: Float32Array, arrivalMs: number, boxTimeNs: number, discontinuity: boolean): void;
  pull(out: Float32Array, nowMs: number): void;
  counters(): ReplayCounters;
}

export interface ReplayOptions {
  rate?: number;
  channels?: number;
  /** Frames per packet in the trace (the test signal is laid out by seq × this); default 128. */
  packetFrames?: number;
  /** Frames per pull; default 128 (2.67 ms at 48 kHz). */
  pullFrames?: number;
  /** Not counted: the start, while the buffer learns the link; default 2000 ms. */
  warmupMs?: number;
  /** The player's clock against the box's, ppm (positive: the player runs fast); default 0. */
  playerPpm?: number;
  /**
   * 0 (default): the player is an audio callback, one pull per period on time. Above 0: a timer of this period
   * pulls whatever is due at once, as `stagebox listen` and the `library` and `wifi` benches do (every pull still
   * passes its audio-clock time; packets that arrived before the tick are pushed first).
   */
  playerTickMs?: number;
  /** An arrival gap at least this long is a stall (the "stalls over 100 ms"); default 100. */
  stallMs?: number;
  /** Recovered after a stall: target and smoothed level both back within this of their pre-stall values; default 2 ms. */
  recoverWithinMs?: number;
}

export interface StallRecovery {
  /** Start of the arrival gap (the last arrival before it), trace ms. */
  atMs: number;
  gapMs: number;
  preTargetMs: number;
  /** ms after the gap ended until target and level were back; null: not back before the trace ended. */
  recoverMs: number | null;
}

export interface ReplayResult {
  subject: string;
  /** Counted minutes (after the warm-up). */
  minutes: number;
  pulls: number;
  underrunsPerMin: number;
  concealedLossesPerMin: number;
  audibleEventsPerMin: number;
  /** Audible events not inside an arrival gap of stallMs or more. */
  eventsOutsideStallsPerMin: number;
  /** Audible events not inside an arrival gap longer than the buffer's target when it began ("stalls longer than the buffer"). */
  eventsOutsideLongGapsPerMin: number;
  concealedMsPerMin: number;
  bufferP50Ms: number;
  bufferP99Ms: number;
  targetP50Ms: number;
  targetMaxMs: number;
  /** Median target over the last 10 s of the trace: where it settled. */
  targetEndMs: number;
  stalls: StallRecovery[];
  recoverMedianMs: number | null;
  recoverMaxMs: number | null;
  /** Stalls the buffer had not come back from when the trace ended. */
  notRecovered: number;
  late: number;
  lost: number;
  acceleratedMsPerMin: number;
  expandedMsPerMin: number;
  droppedMsPerMin: number;
}

/**
 * Sample of the test signal at stream frame `i`, channel `c`, at 48 kHz (other rates: the same notes, in frames).
 * Notes change every 0.4 s (melody) and 0.8 s (bass), chosen by a hash of their index; each has four harmonics,
 * a 5 ms attack and a 0.3 s decay. Peak about 0.6.
 */
export function musicSample(i: number, c: number, rate = 48000): number {
  const t = i / rate;
  let v = 0;
  for (let voice = 0; voice < 2; voice++) {
    const len = voice === 0 ? 0.4 : 0.8;
    const note = Math.floor(t / len);
    const since = t - note * len;
    const h = hash(note * 2 + voice);
    // A minor pentatonic, melody around A4, bass around A1.
    const semis = PENTATONIC[h % PENTATONIC.length]! + (voice === 0 ? 0 : -36);
    const f0 = 440 * 2 ** (semis / 12);
    const env = Math.min(1, since / 0.005) * Math.exp(-since / 0.3) * (voice === 0 ? 0.25 : 0.35);
    for (let k = 1; k <= 4; k++) v += (env / k) * sine(f0 * k * since + (c * 0.7 * k) / (2 * Math.PI));
  }
  // A little noise, different per channel: music is never exactly periodic.
  return v + 0.003 * ((hash(i * 2 + c) & 0xffff) / 32768 - 1);
}

const PENTATONIC = [0, 3, 5, 7, 10, 12];
/** sin(2π x) from a table with linear interpolation (error below 1e-6): the replay spends most of its time here. */
const TABLE = 4096;
const SINE = Float64Array.from({ length: TABLE + 1 }, (_v, k) => Math.sin((2 * Math.PI * k) / TABLE));
function sine(x: number): number {
  const p = (x - Math.floor(x)) * TABLE;
  const k = p | 0;
  return SINE[k]! + (p - k) * (SINE[k + 1]! - SINE[k]!);
}

function hash(x: number): number {
  let h = Math.imul(x ^ 0x5bd1e995, 0x27d4eb2d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x85ebca6b);
  return (h ^ (h >>> 13)) >>> 0;
}

/** Plays `trace` through `subject`; see the module comment. */
export function replay(trace: ArrivalTrace, subject: ReplaySubject, opts: ReplayOptions = {}): ReplayResult {
  const rate = opts.rate ?? 48000;
  const ch = opts.channels ?? 2;
  const packetFrames = opts.packetFrames ?? 128;
  const pullFrames = opts.pullFrames ?? 128;
  const warmupMs = opts.warmupMs ?? 2000;
  const stallMs = opts.stallMs ?? 100;
  const within = opts.recoverWithinMs ?? 2;
  const periodMs = ((pullFrames * 1000) / rate) * (1 - (opts.playerPpm ?? 0) * 1e-6);
  const n = trace.seq.length;
  const t0 = trace.arrivalMs[0]!;
  const tEnd = trace.arrivalMs[n - 1]!;
  const seq0 = trace.seq[0]!;
  // Seq → frame index of the test signal, wrap-aware, relative to the lowest seq seen near the start.
  let base = seq0;
  for (let i = 0; i < Math.min(n, 1000); i++) if (((trace.seq[i]! - base) | 0) < 0) base = trace.seq[i]!;

  // Arrival gaps, for telling stalls apart (start = last arrival before the gap, end = first after it).
  const gapStart: number[] = [];
  const gapEnd: number[] = [];
  for (let i = 1; i < n; i++) {
    if (trace.arrivalMs[i]! - trace.arrivalMs[i - 1]! > 1.5 * periodMs) {
      gapStart.push(trace.arrivalMs[i - 1]!);
      gapEnd.push(trace.arrivalMs[i]!);
    }
  }
  const pulls = Math.max(0, Math.floor((tEnd - t0) / periodMs));
  const pullTime = new Float64Array(pulls);
  const target = new Float32Array(pulls);
  const level = new Float32Array(pulls);
  const buffer = new LatencyHistogram();
  const events: { t: number; kind: 'underrun' | 'loss' }[] = [];
  const out = new Float32Array(pullFrames * ch);
  let prev = subject.counters();
  let first = prev;
  let i = 0;
  // The player starts with the first packet, off its phase (a real callback is never aligned with the network).
  const phase = 0.41 * periodMs;
  const tick = opts.playerTickMs ?? 0;
  for (let p = 0; p < pulls; p++) {
    const now = t0 + phase + p * periodMs;
    // With a timer, this pull happens at the first tick at or after its audio time.
    const at = tick > 0 ? t0 + Math.ceil((now - t0) / tick) * tick : now;
    for (; i < n && trace.arrivalMs[i]! <= at; i++) {
      const k = (trace.seq[i]! - base) >>> 0;
      const s = new Float32Array(packetFrames * ch);
      for (let f = 0; f < packetFrames; f++) for (let c = 0; c < ch; c++) s[f * ch + c] = musicSample(k * packetFrames + f, c, rate);
      subject.push(trace.seq[i]!, s, trace.arrivalMs[i]!, Math.round(trace.captureMs[i]! * 1e6), (trace.flags[i]! & 1) === 1);
    }
    subject.pull(out, now);
    const c = subject.counters();
    pullTime[p] = now;
    target[p] = c.targetMs;
    level[p] = c.latencyMs;
    if (now - t0 < warmupMs) {
      first = c;
    } else {
      buffer.record((c.bufferedFrames * 1000) / rate);
      if (c.underruns > prev.underruns) events.push({ t: now, kind: 'underrun' });
      for (let e = prev.concealedLosses; e < c.concealedLosses; e++) events.push({ t: now, kind: 'loss' });
    }
    prev = c;
  }
  const last = prev;
  const countedFrom = t0 + warmupMs;
  const minutes = Math.max(1e-9, (t0 + phase + pulls * periodMs - countedFrom) / 60000);
  const per = (v: number): number => v / minutes;
  const frameMs = 1000 / rate;

  // The pull index at or before time t.
  const pullAt = (t: number): number => Math.max(0, Math.min(pulls - 1, Math.floor((t - t0 - phase) / periodMs)));
  // The arrival gap that contains t (the underrun shows at the pull after the buffer ran dry, so up to one pull after the gap).
  const gapOf = (t: number): number => {
    const g = lastAtOrBefore(gapStart, t);
    return g >= 0 && t <= gapEnd[g]! + periodMs ? g : -1;
  };
  let outsideStalls = 0;
  let outsideLong = 0;
  for (const e of events) {
    const g = gapOf(e.t);
    const len = g < 0 ? 0 : gapEnd[g]! - gapStart[g]!;
    if (len < stallMs) outsideStalls++;
    if (g < 0 || len <= target[pullAt(gapStart[g]!)]!) outsideLong++;
  }

  const stalls: StallRecovery[] = [];
  for (let g = 0; g < gapStart.length; g++) {
    const gap = gapEnd[g]! - gapStart[g]!;
    if (gap < stallMs || gapStart[g]! < countedFrom) continue;
    const p0 = pullAt(gapStart[g]!);
    const preTarget = target[p0]!;
    const preLevel = level[p0]!;
    let recoverMs: number | null = null;
    for (let p = pullAt(gapEnd[g]!) + 1; p < pulls; p++) {
      if (Math.abs(target[p]! - preTarget) <= within && level[p]! <= Math.max(preLevel, preTarget) + within) {
        recoverMs = Math.max(0, pullTime[p]! - gapEnd[g]!);
        break;
      }
    }
    stalls.push({ atMs: gapStart[g]!, gapMs: gap, preTargetMs: preTarget, recoverMs });
  }
  const recovered = stalls.map((s) => s.recoverMs).filter((v): v is number => v !== null).sort((a, b) => a - b);

  const tail: number[] = [];
  for (let p = pullAt(tEnd - 10000); p < pulls; p++) tail.push(target[p]!);
  const counted: number[] = [];
  for (let p = pullAt(countedFrom); p < pulls; p++) counted.push(target[p]!);
  const underruns = last.underruns - first.underruns;
  const losses = last.concealedLosses - first.concealedLosses;
  return {
    subject: subject.name,
    minutes,
    pulls,
    underrunsPerMin: per(underruns),
    concealedLossesPerMin: per(losses),
    audibleEventsPerMin: per(underruns + losses),
    eventsOutsideStallsPerMin: per(outsideStalls),
    eventsOutsideLongGapsPerMin: per(outsideLong),
    concealedMsPerMin: per((last.concealedFrames - first.concealedFrames) * frameMs),
    bufferP50Ms: buffer.quantile(0.5),
    bufferP99Ms: buffer.quantile(0.99),
    targetP50Ms: median(counted),
    targetMaxMs: counted.length ? Math.max(...counted) : NaN,
    targetEndMs: median(tail),
    stalls,
    recoverMedianMs: recovered.length ? recovered[(recovered.length - 1) >> 1]! : null,
    recoverMaxMs: recovered.length ? recovered[recovered.length - 1]! : null,
    notRecovered: stalls.length - recovered.length,
    late: last.late - first.late,
    lost: last.lost - first.lost,
    acceleratedMsPerMin: per((last.acceleratedFrames - first.acceleratedFrames) * frameMs),
    expandedMsPerMin: per((last.expandedFrames - first.expandedFrames) * frameMs),
    droppedMsPerMin: per((last.droppedFrames - first.droppedFrames) * frameMs),
  };
}

function median(v: number[]): number {
  if (v.length === 0) return NaN;
  const s = Float64Array.from(v).sort();
  return s[(s.length - 1) >> 1]!;
}
