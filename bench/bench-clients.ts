/**
 * Bench client process, forked by run-bench so that receiving and timing
 * packets never shares an event loop with the service under test. Driven
 * over IPC (bench-ipc.ts); writes nothing to stdout.
 */
import WebSocket, { type RawData } from 'ws';
import { DatagramLink } from '../src/client/datagram-link';
import { nodeDatagramSocket } from '../src/listen/node-platform';
import { LatencyHistogram } from '../src/metrics/latency-histogram';
import type { ChurnStats, ClientSpec, ConnectResult, FleetReply, FleetRequest, FleetStats } from './bench-ipc';
import { BrowserListener, closeBrowser } from './browser-listener';
import { LibraryClient, jitterStats, resetJitterStats } from './library-client';
import { PacketCounters } from './packet-counters';
import { addCounts, emptyCounts, StreamVerifier } from './stream-verifier';
import { bufferQuantiles, WifiListener } from './wifi-listener';

const MAGIC0 = 0x53;
const MAGIC1 = 0x42;
const FIXED_HEADER_BYTES = 36;
const FLAG_DISCONTINUITY = 1;
/** Clients connecting at once: enough to be quick, few enough not to look like a SYN flood. */
const CONNECT_CONCURRENCY = 32;
/** How long close() waits for sockets to finish their close handshake. */
const CLOSE_WAIT_MS = 1000;

/** One histogram for every normal client: the report is about the population, not one phone. */
const e2e = new LatencyHistogram();
let malformed = 0;

class BenchClient extends PacketCounters {
  open = false;
  closeCode: number | null = null;
  private ws: WebSocket | null = null;
  readonly verifier: StreamVerifier | null;
  /** Where the box says this client's audio goes now ("ws" until a UDP flow is up). */
  audioNow = 'ws';
  /** Audio over UDP (spec.transport "udp"): the library's datagram link, with no jitter buffer behind it. */
  private link: DatagramLink | null = null;

  constructor(readonly spec: ClientSpec) {
    super();
    this.verifier = spec.verify ? new StreamVerifier(spec.clientId, spec.channels) : null;
  }

  /** Connects, says hello, subscribes; resolves once "subscribed" arrives. */
  connect(port: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          this.ws?.terminate();
          reject(err);
        } else resolve();
      };
      const timer = setTimeout(() => settle(new Error(`${this.spec.clientId}: no "subscribed" within ${timeoutMs} ms`)), timeoutMs);
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
      this.ws = ws;
      ws.on('open', () => {
        this.open = true;
        // hello and subscribe back to back: the box applies control messages in order.
        ws.send(JSON.stringify({ type: 'hello', protocol: 1, clientId: this.spec.clientId, name: 'bench' }));
        if (this.spec.mix) ws.send(JSON.stringify({ type: 'mix', ...this.spec.mix }));
        else ws.send(JSON.stringify({ type: 'subscribe', channels: this.spec.channels, codec: this.spec.codec }));
      });
      ws.on('message', (data: RawData, isBinary: boolean) => {
        if (isBinary) {
          this.onPacket(data as Buffer);
          return;
        }
        const reply = parseControl(data);
        if (reply.type === 'welcome' && this.spec.transport === 'udp') this.startUdp(ws, reply.udp);
        else if (reply.type === 'transport' && typeof reply.audio === 'string') this.audioNow = reply.audio;
        if (reply.type === 'subscribed' || reply.type === 'mixing') {
          if (this.spec.stalled) ws.pause();
          settle(null);
        } else if (reply.type === 'error') {
          settle(new Error(`${this.spec.clientId}: box answered error ${reply.code ?? '?'}: ${reply.message ?? ''}`));
        }
      });
      ws.on('error', (err: Error) => settle(new Error(`${this.spec.clientId}: ${err.message}`)));
      // Stays attached after connect: records how a client went away mid-measurement.
      ws.on('close', (code: number, reason: Buffer) => {
        this.open = false;
        this.closeCode = code;
        settle(new Error(`${this.spec.clientId}: closed ${code} ${reason.toString()} before "subscribed"`));
      });
    });
  }

  /** Binds a UDP flow with the connection's token and asks the box to send the audio there (docs/protocol.md §12). */
  private startUdp(ws: WebSocket, udp: ControlReply['udp']): void {
    if (!udp || typeof udp.port !== 'number' || typeof udp.token !== 'string') return;
    const link = new DatagramLink({
      socket: nodeDatagramSocket()('127.0.0.1', udp.port),
      token: Buffer.from(udp.token, 'hex'),
      now: () => performance.now(),
      onPacket: (bytes) => this.onPacket(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
      onState: () => undefined,
    });
    this.link = link;
    link.start();
    ws.send(JSON.stringify({ type: 'transport', transport: 'udp', redundancy: this.spec.redundancy ?? 1, spacing: typeof this.spec.spacing === 'number' ? this.spec.spacing : 1 }));
  }

  /** Packets a redundant copy brought (UDP), since connect. */
  get recovered(): number {
    return this.link?.stats.recovered ?? 0;
  }

  /**
   * Hot path, once per packet per client: fixed-offset reads only, no parse
   * object. The receipt time is taken first so that our own work is not
   * counted as latency.
   */
  private onPacket(buf: Buffer): void {
    const now = process.hrtime.bigint();
    if (buf.length < FIXED_HEADER_BYTES || buf[0] !== MAGIC0 || buf[1] !== MAGIC1) {
      malformed++;
      return;
    }
    if (this.spec.stalled) {
      // Bytes the socket had already buffered before pause(); not part of the measured population.
      this.packets++;
      return;
    }
    // captureNs is CLOCK_MONOTONIC on the same machine, the clock behind hrtime.bigint(). For an opus
    // packet it is the capture time of the frame's first sample (seq counts that stream's frames, so
    // the gap count below holds for opus too): its e2e includes the wait for the frame to fill,
    // which is latency the listener has and pcm does not.
    e2e.record(Number(now - buf.readBigUInt64LE(24)) / 1e6);
    this.verifier?.check(buf);
    this.count(buf.readUInt32LE(8), (buf[33]! & FLAG_DISCONTINUITY) !== 0, buf.length - buf.readUInt16LE(4), buf.readUInt16LE(6) * buf[32]! * 2);
  }

  close(): void {
    this.link?.close();
    this.link = null;
    const ws = this.ws;
    if (!ws) return;
    try {
      // A stalled socket never reads the close reply; terminate instead of waiting on it.
      if (this.spec.stalled) ws.terminate();
      else ws.close(1000, 'bench done');
    } catch {
      ws.terminate();
    }
  }

  terminate(): void {
    this.link?.close();
    this.link = null;
    this.ws?.terminate();
  }
}

interface ControlReply {
  type?: string;
  code?: string;
  message?: string;
  /** welcome: the box's UDP port and this connection's token. */
  udp?: { port?: unknown; token?: unknown };
  /** transport: where the audio goes now. */
  audio?: unknown;
}

function parseControl(data: RawData): ControlReply {
  try {
    const v: unknown = JSON.parse(data.toString());
    return typeof v === 'object' && v !== null ? (v as ControlReply) : {};
  } catch {
    return {};
  }
}

type AnyClient = BenchClient | LibraryClient | BrowserListener;
const clients: AnyClient[] = [];

async function connectAll(port: number, specs: ClientSpec[], perClientTimeoutMs: number): Promise<ConnectResult> {
  const result: ConnectResult = { connected: 0, failed: 0, firstError: null };
  for (let i = 0; i < specs.length; i += CONNECT_CONCURRENCY) {
    const batch = specs
      .slice(i, i + CONNECT_CONCURRENCY)
      .map((s): AnyClient => (s.browser ? new BrowserListener(s) : s.wifiLabel ? new WifiListener(s, e2e) : s.viaLibrary ? new LibraryClient(s, e2e) : new BenchClient(s)));
    const outcomes = await Promise.allSettled(batch.map((c) => c.connect(port, perClientTimeoutMs)));
    outcomes.forEach((o, k) => {
      const c = batch[k]!;
      if (o.status === 'fulfilled') {
        result.connected++;
        clients.push(c);
      } else {
        result.failed++;
        result.firstError ??= (o.reason as Error).message;
      }
    });
    // Stop early: the report needs the first error, not 1000 copies of it.
    if (result.failed > 0) break;
  }
  return result;
}

function collectStats(): FleetStats {
  const s: FleetStats = {
    clients: 0,
    open: 0,
    closes: {},
    e2e: e2e.summary(),
    packets: 0,
    lostPackets: 0,
    discontinuities: 0,
    malformed,
    minPackets: 0,
    maxPackets: 0,
    payloadBytes: 0,
    pcm16Bytes: 0,
    stalled: { clients: 0, open: 0, packets: 0 },
    audioTransports: {},
    recovered: 0,
  };
  let min = Infinity;
  for (const c of clients) {
    if (c.spec.stalled) {
      s.stalled.clients++;
      if (c.open) s.stalled.open++;
      s.stalled.packets += c.packets;
      continue;
    }
    s.clients++;
    if (c.open) {
      s.open++;
      min = Math.min(min, c.packets);
      if (c instanceof BenchClient) s.audioTransports[c.audioNow] = (s.audioTransports[c.audioNow] ?? 0) + 1;
    } else if (c.closeCode !== null) {
      s.closes[c.closeCode] = (s.closes[c.closeCode] ?? 0) + 1;
    }
    s.packets += c.packets;
    s.maxPackets = Math.max(s.maxPackets, c.packets);
    s.lostPackets += c.lost;
    if (c instanceof BenchClient) s.recovered += c.recovered;
    s.discontinuities += c.discontinuities;
    s.payloadBytes += c.payloadBytes;
    s.pcm16Bytes += c.pcm16Bytes;
  }
  s.minPackets = min === Infinity ? 0 : min;
  const lib = clients.filter((c): c is LibraryClient => c instanceof LibraryClient);
  if (lib.length > 0) s.jitter = jitterStats(lib);
  const verifying = [...clients, ...churn.done, ...churn.live].filter((c): c is BenchClient => c instanceof BenchClient && c.verifier !== null);
  if (verifying.length > 0) {
    const counts = emptyCounts();
    const examples: string[] = [];
    for (const c of verifying) {
      addCounts(counts, c.verifier!.counts);
      examples.push(...c.verifier!.examples);
    }
    s.verify = { clients: verifying.length, counts, examples: examples.slice(0, 10) };
  }
  return s;
}

/**
 * Churn (soak scenario): new clients arrive at a steady rate, stream for a
 * while and leave, as phones do at a venue. They count in the verify stats
 * (their packets are checked like everyone's) but not in the normal fleet's.
 */
const churn = {
  timer: null as NodeJS.Timeout | null,
  live: new Set<BenchClient>(),
  done: [] as BenchClient[],
  stats: { started: 0, connected: 0, failed: 0, firstError: null, closes: {} } as ChurnStats,
};

function churnStart(port: number, perSecond: number, lifetimeMs: number, specs: ClientSpec[]): void {
  if (churn.timer || specs.length === 0) return;
  let n = 0;
  churn.timer = setInterval(() => {
    const base = specs[n % specs.length]!;
    const c = new BenchClient({ ...base, clientId: `${base.clientId}-${n++}` });
    churn.stats.started++;
    churn.live.add(c);
    c.connect(port, lifetimeMs).then(
      () => {
        churn.stats.connected++;
        setTimeout(() => {
          c.close();
          churnEnd(c);
        }, lifetimeMs).unref();
      },
      (err: Error) => {
        churn.stats.failed++;
        churn.stats.firstError ??= err.message;
        churnEnd(c);
      },
    );
  }, 1000 / perSecond);
}

function churnEnd(c: BenchClient): void {
  if (!churn.live.delete(c)) return;
  if (c.closeCode !== null && c.closeCode !== 1000 && c.closeCode !== 1005) churn.stats.closes[c.closeCode] = (churn.stats.closes[c.closeCode] ?? 0) + 1;
  churn.done.push(c);
}

async function churnStop(): Promise<ChurnStats> {
  if (churn.timer) clearInterval(churn.timer);
  churn.timer = null;
  const rest = [...churn.live];
  await closeClients(rest);
  for (const c of rest) churnEnd(c);
  return { ...churn.stats, closes: { ...churn.stats.closes } };
}

function resetStats(): void {
  e2e.reset();
  resetJitterStats();
  malformed = 0;
  for (const c of [...clients, ...churn.live]) {
    c.resetStats();
    if (c instanceof BenchClient) c.verifier?.resetCounts();
  }
  churn.done.length = 0;
}

/** Closes `victims` and waits (bounded) for the close handshakes, so the box has detached them on return. */
async function closeClients(victims: AnyClient[]): Promise<void> {
  for (const c of victims) c.close();
  const deadline = Date.now() + CLOSE_WAIT_MS;
  while (Date.now() < deadline && victims.some((c) => c.open)) await new Promise((r) => setTimeout(r, 50));
  for (const c of victims) c.terminate();
}

async function trim(keep: number): Promise<number> {
  let normal = 0;
  const victims: AnyClient[] = [];
  for (let i = 0; i < clients.length; i++) {
    const c = clients[i]!;
    if (c.spec.stalled || ++normal <= keep) continue;
    victims.push(c);
    clients.splice(i--, 1);
  }
  await closeClients(victims);
  return Math.min(normal, keep);
}

function reply(msg: FleetReply): void {
  process.send?.(msg);
}

async function handle(req: FleetRequest): Promise<void> {
  try {
    switch (req.op) {
      case 'connect':
        reply({ rid: req.rid, op: 'connect', result: await connectAll(req.port, req.clients, req.perClientTimeoutMs) });
        return;
      case 'reset':
        resetStats();
        reply({ rid: req.rid, op: 'reset' });
        return;
      case 'stats':
        reply({ rid: req.rid, op: 'stats', stats: collectStats() });
        return;
      case 'trim':
        reply({ rid: req.rid, op: 'trim', clients: await trim(req.keep) });
        return;
      case 'churn-start':
        churnStart(req.port, req.perSecond, req.lifetimeMs, req.specs);
        reply({ rid: req.rid, op: 'churn-start' });
        return;
      case 'churn-stop':
        reply({ rid: req.rid, op: 'churn-stop', churn: await churnStop() });
        return;
      case 'wifi': {
        const wifi = clients.filter((c): c is WifiListener | BrowserListener => c instanceof WifiListener || c instanceof BrowserListener);
        const listeners = wifi.map((c) => (c instanceof WifiListener ? c.wifiStats(req.traceDir, req.traceName) : c.wifiStats()));
        reply({ rid: req.rid, op: 'wifi', listeners, pooledBufferMs: bufferQuantiles(wifi.flatMap((c) => c.bufferSamples())) });
        return;
      }
      case 'close':
        await closeClients(clients);
        await closeBrowser();
        reply({ rid: req.rid, op: 'close' });
        process.disconnect?.();
        setTimeout(() => process.exit(0), 100).unref();
        return;
    }
  } catch (err) {
    reply({ rid: req.rid, op: 'error', message: (err as Error).message });
  }
}

if (typeof process.send !== 'function') {
  process.stderr.write('bench-clients: must be forked by run-bench (needs an IPC channel)\n');
  process.exit(2);
}
process.on('message', (msg: FleetRequest) => void handle(msg));
// The parent went away (crash, kill): never outlive it with open sockets.
process.on('disconnect', () => {
  if (churn.timer) clearInterval(churn.timer);
  for (const c of [...clients, ...churn.live]) c.terminate();
  void closeBrowser();
  setTimeout(() => process.exit(0), 500).unref();
});
