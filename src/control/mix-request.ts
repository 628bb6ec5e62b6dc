import type { ChannelMixParams } from '../engine/mix-kernel';
import type { MixRequest } from '../pool/output-registry';
import type { Mix } from './control-messages';

const SILENT: ChannelMixParams = { gainDb: -Infinity, pan: 0, mute: false, solo: false };

/**
 * Turns a validated mix message into what the renderer needs: per-channel
 * params indexed by device channel (unlisted channels silent, null dB = off)
 * and a canonical key, so two clients with the same mix share one render.
 */
export function resolveMix(msg: Mix): MixRequest {
  const sorted = [...msg.channels].sort((a, b) => a.ch - b.ch);
  const len = sorted.length > 0 ? sorted[sorted.length - 1]!.ch + 1 : 0;
  const channels: ChannelMixParams[] = Array.from({ length: len }, () => SILENT);
  for (const c of sorted) channels[c.ch] = { gainDb: c.gainDb ?? -Infinity, pan: c.pan, mute: c.mute, solo: c.solo };
  const key = JSON.stringify({
    codec: msg.codec,
    output: msg.output,
    masterDb: msg.masterDb,
    limiter: [msg.limiter.enabled, msg.limiter.ceilingDb],
    channels: sorted.map((c) => [c.ch, c.gainDb, c.pan, c.mute, c.solo]),
  });
  return {
    key,
    codec: msg.codec,
    params: { channels, masterDb: msg.masterDb ?? -Infinity, output: msg.output },
    limiter: { enabled: msg.limiter.enabled, ceilingDb: msg.limiter.ceilingDb },
  };
}
