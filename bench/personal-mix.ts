/** The personal mixes bench clients ask for (scenarios mix-pcm, mix-opus and wifi). */

/** Channels of the built-in test signal every scenario streams. */
const SOURCE_CHANNELS = 32;
/** Opus frame of the mix-opus scenario, ms (the issue's: 5 ms, at the box default bitrate). */
const BENCH_OPUS_FRAME_MS = 5;

/** A distinct, plausible monitor mix for musician `i`: every channel up, own levels and pans. */
export function personalMix(i: number, codec: 'pcm16' | 'opus' = 'pcm16'): object {
  return {
    codec,
    ...(codec === 'opus' ? { opus: { frameMs: BENCH_OPUS_FRAME_MS } } : {}),
    output: 'stereo',
    channels: Array.from({ length: SOURCE_CHANNELS }, (_, ch) => ({
      ch,
      gainDb: -((i * 7 + ch * 3) % 24),
      pan: (((i + ch) % 9) - 4) / 4,
    })),
  };
}
