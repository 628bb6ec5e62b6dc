import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { StageboxClient, type AudioEvent, type DatagramSocketLike } from '../../src/client/index';
import { NodeWebSocket, createNodeOpusDecoder, nodeDatagramSocket } from '../../src/listen/node-platform';
import { BIND_BYTES, CHALLENGE_BYTES, KIND, encodeConfirm, encodeTokenTime, parseBoxDatagram, tokenFromHex } from '../../src/protocol/datagram';
import { FLAG_DISCONTINUITY, parsePacket } from '../../src/protocol';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { getStatus, httpRequest } from '../helpers/http-client';
import { StreamClient } from '../helpers/stream-client';
import { waitFor } from '../helpers/wait';

/**
 * Audio over UDP (docs/protocol.md §12) against the real service, over real
 * loopback sockets: the client library binding a flow with its token, the
 * box's audio in datagrams with redundancy, a phone that roams, a flow that
 * goes silent, and datagrams from anyone else.
 */

const CONFIG = {
  capture: { device: 'test-signal', channels: 8, rate: 48000, periodFrames: 128 },
  udp: { flowTimeoutMs: 800, sourceRatePerSecond: 20, sourceBurst: 40 },
  // Off, so a transport this box does not offer can be asked for (webrtc-audio.test.ts has it on).
  webrtc: { enabled: false },
};
let svc: ServiceProcess;
const clients: StageboxClient[] = [];
const sockets: dgram.Socket[] = [];

before(async () => {
  svc = await startService({ label: 'udp', config: CONFIG });
});
after(async () => {
  for (const c of clients) c.close();
  for (const s of sockets) s.close();
  await stopAllServices();
});

interface UdpStatus {
  enabled: boolean;
  port: number;
  flowsUp: number;
  rejected: { malformed: number; oversized: number; badToken: number; badNonce: number; flood: number };
  roams: number;
  timeouts: number;
}
async function udpStatus(): Promise<UdpStatus> {
  return ((await getStatus(svc.port)) as unknown as { udp: UdpStatus }).udp;
}

/** A socket factory that can lose some of what arrives (as the network would), counting what it lost. */
function lossySockets(lose: (n: number, bytes: Uint8Array) => boolean): { create: ReturnType<typeof nodeDatagramSocket>; lost: () => number } {
  let n = 0;
  let lost = 0;
  const real = nodeDatagramSocket('127.0.0.1');
  return {
    create: (host, port) => {
      const s = real(host, port);
      const wrapped: DatagramSocketLike = {
        onmessage: null,
        send: (b) => s.send(b),
        close: () => s.close(),
      };
      s.onmessage = (b) => {
        if (b[3] === KIND.AUDIO && lose(n++, b)) {
          lost++;
          return;
        }
        wrapped.onmessage?.(b);
      };
      return wrapped;
    },
    lost: () => lost,
  };
}

function udpClient(
  clientId: string,
  create: ReturnType<typeof nodeDatagramSocket>,
  redundancy = 1,
  jitter = false,
  spacing: number | 'auto' = 'auto',
): { c: StageboxClient; audio: AudioEvent[]; transports: string[] } {
  // With a jitter buffer the library reports its playback (and recovered and concealed counts) to the box.
  const c = new StageboxClient({ url: `ws://127.0.0.1:${svc.port}/`, clientId, WebSocket: NodeWebSocket, udp: { createSocket: create, redundancy, spacing }, reconnect: false, reportIntervalMs: 200, ...(jitter ? { jitter: {} } : {}) });
  clients.push(c);
  const audio: AudioEvent[] = [];
  const transports: string[] = [];
  c.on('audio', (a) => audio.push(a));
  c.on('transport', (t) => transports.push(t.audio));
  return { c, audio, transports };
}

/** Packets from index `from` on: strictly consecutive seqs (none missing, none repeated)? Returns the first problem. */
function seqProblem(audio: AudioEvent[], from: number): string | null {
  for (let i = from + 1; i < audio.length; i++) {
    const step = (audio[i]!.seq - audio[i - 1]!.seq) >>> 0;
    if (step !== 1 && !(audio[i]!.header.flags & FLAG_DISCONTINUITY)) return `seq ${audio[i]!.seq} after ${audio[i - 1]!.seq}`;
  }
  return null;
}

/**
 * Seqs missing among the packets from index `from` on (arrival order aside), but for the newest `pending`,
 * whose copies may still come, and the oldest `pending`, which may have come before `from`.
 */
function missingSeqs(audio: AudioEvent[], from: number, pending: number): number[] {
  const seqs = new Set(audio.slice(from).map((a) => a.seq));
  const sorted = [...seqs].sort((a, b) => a - b);
  const missing: number[] = [];
  for (let s = sorted[0]! + pending; s <= sorted.at(-1)! - pending; s++) if (!seqs.has(s)) missing.push(s);
  return missing;
}

describe('audio over UDP', () => {
  test('welcome offers UDP with a per-connection token; the library binds a flow and the audio moves to it', async () => {
    const { c, audio, transports } = udpClient('udp-basic', nodeDatagramSocket('127.0.0.1'));
    const w = await c.connect();
    assert.deepEqual(w.transports, ['ws', 'udp']);
    assert.match(w.udp!.token, /^[0-9a-f]{32}$/);
    assert.equal(w.udp!.port, (await udpStatus()).port);
    await c.subscribe({ channels: [0, 1], codec: 'pcm16' });
    await waitFor(() => transports.includes('udp'), { timeoutMs: 5000, what: 'the audio to move to UDP' });
    const from = audio.length;
    await waitFor(() => c.stats().transport.datagram!.packets >= 200, { timeoutMs: 10_000, what: '200 packets over UDP' });
    assert.equal(seqProblem(audio, from), null);
    const me = (await getStatus(svc.port)).clients.find((x) => x.clientId === 'udp-basic') as unknown as { transport: { asked: string; now: string; redundancy: number; where: string } };
    assert.equal(me.transport.asked, 'udp');
    assert.equal(me.transport.now, 'udp');
    assert.equal(me.transport.redundancy, 1);
    assert.match(me.transport.where, /^127\.0\.0\.1:\d+$/);
    c.close();
  });

  test('with redundancy 1, every datagram lost on the way is recovered from the next one: no seq is missing, and the recovered count says how many', async () => {
    const loss = lossySockets((n) => n % 7 === 3);
    const { c, audio, transports } = udpClient('udp-redundant', loss.create, 1, true);
    await c.connect();
    await c.mix({ channels: [{ ch: 0 }, { ch: 1, pan: 1 }] });
    await waitFor(() => transports.includes('udp'), { timeoutMs: 5000, what: 'UDP' });
    const from = audio.length;
    await waitFor(() => loss.lost() >= 30, { timeoutMs: 10_000, what: '30 datagrams lost' });
    const stats = c.stats().transport.datagram!;
    assert.equal(seqProblem(audio, from), null, 'a lost datagram leaves no gap: its packet rides in the next one');
    assert.ok(stats.recovered >= loss.lost() - 1, `recovered ${stats.recovered} of ${loss.lost()} lost`);
    // The library reports it: the box shows it in status, the MQTT client list and /metrics.
    const me = await waitFor(
      async () => ((await getStatus(svc.port)).clients as unknown as { clientId: string; recovered: number | null; transport: { now: string } }[]).find((x) => x.clientId === 'udp-redundant' && (x.recovered ?? 0) > 0),
      { timeoutMs: 5000, what: 'the recovered count in status' },
    );
    assert.equal(me.transport.now, 'udp');
    const metrics = (await httpRequest(svc.port, 'GET', '/metrics')).body;
    assert.match(metrics, /stagebox_client_transport\{client="udp-redundant",transport="udp"\} 1/);
    assert.match(metrics, /stagebox_client_recovered_packets\{client="udp-redundant"\} [1-9]/);
    c.close();
  });

  test('with spacing auto, bursts of three lost datagrams move the copies three packets back, and from then on every burst is repaired', async () => {
    const loss = lossySockets((n) => n % 24 >= 5 && n % 24 <= 7);
    const { c, audio, transports } = udpClient('udp-auto-spacing', loss.create, 1, true);
    await c.connect();
    await c.subscribe({ channels: [0, 1], codec: 'pcm16' });
    await waitFor(() => transports.includes('udp'), { timeoutMs: 5000, what: 'UDP' });
    assert.equal(c.stats().transport.spacing, 1, 'auto starts at 1: the lowest latency a repair can cost');
    // The jitter buffer starts at 10 ms (3.75 periods of 128 frames), enough to wait for a copy 3 back.
    await waitFor(() => c.stats().transport.spacing === 3, { timeoutMs: 10_000, what: 'the client to choose spacing 3' });
    const me = await waitFor(
      async () => ((await getStatus(svc.port)).clients as unknown as { clientId: string; transport: { spacing: number } }[]).find((x) => x.clientId === 'udp-auto-spacing' && x.transport.spacing === 3),
      { timeoutMs: 5000, what: 'the box to send copies 3 back' },
    );
    assert.ok(me);
    const from = audio.length;
    const lostBefore = loss.lost();
    await waitFor(() => loss.lost() >= lostBefore + 30, { timeoutMs: 10_000, what: '30 more datagrams lost' });
    // A repaired packet is handed on when its copy comes, three packets late: arrival order is not seq order.
    assert.deepEqual(missingSeqs(audio, from, 4), [], 'each burst of three is repaired by the copies in the three after it');
    c.close();
  });

  test('with a fixed spacing the client keeps it, whatever the bursts', async () => {
    const loss = lossySockets((n) => n % 24 >= 5 && n % 24 <= 7);
    const { c, audio, transports } = udpClient('udp-fixed-spacing', loss.create, 1, true, 1);
    await c.connect();
    await c.subscribe({ channels: [0, 1], codec: 'pcm16' });
    await waitFor(() => transports.includes('udp'), { timeoutMs: 5000, what: 'UDP' });
    const from = audio.length;
    await waitFor(() => loss.lost() >= 60, { timeoutMs: 10_000, what: '60 datagrams lost' });
    assert.equal(c.stats().transport.spacing, 1);
    assert.notEqual(seqProblem(audio, from), null, 'a copy one back cannot repair the first two of a burst of three');
    c.close();
  });

  test('a new stream over the same flow (the mix in pcm16, then in Opus, numbered afresh) plays at once', async () => {
    const c = new StageboxClient({ url: `ws://127.0.0.1:${svc.port}/`, clientId: 'udp-codec-switch', WebSocket: NodeWebSocket, createOpusDecoder: createNodeOpusDecoder, udp: { createSocket: nodeDatagramSocket('127.0.0.1') }, reconnect: false });
    clients.push(c);
    const audio: AudioEvent[] = [];
    c.on('audio', (a) => audio.push(a));
    await c.connect();
    await c.mix({ channels: [{ ch: 0 }, { ch: 1 }] });
    await waitFor(() => c.stats().transport.now === 'udp' && audio.length > 100, { timeoutMs: 5000, what: 'the pcm16 mix over UDP' });
    await c.mix({ channels: [{ ch: 0 }, { ch: 1 }], codec: 'opus' });
    const opus = await waitFor(() => audio.filter((a) => a.header.codec === 'opus').length >= 100 && audio.filter((a) => a.header.codec === 'opus'), {
      timeoutMs: 5000,
      what: '100 Opus packets over UDP',
      describe: () => JSON.stringify(c.stats().transport),
    });
    assert.equal(c.stats().transport.now, 'udp');
    assert.equal(seqProblem(opus, 0), null, 'the Opus stream from its first packet, none dropped as an old copy');
    c.close();
  });

  test('without redundancy a lost datagram is a gap the client sees (and nothing is recovered)', async () => {
    const loss = lossySockets((n) => n % 9 === 4);
    const { c, audio, transports } = udpClient('udp-bare', loss.create, 0);
    await c.connect();
    await c.subscribe({ channels: [3], codec: 'pcm24' });
    await waitFor(() => transports.includes('udp'), { timeoutMs: 5000, what: 'UDP' });
    const from = audio.length;
    await waitFor(() => loss.lost() >= 10, { timeoutMs: 10_000, what: '10 datagrams lost' });
    assert.notEqual(seqProblem(audio, from), null);
    assert.equal(c.stats().transport.datagram!.recovered, 0);
    c.close();
  });

  test('a flow that goes silent falls back to the WebSocket, keeping the mix; binding again moves it back', async () => {
    let mute = false;
    const real = nodeDatagramSocket('127.0.0.1');
    const create = (host: string, port: number): DatagramSocketLike => {
      const s = real(host, port);
      const w: DatagramSocketLike = { onmessage: null, send: (b) => !mute && s.send(b), close: () => s.close() };
      s.onmessage = (b) => w.onmessage?.(b);
      return w;
    };
    const { c, audio, transports } = udpClient('udp-fallback', create);
    await c.connect();
    await c.mix({ channels: [{ ch: 2, gainDb: -3 }] });
    await waitFor(() => transports.at(-1) === 'udp', { timeoutMs: 5000, what: 'UDP' });
    mute = true; // the phone's datagrams stop (Wi-Fi power save, a firewall): the box hears nothing
    await waitFor(() => transports.at(-1) === 'ws', { timeoutMs: 5000, what: 'the fallback to the WebSocket' });
    const n = audio.length;
    await waitFor(() => audio.length >= n + 100, { timeoutMs: 5000, what: 'audio over the WebSocket' });
    assert.equal(audio.at(-1)!.header.mix, true, 'still the mix');
    assert.ok((await udpStatus()).timeouts >= 1);
    mute = false;
    await waitFor(() => transports.at(-1) === 'udp', { timeoutMs: 5000, what: 'UDP again' });
    c.close();
  });

  test('a phone that roams (new source port) gets its audio at the new address once it proves the token there; a spoofed source gets a challenge no larger than what it sent, and no audio', async () => {
    const ws = await StreamClient.open(svc.port, 'udp-roam');
    const welcome = await ws.waitForMessage('welcome');
    const { port, token } = welcome.udp as { port: number; token: string };
    const tok = tokenFromHex(token);
    await ws.subscribe([0], 'pcm16');
    ws.send({ type: 'transport', transport: 'udp', redundancy: 0 });
    const a = await socketOn();
    const b = await socketOn();
    // A binds and confirms.
    a.send(encodeTokenTime(KIND.BIND, tok, 1), port, '127.0.0.1');
    const ch = await next(a, KIND.CHALLENGE);
    assert.equal(ch.bytes.length, CHALLENGE_BYTES);
    assert.ok(CHALLENGE_BYTES <= BIND_BYTES, 'no amplification: the challenge is no larger than the bind');
    a.send(encodeConfirm(tok, (ch.d as { nonce: Uint8Array }).nonce), port, '127.0.0.1');
    await next(a, KIND.AUDIO);
    // B (another port: a roamed phone, or a spoofer) sends the token: it gets one challenge, and no audio until it confirms.
    b.got.length = 0;
    b.send(encodeTokenTime(KIND.KEEPALIVE, tok, 2), port, '127.0.0.1');
    const chB = await next(b, KIND.CHALLENGE);
    // While A receives 20 more audio datagrams, B receives none.
    const aHad = a.got.filter((g) => g.bytes[3] === KIND.AUDIO).length;
    await waitFor(() => a.got.filter((g) => g.bytes[3] === KIND.AUDIO).length >= aHad + 20, { timeoutMs: 5000, what: '20 more audio datagrams at A' });
    assert.equal(b.got.filter((g) => g.bytes[3] === KIND.AUDIO).length, 0, 'no audio to an address that has not confirmed');
    assert.ok(b.got.reduce((n, g) => n + g.bytes.length, 0) <= BIND_BYTES, 'no more bytes to it than it sent');
    // A wrong nonce confirms nothing.
    const before = await udpStatus();
    b.send(encodeConfirm(tok, new Uint8Array(16)), port, '127.0.0.1');
    await waitFor(async () => (await udpStatus()).rejected.badNonce > before.rejected.badNonce, { timeoutMs: 2000, what: 'the bad nonce counted' });
    // The right one moves the audio.
    b.send(encodeConfirm(tok, (chB.d as { nonce: Uint8Array }).nonce), port, '127.0.0.1');
    await next(b, KIND.AUDIO);
    assert.ok((await udpStatus()).roams > before.roams);
    ws.close();
  });

  test('datagrams with a wrong or stale token, truncated, oversized, garbage or a flood are dropped and counted; another client\'s stream has no gap', async () => {
    const { c, audio, transports } = udpClient('udp-bystander', nodeDatagramSocket('127.0.0.1'), 1);
    await c.connect();
    await c.subscribe({ channels: [5], codec: 'pcm16' });
    await waitFor(() => transports.includes('udp'), { timeoutMs: 5000, what: 'UDP' });
    const from = audio.length;
    const { port } = (await udpStatus()) as unknown as { port: number };
    const before = await udpStatus();
    // A connection that has gone: its token is stale.
    const gone = await StreamClient.open(svc.port, 'udp-gone');
    const staleToken = tokenFromHex(((await gone.waitForMessage('welcome')).udp as { token: string }).token);
    gone.close();
    await waitFor(async () => !(await getStatus(svc.port)).clients.some((x) => x.clientId === 'udp-gone'), { timeoutMs: 5000, what: 'udp-gone to leave' });
    const evil = await socketOn();
    evil.send(encodeTokenTime(KIND.BIND, new Uint8Array(16).fill(7), 1), port, '127.0.0.1'); // wrong token
    evil.send(encodeTokenTime(KIND.BIND, staleToken, 1), port, '127.0.0.1'); // stale token
    evil.send(encodeTokenTime(KIND.BIND, staleToken, 1).subarray(0, 20), port, '127.0.0.1'); // truncated
    evil.send(Buffer.alloc(1200, 0x53), port, '127.0.0.1'); // oversized
    evil.send(Buffer.from('not a datagram of ours'), port, '127.0.0.1'); // garbage
    const flooder = await socketOn();
    for (let i = 0; i < 300; i++) flooder.send(encodeTokenTime(KIND.KEEPALIVE, new Uint8Array(16), i), port, '127.0.0.1');
    await waitFor(
      async () => {
        const r = (await udpStatus()).rejected;
        return r.badToken >= before.rejected.badToken + 2 && r.malformed >= before.rejected.malformed + 2 && r.oversized > before.rejected.oversized && r.flood >= before.rejected.flood + 200;
      },
      { timeoutMs: 5000, what: 'every bad datagram counted', describe: () => '' },
    );
    assert.equal(evil.got.length, 0, 'nothing is sent back to any of them');
    await waitFor(() => audio.length >= from + 100, { timeoutMs: 5000, what: '100 more packets for the bystander' });
    assert.equal(seqProblem(audio, from), null, 'the bystander\'s stream has no gap');
    c.close();
  });

  test('asking for a transport the box does not offer, or redundancy over the WebSocket, is refused naming the value; the stream goes on', async () => {
    const ws = await StreamClient.open(svc.port, 'udp-bad-ask');
    await ws.subscribe([0], 'pcm16');
    const e1 = await ws.expectError({ type: 'transport', transport: 'webrtc' });
    assert.equal(e1.code, 'bad-transport');
    assert.equal(e1.message, 'transport "webrtc" is not offered by this box; allowed: "ws", "udp"');
    const e2 = await ws.expectError({ type: 'subscribe', channels: [0], codec: 'pcm16', transport: 'ws', redundancy: 2 });
    assert.equal(e2.code, 'bad-transport');
    const e3 = await ws.expectError({ type: 'transport', transport: 'udp', redundancy: 4 });
    assert.equal(e3.code, 'invalid-message');
    const n = ws.packetCount;
    await ws.waitForPackets(n + 50, 5000);
    ws.close();
  });
});

interface Got {
  bytes: Buffer;
}
async function socketOn(): Promise<dgram.Socket & { got: Got[] }> {
  const s = dgram.createSocket('udp4') as dgram.Socket & { got: Got[] };
  s.got = [];
  sockets.push(s);
  s.on('message', (m) => s.got.push({ bytes: m }));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

async function next(s: dgram.Socket & { got: Got[] }, kind: number): Promise<{ bytes: Buffer; d: ReturnType<typeof parseBoxDatagram> }> {
  const g = await waitFor(() => s.got.find((x) => x.bytes[3] === kind), { timeoutMs: 5000, what: `a datagram of kind ${kind}` });
  const d = parseBoxDatagram(g.bytes);
  if (d.kind === KIND.AUDIO) parsePacket(d.packets[0]!);
  return { bytes: g.bytes, d };
}
