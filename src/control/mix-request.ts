import { MAX_GAIN_DB, type ChannelMixParams } from '../engine/mix-kernel';
import { OPUS_RATE, type OpusFrameMs } from '../engine/opus-encoder';
import type { MixRequest } from '../pool/output-registry';
import type { MixContext } from './channel-metadata';
import { ControlError, type Mix } from './control-messages';

/** Opus frame when a mix message names none, ms: half the delay of 10 ms, a quarter of the packet rate of 2.5 ms. */
export const DEFAULT_OPUS_FRAME_MS = 5;
/** Only for a mix that reaches resolveMix unsettled; the service always settles first (stream.opusBitrateKbps). */
const DEFAULT_OPUS_KBPS = 96;

const SILENT: ChannelMixParams = { gainDb: -Infinity, pan: 0, mute: false, solo: false };
/** Below this linear factor a balance attenuation is treated as off (−120 dB). */
const BALANCE_FLOOR = 1e-6;

/**
 * The pair partner of `ch` when the link is mutual; a one-sided link (a
 * hand-edited state file) is ignored rather than trusted.
 */
function partnerOf(ctx: MixContext, ch: number): number | undefined {
  const p = ctx.linkOf(ch);
  return p !== undefined && ctx.linkOf(p) === ch ? p : undefined;
}

/**
 * Checks a mix message against the channel metadata at the moment it arrives:
 * every group it names exists and appears once, and a stereo pair is set
 * through its lower channel only. Throws ControlError; changes nothing.
 */
export function checkMixAgainstMetadata(msg: Mix, ctx: MixContext): void {
  const seen = new Set<string>();
  for (const g of msg.groups) {
    if (!ctx.hasGroup(g.name)) throw new ControlError('bad-group', `group ${JSON.stringify(g.name)} does not exist; the engineer has set no group of that name`, 'mix');
    if (seen.has(g.name)) throw new ControlError('bad-group', `group ${JSON.stringify(g.name)} appears more than once`, 'mix');
    seen.add(g.name);
  }
  for (const c of msg.channels) {
    const p = partnerOf(ctx, c.ch);
    if (p !== undefined && p < c.ch) {
      throw new ControlError('bad-channel', `channel ${c.ch} is the right side of the stereo pair ${p}/${c.ch}; set the pair through channel ${p}`, 'mix');
    }
  }
}

function balanceDb(factor: number): number {
  return factor < BALANCE_FLOOR ? -Infinity : 20 * Math.log10(factor);
}

/**
 * Turns a validated mix message into what the renderer needs: per-channel
 * params indexed by device channel, with links, groups and the box-wide
 * ceiling applied, and a canonical key of the result, so two clients whose
 * mixes come out the same share one render.
 *
 * Resolution is lenient, because metadata can change under a saved mix: a
 * group that no longer exists is ignored and a pair's right side follows its
 * left. Rules (docs/protocol.md, section 3.1 `mix`):
 *  - channel gain + group gain, capped at +10 dB; off (null) on either side is off;
 *  - a group's mute mutes its members;
 *  - a stereo pair is one strip: its lower channel's entry sets both, the left
 *    side hard left and the right hard right, and its pan is a cosine balance
 *    (pan p > 0 scales the left side by cos(p·π/2): +0.5 is −3 dB, +1 silences
 *    it; the other side stays at 0 dB);
 *  - the box-wide ceiling turns every mix's limiter on and lowers its ceiling to it.
 */
export function resolveMix(msg: Mix, ctx: MixContext): MixRequest {
  const groupGain = new Map(msg.groups.map((g) => [g.name, g]));
  const channels: ChannelMixParams[] = [];
  const set = (ch: number, p: ChannelMixParams) => {
    while (channels.length <= ch) channels.push(SILENT);
    channels[ch] = p;
  };
  const strip = (ch: number, gainDb: number | null, extraDb: number, pan: number, mute: boolean, solo: boolean) => {
    const group = ctx.groupOf(ch);
    const g = group !== undefined ? groupGain.get(group) : undefined;
    const groupDb = g ? g.gainDb : 0;
    const gain = gainDb === null || groupDb === null ? -Infinity : Math.min(MAX_GAIN_DB, gainDb + groupDb + extraDb);
    set(ch, { gainDb: gain, pan, mute: mute || (g?.mute ?? false), solo });
  };
  for (const c of msg.channels) {
    const p = partnerOf(ctx, c.ch);
    if (p === undefined) {
      strip(c.ch, c.gainDb, 0, c.pan, c.mute, c.solo);
      continue;
    }
    if (p < c.ch) continue; // the pair's lower channel governs it
    const leftDb = balanceDb(c.pan > 0 ? Math.cos((c.pan * Math.PI) / 2) : 1);
    const rightDb = balanceDb(c.pan < 0 ? Math.cos((-c.pan * Math.PI) / 2) : 1);
    strip(c.ch, c.gainDb, leftDb, -1, c.mute, c.solo);
    strip(p, c.gainDb, rightDb, 1, c.mute, c.solo);
  }
  const boxMax = ctx.maxOutputDb;
  const limiter =
    boxMax === null
      ? { enabled: msg.limiter.enabled, ceilingDb: msg.limiter.ceilingDb }
      : { enabled: true, ceilingDb: msg.limiter.enabled ? Math.min(msg.limiter.ceilingDb, boxMax) : boxMax };
  const masterDb = msg.masterDb ?? -Infinity;
  // settleMixCodec has filled in the box default; a restored mix was saved settled.
  const opus =
    msg.codec === 'opus'
      ? { frameMs: (msg.opus?.frameMs ?? DEFAULT_OPUS_FRAME_MS) as OpusFrameMs, bitrateKbps: msg.opus?.bitrateKbps ?? DEFAULT_OPUS_KBPS }
      : null;
  const key = JSON.stringify({
    codec: msg.codec,
    output: msg.output,
    masterDb,
    limiter: [limiter.enabled, limiter.ceilingDb],
    // -Infinity serialises as null; both mean off.
    channels: channels.map((c) => [c.gainDb, c.pan, c.mute, c.solo]),
    opus: opus ? [opus.frameMs, opus.bitrateKbps] : null,
  });
  return { key, codec: msg.codec, params: { channels, masterDb, output: msg.output }, limiter, opus };
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
