import type { ClientState, MixJson } from '../state/state-schema';
import type { StateStore } from '../state/state-store';
import { CHANNEL_CODECS, MIX_CODECS, type ChannelCodec } from '../protocol/codecs';
import type { Mix } from './control-messages';

/** What a returning client gets back: its raw channels, or its mix. */
export type Recalled = { mode: 'channels'; channels: number[]; codec: ChannelCodec } | { mode: 'mix'; mix: Mix };

/** Presets one client may keep. */
export const MAX_PRESETS = 32;

export function mixToJson(m: Mix): MixJson {
  return {
    channels: Object.fromEntries(m.channels.map((c) => [String(c.ch), { gainDb: c.gainDb, pan: c.pan, mute: c.mute, solo: c.solo }])),
    masterDb: m.masterDb,
    output: m.output,
    groups: Object.fromEntries(m.groups.map((g) => [g.name, { gainDb: g.gainDb, mute: g.mute }])),
    limiter: { enabled: m.limiter.enabled, ceilingDb: m.limiter.ceilingDb },
    // Settled (settleMixCodec) before it is saved, so both values are there.
    ...(m.codec === 'opus' && m.opus?.bitrateKbps !== undefined ? { opus: { frameMs: m.opus.frameMs as 2.5 | 5 | 10, bitrateKbps: m.opus.bitrateKbps } } : {}),
  };
}

export function mixFromJson(j: MixJson, codec: string): Mix | null {
  if (!(MIX_CODECS as readonly string[]).includes(codec)) return null;
  return {
    type: 'mix',
    codec: codec as Mix['codec'],
    output: j.output,
    masterDb: j.masterDb,
    channels: Object.entries(j.channels).map(([ch, c]) => ({ ch: Number(ch), gainDb: c.gainDb, pan: c.pan, mute: c.mute, solo: c.solo })),
    groups: Object.entries(j.groups ?? {}).map(([name, g]) => ({ name, gainDb: g.gainDb, mute: g.mute })),
    limiter: { ...j.limiter },
    ...(codec === 'opus' && j.opus ? { opus: { ...j.opus } } : {}),
  };
}

/**
 * The old design's "RF mode", kept on disk: each client's mode, channels or
 * mix and codec, saved when it changes and recalled when the same clientId
 * says hello again (after leaving Wi-Fi range, a restart, a power cut).
 */
export class ClientMemory {
  constructor(private readonly store: StateStore) {}

  recall(clientId: string): Recalled | null {
    const c = this.store.get().clients[clientId];
    if (!c) return null;
    if (c.mode === 'mix' && c.mix) {
      const mix = mixFromJson(c.mix as MixJson, c.codec);
      return mix ? { mode: 'mix', mix } : null;
    }
    if (c.mode === 'channels' && c.channels && c.channels.length > 0 && (CHANNEL_CODECS as readonly string[]).includes(c.codec)) {
      return { mode: 'channels', channels: [...c.channels], codec: c.codec as (typeof CHANNEL_CODECS)[number] };
    }
    return null;
  }

  rememberChannels(clientId: string, name: string, channels: readonly number[], codec: string): void {
    this.save(clientId, name, (c) => ({ ...c, mode: 'channels', codec, channels: [...channels], mix: undefined }));
  }

  rememberMix(clientId: string, name: string, mix: Mix): void {
    this.save(clientId, name, (c) => ({ ...c, mode: 'mix', codec: mix.codec, mix: mixToJson(mix), channels: undefined }));
  }

  /** Saved clients, for the admin's list. */
  all(): { clientId: string; name: string; lastSeen: string; mode: string; codec: string }[] {
    return Object.entries(this.store.get().clients).map(([clientId, c]) => ({ clientId, name: c.name, lastSeen: c.lastSeen, mode: c.mode, codec: c.codec }));
  }

  known(clientId: string): boolean {
    return this.store.get().clients[clientId] !== undefined;
  }

  /** The display name the client last gave, or "" if unknown. */
  nameOf(clientId: string): string {
    return this.store.get().clients[clientId]?.name ?? '';
  }

  presetNames(clientId: string): string[] {
    return Object.keys(this.store.get().clients[clientId]?.presets ?? {}).sort();
  }

  /** Saves `mix` as the client's preset `name` (replacing one of that name); false when the client already has MAX_PRESETS others. */
  savePreset(clientId: string, name: string, mix: Mix): boolean {
    const presets = this.store.get().clients[clientId]?.presets ?? {};
    if (!Object.hasOwn(presets, name) && Object.keys(presets).length >= MAX_PRESETS) return false;
    this.save(clientId, this.nameOf(clientId), (c) => ({ ...c, presets: { ...c.presets, [name]: mixToJson(mix) } }));
    return true;
  }

  /** The preset as a mix in `codec`, or null if the client has none of that name. */
  loadPreset(clientId: string, name: string, codec: Mix['codec']): Mix | null {
    const presets = this.store.get().clients[clientId]?.presets;
    if (!presets || !Object.hasOwn(presets, name)) return null;
    return mixFromJson(presets[name] as MixJson, codec);
  }

  deletePreset(clientId: string, name: string): boolean {
    const c = this.store.get().clients[clientId];
    if (!c || !Object.hasOwn(c.presets, name)) return false;
    this.save(clientId, c.name, (prev) => {
      const presets = { ...prev.presets };
      delete presets[name];
      return { ...prev, presets };
    });
    return true;
  }

  /** Marks the client as seen now (on hello), so the bound forgets others first. */
  touch(clientId: string, name: string): void {
    if (!this.store.get().clients[clientId]) return;
    this.save(clientId, name, (c) => c);
  }

  private save(clientId: string, name: string, change: (c: ClientState) => ClientState): void {
    this.store.updateClient(clientId, (prev) => {
      const base: ClientState = prev ?? { name, lastSeen: new Date().toISOString(), mode: 'channels', codec: 'pcm16', presets: {} };
      const next = change({ ...base, name, lastSeen: new Date().toISOString() });
      // Optional keys set to undefined would not survive a save and reload; drop them now.
      if (next.mix === undefined) delete next.mix;
      if (next.channels === undefined) delete next.channels;
      return next;
    });
  }
}
