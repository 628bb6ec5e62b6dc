import type { Logger } from '../logging/logger';
import { StateDirError, StateStore } from './state-store';

/** Whether mixes and channel names reach the state dir. */
export interface StateSaving {
  dir: string;
  /** False while writes fail (read-only or full filesystem, permissions) or the dir was unusable at start. */
  saving: boolean;
  /** The failure, with the path and errno: "EROFS: read-only file system, open '/var/lib/stagebox/state.json.tmp-42'". */
  error: string | null;
  /** When saving stopped working, ISO 8601. */
  since: string | null;
}

/**
 * The saved state as a part of the service: opened first (the control plane
 * is built on what it holds), flushed last. An unusable state dir never
 * stops the service: it runs without saving and says so (`saving()`).
 */
export class SavedState {
  readonly name = 'state';

  private constructor(
    readonly dir: string,
    /** The store, or null when the dir was unusable at start (nothing is saved until a restart). */
    readonly store: StateStore | null,
    private readonly dirError: StateDirError | null,
  ) {}

  /** Loads `<dir>/state.json`; a dir that cannot be used is logged, and the service runs without saving. */
  static async open(opts: { dir: string; maxClients: number }, log: Logger): Promise<SavedState> {
    const store = new StateStore({ dir: opts.dir, maxClients: opts.maxClients, log });
    try {
      const doc = await store.load();
      log.info({ dir: opts.dir, clients: Object.keys(doc.clients).length }, 'state loaded');
      return new SavedState(opts.dir, store, null);
    } catch (err) {
      if (!(err instanceof StateDirError)) throw err;
      log.error({ dir: opts.dir, err: err.message }, 'state dir unusable: mixes and channel names will NOT be saved');
      return new SavedState(opts.dir, null, err);
    }
  }

  /** Already loaded by open(). */
  start(): void {}

  /** Writes what is pending. */
  async stop(): Promise<void> {
    await this.store?.stop();
  }

  /** Whether state reaches the disk; a failing dir never stops the audio, it is reported here. */
  saving(): StateSaving {
    if (this.store === null) return { dir: this.dir, saving: false, error: this.dirError ? this.dirError.message : 'state dir not opened', since: null };
    const f = this.store.writeFailure;
    return f ? { dir: this.dir, saving: false, error: f.message, since: f.since } : { dir: this.dir, saving: true, error: null, since: null };
  }
}
