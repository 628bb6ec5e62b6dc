/** The send pool's outputs: what a client subscribes to, and what the pool renders for it. */
import type { LimiterOptions } from '../engine/limiter';
import type { MixRender } from '../engine/mix-encode';
import type { MixParams, MixState } from '../engine/mix-kernel';
import type { OpusFrameMs } from '../engine/opus-encoder';
import type { OpusStream } from '../engine/opus-stream';
import type { PacketCodec } from '../protocol';

/** Anything that takes encoded packets: a client connection. */
export interface PacketSink {
  /** `frame` is one packet, already framed for the wire. Main thread; must never block or await. */
  pushPacket(frame: Buffer, arrivalMs: number): void;
}

/**
 * One distinct output, shared by every client that wants exactly it: a codec
 * and an ordered channel list, or a personal mix (`mix` set, `channels` empty).
 */
export interface Output {
  readonly id: number;
  key: string;
  /** A channel codec, or a mix codec (opus only for mixes). */
  codec: PacketCodec;
  readonly channels: readonly number[];
  readonly sinks: Set<PacketSink>;
  readonly mix: RegisteredMix | null;
}

/**
 * A mix with what the control plane staged for it. Changes (fader moves,
 * codec, limiter) are staged here and copied into the shared render state by
 * {@link OutputRegistry.commitMixes} between two of the mix's periods, never
 * while a pool worker may be rendering it.
 */
export interface RegisteredMix extends MixRender {
  /** Targets and output layout of the last request, not yet committed. */
  readonly stage: MixState;
  stagedLimiter: LimiterOptions;
  stagedCodecId: number;
  stagedOpus: OpusStream | null;
  dirty: boolean;
  /** Cost units for the pool's model: audible input channels × output channels (at least 1). */
  work: number;
}

/** What a client asked for in a mix message, already validated and resolved per channel. */
export interface MixRequest {
  /** Canonical form of the request: equal keys mean equal mixes, rendered once. */
  key: string;
  codec: 'pcm16' | 'pcm24' | 'opus';
  params: MixParams;
  limiter: LimiterOptions;
  /** Opus frame and bitrate when codec is opus, else null. */
  opus: { frameMs: OpusFrameMs; bitrateKbps: number } | null;
}

