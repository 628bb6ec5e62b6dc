/**
 * The client library's own types: its options, its events and what it
 * reports. The wire types (welcome, source, subscribe, mix) are the
 * protocol module's. Portable.
 */
import type { JitterBufferOptions, JitterBufferStats } from './jitter-buffer.js';
import type { CreateOpusDecoder, InflateRaw } from './packet-decoder.js';
import type { AudioTransport, BoxMessage, SourceInfo, Welcome } from '../protocol/messages.js';
import type { CreateDatagramSocket, DatagramLinkStats } from './datagram-link.js';
import type { PacketHeader } from '../protocol/packet-header.js';

/** The part of the browser WebSocket API the client uses; `ws` offers it too. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface AudioEvent {
  seq: number;
  /** Interleaved, frames × channels, in [-1, 1); a new array per packet. */
  samples: Float32Array;
  channels: number;
  frames: number;
  rate: number;
  /** Client clock when the packet arrived, ms. */
  arrivalMs: number;
  header: PacketHeader;
  /** Capture (box) to arrival, ms, once a ping has given the clock offset; for opus includes the frame fill. */
  networkLatencyMs: number | null;
  /** Opus: frames of the decoder's own loss concealment in front of the packet's audio (0 without one: a jitter buffer conceals the seq gap). */
  concealedFrames: number;
}

/** What went wrong; `code` is the box's error code, or one of the client's own (below). */
export interface ClientError {
  /**
   * The box's `error` codes (docs/protocol.md 3.2), or: `connect-failed` (the socket failed), `closed` (the box
   * closed the connection with a code after which the client does not reconnect), `gave-up` (reconnect attempts
   * used up), `bad-packet` (a packet that does not decode), `bad-message` (a text frame that is not a JSON object), `udp-failed` (no UDP socket could be opened; the audio stays on the WebSocket), `webrtc-failed` (the platform could not open a data channel; the same).
   */
  code: string;
  message: string;
  /** The `type` of the message that caused a box error, when the box said. */
  ref?: string;
  url?: string;
  closeCode?: number;
}

export type ConnectionState = 'connecting' | 'open' | 'closed';
export interface StateEvent {
  state: ConnectionState;
  /** Connection attempts since the last one that stayed up (1 = first try). */
  attempt: number;
  /** For 'closed': the close code and reason, and when the next attempt is (null: none). */
  closeCode?: number;
  reason?: string;
  retryInMs?: number | null;
}

export interface ClientStats {
  /** Last ping round trip, ms. */
  rttMs: number | null;
  /** Smallest round trip in the last 30 s, ms: the ping the offset comes from. */
  minRttMs: number | null;
  /** box ms − client ms: client time = box time − offset. */
  clockOffsetMs: number | null;
  /** Capture to arrival of the last packet, ms. */
  networkLatencyMs: number | null;
  packets: number;
  badPackets: number;
  /** The internal jitter buffer (option `jitter`), if any. */
  jitter: JitterBufferStats | null;
  /** How the audio travels now, and what the datagram link did (null before a UDP flow was tried). */
  /** `spacing`: the redundancy spacing asked of the box (null without a datagram link). */
  transport: { now: AudioTransport; datagram: DatagramLinkStats | null; spacing: number | null };
}

/** What the library gives a data channel it asks the platform to open (see {@link WebRtcTransportOptions}). */
export interface DataChannelHandlers {
  /** Sends the offer's SDP to the box over the WebSocket; resolves with the box's answer SDP, rejects with its refusal. */
  sendOffer(sdp: string): Promise<string>;
  /** The bytes of one message of the channel: one AUDIO datagram. */
  onDatagram(bytes: Uint8Array): void;
  /** The channel's state: 'open' (audio may come), 'failed' or 'closed' (it will not); others are ignored. */
  onState(state: string, reason: string): void;
}

/**
 * Audio over a WebRTC data channel (docs/protocol.md §13), for browsers: `openChannel` makes the peer connection and
 * its channel (the browser's is web/listen/datachannel-audio.js) and returns something to close it with.
 */
export interface WebRtcTransportOptions {
  openChannel(handlers: DataChannelHandlers): { close(): void };
  /** As for UDP: copies of 0-3 earlier packets in each datagram; default 1. */
  redundancy?: number;
  /** As for UDP: 1-8 or 'auto' (the default). */
  spacing?: number | 'auto';
}

/** Audio over UDP (docs/protocol.md §12): the socket factory (Node: dgram) and the redundancy to ask for. */
export interface UdpTransportOptions {
  createSocket: CreateDatagramSocket;
  /** Copies of 0-3 earlier packets in each datagram; default 1. */
  redundancy?: number;
  /**
   * How far back the copies reach, in packets (1-8: a copy d packets back repairs a loss burst of up to d, if the
   * jitter buffer holds d periods). Default 'auto': starts at 1 and follows the loss bursts of the last 30 s, capped
   * by the buffer (client/redundancy-spacing.ts).
   */
  spacing?: number | 'auto';
}

export interface ReconnectOptions {
  /** First retry after this long, ms; default 500. */
  initialMs?: number;
  /** Longest wait between attempts, ms; default 5000. */
  maxMs?: number;
  /** Each failed attempt multiplies the wait by this; default 2. */
  factor?: number;
  /** Give up after this many failed attempts in a row; default Infinity. */
  maxAttempts?: number;
  /** A connection that stayed up this long resets the backoff, ms; default 5000. */
  resetAfterMs?: number;
}

export interface StageboxClientOptions {
  /** ws:// or wss:// URL of the box, such as "ws://stagebox.local:5100/". */
  url: string;
  /** Stable per installation: 1-64 characters from A-Z a-z 0-9 . _ : - */
  clientId: string;
  /** For humans (the engineer's client list), at most 64 characters. */
  name?: string;
  /** Default globalThis.WebSocket. */
  WebSocket?: WebSocketConstructor;
  /** Needed for the deflate codec. */
  inflateRaw?: InflateRaw;
  /** Needed for opus mixes. */
  createOpusDecoder?: CreateOpusDecoder;
  /** Audio over UDP where the box offers it (welcome.udp); without it, the audio comes over the WebSocket. */
  udp?: UdpTransportOptions;
  /** Audio over a WebRTC data channel where the box offers it and UDP is not used (browsers). */
  webrtc?: WebRtcTransportOptions;
  /** Keep an internal jitter buffer fed with the audio (read it with pull()); off by default. */
  jitter?: Omit<JitterBufferOptions, 'rate' | 'channels'> | false;
  /** Reconnect with backoff (default on); false: never. */
  reconnect?: ReconnectOptions | false;
  /** ms between pings; default 2000. */
  pingIntervalMs?: number;
  /** ms between `report` messages (and 'stats' events); default 1000. */
  reportIntervalMs?: number;
  /** Monotonic client clock, ms; default performance.now(). */
  now?: () => number;
}

export interface ClientEvents {
  welcome: Welcome;
  metadata: BoxMessage;
  source: SourceInfo;
  subscribed: { channels: number[]; codec: string };
  mixing: BoxMessage;
  audio: AudioEvent;
  error: ClientError;
  state: StateEvent;
  stats: ClientStats;
  /** The audio moved to another transport (UDP bound, or fallen back to the WebSocket). */
  transport: { audio: AudioTransport; reason?: string };
  /** Every JSON message from the box, including the ones above. */
  message: BoxMessage;
}
