import type { ChannelMixParams } from '../engine/mix-kernel';
import { OPUS_RATE, type OpusFrameMs } from '../engine/opus-encoder';
import type { MixRequest } from '../pool/output-registry';
import { ControlError, type Mix } from './control-messages';

/** Opus frame when a mix message names none, ms: half the delay of 10 ms, a quarter of the packet rate of 2.5 ms. */
export const DEFAULT_OPUS_FRAME_MS = 5;
/** Only for a mix that reaches resolveMix unsettled; the service always settles first (stream.opusBitrateKbps). */
const DEFAULT_OPUS_KBPS = 96;

const SILENT: ChannelMixParams = { gainDb: -Infinity, pan: 0, mute: false, solo: false };

/**
 * Turns a validated mix message into what the renderer needs: per-channel
 * params indexed by device channel (unlisted channels silent, null dB = off)
 * and a canonical key, so two clients with the same mix share one render.
 */
export function resolveMix(msg: Mix): MixRequest {
  // settleMixCodec has filled in the box default; a restored mix was saved settled.
  const opus =
    msg.codec === 'opus'
      ? { frameMs: (msg.opus?.frameMs ?? DEFAULT_OPUS_FRAME_MS) as OpusFrameMs, bitrateKbps: msg.opus?.bitrateKbps ?? DEFAULT_OPUS_KBPS }
      : null;
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
    opus: opus ? [opus.frameMs, opus.bitrateKbps] : null,
  });
  return {
    key,
    codec: msg.codec,
    params: { channels, masterDb: msg.masterDb ?? -Infinity, output: msg.output },
    limiter: { enabled: msg.limiter.enabled, ceilingDb: msg.limiter.ceilingDb },
    opus,
  };
}

/**
 * Checks a mix's codec against the box and fills in what the box decides, in
 * place, before the mix is coalesced, applied or saved: an opus mix needs a
 * 48 kHz capture (libopus encodes 8/12/16/24/48 kHz, and stagebox does not
 * resample), and gets the default frame (5 ms) and bitrate
 * (`defaultOpusKbps`, stream.opusBitrateKbps) when it names none, so the saved
 * mix and its render key carry the values in use.
 * Throws ControlError `bad-codec` naming the rate and what is allowed.
 */
export function settleMixCodec(msg: Mix, rate: number, defaultOpusKbps: number): void {
  if (msg.codec !== 'opus') return;
  if (rate !== OPUS_RATE) {
    throw new ControlError(
      'bad-codec',
      `codec "opus" needs a capture rate of ${OPUS_RATE} Hz; the box captures at ${rate} Hz and does not resample; allowed at this rate: "pcm16" or "pcm24"`,
      'mix',
    );
  }
  msg.opus = { frameMs: msg.opus?.frameMs ?? DEFAULT_OPUS_FRAME_MS, bitrateKbps: msg.opus?.bitrateKbps ?? defaultOpusKbps };
}
