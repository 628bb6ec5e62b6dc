/**
 * How long a listener's jitter buffer takes to come back down after a stall:
 * from the stall's end (the harness reports when it began and how long it
 * lasted) until the target is back within RECOVERED_WITHIN_MS of where it was
 * when the stall began.
 */
import type { WifiListenerStats } from './bench-ipc';
import type { StallWindow } from './net/impair-report';
import { round } from './report';

/** A stall in the sense of the office measurement: the link held for more than this. */
export const STALL_MIN_MS = 100;
/** "Back down": the target within this much of where it was before the stall. */
export const RECOVERED_WITHIN_MS = 2;

export interface StallOutcome {
  listener: string;
  /** Seconds into the window. */
  atS: number | null;
  durationMs: number | null;
  held: number;
  preTargetMs: number | null;
  peakTargetMs: number | null;
  /** From the stall's end until the target is back within 2 ms of preTargetMs; null: not within the window. */
  recoveryS: number | null;
}

/** The target as a step function: its value at time t. */
export function targetAt(steps: [number, number][], t: number): number | null {
  let v: number | null = null;
  for (const [ts, target] of steps) {
    if (ts > t) break;
    v = target;
  }
  return v ?? steps[0]?.[1] ?? null;
}

export function stallOutcomes(l: Pick<WifiListenerStats, 'label' | 'fromMs' | 'toMs' | 'targetSteps'>, stalls: StallWindow[]): StallOutcome[] {
  const out: StallOutcome[] = [];
  for (const s of stalls) {
    if (s.durationMs <= STALL_MIN_MS || s.atMs < l.fromMs || s.atMs > l.toMs) continue;
    const end = s.atMs + s.durationMs;
    const pre = targetAt(l.targetSteps, s.atMs);
    let peak = pre;
    let recoveryS: number | null = null;
    if (pre !== null) {
      const ok = (v: number): boolean => v <= pre + RECOVERED_WITHIN_MS;
      const atEnd = targetAt(l.targetSteps, end)!;
      peak = Math.max(pre, atEnd);
      if (ok(atEnd)) recoveryS = 0;
      for (const [ts, v] of l.targetSteps) {
        if (ts <= end) continue;
        if (recoveryS !== null) break;
        if (ok(v)) recoveryS = (ts - end) / 1000;
        else peak = Math.max(peak, v);
      }
    }
    out.push({ listener: l.label, atS: round((s.atMs - l.fromMs) / 1000, 2), durationMs: round(s.durationMs, 1), held: s.held, preTargetMs: round(pre), peakTargetMs: round(peak), recoveryS: round(recoveryS, 2) });
  }
  return out;
}

