import { open, readdir, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { TakePlayPlan } from '../capture/take-source';
import { RecordingError } from './recording-error';
import type { Drive, RecordDrives } from './record-drives';
import { MANIFEST_NAME, parseManifest, writeManifest, type TakeManifest } from './take-manifest';
import { HEADER_SCAN_BYTES, hasDs64Room, parseWavHeader, RIFF_MAX, trailerChunks, writeSizes, type WavLayout } from './wav-format';

/**
 * The takes on every recording drive: listing, lookup by id, deletion,
 * repair of takes whose writer died (power cut, SIGKILL, pulled drive), and
 * the checked plan a playback needs. Control plane only (async fs).
 */

export interface TakeEntry {
  id: string;
  /** The take's folder. */
  dir: string;
  drive: Pick<Drive, 'mount' | 'kind'>;
  /** null: take.json is missing fields or unreadable (`damaged` says why). */
  manifest: TakeManifest | null;
  damaged: string | null;
  /** WAV files in the folder (for a damaged take: what can still be downloaded). */
  wavFiles: string[];
}

export interface LibraryLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export class TakeLibrary {
  /** Repairs under way, so two listings at once repair a take once. */
  private readonly repairing = new Map<string, Promise<TakeEntry>>();

  constructor(
    private readonly drives: RecordDrives,
    private readonly log: LibraryLog,
    /** The take being recorded now (never repaired or deleted). */
    private readonly activeId: () => string | null,
  ) {}

  /** Every take on every drive mounted now, newest first. Takes left "recording" by a dead writer are repaired on the way. */
  async list(): Promise<TakeEntry[]> {
    const out: TakeEntry[] = [];
    const seen = new Set<string>();
    for (const drive of await this.drives.list()) {
      let names: string[];
      try {
        names = await readdir(drive.dir);
      } catch {
        continue;
      }
      for (const name of names) {
        const dir = path.join(drive.dir, name);
        let entry = await this.read(dir, name, drive);
        if (!entry || seen.has(entry.id)) continue;
        seen.add(entry.id);
        if (entry.manifest?.state === 'recording' && entry.id !== this.activeId()) entry = await this.repairOnce(entry);
        out.push(entry);
      }
    }
    return out.sort((a, b) => (b.manifest?.startedAt ?? '').localeCompare(a.manifest?.startedAt ?? '') || b.id.localeCompare(a.id));
  }

  /** The take with this id, or RecordingError unknown-take. Ids come from list(), never from a path. */
  async find(id: string): Promise<TakeEntry> {
    const t = (await this.list()).find((e) => e.id === id);
    if (!t) throw new RecordingError('unknown-take', `no take ${JSON.stringify(id.slice(0, 80))} on the recording drives; GET /api/recordings (or list-takes) lists them`);
    return t;
  }

  /** Removes the take's folder. The caller has checked that it is neither recording nor playing. */
  async remove(entry: TakeEntry): Promise<void> {
    await rm(entry.dir, { recursive: true, force: true });
    this.log.info({ take: entry.id, dir: entry.dir }, 'take deleted');
  }

  /** Checks every file of the take against its take.json and returns what playback needs. RecordingError bad-take otherwise. */
  async playPlan(entry: TakeEntry): Promise<TakePlayPlan> {
    const m = entry.manifest;
    if (!m) throw new RecordingError('bad-take', `take ${entry.id} cannot be played: ${entry.damaged}`);
    const parts = new Map<number, TakePlayPlan['parts'][number]>();
    for (const f of m.files) {
      const file = path.join(entry.dir, f.name);
      let layout;
      try {
        const fh = await open(file, 'r');
        try {
          const size = (await fh.stat()).size;
          const head = Buffer.alloc(Math.min(HEADER_SCAN_BYTES, size));
          await fh.read(head, 0, head.length, 0);
          layout = parseWavHeader(head, size, f.name);
        } finally {
          await fh.close();
        }
      } catch (err) {
        throw new RecordingError('bad-take', `take ${entry.id} cannot be played: ${(err as Error).message}`);
      }
      if (layout.format !== m.format || layout.rate !== m.rate || layout.channels !== f.channels.length) {
        throw new RecordingError(
          'bad-take',
          `take ${entry.id} cannot be played: ${f.name} is ${layout.channels} ch ${layout.format} ${layout.rate} Hz; its take.json says ${f.channels.length} ch ${m.format} ${m.rate} Hz`,
        );
      }
      const part = parts.get(f.part) ?? { startFrame: f.startFrame, frames: Infinity, files: [] };
      part.frames = Math.min(part.frames, layout.frames, m.state === 'recording' ? Infinity : f.frames);
      part.files.push({ path: file, dataOffset: layout.dataOffset, channels: f.channels });
      parts.set(f.part, part);
    }
    const ordered = [...parts.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p);
    // Parts play back to back: each starts where the one before really ends.
    let start = 0;
    for (const p of ordered) {
      p.startFrame = start;
      start += p.frames;
    }
    if (start === 0) throw new RecordingError('bad-take', `take ${entry.id} cannot be played: it holds no audio`);
    return { id: entry.id, format: m.format, rate: m.rate, sourceChannels: m.sourceChannels, frames: start, parts: ordered };
  }

  private async read(dir: string, name: string, drive: Drive): Promise<TakeEntry | null> {
    let text: string;
    try {
      if (!(await stat(dir)).isDirectory()) return null;
      text = await readFile(path.join(dir, MANIFEST_NAME), 'utf8');
    } catch {
      return null;
    }
    const wavFiles = (await readdir(dir).catch(() => [] as string[])).filter((n) => /\.wav$/i.test(n)).sort();
    const base = { id: name, dir, drive: { mount: drive.mount, kind: drive.kind }, wavFiles };
    try {
      const manifest = parseManifest(text, path.join(dir, MANIFEST_NAME));
      // The folder is the id: a copied or renamed folder is still found by the name it has.
      return { ...base, manifest: { ...manifest, id: name }, damaged: null };
    } catch (err) {
      return { ...base, manifest: null, damaged: (err as Error).message };
    }
  }

  private repairOnce(entry: TakeEntry): Promise<TakeEntry> {
    let p = this.repairing.get(entry.dir);
    if (!p) {
      p = this.repair(entry).finally(() => this.repairing.delete(entry.dir));
      this.repairing.set(entry.dir, p);
    }
    return p;
  }

  /**
   * A take whose writer died: every file of each part is cut to the frames
   * all of them hold, gets its markers and the sizes it really has, and
   * take.json says "recovered". What the last header update had not
   * declared yet (up to recording.syncIntervalMs) is kept if the drive kept it.
   */
  async repair(entry: TakeEntry): Promise<TakeEntry> {
    const m = entry.manifest!;
    try {
      let total = 0;
      const parts = [...new Set(m.files.map((f) => f.part))].sort((a, b) => a - b);
      for (const part of parts) {
        const files = m.files.filter((f) => f.part === part);
        const opened: { fh: FileHandle; head: Buffer; layout: WavLayout; held: number }[] = [];
        try {
          for (const f of files) {
            const fh = await open(path.join(entry.dir, f.name), 'r+');
            const size = (await fh.stat()).size;
            const head = Buffer.alloc(Math.min(HEADER_SCAN_BYTES, size));
            opened.push({ fh, head, layout: null as unknown as WavLayout, held: 0 });
            await fh.read(head, 0, head.length, 0);
            const layout = parseWavHeader(head, size, f.name);
            Object.assign(opened[opened.length - 1]!, { layout, held: Math.floor((size - layout.dataOffset) / layout.blockAlign) });
          }
          const frames = Math.min(...opened.map((s) => s.held));
          const start = total;
          const marks = m.markers.filter((k) => k.frame >= start && k.frame < start + frames).map((k) => ({ frame: k.frame - start, label: k.label }));
          for (const s of opened) {
            const bytes = frames * s.layout.blockAlign;
            await s.fh.truncate(s.layout.dataOffset + bytes);
            const trailer = trailerChunks(marks, bytes);
            if (trailer.length > 0) await s.fh.write(trailer, 0, trailer.length, s.layout.dataOffset + bytes);
            const rf64 = s.layout.container === 'RF64' || s.layout.dataOffset - 8 + bytes + trailer.length > RIFF_MAX;
            if (rf64 && !hasDs64Room(s.head)) throw new RangeError(`${s.layout.dataOffset + bytes} bytes need RF64 and the file has no room for it`);
            writeSizes(s.head, s.layout.dataOffset, s.layout.blockAlign, bytes, trailer.length, rf64);
            await s.fh.write(s.head, 0, s.layout.dataOffset, 0);
            await s.fh.sync();
          }
          for (const f of files) f.frames = frames;
          total += frames;
        } finally {
          for (const s of opened) await s.fh.close().catch(() => undefined);
        }
      }
      m.frames = total;
      m.markers = m.markers.filter((k) => k.frame < total);
      m.state = 'recovered';
      m.endedAt ??= new Date().toISOString();
      m.endReason = 'interrupted (power cut, crash or pulled drive); repaired';
      await writeManifest(entry.dir, m);
      this.log.warn({ take: entry.id, dir: entry.dir, frames: total }, 'take was interrupted; repaired up to the last sample on the drive');
      return entry;
    } catch (err) {
      this.log.warn({ take: entry.id, dir: entry.dir, err: (err as Error).message }, 'interrupted take could not be repaired');
      return { ...entry, damaged: `interrupted and not repairable: ${(err as Error).message}` };
    }
  }
}
