import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { StageboxClient, type AudioEvent, type DataChannelHandlers } from '../../src/client/index';
import { NodeWebSocket } from '../../src/listen/node-platform';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { getStatus } from '../helpers/http-client';
import { StreamClient } from '../helpers/stream-client';
import { WeriftBrowser } from '../helpers/werift-browser';
import { waitFor } from '../helpers/wait';

/**
 * Audio over a WebRTC data channel (docs/protocol.md §13) through the real
 * service: the client library's `webrtc` option, with werift playing the
 * browser on loopback (Chromium's half is test/web/listen-browser.test.ts),
 * the offer and answer over the WebSocket, the fallback to the WebSocket when
 * the channel goes, the bound on peers, and offers the box must refuse.
 */

const CONFIG = {
  capture: { device: 'test-signal', channels: 8, rate: 48000, periodFrames: 128 },
  server: { host: '127.0.0.1' },
  webrtc: { maxPeers: 1, connectTimeoutMs: 5000 },
};
let svc: ServiceProcess;
const clients: StageboxClient[] = [];
const browsers: WeriftBrowser[] = [];

before(async () => {
  svc = await startService({ label: 'webrtc', config: CONFIG });
});
after(async () => {
  for (const c of clients) c.close();
  for (const b of browsers) await b.close();
  await stopAllServices();
});

/** The library's openChannel, with werift as the browser; reports its state as web/listen/datachannel-audio.js does. */
function weriftChannel(h: DataChannelHandlers): { close(): void } {
  let browser: WeriftBrowser | null = null;
  let closed = false;
  void (async () => {
    const offered = await WeriftBrowser.offer();
    browser = offered.browser;
    browsers.push(browser);
    browser.channel.onMessage.subscribe((m) => {
      if (typeof m !== 'string') h.onDatagram(new Uint8Array(m));
    });
    browser.channel.stateChanged.subscribe((s) => {
      if (s === 'open') h.onState('open', 'channel open');
      else if (s === 'closed' && !closed) h.onState('closed', 'channel closed');
    });
    await browser.accept(await h.sendOffer(offered.sdp));
  })().catch((err: Error) => h.onState('failed', err.message));
  return {
    close: () => {
      closed = true;
      void browser?.close();
    },
  };
}

function rtcClient(clientId: string): { c: StageboxClient; audio: AudioEvent[]; transports: { audio: string; reason?: string }[]; errors: { code: string; message: string }[] } {
  const c = new StageboxClient({ url: `ws://127.0.0.1:${svc.port}/`, clientId, WebSocket: NodeWebSocket, webrtc: { openChannel: weriftChannel }, reconnect: false });
  clients.push(c);
  const audio: AudioEvent[] = [];
  const transports: { audio: string; reason?: string }[] = [];
  const errors: { code: string; message: string }[] = [];
  c.on('audio', (a) => audio.push(a));
  c.on('transport', (t) => transports.push(t));
  c.on('error', (e) => errors.push(e));
  return { c, audio, transports, errors };
}

interface WebRtcStatus {
  enabled: boolean;
  peers: number;
  maxPeers: number;
  answered: number;
  refused: number;
}
async function webrtcStatus(): Promise<WebRtcStatus> {
  return ((await getStatus(svc.port)) as unknown as { webrtc: WebRtcStatus }).webrtc;
}
async function transportOf(clientId: string): Promise<{ asked: string; now: string } | undefined> {
  const c = (await getStatus(svc.port)).clients.find((x) => x.clientId === clientId) as unknown as { transport: { asked: string; now: string } } | undefined;
  return c?.transport;
}

describe('audio over a WebRTC data channel', () => {
  let first: ReturnType<typeof rtcClient>;

  test('welcome offers webrtc; the library offers a channel over the WebSocket and the audio moves to it', async () => {
    first = rtcClient('rtc-first');
    const w = await first.c.connect();
    assert.deepEqual(w.transports, ['ws', 'udp', 'webrtc']);
    await first.c.subscribe({ channels: [0, 1], codec: 'pcm16' });
    await waitFor(() => first.transports.some((t) => t.audio === 'webrtc'), { timeoutMs: 20_000, what: 'the audio to move to the data channel', describe: () => JSON.stringify(first) });
    await waitFor(() => (first.c.stats().transport.datagram?.packets ?? 0) >= 200, { timeoutMs: 10_000, what: '200 packets over the data channel' });
    const t = (await transportOf('rtc-first')) as unknown as { asked: string; now: string; redundancy: number; where: string; datagrams: number };
    assert.deepEqual([t.asked, t.now, t.redundancy, t.where], ['webrtc', 'webrtc', 1, 'webrtc data channel']);
    assert.ok(t.datagrams >= 200, `${t.datagrams} datagrams`);
    const st = await webrtcStatus();
    assert.equal(st.peers, 1);
    assert.equal(st.maxPeers, 1);
    assert.ok(st.answered >= 1);
  });

  test('past webrtc.maxPeers the offer is refused with too-many-peers: that listener stays on the WebSocket and says why; the first keeps its channel', async () => {
    const second = rtcClient('rtc-second');
    await second.c.connect();
    await second.c.subscribe({ channels: [2], codec: 'pcm16' });
    const fell = await waitFor(() => second.transports.find((t) => t.audio === 'ws' && t.reason), { timeoutMs: 10_000, what: 'the refusal' });
    assert.match(fell.reason!, /1 WebRTC peer connections are open; allowed: 1/);
    assert.ok(second.errors.some((e) => e.code === 'too-many-peers'), JSON.stringify(second.errors));
    const n = second.audio.length;
    await waitFor(() => second.audio.length >= n + 100, { timeoutMs: 5000, what: 'its audio over the WebSocket' });
    assert.equal((await transportOf('rtc-second'))?.now, 'ws');
    assert.equal((await transportOf('rtc-first'))?.now, 'webrtc');
    second.c.close();
  });

  test('offers that are not data-channel offers get bad-sdp or invalid-message, to the sender only; the channel of the first listener carries on', async () => {
    const raw = await StreamClient.open(svc.port, 'rtc-bad');
    const bad = await raw.expectError({ type: 'webrtc-offer', sdp: 'v=0\r\nnot an offer' });
    assert.equal(bad.code, 'bad-sdp');
    assert.equal(bad.ref, 'webrtc-offer');
    const notString = await raw.expectError({ type: 'webrtc-offer', sdp: 42 });
    assert.equal(notString.code, 'invalid-message');
    assert.match(String(notString.message), /sdp: got 42/);
    const extra = await raw.expectError({ type: 'webrtc-offer', sdp: 'x', trickle: true });
    assert.equal(extra.code, 'invalid-message');
    assert.match(String(extra.message), /unknown field\(s\) "trickle"/);
    // The connection is still good for everything else.
    await raw.subscribe([3], 'pcm16');
    await raw.waitForPackets(20);
    raw.close();
    const before = first.c.stats().transport.datagram!.packets;
    await waitFor(() => first.c.stats().transport.datagram!.packets >= before + 100, { timeoutMs: 5000, what: 'the first listener still on its channel' });
    assert.ok(first.errors.length === 0, JSON.stringify(first.errors));
  });

  test('a channel that closes sends the audio back over the WebSocket, keeping the subscription; the peer is freed', async () => {
    for (const b of browsers.splice(0)) await b.close();
    await waitFor(() => first.transports.at(-1)?.audio === 'ws', { timeoutMs: 10_000, what: 'the fallback', describe: () => JSON.stringify(first.transports) });
    assert.match(first.transports.at(-1)!.reason ?? '', /closed/);
    const n = first.audio.length;
    await waitFor(() => first.audio.length >= n + 100, { timeoutMs: 5000, what: 'audio over the WebSocket' });
    assert.deepEqual(first.audio.at(-1)!.channels, 2);
    await waitFor(async () => (await webrtcStatus()).peers === 0, { timeoutMs: 5000, what: 'the peer freed' });
    assert.equal((await transportOf('rtc-first'))?.now, 'ws');
    first.c.close();
  });

  test('a listener that leaves takes its peer with it', async () => {
    const third = rtcClient('rtc-third');
    await third.c.connect();
    await third.c.subscribe({ channels: [4], codec: 'pcm16' });
    await waitFor(() => third.transports.some((t) => t.audio === 'webrtc'), { timeoutMs: 20_000, what: 'its channel' });
    assert.equal((await webrtcStatus()).peers, 1);
    third.c.close();
    await waitFor(async () => (await webrtcStatus()).peers === 0, { timeoutMs: 5000, what: 'the peer gone with the connection' });
  });
});

describe('a box with webrtc.enabled false', () => {
  test('offers no webrtc, and refuses an offer or the transport naming what it offers', async () => {
    const off = await startService({ label: 'webrtc-off', config: { ...CONFIG, webrtc: { enabled: false } } });
    const raw = await StreamClient.connect(off.port);
    raw.send({ type: 'hello', protocol: 1, clientId: 'rtc-off' });
    const w = await raw.waitForMessage('welcome');
    assert.deepEqual(w.transports, ['ws', 'udp']);
    const offer = await raw.expectError({ type: 'webrtc-offer', sdp: 'v=0' });
    assert.equal(offer.code, 'bad-transport');
    assert.match(String(offer.message), /transport "webrtc" is not offered by this box; allowed: "ws", "udp"/);
    const t = await raw.expectError({ type: 'transport', transport: 'webrtc' });
    assert.equal(t.code, 'bad-transport');
    assert.equal(((await getStatus(off.port)) as unknown as { webrtc: { enabled: boolean } }).webrtc.enabled, false);
    raw.close();
  });
});
