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
  | { rid: number; op: 'close' }
  | { rid: number; op: 'error'; message: string };
