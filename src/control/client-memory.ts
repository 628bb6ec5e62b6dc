import type { ClientState, MixJson } from '../appliance/state-schema';
import type { StateStore } from '../appliance/state-store';
import type { Mix } from './control-messages';

/** What a returning client gets back: its raw channels, or its mix. */
export type Recalled = { mode: 'channels'; channels: number[]; codec: 'pcm16' | 'pcm24' | 'deflate' } | { mode: 'mix'; mix: Mix };

const CHANNEL_CODECS = ['pcm16', 'pcm24', 'deflate'] as const;
const MIX_CODECS = ['pcm16', 'pcm24', 'opus'] as const;

export function mixToJson(m: Mix): MixJson {
  return {
    channels: Object.fromEntries(m.channels.map((c) => [String(c.ch), { gainDb: c.gainDb, pan: c.pan, mute: c.mute, solo: c.solo }])),
    masterDb: m.masterDb,
    output: m.output,
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
