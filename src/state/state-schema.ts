import { z } from 'zod';

/**
 * The persisted state document (version 1): channel metadata and, per client,
 * its mode, codec, live mix and named presets. Everything read from disk goes
 * through `stateSchema` once in StateStore.load(); the rest of the service
 * works with the inferred types.
 *
 * Objects are strict so a file written by a newer firmware with extra keys is
 * moved aside rather than silently losing those keys on the next save.
 */

export const STATE_VERSION = 1 as const;

/** Channel numbers as record keys: canonical non-negative integers ("0", "12"; not "012", "1.0"). */
const channelKey = z.string().regex(/^(0|[1-9]\d{0,3})$/, 'a channel number as a string ("1", "12")');
const channelNumber = z.number().int().min(0).max(9999);
/** Accepts what Date#toISOString() writes, and offsets for hand-edited files. */
const isoTime = z.string().datetime({ offset: true });
/** dB value where null stands for -infinity (a fader all the way down). */
const dbOrMinusInf = z.number().max(10).nullable();

export const mixChannelSchema = z
  .object({
    /** dB, at most +10; null = -inf (fully down). */
    gainDb: dbOrMinusInf,
    /** -1 (left) … +1 (right). */
    pan: z.number().min(-1).max(1),
    mute: z.boolean(),
    solo: z.boolean(),
  })
  .strict();

export const mixSchema = z
  .object({
    channels: z.record(channelKey, mixChannelSchema),
    /** dB, at most +10; null = -inf. */
    masterDb: dbOrMinusInf,
    output: z.enum(['stereo', 'mono']),
    /** Group faders by group name (absent in files from before groups). */
    groups: z.record(z.string().min(1).max(32), z.object({ gainDb: dbOrMinusInf, mute: z.boolean() }).strict()).optional(),
    limiter: z
      .object({
        enabled: z.boolean(),
        /** dBFS, -60 … 0. */
        ceilingDb: z.number().min(-60).max(0),
      })
      .strict(),
    /** Opus frame and bitrate, for a mix saved with codec "opus". */
    opus: z
      .object({
        frameMs: z.union([z.literal(2.5), z.literal(5), z.literal(10)]),
        bitrateKbps: z.number().int().min(6).max(510),
      })
      .strict()
      .optional(),
  })
  .strict();
export type MixJson = z.infer<typeof mixSchema>;

export const channelMetaSchema = z
  .object({
    name: z.string().max(32).optional(),
    color: z.string().regex(/^#[0-9a-fA-F]{6}$/, 'a colour as "#rrggbb"').optional(),
    /** Partner channel of a stereo pair. */
    link: channelNumber.optional(),
    group: z.string().max(32).optional(),
  })
  .strict();
export type ChannelMeta = z.infer<typeof channelMetaSchema>;

export const clientStateSchema = z
  .object({
    name: z.string().max(64),
    /** Last time the client was connected; the oldest are forgotten first when over the limit. */
    lastSeen: isoTime,
    mode: z.enum(['channels', 'mix']),
    codec: z.string().min(1).max(32),
    /** Channels streamed in 'channels' mode. */
    channels: z.array(channelNumber).max(1024).optional(),
    mix: mixSchema.optional(),
    presets: z.record(z.string().min(1).max(64), mixSchema),
  })
  .strict();
export type ClientState = z.infer<typeof clientStateSchema>;

export const stateSchema = z
  .object({
    version: z.literal(STATE_VERSION),
    /** When the document was last written (set by the store on each save). */
    savedAt: isoTime,
    channels: z.record(channelKey, channelMetaSchema),
    /** Box-wide settings the admin made (absent until the first). */
    box: z
      .object({
        /** Every mix's limiter holds at most this level, dBFS; null = no box-wide limit. */
        maxOutputDb: z.number().min(-60).max(0).nullable(),
      })
      .strict()
      .optional(),
    clients: z.record(z.string().min(1).max(128), clientStateSchema),
  })
  .strict();
export type StateDoc = z.infer<typeof stateSchema>;

/** A fresh document: no channel metadata, no clients. */
export function emptyState(now: Date = new Date()): StateDoc {
  return { version: STATE_VERSION, savedAt: now.toISOString(), channels: {}, clients: {} };
}
