import { readFile } from 'node:fs/promises';
import type { Logger } from '../logging/logger';
import { StateDir, errnoOf } from './state-dir';
import { decodeState, describeIssues, encodeState } from './state-file';
import { clientStateSchema, emptyState, stateSchema, type ClientState, type StateDoc } from './state-schema';

export { DEFAULT_STATE_DIR, STATE_FILE, StateDirError } from './state-dir';
export { decodeState, encodeState } from './state-file';

const MAX_RETRY_MS = 30_000;

export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

export interface StateStoreOptions {
  /** Directory holding state.json; created with mode 0750 if missing. Usually DEFAULT_STATE_DIR. */
  dir: string;
  /** Most clients remembered; beyond it those with the oldest lastSeen are forgotten. Default 500, integer >= 1. */
  maxClients?: number;
  log: Logger;
  /** Delay from the first unsaved change to the write, ms. Default 200, integer >= 0. */
  debounceMs?: number;
}

/** Why state.json is not being saved right now: what the last failed write said. */
export interface StateWriteFailure {
  /** The file or directory the failing call named (usually the temp file next to state.json). */
  path: string;
  /** errno code, e.g. 'EROFS', 'ENOSPC', 'EACCES'. */
  code: string;
  /** The system's message, e.g. "ENOSPC: no space left on device, write". */
  message: string;
  /** When writes started failing, ISO 8601. */
  since: string;
  /** Failed attempts in a row. */
  attempts: number;
}

/** update() produced a document that fails the schema; the state is left as it was. */
export class StateUpdateError extends Error {
  override readonly name = 'StateUpdateError';
}

/**
 * Crash-safe persistent state: channel metadata, client mixes and presets in
 * `<dir>/state.json`.
 *
 * Writes are atomic (temp file, fsync, rename, fsync of the directory), so
 * after a crash or power cut the file holds the last complete document that
 * was written; at most the changes of the last debounceMs plus one write are
 * lost. Writes are coalesced, never overlap, and use async fs only. Damaged
 * files are moved aside and the service starts with defaults.
 *
 * Lifecycle: `await load()` once, then get()/update(); `await stop()` at
 * shutdown writes what is pending.
 */
export class StateStore {
  readonly dir: string;
  /** Full path of state.json. */
  readonly file: string;
  private readonly disk: StateDir;
  readonly maxClients: number;
  readonly debounceMs: number;
  private readonly log: Logger;

  private state: StateDoc = emptyState();
  private loaded = false;
  private stopped = false;
  private dirty = false;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private failure: StateWriteFailure | null = null;

  constructor(opts: StateStoreOptions) {
    const maxClients = opts.maxClients ?? 500;
    const debounceMs = opts.debounceMs ?? 200;
    if (!Number.isInteger(maxClients) || maxClients < 1) throw new RangeError(`state maxClients: got ${maxClients}; allowed: an integer >= 1`);
    if (!Number.isInteger(debounceMs) || debounceMs < 0) throw new RangeError(`state debounceMs: got ${debounceMs}; allowed: an integer >= 0`);
    this.dir = opts.dir;
    this.disk = new StateDir(opts.dir, opts.log);
    this.file = this.disk.file;
    this.maxClients = maxClients;
    this.debounceMs = debounceMs;
    this.log = opts.log;
  }

  /** Completed writes (renames of a new state.json into place) since construction; for status. */
  get writes(): number {
    return this.disk.writes;
  }

  /**
   * Why changes are not reaching the disk (read-only or full filesystem,
   * permissions), or null while writes work. The service keeps running and
   * keeps the changes in memory, retrying with backoff.
   */
  get writeFailure(): Readonly<StateWriteFailure> | null {
    return this.failure;
  }

  /**
   * Creates the directory if needed (mode 0750), removes leftover temp files,
   * and reads state.json. A missing file gives defaults; a damaged or invalid
   * one is renamed to state.json.corrupt-<ISO time> (logged at warn) and
   * gives defaults. Never throws for file content.
   *
   * @throws StateDirError when the directory cannot be created or written
   *   (message names the path and errno).
   */
  async load(): Promise<DeepReadonly<StateDoc>> {
    await this.disk.prepare();
    let doc: StateDoc | null = null;
    let buf: Buffer | null = null;
    try {
      buf = await readFile(this.file);
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT') this.log.info({ path: this.file }, 'no state file yet; starting with defaults');
      else await this.disk.moveAside(`cannot read it (${code})`);
    }
    if (buf !== null) {
      const decoded = decodeState(buf);
      if (decoded.ok) {
        doc = decoded.doc;
        this.log.info(
          { path: this.file, clients: Object.keys(doc.clients).length, channels: Object.keys(doc.channels).length, savedAt: doc.savedAt },
          'state loaded',
        );
      } else {
        await this.disk.moveAside(decoded.reason);
      }
    }
    this.state = doc ?? emptyState();
    this.loaded = true;
    // A lowered maxClients applies at once and is persisted like any change.
    if (this.prune(this.state) > 0) this.markDirty();
    return this.state;
  }

  /**
   * The current document. Read-only: change it through update(). Do not keep
   * it across update() calls; each update replaces the object.
   */
  get(): DeepReadonly<StateDoc> {
    this.assertLoaded('get');
    return this.state;
  }

  /**
   * Applies `mutator` to a copy of the document, forgets the oldest clients
   * beyond maxClients, validates the result and schedules a write (within
   * debounceMs). Synchronous; no I/O.
   *
   * @throws StateUpdateError if the result fails the schema (state unchanged);
   *   anything the mutator throws (state unchanged).
   */
  update(mutator: (draft: StateDoc) => void): void {
    this.assertLoaded('update');
    const draft = structuredClone(this.state);
    mutator(draft);
    this.prune(draft);
    const parsed = stateSchema.safeParse(draft);
    if (!parsed.success) throw new StateUpdateError(describeIssues('state update', draft, parsed.error));
    this.state = parsed.data;
    this.changed();
  }

  private changed(): void {
    if (this.stopped) {
      this.log.warn({}, 'state changed after stop(); the change is kept in memory only');
      return;
    }
    this.markDirty();
  }

  /**
   * Changes one client: `mutator` gets a copy of its entry (undefined if
   * unknown) and returns the entry to store, or null to forget the client.
   * Only that entry is copied and validated, so this is the call for frequent
   * changes (fader moves): update() costs time in proportion to the whole
   * document (about 4 ms at 20 clients with 4 mixes each, about 100 ms at 500
   * on a desktop CPU). Adding a client beyond maxClients forgets the oldest.
   *
   * @throws StateUpdateError if the entry fails the schema (state unchanged).
   */
  updateClient(id: string, mutator: (client: ClientState | undefined) => ClientState | null): void {
    this.assertLoaded('updateClient');
    const current = this.state.clients[id];
    const next = mutator(current === undefined ? undefined : structuredClone(current));
    if (next === null) {
      if (current === undefined) return;
      delete this.state.clients[id];
    } else {
      const idOk = stateSchema.shape.clients.keySchema.safeParse(id);
      if (!idOk.success) throw new StateUpdateError(describeIssues(`state update: client id ${JSON.stringify(id)}`, id, idOk.error));
      const parsed = clientStateSchema.safeParse(next);
      if (!parsed.success) throw new StateUpdateError(describeIssues(`state update: clients.${id}`, next, parsed.error));
      this.state.clients[id] = parsed.data;
      if (current === undefined) this.prune(this.state);
    }
    this.changed();
  }

  /**
   * Writes pending changes now and resolves when they are on disk (file and
   * directory fsynced). Waits for a write already in flight.
   *
   * @throws the fs error if the write fails (the change stays pending).
   */
  async flush(): Promise<void> {
    for (;;) {
      if (this.inFlight) {
        // Its failure is retried just below; only our own attempt's error is thrown.
        await this.inFlight.catch(() => undefined);
        continue;
      }
      if (!this.dirty) return;
      await this.startWrite();
    }
  }

  /** Writes what is pending and stops scheduling writes. Later update()s stay in memory only. */
  async stop(): Promise<void> {
    try {
      await this.flush();
    } finally {
      this.stopped = true;
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private assertLoaded(what: string): void {
    if (!this.loaded) throw new Error(`StateStore.${what}() called before load()`);
  }

  private markDirty(): void {
    this.dirty = true;
    this.schedule(this.debounceMs);
  }

  /**
   * The delay runs from the first unsaved change and is not pushed back by
   * later ones: a performer riding a fader for minutes still gets saved every
   * debounceMs. While a write is in flight nothing is scheduled; its
   * completion schedules the next one if changes arrived meanwhile.
   */
  private schedule(delayMs: number): void {
    if (this.stopped || this.timer || this.inFlight) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      // startWrite() reports the failure (once per episode); the rejection only matters to flush().
      this.startWrite().catch(() => undefined);
    }, delayMs);
  }

  private retryDelay(): number {
    return Math.min(MAX_RETRY_MS, Math.max(1000, this.debounceMs) * 2 ** Math.max(0, (this.failure?.attempts ?? 0) - 1));
  }

  private startWrite(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.dirty = false;
    // Serialised synchronously so later updates cannot tear the snapshot being written.
    this.state.savedAt = new Date().toISOString();
    const text = encodeState(this.state);
    this.inFlight = this.disk.writeAtomic(text)
      .then(
        () => {
          if (this.failure) {
            this.log.info(
              { path: this.file, failedAttempts: this.failure.attempts, failingSince: this.failure.since, err: this.failure.code },
              `state writes work again after ${this.failure.attempts} failed attempt(s); state saved`,
            );
          }
          this.failure = null;
        },
        (err: unknown) => {
          this.dirty = true;
          this.noteFailure(err);
          throw err;
        },
      )
      .finally(() => {
        this.inFlight = null;
        if (this.dirty) this.schedule(this.failure !== null ? this.retryDelay() : this.debounceMs);
      });
    return this.inFlight;
  }

  /**
   * Logged once when writes start failing and again only if the reason
   * changes, not at every retry: a full disk must not also fill the journal.
   */
  private noteFailure(err: unknown): void {
    const e = err as NodeJS.ErrnoException;
    const code = errnoOf(err);
    const prev = this.failure;
    const at = typeof e.path === 'string' ? e.path : this.file;
    const text = e.message ?? String(err);
    this.failure = {
      path: at,
      code,
      // write() and fsync() errors carry no path: add it, the report must say where.
      message: text.includes(at) ? text : `${text}, '${at}'`,
      since: prev?.since ?? new Date().toISOString(),
      attempts: (prev?.attempts ?? 0) + 1,
    };
    const fields = { path: this.failure.path, err: code, detail: this.failure.message, attempts: this.failure.attempts, retryInMs: this.retryDelay() };
    if (prev === null) this.log.error(fields, `state write failed (${code}); audio goes on, changes are kept in memory and retried (logged again only when the reason changes or writes work again)`);
    else if (prev.code !== code) this.log.error(fields, `state write still failing, now ${code}`);
    else this.log.debug(fields, 'state write still failing');
  }

  /** Forgets the clients with the oldest lastSeen beyond maxClients; returns how many. */
  private prune(doc: StateDoc): number {
    const ids = Object.keys(doc.clients);
    const excess = ids.length - this.maxClients;
    if (excess <= 0) return 0;
    const seen = (id: string) => Date.parse(doc.clients[id]!.lastSeen);
    // Unparseable times sort first (NaN → -Infinity) so they go before real ones; ties by id for determinism.
    const key = (id: string) => (Number.isNaN(seen(id)) ? -Infinity : seen(id));
    ids.sort((a, b) => key(a) - key(b) || (a < b ? -1 : a > b ? 1 : 0));
    const forgotten = ids.slice(0, excess);
    for (const id of forgotten) delete doc.clients[id];
    this.log.info({ forgotten: forgotten.length, maxClients: this.maxClients }, `forgot ${forgotten.length} client(s) not seen for the longest time (limit ${this.maxClients})`);
    return forgotten.length;
  }
}
