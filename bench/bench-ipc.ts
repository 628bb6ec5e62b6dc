/**
 * Messages between run-bench (parent) and bench-clients (forked child).
 * Every request carries a request id (rid) that its reply echoes.
 */
import type { LatencySummary } from '../src/metrics/latency-histogram';
import type { VerifierCounts } from './stream-verifier';

/** Codec a client asks for; opus only in a personal mix. */
export type BenchCodec = 'pcm16' | 'pcm24' | 'deflate' | 'opus';

export interface ClientSpec {
  clientId: string;
  channels: number[];
  codec: BenchCodec;
  /** Stops reading right after "subscribed" (slow-client scenario). */
  stalled: boolean;
  /** When set, the client asks for this personal mix (a "mix" message) instead of raw channels. */
  mix?: object;
  /** The client is the client library (StageboxClient with its jitter buffer, pulled in real time), not a raw socket. */
  viaLibrary?: boolean;
  /** Check every packet against the soak's pattern source (bench/stream-verifier.ts); raw pcm16/pcm24 channels only. */
  verify?: boolean;
  /** Address of the box (default 127.0.0.1). */
  host?: string;
  /** Local address the library client's socket binds (a listener's own link in the harness). */
  localAddress?: string;
  /** A library client that also keeps what the wifi scenario reports (bench/wifi-listener.ts), under this label. */
  wifiLabel?: string;
  /** A wifi listener that is the listener page in headless Chromium (bench/browser-listener.ts), over WebRTC or, with transport "ws", the WebSocket. */
  browser?: boolean;
  /** The audio transport: "udp" asks for datagrams with `redundancy` copies (default "ws"). A raw bench client uses a fixed spacing (default 1); a library client may use 'auto'. */
  transport?: 'ws' | 'udp' | 'webrtc';
  redundancy?: number;
  spacing?: number | 'auto';
}

/** What the verifying clients found (soak scenario), every client together, churned ones included. */
export interface VerifyStats {
  clients: number;
  counts: VerifierCounts;
  /** The first few anomalies, described. */
  examples: string[];
}

/** Clients that connected, streamed for a while and left again (soak scenario). */
export interface ChurnStats {
  started: number;
  /** Connected and subscribed. */
  connected: number;
  failed: number;
  firstError: string | null;
  /** Close codes seen by churned clients that the box closed, code -> count. */
  closes: Record<string, number>;
}

/** One wifi listener over the window (the wifi scenario; bench/README.md says what each field means). */
export interface WifiListenerStats {
  label: string;
  localAddress: string | null;
  /** The window, CLOCK_MONOTONIC ms. */
  fromMs: number;
  toMs: number;
  packets: number;
  /** Seq gaps at arrival: packets never delivered (the box dropped them, or a datagram was lost). */
  seqGaps: number;
  underruns: number;
  /** Runs of consecutive seqs whose turn to play came before they did, and how many seqs. */
  concealedLossEvents: number;
  concealedLossPackets: number;
  /** Audio the jitter buffer made up (gaps and underruns), ms. */
  concealedMs: number;
  /** Times the buffer dropped a backlog at once (a jump in the audio), and how much. */
  skipEvents: number;
  skippedMs: number;
  /** The jitter buffer's own late and lost counts over the window. */
  late: number;
  lost: number;
  /** Audio buffered at each player tick, ms (null: nothing played). */
  bufferMs: { p50: number; p99: number; max: number } | null;
  targetEndMs: number | null;
  targetMaxMs: number | null;
  /** The target at the window's start and at each change after it: [CLOCK_MONOTONIC ms, target ms]. */
  targetSteps: [number, number][];
  /** The arrival trace written (seq,capture_ms,arrival_ms,flags), and its rows. */
  trace: string | null;
  traceRows: number;
  /** Where the audio came from at the end ("ws" or "udp"), and the datagram link's totals since connect. */
  transportNow: string | null;
  recovered: number;
  datagrams: number;
  /** The redundancy spacing in use at the end (UDP; 'auto' moves it), null over the WebSocket. */
  spacingAtEnd: number | null;
  /** Audible events not inside an arrival gap that outlasted the buffer's target; not inside one of 100 ms or more (bench/wifi-listener.ts). */
  outsideLongGaps: number | null;
  outsideStalls: number | null;
  /** Box-side holds seen in the packets' capture times (consecutive periods more than 3 periods apart), and the longest, ms. */
  boxStalls: number | null;
  boxStallMaxMs: number | null;
}

/** The library clients' jitter buffers over the window (`library` scenario). */
export interface JitterFleetStats {
  clients: number;
  /** Buffered audio at each pull, every library client pooled, ms. */
  bufferLatency: LatencySummary;
  /** Interval between the player's ticks (5 ms asked), ms. */
  playerTick: LatencySummary;
  underruns: number;
  late: number;
  lost: number;
  targetMsMedian: number | null;
  targetMsMax: number | null;
  driftPpmMedian: number | null;
}

export type FleetRequest =
  | { rid: number; op: 'connect'; port: number; clients: ClientSpec[]; perClientTimeoutMs: number }
  | { rid: number; op: 'reset' }
  | { rid: number; op: 'stats' }
  /** Closes every normal client after the first `keep` (in connection order). */
  | { rid: number; op: 'trim'; keep: number }
  /** Starts connecting `perSecond` new clients a second, each from `specs` in turn, each closing itself after `lifetimeMs`. */
  | { rid: number; op: 'churn-start'; port: number; perSecond: number; lifetimeMs: number; specs: ClientSpec[] }
  | { rid: number; op: 'churn-stop' }
  /** The wifi listeners' stats; each writes its arrival trace to `<traceDir>/<traceName>-<label>.csv`. */
  | { rid: number; op: 'wifi'; traceDir: string; traceName: string }
  | { rid: number; op: 'close' };

export interface ConnectResult {
  connected: number;
  failed: number;
  /** First failure, verbatim, for the report. */
  firstError: string | null;
}

export interface StalledStats {
  clients: number;
  /** Still open from the client side (a paused socket rarely notices the server closing it). */
  open: number;
  packets: number;
}

export interface FleetStats {
  /** Normal (reading) clients connected so far. */
  clients: number;
  /** Normal clients whose socket is still open. */
  open: number;
  /** Close codes of normal clients that went away, code -> count. */
  closes: Record<string, number>;
  /** End-to-end latency of every packet received by normal clients since the last reset. */
  e2e: LatencySummary;
  packets: number;
  /** Sequence gaps: packets the client never saw. */
  lostPackets: number;
  /** Packets flagged as following a discontinuity (pacer or pool skipped audio). */
  discontinuities: number;
  malformed: number;
  /** Fewest packets one open normal client received: 0 means some client starved. */
  minPackets: number;
  maxPackets: number;
  /** Encoded payload bytes and what they would be as pcm16, for the compression ratio. */
  payloadBytes: number;
  pcm16Bytes: number;
  stalled: StalledStats;
  /** Open raw clients by where the box says their audio goes now ("ws", "udp"). */
  audioTransports: Record<string, number>;
  /** Packets raw UDP clients got only from a redundant copy, since connect. */
  recovered: number;
  /** Present when library clients are connected. */
  jitter?: JitterFleetStats;
  /** Present when verifying clients are connected (or were, churned). */
  verify?: VerifyStats;
}

export type FleetReply =
  | { rid: number; op: 'connect'; result: ConnectResult }
  | { rid: number; op: 'reset' }
  | { rid: number; op: 'stats'; stats: FleetStats }
  | { rid: number; op: 'trim'; clients: number }
  | { rid: number; op: 'churn-start' }
  | { rid: number; op: 'churn-stop'; churn: ChurnStats }
  | { rid: number; op: 'wifi'; listeners: WifiListenerStats[]; pooledBufferMs: WifiListenerStats['bufferMs'] }
  | { rid: number; op: 'close' }
  | { rid: number; op: 'error'; message: string };
