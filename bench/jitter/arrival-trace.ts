/**
 * Arrival traces: which packet of a stream reached a listener when, on the box's clock. The format the `wifi`
 * bench writes under build/bench-traces/ and the replay tool (bench/jitter-replay.ts) reads:
 *
 *   seq,capture_ms,arrival_ms,flags
 *   1000,12.666667,14.052,0
 *
 * seq: the packet's seq (uint32); capture_ms: its captureNs / 1e6 (box CLOCK_MONOTONIC, end of the period);
 * arrival_ms: when the listener had it, same clock; flags: the packet's flags byte (bit 0: discontinuity).
 * A packet that never arrived has no line. Lines may come in any order; the replay sorts them by arrival.
 */
import { z } from 'zod';

export const TRACE_HEADER = 'seq,capture_ms,arrival_ms,flags';

/** One stream's arrivals, in arrival order (ties: seq order). Parallel arrays, so a 10-minute trace is a few MB. */
export interface ArrivalTrace {
  seq: Uint32Array;
  captureMs: Float64Array;
  arrivalMs: Float64Array;
  flags: Uint8Array;
}

const finiteMs = z.number().finite().nonnegative();
const row = z.object({
  seq: z.number().int().min(0).max(2 ** 32 - 1),
  capture_ms: finiteMs,
  arrival_ms: finiteMs,
  flags: z.number().int().min(0).max(255),
});
const FIELDS = ['seq', 'capture_ms', 'arrival_ms', 'flags'] as const;

/** A trace file that does not follow the format: names the file, the line, the field and the value. */
export class TraceFormatError extends Error {
  override name = 'TraceFormatError';
}

/** Parses a trace file's text. `source` names it in errors. */
export function parseTrace(text: string, source: string): ArrivalTrace {
  const lines = text.split('\n');
  const header = (lines[0] ?? '').replace(/\r$/, '');
  if (header !== TRACE_HEADER) {
    throw new TraceFormatError(`${source}: line 1 is ${JSON.stringify(header.slice(0, 80))}; allowed: exactly the header ${JSON.stringify(TRACE_HEADER)}`);
  }
  const seq: number[] = [];
  const cap: number[] = [];
  const arr: number[] = [];
  const flags: number[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line === '') continue;
    const cells = line.split(',');
    if (cells.length !== FIELDS.length) {
      throw new TraceFormatError(`${source}: line ${i + 1} has ${cells.length} fields (${JSON.stringify(line.slice(0, 80))}); allowed: ${FIELDS.length} (${TRACE_HEADER})`);
    }
    const obj: Record<string, number> = {};
    FIELDS.forEach((f, k) => (obj[f] = cells[k]!.trim() === '' ? NaN : Number(cells[k])));
    const r = row.safeParse(obj);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      const field = String(issue.path[0]);
      const k = FIELDS.indexOf(field as (typeof FIELDS)[number]);
      const allowed = field === 'seq' ? 'an integer 0-4294967295' : field === 'flags' ? 'an integer 0-255' : 'a finite number of ms, 0 or more';
      throw new TraceFormatError(`${source}: line ${i + 1}: ${field} is ${JSON.stringify(cells[k])}; allowed: ${allowed}`);
    }
    seq.push(r.data.seq);
    cap.push(r.data.capture_ms);
    arr.push(r.data.arrival_ms);
    flags.push(r.data.flags);
  }
  if (seq.length === 0) throw new TraceFormatError(`${source}: no packets after the header; allowed: at least one line ${TRACE_HEADER}`);
  return sortByArrival(seq, cap, arr, flags);
}

/** Builds a trace from packet arrays in any order (sorted by arrival, then seq order). */
export function sortByArrival(seq: ArrayLike<number>, captureMs: ArrayLike<number>, arrivalMs: ArrayLike<number>, flags: ArrayLike<number>): ArrivalTrace {
  const n = seq.length;
  const order = Array.from({ length: n }, (_v, i) => i);
  // Seq order within a tie by wrap-aware distance from the first packet, so a wrap from 2^32-1 to 0 keeps its order.
  const s0 = seq[0] ?? 0;
  order.sort((a, b) => arrivalMs[a]! - arrivalMs[b]! || ((seq[a]! - s0) >>> 0) - ((seq[b]! - s0) >>> 0));
  const t: ArrivalTrace = { seq: new Uint32Array(n), captureMs: new Float64Array(n), arrivalMs: new Float64Array(n), flags: new Uint8Array(n) };
  order.forEach((from, i) => {
    t.seq[i] = seq[from]!;
    t.captureMs[i] = captureMs[from]!;
    t.arrivalMs[i] = arrivalMs[from]!;
    t.flags[i] = flags[from]!;
  });
  return t;
}

/** The trace as file text (header, one line per packet, µs resolution). */
export function formatTrace(t: ArrivalTrace): string {
  const out: string[] = [TRACE_HEADER];
  for (let i = 0; i < t.seq.length; i++) out.push(`${t.seq[i]},${t.captureMs[i]!.toFixed(6)},${t.arrivalMs[i]!.toFixed(6)},${t.flags[i]}`);
  return `${out.join('\n')}\n`;
}
