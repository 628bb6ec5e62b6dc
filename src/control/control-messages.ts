import { z } from 'zod';
import { CLIENT_ID_MAX_LENGTH, CLIENT_ID_PATTERN, CLIENT_ID_RULE } from '../protocol/client-id';
import { CHANNEL_CODECS, MIX_CODECS, OPUS_BITRATE_KBPS, OPUS_FRAME_MS } from '../protocol/codecs';
import { MAX_REDUNDANCY, MAX_SPACING } from '../protocol/datagram';
import { AUDIO_TRANSPORTS, PROTOCOL_VERSION, type ClientMessageType, type ErrorCode } from '../protocol/messages';
import { RECORDING_MESSAGE_SCHEMAS } from '../recording/recording-messages';

/**
 * Client → box control messages (JSON text frames), parsed once here at the
 * edge. docs/protocol.md describes each; keep them in step.
 */

export const SUPPORTED_PROTOCOLS = [PROTOCOL_VERSION] as const;

const clientId = z.string().min(1).max(CLIENT_ID_MAX_LENGTH).regex(CLIENT_ID_PATTERN, CLIENT_ID_RULE);

export const helloSchema = z
  .object({
    type: z.literal('hello'),
    protocol: z.number().int(),
    clientId,
    name: z.string().max(64).default(''),
  })
  .strict();

/** How this connection's audio travels, and the datagrams' redundancy; optional in subscribe and mix. */
const transportFields = {
  transport: z.enum(AUDIO_TRANSPORTS).optional(),
  redundancy: z.number().int().min(0).max(MAX_REDUNDANCY).optional(),
  spacing: z.number().int().min(1).max(MAX_SPACING).optional(),
};

/** Chooses the audio transport without touching the subscription or the mix (a restored mix stays as it is). */
export const transportSchema = z
  .object({
    type: z.literal('transport'),
    transport: z.enum(AUDIO_TRANSPORTS),
    redundancy: z.number().int().min(0).max(MAX_REDUNDANCY).optional(),
    spacing: z.number().int().min(1).max(MAX_SPACING).optional(),
  })
  .strict();

/** A browser's offer for a WebRTC data channel; the SDP itself is checked by transport/sdp-offer.ts (bad-sdp). */
export const webrtcOfferSchema = z
  .object({
    type: z.literal('webrtc-offer'),
    sdp: z.string(),
  })
  .strict();

export const subscribeSchema = z
  .object({
    type: z.literal('subscribe'),
    ...transportFields,
    channels: z.array(z.number().int().min(0).max(63)).min(1).max(64),
    codec: z.enum(CHANNEL_CODECS).default('pcm16'),
  })
  .strict();

export const unsubscribeSchema = z.object({ type: z.literal('unsubscribe') }).strict();

export const pingSchema = z
  .object({
    type: z.literal('ping'),
    id: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    /** Client's own clock, echoed back untouched. */
    t: z.number().finite().optional(),
  })
  .strict();

/** A dB value for a fader: a finite number up to +10, or null for off (−∞). */
const faderDb = z.number().finite().max(10).nullable();

export { MIX_CODECS };

/**
 * Opus settings of a mix. bitrateKbps left out means the box default
 * (stream.opusBitrateKbps), filled in by settleMixCodec before the mix is used.
 */
const mixOpusSchema = z
  .object({
    frameMs: z
      .number()
      .refine((v) => (OPUS_FRAME_MS as readonly number[]).includes(v), { message: `allowed: ${OPUS_FRAME_MS.slice(0, -1).join(', ')} or ${OPUS_FRAME_MS[OPUS_FRAME_MS.length - 1]} (ms)` })
      .default(5),
    bitrateKbps: z.number().int().min(OPUS_BITRATE_KBPS.min).max(OPUS_BITRATE_KBPS.max).optional(),
  })
  .strict();

/** A group name as the engineer types it: "drums", "Lead vox". */
const displayName = z
  .string()
  .min(1)
  .max(32)
  // eslint-disable-next-line no-control-regex
  .regex(/^\S(.*\S)?$/, 'no leading or trailing spaces')
  // eslint-disable-next-line no-control-regex
  .regex(/^[^\u0000-\u001f\u007f]*$/, 'printable characters only');

/**
 * A whole personal mix (full replacement, so a lost message never leaves a
 * half-applied mix). Channels not listed are silent. `client` lets the admin
 * set another client's mix; a musician may only name themselves.
 */
export const mixSchema = z
  .object({
    type: z.literal('mix'),
    ...transportFields,
    client: clientId.optional(),
    codec: z.enum(MIX_CODECS).default('pcm16'),
    output: z.enum(['stereo', 'mono']).default('stereo'),
    masterDb: faderDb.default(0),
    channels: z
      .array(
        z
          .object({
            ch: z.number().int().min(0).max(63),
            gainDb: faderDb.default(0),
            pan: z.number().finite().min(-1).max(1).default(0),
            mute: z.boolean().default(false),
            solo: z.boolean().default(false),
          })
          .strict(),
      )
      .max(64),
    /** Group faders: an offset added to every member's gain, and a mute for all of them. */
    groups: z
      .array(
        z
          .object({
            name: displayName,
            gainDb: faderDb.default(0),
            mute: z.boolean().default(false),
          })
          .strict(),
      )
      .max(32)
      .default([]),
    limiter: z
      .object({
        enabled: z.boolean().default(true),
        ceilingDb: z.number().finite().min(-60).max(0).default(-1),
      })
      .strict()
      .default({}),
    opus: mixOpusSchema.optional(),
  })
  .strict()
  // An opus block on a pcm mix would be silently ignored; say so instead.
  .refine((m) => m.opus === undefined || m.codec === 'opus', (m) => ({
    message: `an "opus" block needs codec "opus"; codec is ${JSON.stringify(m.codec)}`,
    path: ['opus'],
  }));

/** Elevates this connection to admin with the engineer's token or PIN. */
export const authSchema = z
  .object({
    type: z.literal('auth'),
    token: z.string().min(1).max(256),
  })
  .strict();

export const COLOR_PATTERN = /^#[0-9a-fA-F]{6}$/;

/** Admin: the whole channel metadata (full replacement; channels not listed lose theirs). */
export const setMetadataSchema = z
  .object({
    type: z.literal('set-metadata'),
    channels: z
      .array(
        z
          .object({
            ch: z.number().int().min(0).max(63),
            name: z.string().max(32).optional(),
            color: z.string().regex(COLOR_PATTERN, 'a colour as "#rrggbb"').optional(),
            /** The other channel of a stereo pair; the pair is linked both ways. */
            link: z.number().int().min(0).max(63).optional(),
            group: displayName.optional(),
          })
          .strict(),
      )
      .max(64),
  })
  .strict();

/** Admin: the box-wide maximum output level, dBFS; null lifts it. */
export const setOutputLimitSchema = z
  .object({
    type: z.literal('set-output-limit'),
    maxOutputDb: z.number().finite().min(-60).max(0).nullable(),
  })
  .strict();

/** Admin: every client, connected or remembered. */
export const listClientsSchema = z.object({ type: z.literal('list-clients') }).strict();

/** A client's current mix (own; the admin may name any client). */
export const getMixSchema = z.object({ type: z.literal('get-mix'), client: clientId.optional() }).strict();

/**
 * Preset names are checked by presetNameProblem() rather than the schema, so
 * a bad one gets its own error code; the frame size limit bounds the string.
 */
const presetName = z.string();
export const savePresetSchema = z.object({ type: z.literal('save-preset'), name: presetName }).strict();
export const loadPresetSchema = z.object({ type: z.literal('load-preset'), name: presetName }).strict();
export const deletePresetSchema = z.object({ type: z.literal('delete-preset'), name: presetName }).strict();
export const listPresetsSchema = z.object({ type: z.literal('list-presets') }).strict();

export const PRESET_NAME_MAX = 32;

/** Why `name` cannot name a preset, or null. Names are shown in lists and kept as keys, never used as paths, but path-like names are refused so no client relies on them. */
export function presetNameProblem(name: string): string | null {
  const shown = JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}…` : name);
  if (name.trim().length === 0) return `preset name ${shown} is empty; allowed: 1-${PRESET_NAME_MAX} characters, not only spaces`;
  if (name.length > PRESET_NAME_MAX) return `preset name ${shown} has ${name.length} characters; allowed: 1-${PRESET_NAME_MAX}`;
  if (name !== name.trim()) return `preset name ${shown} starts or ends with a space; allowed: no leading or trailing spaces`;
  if (/[/\\]/.test(name) || name === '.' || name === '..' || name.startsWith('.')) {
    return `preset name ${shown} looks like a path; allowed: no "/" or "\\", not starting with "."`;
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return `preset name ${shown} contains a control character; allowed: printable characters`;
  return null;
}

/** The client's own view of its playback, shown per client in status. */
export const reportSchema = z
  .object({
    type: z.literal('report'),
    /** Audio buffered in the client's jitter buffer, ms. */
    bufferMs: z.number().finite().min(0).max(10000),
    /** Underruns since the client connected (monotonic). */
    underruns: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    /** Packets lost on the way that a redundant copy brought back, since the client connected (datagram transports). */
    recovered: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    /** Packets lost on the way that the client had to conceal, since it connected. */
    concealed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  })
  .strict();

export const MESSAGE_SCHEMAS = {
  hello: helloSchema,
  subscribe: subscribeSchema,
  unsubscribe: unsubscribeSchema,
  ping: pingSchema,
  report: reportSchema,
  mix: mixSchema,
  auth: authSchema,
  'set-metadata': setMetadataSchema,
  'set-output-limit': setOutputLimitSchema,
  'list-clients': listClientsSchema,
  'get-mix': getMixSchema,
  'save-preset': savePresetSchema,
  'load-preset': loadPresetSchema,
  'delete-preset': deletePresetSchema,
  'list-presets': listPresetsSchema,
  transport: transportSchema,
  'webrtc-offer': webrtcOfferSchema,
  // Admin: recording and virtual soundcheck (docs/protocol.md, "Recording").
  ...RECORDING_MESSAGE_SCHEMAS,
} as const satisfies Record<ClientMessageType, z.ZodTypeAny>;

export type MessageType = keyof typeof MESSAGE_SCHEMAS;
export type Hello = z.infer<typeof helloSchema>;
export type Subscribe = z.infer<typeof subscribeSchema>;
export type Ping = z.infer<typeof pingSchema>;
export type ClientMessage = { [K in MessageType]: z.infer<(typeof MESSAGE_SCHEMAS)[K]> }[MessageType];
export type SetMetadata = z.infer<typeof setMetadataSchema>;
export type Mix = z.infer<typeof mixSchema>;

export type { ErrorCode };

export class ControlError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly ref?: string,
  ) {
    super(message);
  }
}

function describeIssues(err: z.ZodError, raw: Record<string, unknown>): string {
  return err.issues
    .map((i) => {
      const key = i.path.join('.') || '(message)';
      if (i.code === 'unrecognized_keys') return `unknown field(s) ${i.keys.map((k) => JSON.stringify(k)).join(', ')}`;
      let v: unknown = raw;
      for (const p of i.path) v = v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[p] : undefined;
      // A credential is never echoed, not even a malformed one.
      const got = v === undefined ? 'nothing' : i.path.includes('token') ? `${Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`} (not shown)` : JSON.stringify(v)?.slice(0, 60);
      return `${key}: got ${got}; ${i.message}`;
    })
    .join('; ');
}

/** Parses one text frame. Throws ControlError with a code and a message naming the field, the value and the rule. */
export function parseClientMessage(text: string): ClientMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ControlError('bad-json', `not valid JSON: ${(err as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ControlError('not-an-object', `a control message is a JSON object with a "type"; got ${Array.isArray(raw) ? 'an array' : typeof raw}`);
  }
  const obj = raw as Record<string, unknown>;
  const type = obj.type;
  if (typeof type !== 'string' || !Object.hasOwn(MESSAGE_SCHEMAS, type)) {
    throw new ControlError(
      'unknown-type',
      `unknown message type ${JSON.stringify(type)?.slice(0, 40) ?? 'undefined'}; allowed: ${Object.keys(MESSAGE_SCHEMAS).join(', ')}`,
    );
  }
  // The version is checked before the strict schema, so a newer client whose
  // hello has fields we do not know still learns that its version is the problem.
  if (type === 'hello' && typeof obj.protocol === 'number' && !(SUPPORTED_PROTOCOLS as readonly number[]).includes(obj.protocol)) {
    throw new ControlError('unsupported-protocol', `protocol ${obj.protocol} is not supported; supported: ${SUPPORTED_PROTOCOLS.join(', ')}`, 'hello');
  }
  const parsed = MESSAGE_SCHEMAS[type as MessageType].safeParse(obj);
  if (!parsed.success) throw new ControlError('invalid-message', `${type}: ${describeIssues(parsed.error, obj)}`, type);
  return parsed.data as ClientMessage;
}
