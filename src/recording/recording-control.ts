import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { PlaybackBody, RecordingMessage } from './recording-messages';
import { RecordingError } from './recording-error';
import { Recorder, type RecordingStatus, type StartRequest, type TakeView } from './recorder';
import type { PlaybackStatus, Soundcheck } from './soundcheck';
import type { TakeEntry } from './take-library';

/** How long a signed download link works, ms. */
export const LINK_TTL_MS = 3600_000;

/** A take in a listing: its view, and each file with its size, its download URL (with the token) and a signed link (without). */
export interface TakeListing extends Omit<TakeView, 'files'> {
  files: { name: string; bytes: number | null; url: string; link: string }[];
  /** Why the take cannot be read (damaged take.json, unrepairable files); null when it can. */
  damaged: string | null;
}

/**
 * The engineer's recording and virtual soundcheck requests, as the admin
 * WebSocket messages and the HTTP API both make them: one place that turns
 * a parsed request into recorder and soundcheck calls and their answers.
 */
export class RecordingControl {
  /** Signs download links; made anew at every start, so a restart voids every link. */
  private readonly linkKey = randomBytes(32);

  constructor(
    readonly recorder: Recorder,
    readonly soundcheck: Soundcheck,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * `url` with an expiry and a signature: what a browser link needs, since a
   * link cannot carry an Authorization header. Only a listing, which needs
   * the token, hands these out; each opens that one file for LINK_TTL_MS.
   */
  signedLink(url: string): string {
    const expires = this.now() + LINK_TTL_MS;
    return `${url}?expires=${expires}&sig=${this.sign(url, expires)}`;
  }

  /** True when `sig` signs `pathname` until `expires` and that time has not passed. */
  linkValid(pathname: string, expires: string | null, sig: string | null): boolean {
    if (expires === null || sig === null || !/^\d{1,15}$/.test(expires) || !/^[0-9a-f]{64}$/.test(sig)) return false;
    if (Number(expires) < this.now()) return false;
    return timingSafeEqual(Buffer.from(this.sign(pathname, Number(expires)), 'hex'), Buffer.from(sig, 'hex'));
  }

  private sign(pathname: string, expires: number): string {
    return createHmac('sha256', this.linkKey).update(`${pathname}\n${expires}`).digest('hex');
  }

  /** URL path that downloads one file of a take (with the admin token). */
  static fileUrl(take: string, file: string): string {
    return `/api/recordings/${encodeURIComponent(take)}/files/${encodeURIComponent(file)}`;
  }

  start(req: StartRequest): Promise<TakeView> {
    return this.recorder.startTake(req);
  }

  stop(): Promise<TakeView> {
    return this.recorder.stopTake();
  }

  marker(label: string | undefined): { take: string; seconds: number; label: string } {
    return this.recorder.addMarker(label);
  }

  async list(): Promise<{ recording: RecordingStatus; playback: PlaybackStatus; drives: object[]; takes: TakeListing[] }> {
    const entries = await this.recorder.takes.list();
    const takes = await Promise.all(entries.map((e) => this.listing(e)));
    const drives = (await this.recorder.drives()).map((d) => ({ mount: d.mount, kind: d.kind, fsType: d.fsType, writable: d.writable, freeBytes: d.freeBytes, totalBytes: d.totalBytes }));
    return { recording: this.recorder.status(), playback: this.soundcheck.status(), drives, takes };
  }

  async take(id: string): Promise<TakeListing> {
    return this.listing(await this.recorder.takes.find(id));
  }

  async remove(id: string): Promise<void> {
    await this.recorder.deleteTake(id);
  }

  /** The path of one file of a take, for download; only names the take lists are served. */
  async file(id: string, name: string): Promise<string> {
    const entry = await this.recorder.takes.find(id);
    const names = entry.manifest ? [...new Set([...entry.manifest.files.map((f) => f.name), ...entry.wavFiles])] : entry.wavFiles;
    if (!names.includes(name)) {
      throw new RecordingError('unknown-take', `take ${id} has no file ${JSON.stringify(name.slice(0, 80))}; its files: ${names.join(', ')}`);
    }
    return path.join(entry.dir, name);
  }

  playback(req: PlaybackBody): Promise<PlaybackStatus> {
    switch (req.action) {
      case 'play':
        return this.soundcheck.play({ take: req.take, positionS: req.positionS, loop: req.loop });
      case 'pause':
        return this.soundcheck.pause();
      case 'seek':
        return this.soundcheck.seek(req.positionS!);
      case 'loop':
        return this.soundcheck.loop({ loop: req.loop!, startS: req.startS, endS: req.endS });
      case 'live':
        return this.soundcheck.live();
    }
  }

  /** Answers one admin WebSocket message (docs/protocol.md, "Recording"); throws RecordingError. */
  async handle(msg: RecordingMessage): Promise<object> {
    switch (msg.type) {
      case 'record-start': {
        const { type: _type, ...req } = msg;
        return { type: 'recording-started', take: await this.start(req) };
      }
      case 'record-stop':
        return { type: 'recording-stopped', take: await this.stop() };
      case 'record-marker':
        return { type: 'marker-added', ...this.marker(msg.label) };
      case 'list-takes':
        return { type: 'takes', ...(await this.list()) };
      case 'delete-take':
        await this.remove(msg.take);
        return { type: 'take-deleted', take: msg.take };
      case 'playback': {
        const { type: _type, ...req } = msg;
        return { type: 'playback-state', ...(await this.playback(req)) };
      }
    }
  }

  private async listing(e: TakeEntry): Promise<TakeListing> {
    const names = e.manifest ? e.manifest.files.map((f) => f.name) : e.wavFiles;
    const files = await Promise.all(
      names.map(async (name) => {
        const url = RecordingControl.fileUrl(e.id, name);
        return { name, bytes: await stat(path.join(e.dir, name)).then((s) => s.size, () => null), url, link: this.signedLink(url) };
      }),
    );
    const view: Omit<TakeView, 'files'> = e.manifest
      ? (({ files: _f, ...rest }) => rest)(Recorder.viewOf(e.manifest, e.dir, e.drive.mount))
      : { id: e.id, name: '', state: 'damaged', drive: e.drive.mount, dir: e.dir, layout: '', format: '', rate: 0, channels: [], startedAt: null, seconds: 0, markers: [], endReason: null, error: e.damaged };
    // The take being recorded is listed as it is now, not as its take.json said at the last marker.
    if (e.id === this.recorder.activeId) {
      const live = this.recorder.status().take;
      if (live) Object.assign(view, { state: live.state, seconds: live.seconds, markers: live.markers });
    }
    return { ...view, files, damaged: e.damaged };
  }
}
