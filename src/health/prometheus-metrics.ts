import { Counter, Gauge, Registry } from 'prom-client';
import type { ClientSummary, HealthSnapshot } from './health-snapshot';
import type { LatencySummary } from '../metrics/latency-histogram';

/** What a scrape reads: the health snapshot and the box's own latency figures. Read once per scrape, never per period. */
export interface MetricsSource {
  healthSnapshot(): HealthSnapshot;
  latency(): { server: LatencySummary; captureBlock: LatencySummary };
  clients(): ClientSummary[];
}

const CAPTURE_STATES = ['starting', 'running', 'no-device', 'retrying', 'error', 'stopped'] as const;
const QUANTILES: readonly [string, 'p50Ms' | 'p99Ms' | 'p999Ms'][] = [
  ['0.5', 'p50Ms'],
  ['0.99', 'p99Ms'],
  ['0.999', 'p999Ms'],
];

/**
 * GET /metrics in the Prometheus text format (prom-client), on its own
 * registry. Every value is read from the health snapshot when Prometheus
 * scrapes (collect callbacks), so metrics cost nothing between scrapes and
 * nothing at all on the audio path. Units are in the names (seconds, bytes,
 * hertz, ratio) as Prometheus naming asks; per-client series are labelled by
 * clientId and vanish when the client leaves.
 */
export class PrometheusMetrics {
  readonly registry = new Registry();

  constructor(private readonly source: MetricsSource) {
    const reg = [this.registry];
    // One snapshot per scrape, shared by every collect callback of that scrape.
    let snap: HealthSnapshot | null = null;
    let snapAt = -Infinity;
    const s = (): HealthSnapshot => {
      const now = performance.now();
      if (snap === null || now - snapAt > 50) {
        snap = this.source.healthSnapshot();
        snapAt = now;
      }
      return snap;
    };
    const gauge = (name: string, help: string, read: () => number | null, labelNames: string[] = []) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers: reg,
        collect() {
          const v = read();
          this.reset();
          if (v !== null && Number.isFinite(v)) this.set(v);
        },
      });

    new Gauge({
      name: 'stagebox_info',
      help: 'Always 1; the labels carry the firmware version, source kind and device.',
      labelNames: ['version', 'source', 'device'],
      registers: reg,
      collect() {
        const h = s();
        this.reset();
        this.set({ version: h.version, source: h.audio.source, device: h.audio.device }, 1);
      },
    });
    gauge('stagebox_uptime_seconds', 'Seconds since the service started.', () => s().uptimeS);
    new Gauge({
      name: 'stagebox_capture_state',
      help: 'Capture state: 1 for the current state, 0 for the others.',
      labelNames: ['state'],
      registers: reg,
      collect() {
        const cur = s().audio.captureState;
        for (const st of CAPTURE_STATES) this.set({ state: st }, st === cur ? 1 : 0);
      },
    });
    gauge('stagebox_capture_channels', 'Capture channels of the running source.', () => s().audio.channels);
    gauge('stagebox_capture_rate_hertz', 'Capture sample rate, Hz.', () => s().audio.rate);
    gauge('stagebox_capture_period_frames', 'Frames per capture period.', () => s().audio.periodFrames);
    monotonic('stagebox_capture_periods_total', 'Capture periods delivered since the service started.', () => s().audio.periods, reg);
    monotonic('stagebox_capture_xruns_total', 'Capture overruns (lost audio at the device) since the service started.', () => s().audio.xruns, reg);
    gauge('stagebox_capture_jitter_p99_seconds', '99th percentile of period arrival jitter since the last perf reset, seconds.', () => s().audio.jitterP99Ms / 1000);
    gauge('stagebox_pool_size', 'Send pool worker threads.', () => s().pool.size);
    gauge('stagebox_pool_utilization_ratio', 'Send pool worker utilisation, 0-1.', () => s().pool.utilizationPct / 100);
    gauge('stagebox_pool_deadline_misses', 'Periods that reached clients later than one period after capture (resets with /api/perf/reset).', () => s().pool.deadlineMisses);
    gauge('stagebox_pool_skipped_periods', 'Periods dropped because the pool was a whole ring behind.', () => s().pool.skippedPeriods);
    const latencyGauge = (name: string, help: string, pick: (l: ReturnType<MetricsSource['latency']>) => LatencySummary) =>
      new Gauge({
        name,
        help,
        labelNames: ['quantile'],
        registers: reg,
        collect: function (this: Gauge) {
          const sum = pick(source.latency());
          this.reset();
          for (const [q, key] of QUANTILES) this.set({ quantile: q }, sum[key] / 1000);
        },
      });
    latencyGauge('stagebox_server_latency_seconds', 'Period arrival to packet handed to a client socket, quantiles since the last perf reset, seconds.', (l) => l.server);
    latencyGauge('stagebox_capture_block_seconds', 'Main-thread time each period holds the event loop, quantiles since the last perf reset, seconds.', (l) => l.captureBlock);
    gauge('stagebox_clients', 'Connected stream clients.', () => s().clients.count);
    gauge('stagebox_clients_max_latency_seconds', 'Largest estimated capture-to-ear delay beyond the box (rtt / 2 + playback buffer) of any client, seconds.', () => {
      const v = s().clients.maxLatencyMs;
      return v === null ? null : v / 1000;
    });
    const perClient = (name: string, help: string, read: (c: ClientSummary) => number | null) =>
      new Gauge({
        name,
        help,
        labelNames: ['client'],
        registers: reg,
        collect() {
          this.reset();
          for (const c of source.clients()) {
            const v = read(c);
            if (c.id !== null && v !== null) this.set({ client: c.id }, v);
          }
        },
      });
    perClient('stagebox_client_rtt_seconds', 'WebSocket ping round trip the box measured, per client, seconds.', (c) => (c.rttMs === null ? null : c.rttMs / 1000));
    perClient('stagebox_client_playback_buffer_seconds', 'Playback buffer the client reported, seconds.', (c) => (c.playbackBufferMs === null ? null : c.playbackBufferMs / 1000));
    perClient('stagebox_client_dropped_packets', 'Packets dropped for the client because its socket fell behind, since it connected.', (c) => c.drops);
    perClient('stagebox_client_recovered_packets', 'Packets lost on the way that a redundant copy brought back, as the client reported, since it connected.', (c) => c.recovered);
    perClient('stagebox_client_concealed_packets', 'Packets lost on the way that the client concealed, as it reported, since it connected.', (c) => c.concealed);
    new Gauge({
      name: 'stagebox_client_transport',
      help: 'How each client\'s audio travels now: 1 for its transport (ws, udp or webrtc).',
      labelNames: ['client', 'transport'],
      registers: reg,
      collect() {
        this.reset();
        for (const c of source.clients()) if (c.id !== null) this.set({ client: c.id, transport: c.transport }, 1);
      },
    });
    monotonic('stagebox_sent_bytes_total', 'Audio bytes written to client sockets since the service started.', () => s().clients.bytesSent, reg);
    gauge('stagebox_recording', '1 while a take is being recorded, else 0.', () => (s().recording.active ? 1 : 0));
    gauge('stagebox_recording_seconds', 'Length of the take being recorded, seconds (0 when none).', () => s().recording.seconds);
    gauge('stagebox_recording_free_bytes', 'Free space on the recording drive (in use, or the one a take would use), bytes.', () => s().recording.freeBytes);
    gauge('stagebox_recording_time_left_seconds', 'Recording time left on that drive at the current rate, seconds.', () => s().recording.secondsLeft);
    monotonic('stagebox_recording_write_errors_total', 'Failed writes and flushes to recording drives since the service started.', () => s().recording.writeErrors, reg);
    gauge('stagebox_playback', '1 while virtual soundcheck plays a take instead of the stage, else 0.', () => (s().recording.playing !== null ? 1 : 0));
    gauge('stagebox_cpu_load_ratio', 'Whole-machine CPU load, 0-1.', () => {
      const v = s().cpu.loadPct;
      return v === null ? null : v / 100;
    });
    gauge('stagebox_cpu_temperature_celsius', 'CPU temperature, degrees Celsius (absent where the platform does not report it).', () => s().cpu.tempC);
    gauge('stagebox_memory_used_ratio', 'Memory in use, 0-1.', () => {
      const v = s().mem.usedPct;
      return v === null ? null : v / 100;
    });
  }

  contentType(): string {
    return this.registry.contentType;
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}

/** A counter whose value is a running total the service already keeps (set on scrape; never decreases while the service runs). */
function monotonic(name: string, help: string, read: () => number, registers: Registry[]): Counter {
  return new Counter({
    name,
    help,
    registers,
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}
