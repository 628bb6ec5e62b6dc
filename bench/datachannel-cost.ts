/**
 * What one AUDIO datagram costs the box's CPU on a WebRTC data channel
 * (src/transport/webrtc-peers.ts, werift) against a plain UDP send of the
 * same bytes, and the memory of a peer: the evidence for the library choice
 * (docs/architecture.md, "WebRTC data channels"; BENCHMARKS.md).
 *
 *   node --expose-gc dist/bench/datachannel-cost.js [--seconds 10] [--peers 1,10] [--sizes 600,1200]
 *        [--libs udp,werift] [--node-datachannel DIR]
 *   --node-datachannel DIR: node-datachannel from DIR (not a dependency: evaluation only) as a third sender, and as
 *   the receivers: werift receiving 10 × 375 messages a second saturates the child's core by itself, which then
 *   holds back the sender under test.
 *
 * This process is the box; the receivers (werift peers that offer the audio
 * channel as a browser does, and UDP sockets) run in a child process, so
 * process.cpuUsage() here is the sender's cost alone: ICE, DTLS, SCTP and
 * their acknowledgements included. Each peer gets 375 messages a second
 * (one per 128-frame period at 48 kHz), paced by the clock, unordered with
 * maxRetransmits 0, for the window after a 1 s warm-up. Prints one JSON
 * line per run on stdout.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';
import { AUDIO_CHANNEL_LABEL } from '../src/protocol/webrtc';
import { WebRtcPeers } from '../src/transport/webrtc-peers';
import { WeriftBrowser } from '../test/helpers/werift-browser';

const RATE = 375;

type ToChild = { type: 'offers'; n: number } | { type: 'answers'; sdps: string[] } | { type: 'udp'; n: number } | { type: 'count' } | { type: 'reset' };
type FromChild = { type: 'offers'; sdps: string[] } | { type: 'udp'; ports: number[] } | { type: 'count'; messages: number; bytes: number } | { type: 'ready' };

// ---- the receivers (child) -----------------------------------------------------------------------------------

/** The receivers' side of one peer: its offer, the answer applied, messages counted. */
interface Receiver {
  accept(sdp: string): Promise<void>;
  close(): Promise<void>;
  messages: number;
  bytes: number;
}

async function weriftReceiver(): Promise<{ r: Receiver; sdp: string }> {
  const { browser, sdp } = await WeriftBrowser.offer();
  return { r: browser, sdp };
}

interface NdcModule {
  PeerConnection: new (name: string, config: object) => NdcPeer;
}

async function ndcReceiver(ndc: NdcModule, i: number): Promise<{ r: Receiver; sdp: string }> {
  const pc = new ndc.PeerConnection(`listener-${i}`, { iceServers: [], bindAddress: '127.0.0.1' });
  const dc = pc.createDataChannel(AUDIO_CHANNEL_LABEL, { unordered: true, maxRetransmits: 0 });
  // node-datachannel closes a channel whose JS object is collected: the receiver holds it.
  const r: Receiver & { channel: NdcChannel } = {
    channel: dc,
    messages: 0,
    bytes: 0,
    accept: async (sdp) => pc.setRemoteDescription(sdp, 'answer'),
    close: async () => pc.close(),
  };
  dc.onMessage((m) => {
    r.messages++;
    r.bytes += m.length;
  });
  await until(() => pc.gatheringState() === 'complete', 10_000, 'node-datachannel gathering');
  return { r, sdp: pc.localDescription()!.sdp };
}

async function receiver(): Promise<void> {
  const ndcAt = process.argv.indexOf('--ndc');
  const ndc = ndcAt > 0 ? (require(process.argv[ndcAt + 1]!) as NdcModule) : null;
  let browsers: Receiver[] = [];
  const sockets: ReturnType<typeof createSocket>[] = [];
  let udpMessages = 0;
  let udpBytes = 0;
  const send = (m: FromChild): void => void process.send!(m);
  process.on('message', async (m: ToChild) => {
    if (m.type === 'offers') {
      const made = await Promise.all(Array.from({ length: m.n }, (_, i) => (ndc ? ndcReceiver(ndc, i) : weriftReceiver())));
      browsers = made.map((x) => x.r);
      send({ type: 'offers', sdps: made.map((x) => x.sdp) });
    } else if (m.type === 'answers') {
      await Promise.all(m.sdps.map((sdp, i) => browsers[i]!.accept(sdp)));
      send({ type: 'ready' });
    } else if (m.type === 'udp') {
      for (let i = 0; i < m.n; i++) {
        const s = createSocket('udp4');
        s.on('message', (msg) => {
          udpMessages++;
          udpBytes += msg.length;
        });
        await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
        sockets.push(s);
      }
      send({ type: 'udp', ports: sockets.slice(-m.n).map((s) => s.address().port) });
    } else if (m.type === 'count') {
      let messages = udpMessages;
      let bytes = udpBytes;
      for (const b of browsers) {
        messages += b.messages;
        bytes += b.bytes;
      }
      send({ type: 'count', messages, bytes });
    } else if (m.type === 'reset') {
      await Promise.all(browsers.map((b) => b.close()));
      browsers = [];
      for (const s of sockets.splice(0)) s.close();
      udpMessages = 0;
      udpBytes = 0;
      send({ type: 'ready' });
    }
  });
  // The box process gone (even by a crash): nothing left running.
  process.on('disconnect', () => process.exit(0));
  // Received messages are kept only as counts and sizes.
  WeriftBrowser.keepMessages = false;
  send({ type: 'ready' });
}

// ---- the box (parent) ----------------------------------------------------------------------------------------

class Child {
  private readonly waiting: ((m: FromChild) => void)[] = [];
  constructor(readonly proc: ChildProcess) {
    proc.on('message', (m: FromChild) => this.waiting.shift()?.(m));
  }
  ask(m: ToChild | null): Promise<FromChild> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      if (m) this.proc.send(m);
    });
  }
}

/** A sender under test: N peers, each taking one message per send(i, bytes). */
interface Sender {
  send(i: number, bytes: Buffer): void;
  /** Messages not handed over: channel closed or full. */
  dropped(): number;
  close(): Promise<void>;
}

async function weriftSender(child: Child, n: number): Promise<Sender> {
  const opened = new Set<number>();
  // The box's own bound (maxBufferedBytes default): a backlog is dropped and counted, as in the service.
  const box = new WebRtcPeers({ hostAddresses: ['127.0.0.1'], maxPeers: 4096, onOpen: (id) => opened.add(id) });
  const { sdps } = (await child.ask({ type: 'offers', n })) as { sdps: string[] };
  const answers = await Promise.all(sdps.map((sdp, i) => box.answer(i, sdp)));
  await child.ask({ type: 'answers', sdps: answers });
  await until(() => opened.size === n, 30_000, 'werift channels open');
  let closed = 0;
  const dropped = (): number => closed + Array.from({ length: n }, (_, i) => box.stats(i)?.messagesDropped ?? 0).reduce((a, b) => a + b, 0);
  return {
    send: (i, b) => {
      if (!box.send(i, b) && box.stats(i) === null) closed++;
    },
    dropped,
    close: () => box.stop(),
  };
}

interface NdcChannel {
  sendMessageBinary(b: Buffer): boolean;
  onMessage(cb: (m: Buffer) => void): void;
  onOpen(cb: () => void): void;
  isOpen(): boolean;
}
interface NdcPeer {
  setRemoteDescription(sdp: string, type: string): void;
  localDescription(): { sdp: string } | null;
  gatheringState(): string;
  onDataChannel(cb: (dc: NdcChannel) => void): void;
  createDataChannel(label: string, init: object): NdcChannel;
  close(): void;
}

async function ndcSender(dir: string, child: Child, n: number): Promise<Sender> {
  const ndc = require(dir) as NdcModule;
  const channels: NdcChannel[] = [];
  const pcs: NdcPeer[] = [];
  const { sdps } = (await child.ask({ type: 'offers', n })) as { sdps: string[] };
  const answers: string[] = [];
  for (const [i, sdp] of sdps.entries()) {
    const pc = new ndc.PeerConnection(`box-${i}`, { iceServers: [], bindAddress: '127.0.0.1' });
    pcs.push(pc);
    pc.onDataChannel((dc) => {
      channels[i] = dc;
    });
    pc.setRemoteDescription(sdp, 'offer');
    await until(() => pc.gatheringState() === 'complete', 10_000, 'node-datachannel gathering');
    answers.push(pc.localDescription()!.sdp);
  }
  await child.ask({ type: 'answers', sdps: answers });
  await until(() => channels.filter((c) => c?.isOpen()).length === n, 30_000, 'node-datachannel channels open');
  let dropped = 0;
  return {
    send: (i, b) => {
      try {
        if (!channels[i]!.sendMessageBinary(b)) dropped++;
      } catch {
        dropped++;
      }
    },
    dropped: () => dropped,
    close: async () => {
      for (const pc of pcs) pc.close();
    },
  };
}

async function udpSender(child: Child, n: number): Promise<Sender> {
  const { ports } = (await child.ask({ type: 'udp', n })) as { ports: number[] };
  // One socket for every listener, as the box binds one UDP port.
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  return {
    send: (i, b) => socket.send(b, ports[i]!, '127.0.0.1'),
    dropped: () => 0,
    close: async () => {
      socket.close();
    },
  };
}

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Sends RATE messages a second to each of n peers for `seconds`; returns messages sent and the CPU they took. */
async function pace(sender: Sender | null, n: number, bytes: Buffer, seconds: number): Promise<{ messages: number; cpuUs: number; wallS: number }> {
  let sent = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - t0;
      const due = Math.min(Math.floor((elapsed * RATE) / 1000), Math.floor(seconds * RATE));
      for (; sent < due; sent++) for (let i = 0; i < n; i++) sender?.send(i, bytes);
      if (elapsed >= seconds * 1000) {
        clearInterval(timer);
        resolve();
      }
    }, 2);
  });
  const cpu = process.cpuUsage(cpu0);
  return { messages: sent * n, cpuUs: cpu.user + cpu.system, wallS: (performance.now() - t0) / 1000 };
}

function heap(): { heapMb: number; rssMb: number } {
  (globalThis as { gc?: () => void }).gc!();
  const m = process.memoryUsage();
  return { heapMb: m.heapUsed / 1e6, rssMb: m.rss / 1e6 };
}

async function box(): Promise<void> {
  const { values } = parseArgs({
    options: { libs: { type: 'string', default: 'udp,werift,node-datachannel' }, seconds: { type: 'string', default: '10' }, peers: { type: 'string', default: '1,10' }, sizes: { type: 'string', default: '600,1200' }, 'node-datachannel': { type: 'string' } },
  });
  if (typeof (globalThis as { gc?: unknown }).gc !== 'function') throw new Error('run with node --expose-gc (memory per peer is measured after a collection)');
  const seconds = Number(values.seconds);
  const peerCounts = values.peers.split(',').map(Number);
  const sizes = values.sizes.split(',').map(Number);
  const ndcDir = values['node-datachannel'];
  const child = new Child(fork(__filename, ['--receiver', ...(ndcDir ? ['--ndc', ndcDir] : [])], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  await child.ask(null);
  const libs: [string, (n: number) => Promise<Sender>][] = [
    ['udp', (n) => udpSender(child, n)],
    ['werift', (n) => weriftSender(child, n)],
  ];
  if (ndcDir) libs.push(['node-datachannel', (n) => ndcSender(ndcDir, child, n)]);
  const wanted = values.libs.split(',');
  const chosen = libs.filter(([lib]) => wanted.includes(lib));

  const idle = await pace(null, 0, Buffer.alloc(0), Math.min(seconds, 5));
  const idleCpuPct = (idle.cpuUs / 1e4) / idle.wallS;
  process.stdout.write(`${JSON.stringify({ run: 'pacer-only', cpuPct: round(idleCpuPct) })}\n`);
  try {
    for (const n of peerCounts) {
      for (const size of sizes) {
        for (const [lib, make] of chosen) {
          const before = heap();
          const sender = await make(n);
          const after = heap();
          const bytes = Buffer.alloc(size, 0x5a);
          await pace(sender, n, bytes, 1);
          const c0 = (await child.ask({ type: 'count' })) as { messages: number };
          const d0 = sender.dropped();
          const run = await pace(sender, n, bytes, seconds);
          await new Promise((r) => setTimeout(r, 500));
          const c1 = (await child.ask({ type: 'count' })) as { messages: number };
          const cpuPct = run.cpuUs / 1e4 / run.wallS;
          process.stdout.write(
            `${JSON.stringify({
              lib,
              peers: n,
              bytes: size,
              receivers: ndcDir ? 'node-datachannel' : 'werift',
              messages: run.messages,
              dropped: sender.dropped() - d0,
              delivered: c1.messages - c0.messages,
              cpuPct: round(cpuPct),
              usPerMessage: round(run.cpuUs / run.messages),
              usPerMessageNet: round((run.cpuUs - (idleCpuPct * 1e4 * run.wallS)) / run.messages),
              heapMbPerPeer: round((after.heapMb - before.heapMb) / n),
              rssMbPerPeer: round((after.rssMb - before.rssMb) / n),
            })}\n`,
          );
          await sender.close();
          await child.ask({ type: 'reset' });
        }
      }
    }
  } finally {
    child.proc.kill();
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

if (process.argv.includes('--receiver')) {
  void receiver();
} else {
  box().catch((err) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
