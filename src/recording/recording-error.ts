/**
 * Refusals of recording and playback requests. One code per reason, the
 * same over the WebSocket admin protocol (an `error` message's `code`) and
 * HTTP (the status below, `{"error", "code"}`). A refused request changes
 * nothing.
 */
export const RECORDING_ERRORS = {
  'already-recording': 409,
  'not-recording': 409,
  'bad-take-name': 400,
  'bad-marker': 400,
  'bad-channel': 400,
  'bad-drive': 400,
  'no-drive': 503,
  'drive-error': 503,
  'no-audio': 409,
  'unknown-take': 404,
  'take-busy': 409,
  'bad-take': 422,
  'bad-seek': 400,
  'playback-active': 409,
  'not-playing': 409,
  'invalid-message': 400,
} as const;

export type RecordingErrorCode = keyof typeof RECORDING_ERRORS;

export class RecordingError extends Error {
  constructor(
    readonly code: RecordingErrorCode,
    message: string,
  ) {
    super(message);
  }

  get httpStatus(): number {
    return RECORDING_ERRORS[this.code];
  }
}
