import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebRtcPeers, type WebRtcPeersOptions } from '../../src/transport/webrtc-peers';
import { audioDatagramBytes, writeAudioDatagram, parseBoxDatagram, KIND } from '../../src/protocol/datagram';
import type { PeerCloseReason } from '../../src/protocol/webrtc';
import { WeriftBrowser } from '../helpers/werift-browser';
import { waitFor } from '../helpers/wait';

/**
 * The box side against a real peer: werift plays the browser on loopback.
 * Loss is tested against Chromium only (test/transport/webrtc-chromium.test.ts):
 * werift as the receiving end loses runs of messages after a gap by itself,
 * so it cannot tell the box's behaviour from its own.
 */

interface Events {
  opened: number[];
  closed: [number, PeerCloseReason][];
}

function peers(options: Partial<WebRtcPeersOptions> = {}): { box: WebRtcPeers; events: Events } {
  const events: Events = { opened: [], closed: [] };
  const box = new WebRtcPeers({
    hostAddresses: ['127.0.0.1'],
    onOpen: (id) => events.opened.push(id),
    onClose: (id, reason) => events.closed.push([id, reason]),
    ...options,
  });
  return { box, events };
}

/** An AUDIO datagram of one packet of `size` bytes whose first 4 bytes are `n`. */
function datagram(n: number, size: number): Buffer {
  const packet = new Uint8Array(size);
  new DataView(packet.buffer).setUint32(0, n, true);
  for (let i = 4; i < size; i++) packet[i] = (n * 31 + i) & 0xff;
  const out = Buffer.alloc(audioDatagramBytes([packet]));
  writeAudioDatagram(out, [packet]);
  return out;
}

function numberOf(message: Buffer): number {
  const d = parseBoxDatagram(message);
  assert.equal(d.kind, KIND.AUDIO);
  if (d.kind !== KIND.AUDIO) return -1;
  return new DataView(d.packets[0]!.buffer, d.packets[0]!.byteOffset).getUint32(0, true);
}

async function connect(box: WebRtcPeers, events: Events, connId: number, rewrite?: (sdp: string) => string): Promise<WeriftBrowser> {
  const { browser, sdp } = await WeriftBrowser.offer();
  const answer = await box.answer(connId, sdp);
  await browser.accept(rewrite ? rewrite(answer) : answer);
  await waitFor(() => events.opened.includes(connId), { timeoutMs: 20_000, what: `peer ${connId} open`, describe: () => JSON.stringify(box.stats(connId)) });
  return browser;
}

test('an offer is answered with host candidates only, and every datagram arrives intact on the audio channel', async () => {
  const { box, events } = peers({ maxBufferedBytes: 1 << 20 });
  const { browser, sdp } = await WeriftBrowser.offer();
  const answer = await box.answer(1, sdp);
  const candidates = answer.split('\r\n').filter((l) => l.startsWith('a=candidate:'));
  assert.equal(candidates.length, 1, answer);
  assert.match(candidates[0]!, / 127\.0\.0\.1 \d+ typ host/);
  assert.equal(box.stats(1)?.state, 'connecting');
  await browser.accept(answer);
  await waitFor(() => events.opened.includes(1), { timeoutMs: 20_000, what: 'audio channel open' });

  // 600 and 1200 bytes as for raw channels, and one that SCTP must fragment (16 channels of pcm16).
  const sent = [600, 1200, 4108].flatMap((size, k) => Array.from({ length: 20 }, (_, i) => datagram(k * 100 + i, size)));
  for (const d of sent) assert.equal(box.send(1, d), true);
  await waitFor(() => browser.received.length === sent.length, { timeoutMs: 20_000, what: 'every datagram', describe: () => `${browser.received.length}/${sent.length}` });
  const byNumber = new Map(browser.received.map((m) => [numberOf(m), m]));
  for (const d of sent) assert.deepEqual(byNumber.get(numberOf(d)), d);
  assert.deepEqual(box.stats(1), {
    state: 'open',
    messagesSent: sent.length,
    messagesDropped: 0,
    bytesSent: sent.reduce((n, d) => n + d.length, 0),
    bufferedBytes: 0,
  });
  await box.stop();
  await browser.close();
  assert.deepEqual(events.closed, [[1, 'stopped']]);
});

test('send drops and counts a datagram that would put the channel over maxBufferedBytes', async () => {
  const { box, events } = peers({ maxBufferedBytes: 2000 });
  const browser = await connect(box, events, 7);
  const results = Array.from({ length: 10 }, (_, i) => box.send(7, datagram(i, 600)));
  // Each datagram is 612 bytes: three fit in 2000, and werift holds them until the event loop turns.
  assert.deepEqual(results, [true, true, true, false, false, false, false, false, false, false]);
  assert.equal(box.stats(7)!.messagesSent, 3);
  assert.equal(box.stats(7)!.messagesDropped, 7);
  await waitFor(() => browser.received.length === 3, { timeoutMs: 20_000, what: 'the three sent' });
  await box.stop();
  await browser.close();
});

test('send before the channel is open drops and counts; to a connection without a peer it returns false', async () => {
  const { box } = peers();
  const { browser, sdp } = await WeriftBrowser.offer();
  await box.answer(3, sdp);
  assert.equal(box.send(3, datagram(0, 600)), false);
  assert.equal(box.stats(3)!.messagesDropped, 1);
  assert.equal(box.stats(3)!.state, 'connecting');
  assert.equal(box.send(4, datagram(0, 600)), false);
  assert.equal(box.stats(4), null);
  await box.stop();
  await browser.close();
});

test('bad offers get bad-sdp naming what is wrong, and a streaming peer is untouched', async () => {
  const { box, events } = peers();
  const browser = await connect(box, events, 1);
  const { browser: other, sdp: good } = await WeriftBrowser.offer();
  const without = (prefix: string): string => good.split('\r\n').filter((l) => !l.startsWith(prefix)).join('\r\n');
  const cases: [unknown, string][] = [
    [42, 'offer sdp is number; allowed: a string of SDP'],
    [null, 'offer sdp is null; allowed: a string of SDP'],
    ['', 'offer sdp is 0 characters; allowed: 1-16384'],
    ['v=0\r\n' + 'a=x\r\n'.repeat(4000), 'offer sdp is 20005 characters; allowed: 1-16384'],
    ['hello', 'offer sdp starts with "hello"; allowed: "v=0"'],
    ['v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nnot sdp', 'offer sdp line "not sdp"; allowed: "<letter>=<value>" lines'],
    [good.replace(/m=application .*/, 'm=audio 9 UDP/TLS/RTP/SAVPF 111'), 'offer sdp media "m=audio 9 UDP/TLS/RTP/SAVPF 111"; allowed: one "m=application <port> UDP/DTLS/SCTP webrtc-datachannel" (data channels only)'],
    [good + good.slice(good.indexOf('m=application')), 'offer sdp has more than one media section; allowed: exactly one (data channels)'],
    [good.slice(0, good.indexOf('m=application')), 'offer sdp has no media section; allowed: one "m=application <port> UDP/DTLS/SCTP webrtc-datachannel"'],
    [without('a=fingerprint:'), 'offer sdp has no "a=fingerprint" line; a data-channel offer needs a=ice-ufrag, a=ice-pwd, a=fingerprint, a=setup'],
    [without('a=ice-pwd:'), 'offer sdp has no "a=ice-pwd" line; a data-channel offer needs a=ice-ufrag, a=ice-pwd, a=fingerprint, a=setup'],
  ];
  for (const [offer, message] of cases) {
    await assert.rejects(box.answer(2, offer), { name: 'WebRtcError', code: 'bad-sdp', message }, String(offer).slice(0, 60));
  }
  assert.equal(box.size, 1);
  assert.equal(box.stats(2), null);
  assert.equal(box.send(1, datagram(99, 600)), true);
  await waitFor(() => browser.received.some((m) => numberOf(m) === 99), { timeoutMs: 20_000, what: 'the streaming peer still receives' });
  assert.deepEqual(events.closed, []);
  await box.stop();
  await browser.close();
  await other.close();
});

test('the bound on peers: one more offer gets too-many-peers; a new offer on the same connection replaces its peer', async () => {
  const { box, events } = peers({ maxPeers: 1 });
  const first = await WeriftBrowser.offer();
  await box.answer(1, first.sdp);
  const second = await WeriftBrowser.offer();
  await assert.rejects(box.answer(2, second.sdp), {
    name: 'WebRtcError',
    code: 'too-many-peers',
    message: '1 WebRTC peer connections are open; allowed: 1 (audio stays on the WebSocket)',
  });
  const again = await WeriftBrowser.offer();
  const answer = await box.answer(1, again.sdp);
  assert.deepEqual(events.closed, [[1, 'replaced']]);
  await again.browser.accept(answer);
  await waitFor(() => events.opened.includes(1), { timeoutMs: 20_000, what: 'the replacing peer open' });
  assert.equal(box.size, 1);
  await box.stop();
  await Promise.all([first.browser.close(), second.browser.close(), again.browser.close()]);
});

test('a peer that never connects is closed after the connect timeout', async () => {
  const { box, events } = peers({ connectTimeoutMs: 300 });
  const { browser, sdp } = await WeriftBrowser.offer();
  await box.answer(5, sdp);
  // The browser never applies the answer.
  await waitFor(() => events.closed.length > 0, { timeoutMs: 20_000, what: 'the timeout' });
  assert.deepEqual(events.closed, [[5, 'timeout']]);
  assert.equal(box.stats(5), null);
  assert.equal(box.size, 0);
  await box.stop();
  await browser.close();
});

test('a channel with another label or other options is refused (bad-channel)', async () => {
  for (const [label, init] of [
    ['stagebox-audio', { ordered: true }],
    ['stagebox-audio', { ordered: false }],
    ['chat', { ordered: false, maxRetransmits: 0 }],
  ] as const) {
    const { box, events } = peers();
    const { browser, sdp } = await WeriftBrowser.offer(label, init);
    await browser.accept(await box.answer(1, sdp));
    await waitFor(() => events.closed.length > 0, { timeoutMs: 20_000, what: `refusal of ${label} ${JSON.stringify(init)}` });
    assert.deepEqual(events.closed, [[1, 'bad-channel']]);
    assert.deepEqual(events.opened, []);
    await box.stop();
    await browser.close();
  }
});

test('after stop every peer is closed and offers get webrtc-unavailable', async () => {
  const { box, events } = peers();
  const browser = await connect(box, events, 1);
  await box.stop();
  assert.deepEqual(events.closed, [[1, 'stopped']]);
  assert.equal(box.send(1, datagram(0, 600)), false);
  const { browser: late, sdp } = await WeriftBrowser.offer();
  await assert.rejects(box.answer(2, sdp), { name: 'WebRtcError', code: 'webrtc-unavailable', message: 'the box is stopping; WebRTC offers are no longer answered' });
  await browser.close();
  await late.close();
});

test('options are checked at construction, naming the option, the value and what is allowed', () => {
  assert.throws(() => new WebRtcPeers({ hostAddresses: [] }), { name: 'TypeError', message: 'WebRtcPeers option hostAddresses is []; allowed: at least one IP address, or a function giving them' });
  assert.throws(() => new WebRtcPeers({ hostAddresses: ['127.0.0.1'], maxPeers: 0 }), { name: 'RangeError', message: 'WebRtcPeers option maxPeers is 0; allowed: an integer 1-4096' });
  assert.throws(() => new WebRtcPeers({ hostAddresses: ['127.0.0.1'], connectTimeoutMs: 1.5 }), { name: 'RangeError', message: 'WebRtcPeers option connectTimeoutMs is 1.5; allowed: an integer 1-600000' });
  assert.throws(() => new WebRtcPeers({ hostAddresses: ['127.0.0.1'], maxBufferedBytes: -1 }), { name: 'RangeError', message: 'WebRtcPeers option maxBufferedBytes is -1; allowed: an integer 1-16777216' });
});
