/**
 * A library client of the wifi scenario: what a musician's phone would hear
 * across the impaired-network harness, counted from what the client library
 * exposes today (its JitterBuffer's stats) plus what this listener observes:
 * every packet's arrival (the trace), and which seqs play-out passed before
 * they came (PlayoutTracker).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { AudioEvent, JitterBufferStats } from '../src/client/index.js';
import type { LatencyHistogram } from '../src/metrics/latency-histogram';
import type { ClientSpec, WifiListenerStats } from './bench-ipc';
import { LibraryClient, monoMs } from './library-client';
import { ArrivalGaps, STALL_MS } from './arrival-gaps';
import { PlayoutTracker } from './playout-tracker';

/** Trace columns per row, flat: seq, capture_ms, arrival_ms, flags. */
const TRACE_COLS = 4;
/** A capture-time gap over this many periods between consecutive seqs is a box-side stall. */
const BOX_STALL_PERIODS = 3;
export const TRACE_HEADER = 'seq,capture_ms,arrival_ms,flags';

export class WifiListener extends LibraryClient {
  private readonly trace: number[] = [];
  private readonly playout = new PlayoutTracker();
  private packetFrames = 0;
  private rate = 48000;
  /** The jitter buffer's counters at the window's start. */
  private atReset = { underruns: 0, late: 0, lost: 0, concealedFrames: 0, droppedFrames: 0 };
  private lastDropped = 0;
  private lastCapture: { seq: number; ms: number } | null = null;
  private lastUnderruns = 0;
  private readonly gaps = new ArrivalGaps();
  private win = emptyWindow();

  constructor(spec: ClientSpec, e2e: LatencyHistogram) {
    super(spec, e2e);
  }

  protected override onAudio(a: AudioEvent): void {
    const h = a.header;
    const captureMs = Number(h.captureNs) / 1e6;
    this.noteCaptureGap(a.seq, captureMs, (a.frames * 1000) / a.rate);
    this.gaps.arrived(a.arrivalMs, (a.frames * 1000) / a.rate);
    this.trace.push(a.seq, captureMs, a.arrivalMs, h.flags);
    this.packetFrames = a.frames;
    this.rate = a.rate;
    this.playout.arrived(a.seq, h.discontinuity);
  }

  protected override afterPull(now: number, st: JitterBufferStats): void {
    const w = this.win;
    const concealedBefore = this.playout.events;
    this.playout.played(st.bufferedFrames, this.packetFrames);
    const events = st.underruns - this.lastUnderruns + this.playout.events - concealedBefore;
    this.lastUnderruns = st.underruns;
    for (let e = 0; e < events; e++) {
      const gap = this.gaps.gapAt(now);
      if (gap.ms < STALL_MS) w.outsideStalls++;
      if (!gap.long) w.outsideLongGaps++;
    }
    this.gaps.target(st.targetMs);
    if (st.droppedFrames > this.lastDropped) {
      w.skipEvents++;
      this.lastDropped = st.droppedFrames;
    }
    w.buffer.push((st.bufferedFrames * 1000) / this.rate);
    if (w.targetSteps.length === 0 || w.targetSteps[w.targetSteps.length - 1]![1] !== st.targetMs) w.targetSteps.push([now, st.targetMs]);
    if (st.targetMs > w.targetMax) w.targetMax = st.targetMs;
  }

  /**
   * The box's own stalls, as every listener sees them: consecutive periods
   * whose capture times lie more than BOX_STALL_PERIODS periods apart. The
   * test signal's pacer catches up after a held loop without counting an
   * xrun (nothing of a generated tone is lost), so this is where a box-side
   * hold shows, apart from the network's.
   */
  private noteCaptureGap(seq: number, captureMs: number, periodMs: number): void {
    const prev = this.lastCapture;
    this.lastCapture = { seq, ms: captureMs };
    if (!prev || seq !== ((prev.seq + 1) >>> 0)) return;
    const gap = captureMs - prev.ms;
    if (gap <= BOX_STALL_PERIODS * periodMs) return;
    this.win.boxStalls++;
    if (gap > this.win.boxStallMaxMs) this.win.boxStallMaxMs = gap;
  }

  override resetStats(): void {
    super.resetStats();
    const st = this.stats();
    if (st) {
      this.atReset = { underruns: st.underruns, late: st.late, lost: st.lost, concealedFrames: st.concealedFrames, droppedFrames: st.droppedFrames };
      this.lastDropped = st.droppedFrames;
      this.lastUnderruns = st.underruns;
    }
    this.win = emptyWindow();
    this.playout.reset();
    if (st) {
      this.win.targetSteps.push([monoMs(), st.targetMs]);
      this.win.targetMax = st.targetMs;
    }
  }

  /** The window so far; writes the whole arrival trace (from the first packet) to `<dir>/<name>-<label>.csv`. */
  wifiStats(dir: string, name: string): WifiListenerStats {
    const st = this.stats();
    const w = this.win;
    const ms = (frames: number): number => (frames * 1000) / this.rate;
    const file = path.join(dir, `${name}-${this.spec.wifiLabel}.csv`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, this.traceCsv());
    return {
      label: this.spec.wifiLabel!,
      localAddress: this.spec.localAddress ?? null,
      fromMs: w.fromMs,
      toMs: monoMs(),
      packets: this.packets,
      seqGaps: this.lost,
      underruns: st ? st.underruns - this.atReset.underruns : 0,
      concealedLossEvents: this.playout.events,
      concealedLossPackets: this.playout.packets,
      concealedMs: st ? ms(st.concealedFrames - this.atReset.concealedFrames) : 0,
      skipEvents: w.skipEvents,
      skippedMs: st ? ms(st.droppedFrames - this.atReset.droppedFrames) : 0,
      late: st ? st.late - this.atReset.late : 0,
      lost: st ? st.lost - this.atReset.lost : 0,
      bufferMs: bufferQuantiles(w.buffer),
      targetEndMs: st ? st.targetMs : null,
      targetMaxMs: st ? w.targetMax : null,
      targetSteps: w.targetSteps,
      trace: file,
      traceRows: this.trace.length / TRACE_COLS,
      transportNow: this.transportStats()?.now ?? null,
      recovered: this.transportStats()?.datagram?.recovered ?? 0,
      datagrams: this.transportStats()?.datagram?.datagrams ?? 0,
      spacingAtEnd: this.transportStats()?.spacing ?? null,
      outsideLongGaps: w.outsideLongGaps,
      outsideStalls: w.outsideStalls,
      boxStalls: w.boxStalls,
      boxStallMaxMs: w.boxStallMaxMs,
    };
  }

  /** Audio buffered at each player tick of the window, ms. */
  bufferSamples(): number[] {
    return this.win.buffer;
  }

  private traceCsv(): string {
    const t = this.trace;
    const lines = [TRACE_HEADER];
    for (let i = 0; i < t.length; i += TRACE_COLS) lines.push(`${t[i]},${t[i + 1]!.toFixed(3)},${t[i + 2]!.toFixed(3)},${t[i + 3]}`);
    return `${lines.join('\n')}\n`;
  }
}

function emptyWindow(): {
  fromMs: number;
  skipEvents: number;
  buffer: number[];
  targetSteps: [number, number][];
  targetMax: number;
  boxStalls: number;
  boxStallMaxMs: number;
  outsideLongGaps: number;
  outsideStalls: number;
} {
  return { fromMs: monoMs(), skipEvents: 0, buffer: [], targetSteps: [], targetMax: 0, boxStalls: 0, boxStallMaxMs: 0, outsideLongGaps: 0, outsideStalls: 0 };
}

/** p50, p99 and max of buffer samples (exact: a buffer may hold more than a latency histogram's range). */
export function bufferQuantiles(samples: number[]): { p50: number; p99: number; max: number } | null {
  if (samples.length === 0) return null;
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
  return { p50: q(0.5), p99: q(0.99), max: s[s.length - 1]! };
}
