import { constants as fsConstants } from 'node:fs';
import { access, mkdir, readFile, realpath, statfs } from 'node:fs/promises';
import path from 'node:path';
import { TAKES_FOLDER } from './take-manifest';

/**
 * Where takes may go. A recording drive is a mounted filesystem whose mount
 * point is one of recording.drives or below one (/media/usb0,
 * /media/pi/STICK); "auto" takes the first writable one on a USB mass-storage
 * device (its block device sits under a USB controller in sysfs) and, on a
 * machine with none, state.dir/recordings. Everything here reads
 * /proc/self/mountinfo, sysfs and statfs asynchronously: never on the audio path.
 */

/** FAT's largest file: 4 GiB - 1 byte. A take on FAT continues in a new part before it. */
export const FAT_MAX_FILE_BYTES = 0xffffffff;
const FAT_TYPES = new Set(['vfat', 'msdos', 'fat']);

export interface Drive {
  /** The mount point ("/media/usb0"), or the folder itself for state.dir and a configured recording.dir. */
  mount: string;
  /** The folder the takes go in. */
  dir: string;
  kind: 'usb' | 'drive' | 'configured' | 'state-dir';
  fsType: string;
  /** The block device or source of the mount ("/dev/sda1"); "" when unknown. */
  device: string;
  writable: boolean;
  freeBytes: number | null;
  totalBytes: number | null;
  /** Largest file the filesystem takes, bytes (FAT: 4 GiB - 1); null: no limit a take reaches (RF64 beyond 4 GiB). */
  maxFileBytes: number | null;
}

export interface DriveOptions {
  /** recording.dir: "auto" or a folder. */
  dir: string;
  /** recording.drives: mount points at or below these count as recording drives. */
  drives: readonly string[];
  stateDir: string;
  /** Where mounts are read (tests point these elsewhere). */
  mountinfo?: string;
  sysRoot?: string;
}

export interface Mount {
  majorMinor: string;
  mountPoint: string;
  options: string[];
  fsType: string;
  source: string;
}

/** Undoes mountinfo's octal escapes (\040 for a space). */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parses /proc/self/mountinfo (proc(5)); lines it cannot read are skipped. */
export function parseMountinfo(text: string): Mount[] {
  const out: Mount[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const dash = f.indexOf('-', 6);
    if (f.length < 10 || dash < 0 || dash + 2 >= f.length) continue;
    out.push({ majorMinor: f[2]!, mountPoint: unescape(f[4]!), options: f[5]!.split(','), fsType: f[dash + 1]!, source: unescape(f[dash + 2]!) });
  }
  return out;
}

/** True when `p` is `root` or inside it (both absolute, normalised). */
export function isInside(p: string, root: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

export class RecordDrives {
  private readonly mountinfo: string;
  private readonly sysRoot: string;

  constructor(private readonly opts: DriveOptions) {
    this.mountinfo = opts.mountinfo ?? '/proc/self/mountinfo';
    this.sysRoot = opts.sysRoot ?? '/sys';
  }

  /** The fallback for a machine with no recording drive. */
  get stateDirDrive(): string {
    return path.join(this.opts.stateDir, 'recordings');
  }

  /**
   * Every recording drive mounted now, USB ones first, then recording.dir
   * when it is set and state.dir/recordings last; with free space.
   */
  async list(): Promise<Drive[]> {
    const mounts = await this.mounts();
    const found: Drive[] = [];
    for (const m of mounts) {
      if (!this.opts.drives.some((d) => isInside(m.mountPoint, d))) continue;
      const usb = await this.isUsb(m.majorMinor);
      found.push(await this.describe(m.mountPoint, path.join(m.mountPoint, TAKES_FOLDER), usb ? 'usb' : 'drive', m));
    }
    found.sort((a, b) => (a.kind === b.kind ? a.mount.localeCompare(b.mount) : a.kind === 'usb' ? -1 : 1));
    if (this.opts.dir !== 'auto') found.push(await this.describe(this.opts.dir, this.opts.dir, 'configured', mountOf(mounts, this.opts.dir)));
    found.push(await this.describe(this.stateDirDrive, this.stateDirDrive, 'state-dir', mountOf(mounts, this.opts.stateDir)));
    return found;
  }

  /**
   * The drive a take goes to: `requested` (a mount point from list()), else
   * recording.dir, else the first writable USB drive, else state.dir/recordings.
   * Throws DriveError naming the path and what is allowed.
   */
  async pick(requested?: string): Promise<Drive> {
    const all = await this.list();
    if (requested !== undefined) {
      const d = all.find((x) => x.mount === requested || x.dir === requested);
      if (!d) {
        throw new DriveError('bad-drive', `drive ${JSON.stringify(requested)} is not a recording drive; allowed: ${all.map((x) => x.mount).join(', ')} (mounts below ${this.opts.drives.join(', ')}, recording.dir, state.dir/recordings)`);
      }
      if (!d.writable) throw new DriveError('bad-drive', `drive ${d.mount} is not writable (${d.fsType}${d.device ? ` on ${d.device}` : ''})`);
      return d;
    }
    const chosen = all.find((d) => d.kind === 'configured') ?? all.find((d) => d.kind === 'usb' && d.writable) ?? all.find((d) => d.kind === 'state-dir')!;
    if (!chosen.writable) throw new DriveError('no-drive', `no writable recording drive: ${chosen.dir} is not writable${chosen.kind === 'state-dir' ? ' and no USB drive is mounted below ' + this.opts.drives.join(', ') : ''}`);
    return chosen;
  }

  private async mounts(): Promise<Mount[]> {
    try {
      return parseMountinfo(await readFile(this.mountinfo, 'utf8'));
    } catch {
      return [];
    }
  }

  /** The block device's sysfs path runs through a USB controller. */
  private async isUsb(majorMinor: string): Promise<boolean> {
    try {
      return (await realpath(path.join(this.sysRoot, 'dev', 'block', majorMinor))).split('/').some((p) => /^usb\d+$/.test(p));
    } catch {
      return false;
    }
  }

  private async describe(mount: string, dir: string, kind: Drive['kind'], m: Mount | undefined): Promise<Drive> {
    const fsType = m?.fsType ?? '';
    let writable = !(m?.options.includes('ro') ?? false);
    // The takes folder is made when needed; a drive is writable when it or its parent takes writes.
    if (writable) {
      if (kind === 'state-dir' || kind === 'configured') await mkdir(dir, { recursive: true }).catch(() => undefined);
      writable = await access(dir, fsConstants.W_OK).then(
        () => true,
        () => access(path.dirname(dir), fsConstants.W_OK).then(() => true, () => false),
      );
    }
    let freeBytes: number | null = null;
    let totalBytes: number | null = null;
    try {
      const s = await statfs(mount);
      freeBytes = s.bavail * s.bsize;
      totalBytes = s.blocks * s.bsize;
    } catch {
      // Reported as unknown; starting a take there fails with the errno.
    }
    return { mount, dir, kind, fsType, device: m?.source ?? '', writable, freeBytes, totalBytes, maxFileBytes: FAT_TYPES.has(fsType) ? FAT_MAX_FILE_BYTES : null };
  }
}

/** The mount `p` lives on: the longest mount point containing it. */
function mountOf(mounts: readonly Mount[], p: string): Mount | undefined {
  let best: Mount | undefined;
  for (const m of mounts) if (isInside(p, m.mountPoint) && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  return best;
}

export class DriveError extends Error {
  constructor(
    readonly code: 'bad-drive' | 'no-drive',
    message: string,
  ) {
    super(message);
  }
}
