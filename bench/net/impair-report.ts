/**
 * What nh-impair reports (JSON lines on its stdout), checked at the edge: a
 * drift between the C program and this side fails naming the field.
 */
import { z } from 'zod';

const count = z.number().int().min(0);
const ms = z.number().finite();

const stallSchema = z.object({ atMs: ms, durationMs: ms, held: count }).strict();

const directionSchema = z
  .object({
    /** Packets that reached the queue. */
    packets: count,
    /** Packets let through (each with its applied delay in delayMs). */
    passed: count,
    /** Packets the loss model dropped. */
    dropped: count,
    /** Packets dropped because this direction already held as many as it can. */
    overflow: count,
    /** Packets still held when the report was taken. */
    pending: count,
    /** Runs of consecutive drops by length: [1, 2, ..., 7, 8 or more]. */
    dropBursts: z.array(count).length(8),
    longestDropBurst: count,
    /** Delay actually applied to the packets let through (queue arrival to verdict), ms. */
    delayMs: z.object({ p50: ms, p95: ms, p99: ms, max: ms }).strict(),
    /** Every stall window that began in the interval (the link sent nothing), with the packets it held. */
    stalls: z.array(stallSchema),
    /** Power-save holds (towards the listener only): too many to list. */
    holds: z.object({ count, held: count, meanDurationMs: ms, maxDurationMs: ms }).strict(),
  })
  .strict();

export const impairReportSchema = z
  .object({
    type: z.literal('report'),
    final: z.boolean(),
    /** Why the final report was written: "signal", "max-seconds", "simulated". */
    reason: z.string().optional(),
    simulated: z.boolean(),
    seed: z.number(),
    /** The interval the report covers, CLOCK_MONOTONIC ms (virtual ms from 0 when simulated). */
    fromMs: ms,
    toMs: ms,
    /** The kernel's drops on the harness's queues (queue full, or a message it could not deliver): 0 in a sound run. */
    kernelDropped: count,
    userDropped: count,
    links: z.array(z.object({ link: count, down: directionSchema, up: directionSchema }).strict()),
  })
  .strict();

export type ImpairReport = z.infer<typeof impairReportSchema>;
export type DirectionReport = ImpairReport['links'][number]['down'];
export type StallWindow = z.infer<typeof stallSchema>;

export const readySchema = z.object({ type: z.literal('ready'), links: count, queues: z.array(count), t0Ms: ms }).strict();

/** Parses one line of nh-impair's stdout; the error quotes the line. */
export function parseImpairLine(line: string): ImpairReport | z.infer<typeof readySchema> {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw new Error(`nh-impair printed a line that is not JSON: ${line.slice(0, 200)}`);
  }
  const r = z.discriminatedUnion('type', [impairReportSchema, readySchema]).safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new Error(`nh-impair printed an unexpected line (${i.path.join('.') || '(root)'}: ${i.message}): ${line.slice(0, 200)}`);
  }
  return r.data;
}
