import type { WebRtcErrorCode } from '../protocol/webrtc';

/**
 * A WebRTC offer the box cannot answer. `code` is what the box sends back in
 * its `error` message (protocol/webrtc.ts); the message names the field, the
 * value and what is allowed.
 */
export class WebRtcError extends Error {
  override name = 'WebRtcError';
  constructor(
    readonly code: WebRtcErrorCode,
    message: string,
  ) {
    super(message);
  }
}
