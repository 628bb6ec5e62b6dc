import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { SAMPLE_FORMATS } from '../engine/sample-format';

/**
 * take.json: the index of one take, in the take's own folder next to its
 * WAV files. It is what the box lists, plays back and repairs; the WAV files
 * carry the same facts (bext, iXML) for a DAW, which never needs this file.
 * Written atomically (temp file, fsync, rename) by the take's writer thread.
 */

export const MANIFEST_NAME = 'take.json';
/** The folder on a recording drive that holds the takes. */
export const TAKES_FOLDER = 'stagebox';

export const TAKE_LAYOUTS = ['mono', 'multi'] as const;
export type TakeLayout = (typeof TAKE_LAYOUTS)[number];
export const TAKE_STATES = ['recording', 'done', 'failed', 'recovered'] as const;
export type TakeState = (typeof TAKE_STATES)[number];

export const TAKE_NAME_MAX = 64;
export const MARKER_LABEL_MAX = 64;

const markerSchema = z
  .object({
    /** Frames from the take's first frame. */
    frame: z.number().int().min(0),
    label: z.string().max(MARKER_LABEL_MAX),
    /** "marker": the engineer's; "dropout": audio the capture lost here (an xrun or a device reopen). */
    kind: z.enum(['marker', 'dropout']),
    /** Wall clock when it was set, ISO 8601. */
    at: z.string(),
  })
  .strict();
export type TakeMarker = z.infer<typeof markerSchema>;

const fileSchema = z
  .object({
    /** File name in the take's folder. */
    name: z.string().min(1).max(255).refine((n) => n === path.basename(n) && n !== '.' && n !== '..', 'a plain file name'),
    /** 1-based; a part starts where the previous one ended (a filesystem's file size limit). */
    part: z.number().int().min(1),
    startFrame: z.number().int().min(0),
    /** Box channels (0-based, as in subscribe) in the file, in its channel order. */
    channels: z.array(z.number().int().min(0).max(63)).min(1).max(64),
    frames: z.number().int().min(0),
  })
  .strict();
export type TakeFile = z.infer<typeof fileSchema>;

export const manifestSchema = z
  .object({
    version: z.literal(1),
    id: z.string().min(1).max(128),
    name: z.string().max(TAKE_NAME_MAX),
    state: z.enum(TAKE_STATES),
    layout: z.enum(TAKE_LAYOUTS),
    format: z.enum(SAMPLE_FORMATS),
    rate: z.number().int().positive(),
    /** Channels the capture had: playback restores every recorded input to its own number. */
    sourceChannels: z.number().int().min(1).max(64),
    /** The recorded inputs with the engineer's names at the start of the take. */
    channels: z.array(z.object({ ch: z.number().int().min(0).max(63), name: z.string() }).strict()).min(1).max(64),
    startedAt: z.string(),
    /** The first frame's capture time (CLOCK_MONOTONIC ns, as in packets) and sample position, as decimal strings. */
    captureNs: z.string().regex(/^\d+$/),
    samplePos: z.string().regex(/^\d+$/),
    /** Frames in every file of the take together (all channels end at the same frame). */
    frames: z.number().int().min(0),
    endedAt: z.string().nullable(),
    /** Why it ended: "stopped", "service stopped", "drive full", ... null while recording. */
    endReason: z.string().nullable(),
    /** The failure that ended it, with the path and errno; null when it ended normally. */
    error: z.string().nullable(),
    files: z.array(fileSchema).min(1),
    markers: z.array(markerSchema),
  })
  .strict();
export type TakeManifest = z.infer<typeof manifestSchema>;

/** Why `name` cannot name a take, or null. A name ends up in folder and file names on FAT and exFAT drives. */
export function takeNameProblem(name: string): string | null {
  const shown = JSON.stringify(name.length > 70 ? `${name.slice(0, 70)}…` : name);
  if (name.length > TAKE_NAME_MAX) return `take name ${shown} has ${name.length} characters; allowed: 1-${TAKE_NAME_MAX}`;
  if (name.trim().length === 0) return `take name ${shown} is empty; allowed: 1-${TAKE_NAME_MAX} characters, not only spaces`;
  if (name !== name.trim()) return `take name ${shown} starts or ends with a space; allowed: no leading or trailing spaces`;
  if (/[/\\]/.test(name) || name.includes('..') || name.startsWith('.')) {
    return `take name ${shown} looks like a path; allowed: no "/", "\\" or "..", not starting with "."`;
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return `take name ${shown} contains a control character; allowed: printable characters`;
  if (/[:*?"<>|]/.test(name)) return `take name ${shown} contains one of : * ? " < > |; allowed: characters a FAT or exFAT drive accepts in a file name`;
  return null;
}

/** Why `label` cannot label a marker, or null. */
export function markerLabelProblem(label: string): string | null {
  if (label.length > MARKER_LABEL_MAX) return `marker label has ${label.length} characters; allowed: 0-${MARKER_LABEL_MAX}`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(label)) return `marker label ${JSON.stringify(label)} contains a control character; allowed: printable characters`;
  return null;
}

function two(n: number): string {
  return String(n).padStart(2, '0');
}

/** The take's id and folder name: local date and time of its start, then its name ("2026-11-25_210712_Show"). */
export function takeId(startedAt: Date, name: string): string {
  const d = startedAt;
  const stamp = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}_${two(d.getHours())}${two(d.getMinutes())}${two(d.getSeconds())}`;
  return name === '' ? stamp : `${stamp}_${name}`;
}

/** A channel name as part of a file name: what FAT refuses becomes "_". */
function fileSafe(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f/\\:*?"<>|]/g, '_').trim().replace(/^\.+/, '_');
}

/**
 * File names of one part of a take. mono: "01 Kick.wav" per input (the box's
 * input number, the engineer's name), multi: "<take name or id>.wav". Later
 * parts get " (2)", " (3)" ... before ".wav".
 */
export function takeFileNames(layout: TakeLayout, take: { id: string; name: string }, channels: readonly { ch: number; name: string }[], part: number): string[] {
  const suffix = part > 1 ? ` (${part})` : '';
  if (layout === 'multi') return [`${fileSafe(take.name || take.id)}${suffix}.wav`];
  const width = channels.some((c) => c.ch + 1 >= 100) ? 3 : 2;
  return channels.map((c) => {
    const n = String(c.ch + 1).padStart(width, '0');
    const name = fileSafe(c.name);
    return `${n}${name && name !== `Input ${c.ch + 1}` ? ` ${name.slice(0, 48)}` : ''}${suffix}.wav`;
  });
}

/** Writes `manifest` into `dir` atomically and durably (sync: the writer thread's own call). */
export function writeManifestSync(dir: string, manifest: TakeManifest): void {
  const file = path.join(dir, MANIFEST_NAME);
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, `${JSON.stringify(manifest, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/** writeManifestSync for the main thread (repairs): the same steps on the libuv pool. */
export async function writeManifest(dir: string, manifest: TakeManifest): Promise<void> {
  const file = path.join(dir, MANIFEST_NAME);
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(`${JSON.stringify(manifest, null, 2)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

/** Parses take.json text; throws RangeError naming the file and the first problem. */
export function parseManifest(text: string, where: string): TakeManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new RangeError(`${where}: not valid JSON (${(err as Error).message})`);
  }
  const r = manifestSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new RangeError(`${where}: ${i.path.join('.') || '(top)'}: ${i.message}`);
  }
  return r.data;
}
