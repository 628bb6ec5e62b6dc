import { z } from 'zod';

/**
 * Recording and virtual soundcheck requests, parsed once at the edge: the
 * admin WebSocket messages (docs/protocol.md, "Recording") and the JSON
 * bodies of the HTTP API (README, docs/protocol.md). A take name or marker
 * label is checked further by take-manifest.ts, with its own error code.
 */

const channels = z.array(z.number().int().min(0).max(63)).min(1).max(64);
/** Long enough for takeNameProblem() to say what is wrong with a long name. */
const text = z.string().max(256);

const startFields = {
  /** Box channels as in subscribe (0 = input 1); omitted: every input. */
  channels: channels.optional(),
  name: text.optional(),
  /** A drive's mount point from the listing; omitted: recording.dir's choice. */
  drive: z.string().min(1).max(4096).optional(),
};

export const startBodySchema = z.object(startFields).strict();
export const markerBodySchema = z.object({ label: text.optional() }).strict();

export const PLAYBACK_ACTIONS = ['play', 'pause', 'seek', 'loop', 'live'] as const;

const playbackFields = {
  action: z.enum(PLAYBACK_ACTIONS),
  take: z.string().min(1).max(512).optional(),
  positionS: z.number().finite().min(0).optional(),
  loop: z.boolean().optional(),
  startS: z.number().finite().min(0).optional(),
  endS: z.number().finite().min(0).optional(),
};

/** Which fields each action reads; any other is refused rather than ignored. */
const PLAYBACK_USES: Readonly<Record<(typeof PLAYBACK_ACTIONS)[number], { required: string[]; optional: string[] }>> = {
  play: { required: [], optional: ['take', 'positionS', 'loop'] },
  pause: { required: [], optional: [] },
  seek: { required: ['positionS'], optional: [] },
  loop: { required: ['loop'], optional: ['startS', 'endS'] },
  live: { required: [], optional: [] },
};

function checkPlayback(v: Record<string, unknown>, ctx: z.RefinementCtx): void {
  const uses = PLAYBACK_USES[v.action as (typeof PLAYBACK_ACTIONS)[number]];
  for (const key of uses.required) {
    if (v[key] === undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [key], message: `action "${String(v.action)}" needs "${key}"` });
  }
  for (const key of Object.keys(playbackFields)) {
    if (key === 'action' || v[key] === undefined || uses.required.includes(key) || uses.optional.includes(key)) continue;
    const allowed = [...uses.required, ...uses.optional];
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: [key],
      message: `not used by action "${String(v.action)}"; allowed with it: ${allowed.length ? allowed.join(', ') : 'nothing besides "action"'}`,
    });
  }
}

export const playbackBodySchema = z.object(playbackFields).strict().superRefine(checkPlayback);
export type PlaybackBody = z.infer<typeof playbackBodySchema>;

/** The admin WebSocket messages, by type (merged into control/control-messages.ts's table). */
export const RECORDING_MESSAGE_SCHEMAS = {
  'record-start': z.object({ type: z.literal('record-start'), ...startFields }).strict(),
  'record-stop': z.object({ type: z.literal('record-stop') }).strict(),
  'record-marker': z.object({ type: z.literal('record-marker'), label: text.optional() }).strict(),
  'list-takes': z.object({ type: z.literal('list-takes') }).strict(),
  'delete-take': z.object({ type: z.literal('delete-take'), take: z.string().min(1).max(512) }).strict(),
  playback: z.object({ type: z.literal('playback'), ...playbackFields }).strict().superRefine(checkPlayback),
} as const;

export type RecordingMessage = { [K in keyof typeof RECORDING_MESSAGE_SCHEMAS]: z.infer<(typeof RECORDING_MESSAGE_SCHEMAS)[K]> }[keyof typeof RECORDING_MESSAGE_SCHEMAS];
export type RecordingMessageType = RecordingMessage['type'];

export function isRecordingMessage(msg: { type: string }): msg is RecordingMessage {
  return Object.hasOwn(RECORDING_MESSAGE_SCHEMAS, msg.type);
}
