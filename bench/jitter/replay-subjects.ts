/**
 * The buffers the replay tool compares, behind one interface: `baseline` is the buffer as it was before issue #12
 * (frozen copy), `current` is the client library's JitterBuffer, and `fixed-<ms>` is that same buffer pinned at one
 * target (the latency/events frontier: what any buffer would hear at that delay on the same arrivals).
 */
import { JitterBuffer, type JitterBufferOptions, type JitterBufferStats } from '../../src/client/jitter-buffer';
import { BaselineJitterBuffer, type BaselineJitterBufferStats } from './baseline-jitter-buffer';
import type { ReplayCounters, ReplaySubject } from './replay';

export const SUBJECT_NAMES = ['baseline', 'current'] as const;
export type SubjectName = (typeof SUBJECT_NAMES)[number];

export interface SubjectOptions {
  rate: number;
  channels: number;
  /** Initial target, ms; default 10 (what the library's clients ask for). */
  targetMs?: number;
  /** Options for the current buffer only (the replay tool's sweeps). */
  current?: Partial<JitterBufferOptions>;
}

/**
 * The frozen baseline. Its stats count lost packets when their gap shows; a gap (one or more packets) is one event.
 * Its concealedFrames leave out the silence it plays while it rebuffers after an underrun, so the replay counts the
 * frames of each pull that did not come from received audio itself, from how far its playback position moved.
 */
export function baselineSubject(o: SubjectOptions): ReplaySubject {
  const jb = new BaselineJitterBuffer({ rate: o.rate, channels: o.channels, targetMs: o.targetMs ?? 10 });
  // The frozen class keeps its playback position private; the replay only reads it.
  const readPos = (): number => (jb as unknown as { readPos: number }).readPos;
  let gaps = 0;
  let concealed = 0;
  let played = false;
  return {
    name: 'baseline',
    push(seq, samples, arrivalMs, boxTimeNs, discontinuity) {
      const before = jb.stats().lost;
      jb.push(seq, samples, arrivalMs, boxTimeNs, discontinuity);
      if (jb.stats().lost > before) gaps++;
    },
    pull(out, now) {
      const s0 = jb.stats();
      const p0 = readPos();
      jb.pull(out, now);
      const s1 = jb.stats();
      // Frames the position moved through received audio: less what it skipped at once and by slips.
      const moved = readPos() - p0 - (s1.droppedFrames - s0.droppedFrames) - (s1.slipFrames - s0.slipFrames);
      if (moved > 0) played = true;
      if (played) concealed += out.length / o.channels - moved;
    },
    counters(): ReplayCounters {
      const s = jb.stats();
      return { ...common(s), concealedFrames: concealed, concealedLosses: gaps, acceleratedFrames: Math.max(0, s.slipFrames), expandedFrames: Math.max(0, -s.slipFrames) };
    },
  };
}

/** The client library's JitterBuffer, as the library's clients make it; `name` labels it in the results. */
export function currentSubject(o: SubjectOptions, name = 'current'): ReplaySubject {
  const jb = new JitterBuffer({ rate: o.rate, channels: o.channels, targetMs: o.targetMs ?? 10, ...o.current });
  const frames = (ms: number): number => Math.round((ms * o.rate) / 1000);
  return {
    name,
    push: (seq, samples, arrivalMs, boxTimeNs, discontinuity) => jb.push(seq, samples, arrivalMs, boxTimeNs, discontinuity),
    pull: (out, now) => jb.pull(out, now),
    counters(): ReplayCounters {
      const s = jb.stats();
      return {
        ...common(s),
        concealedLosses: s.concealedLosses,
        acceleratedFrames: frames(s.acceleratedMs) + Math.max(0, s.slipFrames),
        expandedFrames: frames(s.expandedMs) + Math.max(0, -s.slipFrames),
      };
    },
  };
}

/** Lowest and highest target a pinned buffer takes, ms: the library buffer's default minMs and maxMs. */
export const FIXED_TARGET_MIN_MS = 2.5;
export const FIXED_TARGET_MAX_MS = 200;

/**
 * The current buffer pinned at `targetMs`: targetMs = minMs = maxMs, so its delay manager cannot move the target and
 * everything else (stretching, concealment, resuming at the target after an underrun) is the library's. Named
 * `fixed-<targetMs>`. Its ring holds 2 × maxMs + 100 ms, less than the adaptive buffer's; what a burst pushes out of
 * it lies further behind than the target, so it is audio that resuming at the target skips anyway.
 */
export function pinnedSubject(targetMs: number, o: SubjectOptions): ReplaySubject {
  if (!(targetMs >= FIXED_TARGET_MIN_MS && targetMs <= FIXED_TARGET_MAX_MS)) {
    throw new RangeError(`pinned target is ${targetMs} ms; allowed: ${FIXED_TARGET_MIN_MS}-${FIXED_TARGET_MAX_MS}`);
  }
  return currentSubject({ ...o, targetMs, current: { ...o.current, targetMs, minMs: targetMs, maxMs: targetMs } }, `fixed-${targetMs}`);
}

/** The counters both buffers' stats have under the same names. */
function common(s: BaselineJitterBufferStats | JitterBufferStats): Omit<ReplayCounters, 'concealedLosses' | 'acceleratedFrames' | 'expandedFrames'> {
  return {
    underruns: s.underruns,
    concealedFrames: s.concealedFrames,
    late: s.late,
    lost: s.lost,
    targetMs: s.targetMs,
    latencyMs: s.latencyMs,
    bufferedFrames: s.bufferedFrames,
    droppedFrames: s.droppedFrames,
  };
}

export function makeSubject(name: SubjectName, o: SubjectOptions): ReplaySubject {
  return name === 'baseline' ? baselineSubject(o) : currentSubject(o);
}
