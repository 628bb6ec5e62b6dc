/**
 * A bench client that is the client library (src/client/), as a phone app
 * would use it: StageboxClient decodes every packet and feeds its jitter
 * buffer, and one player timer for all such clients pulls each buffer at the
 * sample rate, as an audio callback would. Records the library's end-to-end
 * latency (receipt after decode), the jitter buffer's latency at every pull
 * and its underruns, for the `library` scenario.
 */
import WebSocket from 'ws';
import { StageboxClient, type AudioEvent, type JitterBufferStats } from '../src/client/index.js';
import type { WebSocketConstructor } from '../src/client/stagebox-client.js';
import { LatencyHistogram } from '../src/metrics/latency-histogram';
import { NodeWebSocket, nodeDatagramSocket, nodeInflateRaw } from '../src/listen/node-platform';
import { weriftDataChannel } from '../src/listen/werift-data-channel';
import type { ClientSpec, JitterFleetStats } from './bench-ipc';
import { PacketCounters } from './packet-counters';

const PULL_FRAMES = 128;
const PLAYER_TICK_MS = 5;

/**
 * The clients' and the player's clock: CLOCK_MONOTONIC in ms, as hrtime reads
 * it. The box stamps captureNs on the same clock (network namespaces share
 * it), so an arrival time is comparable with a capture time as it is.
 */
export function monoMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** The `ws` client with its sockets bound to `localAddress` (a listener's own address in the harness). */
function boundWebSocket(localAddress: string): WebSocketConstructor {
  return class extends WebSocket {
    constructor(url: string) {
      super(url, { localAddress });
    }
  } as unknown as WebSocketConstructor;
}

/** Every library client's jitter buffer latency, sampled at each pull (steady state: after the reset). */
const bufferLatency = new LatencyHistogram();
/** Time between two player ticks (5 ms asked): a late tick pulls a burst, as a late audio callback would. */
const playerTick = new LatencyHistogram();
let lastTick = NaN;
const live = new Set<LibraryClient>();
let player: NodeJS.Timeout | null = null;

export class LibraryClient extends PacketCounters {
  open = false;
  closeCode: number | null = null;
  private client: StageboxClient | null = null;

  /** How the audio travels now and what the datagram link did (null before connect). */
  protected transportStats(): ReturnType<StageboxClient['stats']>['transport'] | null {
    return this.client ? this.client.stats().transport : null;
  }
  private out: Float32Array | null = null;
  private t0 = 0;
  private pulled = 0;
  /** Jitter buffer counters at the last reset. */
  private base = { underruns: 0, late: 0, lost: 0 };

  constructor(
    readonly spec: ClientSpec,
    private readonly e2e: LatencyHistogram,
  ) {
    super();
  }

  /** Connects, says hello, subscribes (or mixes); resolves on the box's answer. */
  async connect(port: number, timeoutMs: number): Promise<void> {
    const c = new StageboxClient({
      url: `ws://${this.spec.host ?? '127.0.0.1'}:${port}/`,
      clientId: this.spec.clientId,
      name: 'bench (library)',
      WebSocket: this.spec.localAddress ? boundWebSocket(this.spec.localAddress) : NodeWebSocket,
      ...(this.spec.transport === 'udp' ? { udp: { createSocket: nodeDatagramSocket(this.spec.localAddress), redundancy: this.spec.redundancy ?? 1, spacing: this.spec.spacing ?? 'auto' } } : {}),
      ...(this.spec.transport === 'webrtc'
        ? { webrtc: { openChannel: weriftDataChannel(this.spec.localAddress ? [this.spec.localAddress] : undefined), redundancy: this.spec.redundancy ?? 1, spacing: this.spec.spacing ?? 'auto' } }
        : {}),
      inflateRaw: nodeInflateRaw,
      jitter: { targetMs: 10 },
      reconnect: false,
      now: monoMs,
    });
    this.client = c;
    c.on('audio', (a) => {
      this.onAudio(a);
      // captureNs is CLOCK_MONOTONIC on this machine, as hrtime: e2e includes the library's decode.
      this.e2e.record(Number(process.hrtime.bigint() - a.header.captureNs) / 1e6);
      // payloadBytes stays 0: the library hands over decoded audio, not the packet.
      this.count(a.seq, a.header.discontinuity, 0, a.frames * a.channels * 2);
      if (!this.out) {
        this.out = new Float32Array(PULL_FRAMES * a.channels);
        this.t0 = monoMs();
        live.add(this);
        player ??= setInterval(playAll, PLAYER_TICK_MS);
      }
    });
    c.on('state', (s) => {
      if (s.state === 'closed') {
        this.open = false;
        this.closeCode = s.closeCode ?? null;
        live.delete(this);
      }
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.spec.clientId}: no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([c.connect(), timeout]);
      this.open = true;
      const answer = this.spec.mix ? c.mix(this.spec.mix as never) : c.subscribe({ channels: this.spec.channels, codec: this.spec.codec as 'pcm16' });
      await Promise.race([answer, timeout]);
    } catch (err) {
      c.close();
      throw new Error(`${this.spec.clientId}: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Pulls what the elapsed time asks for; records the buffer's level at each pull. */
  play(now: number): void {
    const c = this.client!;
    const rate = c.jitter?.rate ?? 48000;
    const due = Math.floor((((now - this.t0) * rate) / 1000 - this.pulled) / PULL_FRAMES);
    for (let i = 0; i < due; i++) {
      // The audio clock of this pull, as an audio callback would pass it (a tick may pull several periods).
      c.pull(this.out!, this.t0 + (this.pulled * 1000) / rate);
      this.pulled += PULL_FRAMES;
    }
    const jb = c.jitter;
    if (jb && due > 0) {
      const st = jb.stats();
      bufferLatency.record((st.bufferedFrames * 1000) / jb.rate);
      this.afterPull(now, st);
    }
  }

  /** Every decoded packet, before the counters see it (subclasses observe more). */
  protected onAudio(_a: AudioEvent): void {}

  /** After the pulls of a player tick, with the jitter buffer's stats then. */
  protected afterPull(_now: number, _st: JitterBufferStats): void {}

  /** The jitter buffer's stats now; null before the first packet. */
  protected stats(): JitterBufferStats | null {
    return this.client?.jitter?.stats() ?? null;
  }

  jitterCounters(): { underruns: number; late: number; lost: number; targetMs: number; driftPpm: number } {
    const s = this.client?.jitter?.stats();
    if (!s) return { underruns: 0, late: 0, lost: 0, targetMs: 0, driftPpm: 0 };
    return { underruns: s.underruns - this.base.underruns, late: s.late - this.base.late, lost: s.lost - this.base.lost, targetMs: s.targetMs, driftPpm: s.driftPpm };
  }

  override resetStats(): void {
    super.resetStats();
    const s = this.client?.jitter?.stats();
    if (s) this.base = { underruns: s.underruns, late: s.late, lost: s.lost };
  }

  close(): void {
    this.client?.close();
    this.open = false;
    live.delete(this);
    if (live.size === 0 && player) {
      clearInterval(player);
      player = null;
    }
  }

  terminate(): void {
    this.close();
  }
}

function playAll(): void {
  const now = monoMs();
  if (lastTick === lastTick) playerTick.record(now - lastTick);
  lastTick = now;
  for (const c of live) c.play(now);
}

/** The jitter buffers of `clients` since the last reset. */
export function jitterStats(clients: LibraryClient[]): JitterFleetStats {
  const targets: number[] = [];
  const drifts: number[] = [];
  let underruns = 0;
  let late = 0;
  let lost = 0;
  for (const c of clients) {
    const j = c.jitterCounters();
    underruns += j.underruns;
    late += j.late;
    lost += j.lost;
    targets.push(j.targetMs);
    drifts.push(j.driftPpm);
  }
  const median = (xs: number[]): number | null => (xs.length === 0 ? null : [...xs].sort((a, b) => a - b)[xs.length >> 1]!);
  return { clients: clients.length, bufferLatency: bufferLatency.summary(), playerTick: playerTick.summary(), underruns, late, lost, targetMsMedian: median(targets), targetMsMax: targets.length ? Math.max(...targets) : null, driftPpmMedian: median(drifts) };
}

export function resetJitterStats(): void {
  bufferLatency.reset();
  playerTick.reset();
}
