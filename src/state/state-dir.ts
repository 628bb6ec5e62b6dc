/**
 * The state directory: created and checked once, tidied of what a crash left
 * behind, one file replaced atomically and durably, a damaged file moved
 * aside as evidence. Async fs only; never on the audio path.
 */
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../logging/logger';

/** Default state directory on the appliance. */
export const DEFAULT_STATE_DIR = '/var/lib/stagebox';
export const STATE_FILE = 'state.json';
const TMP_PREFIX = `${STATE_FILE}.tmp-`;
const CORRUPT_PREFIX = `${STATE_FILE}.corrupt-`;
/** Files moved aside are evidence for a bug report, but repeated damage must not fill the disk. */
const KEEP_CORRUPT = 5;

/**
 * The state directory cannot be created or written. load() throws it; the
 * caller decides whether to run without persistence or to stop.
 */
export class StateDirError extends Error {
  override readonly name = 'StateDirError';
  constructor(
    /** The directory that failed. */
    readonly path: string,
    /** errno code, e.g. 'EACCES', 'ENOTDIR', 'EROFS'. */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

export class StateDir {
  /** Full path of state.json. */
  readonly file: string;
  /** Completed writes (renames of a new state.json into place). */
  writes = 0;

  constructor(
    readonly dir: string,
    private readonly log: Logger,
  ) {
    this.file = path.join(dir, STATE_FILE);
  }

  /**
   * Creates the directory if needed (mode 0750), checks it can be written,
   * removes leftover temp files and all but the newest moved-aside files.
   *
   * @throws StateDirError naming the path and errno.
   */
  async prepare(): Promise<void> {
    await this.create();
    await this.tidy();
  }

  /**
   * Order matters for power cuts: the data must be durable before the rename
   * makes it visible (else the new name can point at empty blocks on ext4
   * with delalloc), and the directory must be fsynced after the rename or
   * the rename itself may not survive. The old state.json stays intact until
   * the rename, which is atomic.
   */
  async writeAtomic(text: string): Promise<void> {
    const tmp = `${this.file}.tmp-${process.pid}`;
    try {
      const fh = await open(tmp, 'w', 0o640);
      try {
        await fh.writeFile(text, 'utf8');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.file);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    this.writes++;
    await this.syncDir();
  }

  private async syncDir(): Promise<void> {
    const dh = await open(this.dir, 'r');
    try {
      await dh.sync();
    } catch (err) {
      // Some filesystems cannot fsync a directory; the rename is then as durable as they allow.
      const code = errnoOf(err);
      if (code !== 'EINVAL' && code !== 'ENOTSUP') throw err;
    } finally {
      await dh.close();
    }
  }

  private async create(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o750 });
    } catch (err) {
      const code = errnoOf(err);
      throw new StateDirError(this.dir, code, `state dir ${this.dir}: cannot create it (${code})`);
    }
    try {
      const st = await stat(this.dir);
      if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      // W_OK also reports EROFS for a read-only mount.
      await access(this.dir, fsConstants.R_OK | fsConstants.W_OK | fsConstants.X_OK);
    } catch (err) {
      const code = errnoOf(err);
      throw new StateDirError(this.dir, code, `state dir ${this.dir}: cannot write to it (${code})`);
    }
  }

  /**
   * A temp file is never the last complete state: a write counts only after
   * its rename, so whatever a crash left behind is dropped.
   */
  private async tidy(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      const code = errnoOf(err);
      throw new StateDirError(this.dir, code, `state dir ${this.dir}: cannot list it (${code})`);
    }
    const temps = names.filter((n) => n.startsWith(TMP_PREFIX));
    for (const name of temps) {
      try {
        await unlink(path.join(this.dir, name));
        this.log.info({ path: path.join(this.dir, name) }, 'removed a temp file left by an interrupted state write');
      } catch (err) {
        this.log.warn({ path: path.join(this.dir, name), err: errnoOf(err) }, 'could not remove a leftover state temp file');
      }
    }
    // ISO timestamps sort chronologically as strings.
    const corrupt = names.filter((n) => n.startsWith(CORRUPT_PREFIX)).sort();
    for (const name of corrupt.slice(0, Math.max(0, corrupt.length - (KEEP_CORRUPT - 1)))) {
      await unlink(path.join(this.dir, name)).then(
        () => this.log.info({ path: path.join(this.dir, name), keep: KEEP_CORRUPT }, 'removed an old moved-aside state file'),
        () => undefined,
      );
    }
  }

  /** Moves a rejected state.json aside as state.json.corrupt-<ISO time>, logged with `reason`. */
  async moveAside(reason: string): Promise<void> {
    let target = `${this.file}.corrupt-${new Date().toISOString()}`;
    for (let i = 1; await exists(target); i++) target = `${this.file}.corrupt-${new Date().toISOString()}-${i}`;
    try {
      await rename(this.file, target);
      this.log.warn({ path: this.file, movedTo: target, reason }, `state file rejected: ${reason}; moved to ${target}, starting with defaults`);
    } catch (err) {
      this.log.error(
        { path: this.file, reason, err: errnoOf(err) },
        `state file rejected: ${reason}; could not move it aside (${errnoOf(err)}), starting with defaults and it will be replaced at the next save`,
      );
    }
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
