import type { ChannelMeta } from '../state/state-schema';
import type { StateStore } from '../state/state-store';
import { ControlError, type SetMetadata } from './control-messages';

/** One channel as clients see it in the "metadata" message. */
export interface ChannelInfo {
  ch: number;
  name?: string;
  color?: string;
  /** The other channel of its stereo pair. */
  link?: number;
  group?: string;
}

/** What mix resolution needs to know about the channels. */
export interface MixContext {
  /** The other channel of `ch`'s stereo pair, if linked. */
  linkOf(ch: number): number | undefined;
  groupOf(ch: number): string | undefined;
  hasGroup(name: string): boolean;
  /** Box-wide output ceiling, dBFS; null = none. */
  readonly maxOutputDb: number | null;
}

/**
 * The engineer's channel metadata (names, colours, stereo links, groups) and
 * box-wide output limit: validated as a whole when the admin replaces it,
 * persisted in the state document, and read by mix resolution.
 */
export class ChannelMetadata implements MixContext {
  private byCh = new Map<number, ChannelInfo>();
  private groupNames = new Set<string>();
  maxOutputDb: number | null = null;

  /** `store` null: the state dir is unusable; metadata lives until the service stops. */
  constructor(private readonly store: StateStore | null) {
    if (!store) return;
    const doc = store.get();
    const loaded: ChannelInfo[] = Object.entries(doc.channels).map(([ch, m]) => ({ ch: Number(ch), ...m }));
    this.index(loaded);
    this.maxOutputDb = doc.box?.maxOutputDb ?? null;
  }

  linkOf(ch: number): number | undefined {
    return this.byCh.get(ch)?.link;
  }

  groupOf(ch: number): string | undefined {
    return this.byCh.get(ch)?.group;
  }

  hasGroup(name: string): boolean {
    return this.groupNames.has(name);
  }

  /** Channels in ascending order. */
  list(): ChannelInfo[] {
    return [...this.byCh.values()].sort((a, b) => a.ch - b.ch);
  }

  /** The message every client gets after welcome and whenever this changes. */
  groups(): string[] {
    return [...this.groupNames].sort();
  }

  message(): object {
    return { type: 'metadata', channels: this.list(), groups: this.groups(), maxOutputDb: this.maxOutputDb };
  }

  /**
   * Replaces all metadata with `msg`, or throws ControlError('bad-metadata')
   * naming the first problem and changes nothing. A link given on one side of
   * a pair is made mutual; both sides of a pair must be in the same group
   * (a pair moves as one).
   */
  replace(msg: SetMetadata, channelCount: number | null): void {
    const next = new Map<number, ChannelInfo>();
    const bad = (text: string) => new ControlError('bad-metadata', text, 'set-metadata');
    for (const c of msg.channels) {
      if (channelCount !== null && c.ch >= channelCount) throw bad(`channel ${c.ch} does not exist; the device has ${channelCount} channels (0-${channelCount - 1})`);
      if (next.has(c.ch)) throw bad(`channel ${c.ch} appears more than once`);
      const info: ChannelInfo = { ch: c.ch };
      if (c.name !== undefined && c.name !== '') info.name = c.name;
      if (c.color !== undefined) info.color = c.color.toLowerCase();
      if (c.group !== undefined) info.group = c.group;
      if (c.link !== undefined) info.link = c.link;
      next.set(c.ch, info);
    }
    for (const c of [...next.values()]) {
      if (c.link === undefined) continue;
      const p = c.link;
      if (p === c.ch) throw bad(`channel ${c.ch} cannot be linked to itself`);
      if (channelCount !== null && p >= channelCount) throw bad(`channel ${c.ch} is linked to channel ${p}, which does not exist; the device has ${channelCount} channels`);
      const partner = next.get(p);
      if (partner === undefined) next.set(p, { ch: p, link: c.ch, ...(c.group !== undefined ? { group: c.group } : {}) });
      else if (partner.link === undefined) partner.link = c.ch;
      else if (partner.link !== c.ch) throw bad(`channel ${c.ch} is linked to ${p}, but ${p} is linked to ${partner.link}; a channel belongs to one stereo pair`);
    }
    for (const c of next.values()) {
      if (c.link === undefined) continue;
      const partner = next.get(c.link)!;
      if (partner.group !== c.group) {
        throw bad(
          `channels ${Math.min(c.ch, c.link)} and ${Math.max(c.ch, c.link)} are a stereo pair but in groups ${JSON.stringify(c.group ?? null)} and ${JSON.stringify(partner.group ?? null)}; a pair moves as one, so put both in the same group`,
        );
      }
    }
    this.index([...next.values()]);
    this.store?.update((draft) => {
      draft.channels = Object.fromEntries(this.list().map(({ ch, ...meta }) => [String(ch), meta satisfies ChannelMeta]));
    });
  }

  setMaxOutputDb(db: number | null): void {
    this.maxOutputDb = db;
    this.store?.update((draft) => {
      draft.box = { maxOutputDb: db };
    });
  }

  private index(channels: ChannelInfo[]): void {
    this.byCh = new Map(channels.map((c) => [c.ch, c]));
    this.groupNames = new Set(channels.flatMap((c) => (c.group !== undefined ? [c.group] : [])));
  }
}
