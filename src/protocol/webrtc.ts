/**
 * Audio over a WebRTC data channel, for browsers (docs/protocol.md, "Audio
 * over a WebRTC data channel"). The browser offers, the box answers; the
 * offer and the answer travel over the client's own WebSocket, so the peer
 * connection belongs to that connection (no token). The browser creates the
 * one data channel, labelled {@link AUDIO_CHANNEL_LABEL}, with
 * {@link AUDIO_CHANNEL_INIT}; the box sends box → client AUDIO datagrams
 * (protocol/datagram.ts, kind 132) on it, one per message, and nothing else.
 * Portable: no Node or DOM imports.
 */

/** The label of the browser's audio data channel; a channel with any other label is refused. */
export const AUDIO_CHANNEL_LABEL = 'stagebox-audio';

/**
 * Options of the audio channel: unordered and never retransmitted, the
 * UDP-like service of RFC 8831 §6.1 (late audio is worthless). The box
 * refuses a channel opened with other options.
 */
export const AUDIO_CHANNEL_INIT = { ordered: false, maxRetransmits: 0 } as const;

/** Longest offer the box parses, characters. A browser's data-channel-only offer is 0.5-2 KB. */
export const MAX_OFFER_SDP_CHARS = 16384;

/**
 * Codes of the errors a WebRTC offer can get back (the `code` of the box's
 * `error` message): `bad-sdp` (the offer is not a data-channel offer the box
 * can answer; the message names the line and what is allowed),
 * `too-many-peers` (the box's bound on peer connections is reached),
 * `webrtc-unavailable` (the box is stopping, or the WebRTC stack failed
 * while answering).
 */
export const WEBRTC_ERROR_CODES = ['bad-sdp', 'too-many-peers', 'webrtc-unavailable'] as const;
export type WebRtcErrorCode = (typeof WEBRTC_ERROR_CODES)[number];

/**
 * Why the box closed a peer connection: `timeout` (not open within the
 * connect timeout), `failed` (ICE/DTLS failed or the browser went away),
 * `bad-channel` (a channel with another label or other options), `replaced`
 * (a new offer on the same connection), `closed` (the caller closed it),
 * `stopped` (the box is stopping).
 */
export const PEER_CLOSE_REASONS = ['timeout', 'failed', 'bad-channel', 'replaced', 'closed', 'stopped'] as const;
export type PeerCloseReason = (typeof PEER_CLOSE_REASONS)[number];
