/**
 * Codecs of the stagebox protocol (docs/protocol.md §5): their wire ids and
 * which stream may use which. Portable: no Node or DOM imports.
 */

/** Codecs a packet can carry: the channel codecs, plus opus, which only personal mixes use. */
export type PacketCodec = 'pcm16' | 'pcm24' | 'deflate' | 'opus';

/** Codec ids of byte 3 of a packet. */
export const CODEC_IDS: Readonly<Record<PacketCodec, number>> = { pcm16: 1, pcm24: 2, deflate: 3, opus: 4 };
/** Codec by id; index 0 is unused. */
export const CODEC_NAMES: readonly (PacketCodec | undefined)[] = [undefined, 'pcm16', 'pcm24', 'deflate', 'opus'];

/** What a raw-channel subscription may ask for. */
export const CHANNEL_CODECS = ['pcm16', 'pcm24', 'deflate'] as const;
export type ChannelCodec = (typeof CHANNEL_CODECS)[number];

/** What a personal mix may ask for. */
export const MIX_CODECS = ['pcm16', 'pcm24', 'opus'] as const;
export type MixCodec = (typeof MIX_CODECS)[number];

/** Opus frame lengths a mix may ask for, ms. */
export const OPUS_FRAME_MS = [2.5, 5, 10] as const;
export type OpusFrameMs = (typeof OPUS_FRAME_MS)[number];
/** Opus bitrates a mix may ask for, kbit/s (libopus's range). */
export const OPUS_BITRATE_KBPS = { min: 6, max: 510 } as const;
/** The only rate Opus mixes are made at, Hz (the box does not resample). */
export const OPUS_RATE = 48000;

/** Bytes per sample on the wire for the PCM codecs (deflate inflates to pcm16). */
export const PCM_BYTES: Readonly<Record<'pcm16' | 'pcm24', number>> = { pcm16: 2, pcm24: 3 };
