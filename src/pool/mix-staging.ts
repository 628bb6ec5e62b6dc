/**
 * Control changes to a mix are staged beside it and copied into its render
 * state only between two of its periods, never while a pool worker may be
 * rendering it (docs/architecture.md, "Mixing in the send pool").
 */
import { configureLimiter } from '../engine/limiter';
import { setMixTargets } from '../engine/mix-kernel';
import { SLAB_MAX_CHANNELS } from '../engine/mix-slab';
import { OpusStream } from '../engine/opus-stream';
import { CODEC_IDS } from '../protocol';
import type { MixRequest, RegisteredMix } from './output-types';

/** (√5 − 1) / 2: multiples of it mod 1 spread evenly over [0, 1) whatever the count. */
const GOLDEN = 0.6180339887498949;

/** Stages `req` for `mix`: nothing reaches the render state before {@link commitMix}. Throws (with nothing staged) on a bad Opus setting. */
export function stageMix(mix: RegisteredMix, req: MixRequest, periodFrames: number): void {
  // The Opus stream first: it is the step that can refuse (a bad frame or bitrate), and then nothing has changed.
  const opus = opusStreamFor(mix, req, periodFrames);
  setMixTargets(mix.stage, req.params);
  mix.stagedOpus = opus;
  mix.stagedCodecId = CODEC_IDS[req.codec];
  mix.stagedLimiter = req.limiter;
  let audible = 0;
  for (let c = 0; c < SLAB_MAX_CHANNELS; c++) if (mix.stage.tgtL[c] !== 0 || mix.stage.tgtR[c] !== 0) audible++;
  mix.work = Math.max(1, audible * mix.stage.outChannels);
  mix.dirty = true;
}

/** Copies what is staged into the render state. Call only when no render of this mix is in flight. */
export function commitMix(mix: RegisteredMix): void {
  mix.state.tgtL.set(mix.stage.tgtL);
  mix.state.tgtR.set(mix.stage.tgtR);
  mix.state.outChannels = mix.stage.outChannels;
  configureLimiter(mix.limiter, mix.stagedLimiter);
  mix.codecId = mix.stagedCodecId;
  mix.opus = mix.stagedOpus;
  mix.dirty = false;
}

/**
 * The mix's Opus stream for `req`: kept when frame and channel count are
 * unchanged (a bitrate change applies from the next frame), new otherwise
 * (an encoder's channel count is fixed, and a new frame size restarts the
 * re-blocker), none for a pcm mix.
 */
function opusStreamFor(mix: RegisteredMix, req: MixRequest, periodFrames: number): OpusStream | null {
  if (req.codec !== 'opus' || !req.opus) return null;
  const channels = req.params.output === 'mono' ? 1 : 2;
  const bitrate = req.opus.bitrateKbps * 1000;
  const cur = mix.dirty ? mix.stagedOpus : mix.opus;
  if (cur && cur.channels === channels && cur.frameMs === req.opus.frameMs) {
    if (cur.encoder.config.bitrate !== bitrate) cur.setBitrate(bitrate);
    return cur;
  }
  // Spread the mixes' frame starts over the frame (golden-ratio steps by id), so that each period
  // encodes about mixes × period / frame frames instead of every mix encoding in the same period.
  const frameFrames = req.opus.frameMs * 48;
  const phase = Math.floor(((mix.id * GOLDEN) % 1) * frameFrames);
  return new OpusStream({ channels, frameMs: req.opus.frameMs, bitrate, periodFrames, phase });
}
