/**
 * Control messages of the stagebox protocol (docs/protocol.md §3): JSON
 * objects in text frames. This file owns the names both ends must agree on
 * and the shapes of what the box sends; the box validates what it receives
 * with its own schemas (src/control/control-messages.ts), keyed by these
 * names. Portable: no Node or DOM imports.
 */
import type { ChannelCodec, MixCodec } from './codecs.js';

/** `hello.protocol`: the control protocol version this box and library speak. */
export const PROTOCOL_VERSION = 1;

/** Every message type a client may send, in the order docs/protocol.md §3.1 lists them. */
export const CLIENT_MESSAGE_TYPES = [
  'hello',
  'subscribe',
  'unsubscribe',
  'ping',
  'report',
  'mix',
  'auth',
  'set-metadata',
  'set-output-limit',
  'list-clients',
  'get-mix',
  'save-preset',
  'load-preset',
  'delete-preset',
  'list-presets',
  'transport',
  // A browser's WebRTC offer (docs/protocol.md §13); answered with webrtc-answer.
  'webrtc-offer',
  // Admin: recording and virtual soundcheck (docs/protocol.md, "Recording").
  'record-start',
  'record-stop',
  'record-marker',
  'list-takes',
  'delete-take',
  'playback',
] as const;
export type ClientMessageType = (typeof CLIENT_MESSAGE_TYPES)[number];

/** Codes of the box's `error` message (docs/protocol.md §3.2, "error"). */
export const ERROR_CODES = [
  'bad-json',
  'not-an-object',
  'unknown-type',
  'invalid-message',
  'hello-required',
  'already-hello',
  'unsupported-protocol',
  'bad-channel',
  'bad-codec',
  'too-many-mixes',
  'bad-group',
  'bad-metadata',
  'rate-limited',
  'admin-disabled',
  'bad-credentials',
  'auth-locked',
  'forbidden',
  'unknown-client',
  'no-mix',
  'bad-preset-name',
  'unknown-preset',
  'too-many-presets',
  'not-saved',
  'bad-transport',
  // WebRTC offers (protocol/webrtc.ts WEBRTC_ERROR_CODES).
  'bad-sdp',
  'too-many-peers',
  'webrtc-unavailable',
  // Recording and playback refusals (docs/protocol.md, "Recording").
  'already-recording',
  'not-recording',
  'bad-take-name',
  'bad-marker',
  'bad-drive',
  'no-drive',
  'drive-error',
  'no-audio',
  'unknown-take',
  'take-busy',
  'bad-take',
  'bad-seek',
  'playback-active',
  'not-playing',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * How a connection's audio travels: over the WebSocket itself (always there,
 * the fallback), as UDP datagrams (§12), or over a WebRTC data channel
 * (§13). Control messages always use the WebSocket.
 */
export const AUDIO_TRANSPORTS = ['ws', 'udp', 'webrtc'] as const;
export type AudioTransport = (typeof AUDIO_TRANSPORTS)[number];

/** The capture source as the box describes it (welcome.source, `source`). */
export interface SourceInfo {
  state: string;
  kind: string;
  device: string;
  channels: number | null;
  rate: number | null;
  periodFrames: number;
  format: string | null;
  /** The engineer is recording a take (absent from boxes before recording existed). */
  recording?: boolean;
}

export interface Welcome {
  type: 'welcome';
  protocol: number;
  version: string;
  clientId: string;
  source: SourceInfo;
  codecs: string[];
  mixCodecs: string[];
  role: string;
  boxNs: string;
  restored: { mode: 'channels' | 'mix'; codec: string } | null;
  /** The transports this box offers for audio (always "ws"). */
  transports?: AudioTransport[];
  /** Present when the box offers UDP: where to send BIND, and this connection's token (32 hex digits). */
  udp?: { port: number; token: string };
}

/** Any JSON message from the box; fields a reader does not know are kept. */
export interface BoxMessage {
  type: string;
  [key: string]: unknown;
}

/** The `subscribe` message without `type`. */
export interface SubscribeRequest {
  /** 0-based device channels, 1-64 of them, each once; the packets carry them in this order. */
  channels: number[];
  /** Default "pcm16". */
  codec?: ChannelCodec;
  /** How the audio travels; default "ws". */
  transport?: AudioTransport;
  /** Datagram transports: copies of the previous 0-3 packets in each datagram. */
  redundancy?: number;
}

/** The `mix` message without `type` (docs/protocol.md §3.1 "mix"). */
export interface MixRequest {
  codec?: MixCodec;
  output?: 'stereo' | 'mono';
  masterDb?: number | null;
  channels: { ch: number; gainDb?: number | null; pan?: number; mute?: boolean; solo?: boolean }[];
  groups?: { name: string; gainDb?: number | null; mute?: boolean }[];
  limiter?: { enabled?: boolean; ceilingDb?: number };
  opus?: { frameMs?: number; bitrateKbps?: number };
  transport?: AudioTransport;
  redundancy?: number;
}
