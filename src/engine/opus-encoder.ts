/**
 * One Opus encoder per distinct mix, set up for the lowest delay libopus
 * offers, over the `@discordjs/opus` native binding (libopus 1.3.1, built
 * from the source the package bundles).
 *
 * - Rate: 48000 Hz only. The libopus encoder accepts 8/12/16/24/48 kHz and
 *   nothing else, so a 44.1 or 96 kHz capture cannot be encoded as it is:
 *   opus outputs need capture.rate 48000 (or a resampler in front, which
 *   stagebox does not have). Any other rate is a RangeError.
 * - Channels: 1 or 2.
 * - Frame: 2.5, 5 or 10 ms (120, 240, 480 frames). Longer frames cost delay
 *   for nothing here; below 10 ms Opus is CELT only in any case.
 * - Application OPUS_APPLICATION_RESTRICTED_LOWDELAY: CELT only, no SILK/hybrid
 *   and no delay compensation, so the encoder's lookahead is Fs/400 = 120
 *   samples = 2.5 ms instead of 312 (6.5 ms) for AUDIO/VOIP. The binding
 *   creates its encoder with AUDIO and has no constructor argument for the
 *   application, but libopus accepts OPUS_SET_APPLICATION until the first
 *   frame is encoded and reads the application per frame, so setting it first
 *   thing is the same as creating the encoder with it. The lookahead cannot be
 *   read back (the binding passes ctl values as ints, so a GET ctl would hand
 *   libopus an int for a pointer); the tests measure it instead: the decoded
 *   signal lags the input by exactly {@link OPUS_LOOKAHEAD_FRAMES}.
 * - Bitrate 6000–510000 b/s, default 96000 per stereo mix (48000 mono);
 *   hard CBR by default so every packet of a mix has the same size
 *   (bitrate × frame / 8 bytes), which keeps pacing and the phones' jitter
 *   buffers simple; `vbr: true` for unconstrained VBR.
 *
 * Encodes interleaved Int16 frames of exactly frameFrames × channels samples.
 * The length is checked here on purpose: the binding turns libopus's error for
 * a wrong frame size into a failed Buffer copy that aborts the process.
 * Each encode returns a new Buffer (the binding copies the packet out).
 */
import type { OpusEncoder as NativeOpus } from '@discordjs/opus';
import { OPUS_FRAME_MS, OPUS_RATE, type OpusFrameMs } from '../protocol/codecs';

type NativeOpusClass = typeof import('@discordjs/opus').OpusEncoder;
let nativeClass: NativeOpusClass | null = null;

/**
 * The binding is loaded on the first encoder, not when this module is
 * imported: with it loaded at start-up, alsa-capture's reopen of a capture
 * device asks ALSA for a rate "near" 48000 with an uninitialised direction
 * argument (capture.cc, `int dir;`) that then happens to hold a positive
 * value: the reopened test device came back at 48001 Hz (the device-loss tests catch
 * it). Loading it only when an opus mix is first made keeps a box without
 * opus mixes exactly as before; the real fix belongs in alsa-capture.
 */
function loadNative(): NativeOpusClass {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  nativeClass ??= (require('@discordjs/opus') as typeof import('@discordjs/opus')).OpusEncoder;
  return nativeClass;
}

export { OPUS_FRAME_MS, OPUS_RATE, type OpusFrameMs };
export const OPUS_MIN_BITRATE = 6000;
export const OPUS_MAX_BITRATE = 510000;
/** Encoder lookahead with RESTRICTED_LOWDELAY at 48 kHz: Fs/400 samples (2.5 ms). */
export const OPUS_LOOKAHEAD_FRAMES = OPUS_RATE / 400;

// opus_defines.h
const OPUS_SET_APPLICATION_REQUEST = 4000;
const OPUS_SET_VBR_REQUEST = 4006;
const OPUS_SET_COMPLEXITY_REQUEST = 4010;
const OPUS_SET_SIGNAL_REQUEST = 4024;
const OPUS_APPLICATION_RESTRICTED_LOWDELAY = 2051;
const OPUS_SIGNAL_MUSIC = 3002;

export interface OpusEncoderOptions {
  /** Capture rate in Hz; must be 48000. */
  rate: number;
  channels: number;
  frameMs: number;
  /** b/s, 6000–510000; default 96000 for stereo, 48000 for mono. */
  bitrate?: number;
  /** 0–10, libopus default 10 (best quality, most CPU). */
  complexity?: number;
  /** Unconstrained VBR instead of hard CBR. Default false. */
  vbr?: boolean;
}

export interface ResolvedOpusConfig {
  rate: 48000;
  channels: 1 | 2;
  frameMs: OpusFrameMs;
  /** Frames (samples per channel) per Opus frame. */
  frameFrames: number;
  bitrate: number;
  complexity: number;
  vbr: boolean;
}

/** Checks options and fills defaults; every bad value is a RangeError naming it and what is allowed. */
export function resolveOpusConfig(opts: OpusEncoderOptions): ResolvedOpusConfig {
  if (opts.rate !== OPUS_RATE) {
    throw new RangeError(
      `opus: rate ${opts.rate} Hz is not supported; allowed: 48000 (set capture.rate to 48000; Opus does not encode 44.1 or 96 kHz and stagebox does not resample)`,
    );
  }
  if (opts.channels !== 1 && opts.channels !== 2) {
    throw new RangeError(`opus: channels ${opts.channels} is not supported; allowed: 1 or 2`);
  }
  if (!(OPUS_FRAME_MS as readonly number[]).includes(opts.frameMs)) {
    throw new RangeError(`opus: frame ${opts.frameMs} ms is not supported; allowed: 2.5, 5 or 10 ms`);
  }
  const bitrate = opts.bitrate ?? (opts.channels === 2 ? 96000 : 48000);
  if (!Number.isInteger(bitrate) || bitrate < OPUS_MIN_BITRATE || bitrate > OPUS_MAX_BITRATE) {
    throw new RangeError(`opus: bitrate ${bitrate} b/s is out of range; allowed: integers 6000–510000 b/s`);
  }
  const complexity = opts.complexity ?? 10;
  if (!Number.isInteger(complexity) || complexity < 0 || complexity > 10) {
    throw new RangeError(`opus: complexity ${complexity} is out of range; allowed: integers 0–10`);
  }
  return {
    rate: OPUS_RATE,
    channels: opts.channels,
    frameMs: opts.frameMs as OpusFrameMs,
    frameFrames: (opts.frameMs * OPUS_RATE) / 1000,
    bitrate,
    complexity,
    vbr: opts.vbr ?? false,
  };
}

export class OpusFrameEncoder {
  readonly config: ResolvedOpusConfig;
  /** Int16 samples one encode() takes: frameFrames × channels. */
  readonly samplesPerFrame: number;
  /** Algorithmic delay the decoder output lags the input by, in frames. */
  readonly lookaheadFrames = OPUS_LOOKAHEAD_FRAMES;
  private readonly native: NativeOpus;

  constructor(opts: OpusEncoderOptions) {
    this.config = resolveOpusConfig(opts);
    this.samplesPerFrame = this.config.frameFrames * this.config.channels;
    this.native = new (loadNative())(OPUS_RATE, this.config.channels);
    // Must precede the first encode: libopus refuses a change of application after it.
    this.native.applyEncoderCTL(OPUS_SET_APPLICATION_REQUEST, OPUS_APPLICATION_RESTRICTED_LOWDELAY);
    this.native.applyEncoderCTL(OPUS_SET_SIGNAL_REQUEST, OPUS_SIGNAL_MUSIC);
    this.native.applyEncoderCTL(OPUS_SET_COMPLEXITY_REQUEST, this.config.complexity);
    this.native.applyEncoderCTL(OPUS_SET_VBR_REQUEST, this.config.vbr ? 1 : 0);
    this.native.setBitrate(this.config.bitrate);
  }

  /** Changes the bitrate from the next frame on. */
  setBitrate(bitrate: number): void {
    if (!Number.isInteger(bitrate) || bitrate < OPUS_MIN_BITRATE || bitrate > OPUS_MAX_BITRATE) {
      throw new RangeError(`opus: bitrate ${bitrate} b/s is out of range; allowed: integers 6000–510000 b/s`);
    }
    this.native.setBitrate(bitrate);
    this.config.bitrate = bitrate;
  }

  /** Encodes one frame of interleaved Int16 samples into one Opus packet. */
  encode(frame: Int16Array): Buffer {
    if (frame.length !== this.samplesPerFrame) {
      throw new RangeError(
        `opus: frame has ${frame.length} samples; allowed: exactly ${this.samplesPerFrame} (${this.config.frameFrames} frames × ${this.config.channels} channels)`,
      );
    }
    // The binding takes any ArrayBufferView as its "buffer" (napi_is_buffer), honouring byteOffset, so no copy or wrapper here.
    return this.native.encode(frame as unknown as Buffer);
  }
}
