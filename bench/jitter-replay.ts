/**
 * Jitter-buffer replay: plays arrival traces (synthetic profiles, or trace files the `wifi` bench wrote) through
 * the baseline and the current jitter buffer in simulated time and prints what a listener would hear.
 *
 *   node dist/bench/jitter-replay.js [--profiles lan,office-wifi] [--transport tcp|datagram|both] [--seconds 60]
 *       [--seed 1] [--trace FILE ...] [--buffers baseline,current] [--fixed-targets-ms 8,15,30] [--write-traces DIR] [--json]
 *   make jitter-replay ARGS="--profiles office-wifi --seconds 120"
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatTrace, parseTrace, type ArrivalTrace } from './jitter/arrival-trace';
import { PROFILE_NAMES, PROFILES, TRANSPORTS, syntheticTrace, type ProfileName, type Transport } from './jitter/network-model';
import { replay, type ReplayResult } from './jitter/replay';
import { FIXED_TARGET_MAX_MS, FIXED_TARGET_MIN_MS, SUBJECT_NAMES, makeSubject, pinnedSubject, type SubjectName } from './jitter/replay-subjects';

export const REPLAY_USAGE = `Usage: node dist/bench/jitter-replay.js [options]

  --profiles LIST     synthetic link profiles, comma-separated (default: ${PROFILE_NAMES.join(',')})
  --transport T       tcp, datagram or both (default tcp: today's WebSocket stream)
  --seconds N         length of each synthetic trace, 5-3600 (default 60)
  --seed N            seed of the synthetic traces, an integer 0-4294967295 (default 1)
  --trace FILE        replay this trace file instead (seq,capture_ms,arrival_ms,flags); may be repeated
  --buffers LIST      which buffers, in this order (default: ${SUBJECT_NAMES.join(',')})
  --warmup-ms N       not counted at the start, 0-60000 (default 2000)
  --event-cost-ms N   the current buffer's eventCostMs, 0-1000 (default: the library's)
  --fixed-targets-ms LIST
                      also replay the current buffer pinned at each of these targets, ms, comma-separated,
                      each ${FIXED_TARGET_MIN_MS}-${FIXED_TARGET_MAX_MS} (rows fixed-<ms>, after the --buffers rows; default: none)
  --player-tick-ms N  pull from a timer of this period, as stagebox listen and the benches do,
                      0-50 (default 0: an audio callback, one pull per period)
  --write-traces DIR  also write each synthetic trace there as <profile>-<transport>-<seed>.csv
  --json              one JSON line per trace and buffer instead of the table
Exit code: 0 done, 1 a trace could not be read, 2 usage error.`;

class UsageError extends Error {}

interface Job {
  label: string;
  trace: ArrivalTrace;
}

function list<T extends string>(flag: string, text: string, allowed: readonly T[]): T[] {
  const items = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new UsageError(`${flag}: got an empty list; allowed: ${allowed.join(', ')}`);
  for (const it of items) if (!(allowed as readonly string[]).includes(it)) throw new UsageError(`${flag}: unknown "${it}"; allowed: ${allowed.join(', ')}`);
  return items as T[];
}

function num(flag: string, text: string, min: number, max: number, integer: boolean): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new UsageError(`${flag}: got "${text}"; allowed: ${integer ? 'an integer' : 'a number'} ${min}-${max}`);
  }
  return v;
}

function targets(flag: string, text: string): number[] {
  const items = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new UsageError(`${flag}: got an empty list; allowed: numbers ${FIXED_TARGET_MIN_MS}-${FIXED_TARGET_MAX_MS}, comma-separated`);
  return items.map((it) => num(flag, it, FIXED_TARGET_MIN_MS, FIXED_TARGET_MAX_MS, false));
}

function fmt(v: number | null, d = 1): string {
  return v === null || !Number.isFinite(v) ? '-' : v.toFixed(d);
}

export function resultRow(label: string, r: ReplayResult): string {
  return [
    label.padEnd(26),
    r.subject.padEnd(9),
    fmt(r.audibleEventsPerMin).padStart(7),
    fmt(r.underrunsPerMin).padStart(7),
    fmt(r.concealedLossesPerMin).padStart(6),
    fmt(r.eventsOutsideStallsPerMin).padStart(7),
    fmt(r.eventsOutsideLongGapsPerMin).padStart(7),
    fmt(r.concealedMsPerMin, 0).padStart(7),
    `${fmt(r.bufferP50Ms)}/${fmt(r.bufferP99Ms)}`.padStart(11),
    `${fmt(r.targetP50Ms)}/${fmt(r.targetMaxMs)}/${fmt(r.targetEndMs)}`.padStart(16),
    `${fmt(r.recoverMedianMs, 0)}/${fmt(r.recoverMaxMs, 0)}`.padStart(11),
    `${r.stalls.length - r.notRecovered}/${r.stalls.length}`.padStart(6),
    `${fmt(r.acceleratedMsPerMin, 0)}/${fmt(r.expandedMsPerMin, 0)}/${fmt(r.droppedMsPerMin, 0)}`.padStart(14),
  ].join(' ');
}

export const RESULT_HEADER = [
  'trace'.padEnd(26),
  'buffer'.padEnd(9),
  'ev/min'.padStart(7),
  'underr'.padStart(7),
  'losses'.padStart(6),
  '!stall'.padStart(7),
  '!long'.padStart(7),
  'conc ms'.padStart(7),
  'buf p50/p99'.padStart(11),
  'target p50/max/end'.padStart(16),
  'recover ms'.padStart(11),
  'back'.padStart(6),
  'acc/exp/drop ms'.padStart(14),
].join(' ');

export function main(argv: string[]): number {
  let v: ReturnType<typeof parseArgs>['values'];
  try {
    ({ values: v } = parseArgs({
      args: argv,
      options: {
        profiles: { type: 'string' },
        transport: { type: 'string' },
        seconds: { type: 'string' },
        seed: { type: 'string' },
        trace: { type: 'string', multiple: true },
        buffers: { type: 'string' },
        'warmup-ms': { type: 'string' },
        'event-cost-ms': { type: 'string' },
        'fixed-targets-ms': { type: 'string' },
        'player-tick-ms': { type: 'string' },
        'write-traces': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`jitter-replay: ${(err as Error).message}\n\n${REPLAY_USAGE}\n`);
    return 2;
  }
  if (v.help) {
    process.stdout.write(`${REPLAY_USAGE}\n`);
    return 0;
  }
  let jobs: Job[];
  let buffers: SubjectName[];
  let warmupMs: number;
  let tickMs: number;
  let eventCostMs: number | undefined;
  let fixedMs: number[] = [];
  try {
    tickMs = num('--player-tick-ms', (v['player-tick-ms'] as string | undefined) ?? '0', 0, 50, false);
    if (v['event-cost-ms'] !== undefined) eventCostMs = num('--event-cost-ms', v['event-cost-ms'] as string, 0, 1000, false);
    if (v['fixed-targets-ms'] !== undefined) fixedMs = targets('--fixed-targets-ms', v['fixed-targets-ms'] as string);
    buffers = list('--buffers', (v.buffers as string | undefined) ?? SUBJECT_NAMES.join(','), SUBJECT_NAMES);
    warmupMs = num('--warmup-ms', (v['warmup-ms'] as string | undefined) ?? '2000', 0, 60000, false);
    const files = (v.trace as string[] | undefined) ?? [];
    if (files.length > 0 && (v.profiles !== undefined || v.transport !== undefined || v.seconds !== undefined || v.seed !== undefined)) {
      throw new UsageError('--trace and synthetic options (--profiles, --transport, --seconds, --seed) were both given; allowed: one or the other');
    }
    if (files.length > 0) {
      jobs = [];
      for (const f of files) {
        let text: string;
        try {
          text = readFileSync(f, 'utf8');
        } catch (err) {
          process.stderr.write(`jitter-replay: cannot read --trace ${f}: ${(err as Error).message}\n`);
          return 1;
        }
        try {
          jobs.push({ label: path.basename(f), trace: parseTrace(text, f) });
        } catch (err) {
          process.stderr.write(`jitter-replay: ${(err as Error).message}\n`);
          return 1;
        }
      }
    } else {
      const profiles = list('--profiles', (v.profiles as string | undefined) ?? PROFILE_NAMES.join(','), PROFILE_NAMES);
      const t = (v.transport as string | undefined) ?? 'tcp';
      if (t !== 'both' && !(TRANSPORTS as readonly string[]).includes(t)) throw new UsageError(`--transport: got "${t}"; allowed: tcp, datagram or both`);
      const transports: Transport[] = t === 'both' ? [...TRANSPORTS] : [t as Transport];
      const seconds = num('--seconds', (v.seconds as string | undefined) ?? '60', 5, 3600, false);
      const seed = num('--seed', (v.seed as string | undefined) ?? '1', 0, 2 ** 32 - 1, true);
      const dir = v['write-traces'] as string | undefined;
      if (dir) mkdirSync(dir, { recursive: true });
      jobs = [];
      for (const profile of profiles) {
        for (const transport of transports) {
          const s = syntheticTrace({ profile: profile as ProfileName, transport, seconds, seed });
          const label = `${profile}/${transport}/${seed}`;
          if (dir) writeFileSync(path.join(dir, `${profile}-${transport}-${seed}.csv`), formatTrace(s.trace));
          if (!v.json) process.stderr.write(`${label}: ${PROFILES[profile as ProfileName].description}; ${s.sent} packets, ${s.lostOnLink} lost on the link, ${s.holds.start.length} holds\n`);
          jobs.push({ label, trace: s.trace });
        }
      }
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`jitter-replay: ${err.message}\n\n${REPLAY_USAGE}\n`);
    return 2;
  }
  if (!v.json) process.stdout.write(`${RESULT_HEADER}\n`);
  const current = eventCostMs === undefined ? {} : { eventCostMs };
  const subjectOpts = { rate: 48000, channels: 2, current };
  const subjects = [...buffers.map((b) => () => makeSubject(b, subjectOpts)), ...fixedMs.map((ms) => () => pinnedSubject(ms, subjectOpts))];
  for (const job of jobs) {
    for (const make of subjects) {
      const r = replay(job.trace, make(), { warmupMs, playerTickMs: tickMs });
      if (v.json) {
        const { stalls, ...rest } = r;
        process.stdout.write(`${JSON.stringify({ trace: job.label, ...rest, stalls: stalls.length, stallGapsMs: stalls.map((s) => Math.round(s.gapMs)), stallRecoverMs: stalls.map((s) => s.recoverMs === null ? null : Math.round(s.recoverMs)) })}\n`);
      } else process.stdout.write(`${resultRow(job.label, r)}\n`);
    }
  }
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
