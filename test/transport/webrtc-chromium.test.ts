import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { WebSocketServer, type WebSocket } from 'ws';
import { WebRtcPeers } from '../../src/transport/webrtc-peers';
import { audioDatagramBytes, writeAudioDatagram } from '../../src/protocol/datagram';
import type { PeerCloseReason } from '../../src/protocol/webrtc';
import { launchChromium, newPageLog, watchPage } from '../helpers/chromium';
import { LossyUdpRelay, candidatePort } from '../helpers/lossy-udp-relay';
import { REPO_ROOT } from '../helpers/service-process';
import { waitFor } from '../helpers/wait';

/**
 * The box's WebRTC peer (src/transport/webrtc-peers.ts) against real
 * Chromium running the listener's browser half (web/listen/datachannel-audio.js)
 * in test/fixtures/webrtc-page.html. The page is served over plain http from
 * a name, not from 127.0.0.1 (which Chromium counts as a secure context), so
 * it runs as on a phone at http://<box>/. The page hands every message it
 * receives back over its WebSocket, so bytes are compared here.
 *
 * Chromium flags: `--host-resolver-rules` maps the name to 127.0.0.1; and
 * `--disable-features=WebRtcHideLocalIpsWithMdns` makes Chromium offer its
 * addresses rather than mDNS names, which it would announce by multicast on
 * the machine's network (the tests keep to loopback). The box ignores mDNS
 * candidates anyway (sdp-offer.ts); the loss test removes the page's
 * candidates altogether, which is what the box sees from a phone.
 */

const HOST = 'stagebox.test';
const FILES: Record<string, string> = {
  '/fixture': path.join(REPO_ROOT, 'test', 'fixtures', 'webrtc-page.html'),
  '/listen/datachannel-audio.js': path.join(REPO_ROOT, 'web', 'listen', 'datachannel-audio.js'),
  '/listen/protocol/webrtc.js': path.join(REPO_ROOT, 'dist', 'web', 'protocol', 'webrtc.js'),
};

let server: Server;
let wss: WebSocketServer;
let browser: Browser;
let port = 0;
const log = newPageLog();
const links: PageLink[] = [];

before(async () => {
  server = createServer((req, res) => {
    const file = FILES[req.url ?? ''];
    if (!file) {
      // The favicon Chromium asks for, among others: nothing, but no error in the page's console.
      res.writeHead(204).end();
      return;
    }
    readFile(file).then(
      (body) => res.writeHead(200, { 'content-type': file.endsWith('.js') ? 'text/javascript' : 'text/html' }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  wss = new WebSocketServer({ server, path: '/signal' });
  wss.on('connection', (ws) => links.push(new PageLink(ws)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  browser = await launchChromium([`--host-resolver-rules=MAP ${HOST} 127.0.0.1`, '--disable-features=WebRtcHideLocalIpsWithMdns']);
});

after(async () => {
  await browser?.close();
  wss?.close();
  server?.close();
});

/** The test's end of the page's WebSocket: JSON messages by type, and the binary ones (echoed datagrams). */
class PageLink {
  readonly json: Record<string, unknown>[] = [];
  readonly binary: Buffer[] = [];
  constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) this.binary.push(Buffer.from(data as Buffer));
      else this.json.push(JSON.parse(String(data)) as Record<string, unknown>);
    });
  }

  send(msg: object): void {
    this.ws.send(JSON.stringify(msg));
  }

  next(type: string, where: (m: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> {
    return waitFor(() => this.json.find((m) => m.type === type && where(m)), { timeoutMs: 30_000, what: `page message ${type}`, describe: () => JSON.stringify(this.json) });
  }
}

async function openPage(): Promise<{ page: Page; link: PageLink }> {
  const page = await browser.newPage();
  watchPage(page, log);
  const before = links.length;
  await page.goto(`http://${HOST}:${port}/fixture`);
  await waitFor(() => links.length > before, { timeoutMs: 30_000, what: 'the page WebSocket' });
  return { page, link: links[links.length - 1]! };
}

function peers(): { box: WebRtcPeers; opened: number[]; closed: [number, PeerCloseReason][] } {
  const opened: number[] = [];
  const closed: [number, PeerCloseReason][] = [];
  const box = new WebRtcPeers({
    hostAddresses: ['127.0.0.1'],
    maxBufferedBytes: 1 << 20,
    onOpen: (id) => opened.push(id),
    onClose: (id, reason) => closed.push([id, reason]),
  });
  return { box, opened, closed };
}

function datagram(n: number, size: number): Buffer {
  const packet = Buffer.alloc(size);
  packet.writeUInt32LE(n, 0);
  for (let i = 4; i < size; i++) packet[i] = (n * 7 + i) & 0xff;
  const out = Buffer.alloc(audioDatagramBytes([packet]));
  writeAudioDatagram(out, [packet]);
  return out;
}

const numberOf = (echoed: Buffer): number => echoed.readUInt32LE(12);

test('on plain http:// Chromium gets every datagram intact, on a channel it sees as unordered with maxRetransmits 0', async () => {
  const { box, opened } = peers();
  const { page, link } = await openPage();
  try {
    assert.deepEqual(await link.next('page'), { type: 'page', secure: false, supported: true, protocol: 'http:' });
    link.send({ type: 'start' });
    const offer = await link.next('offer');
    link.send({ type: 'answer', sdp: await box.answer(1, offer.sdp) });
    const open = await link.next('state', (m) => m.state === 'open');
    assert.deepEqual(open, { type: 'state', state: 'open', reason: 'channel open', label: 'stagebox-audio', ordered: false, maxRetransmits: 0, maxPacketLifeTime: null });
    await waitFor(() => opened.includes(1), { timeoutMs: 30_000, what: 'the box sees the channel open' });

    const sent = [600, 1200, 4108].flatMap((size, k) => Array.from({ length: 20 }, (_, i) => datagram(k * 100 + i, size)));
    for (const d of sent) assert.equal(box.send(1, d), true);
    await waitFor(() => link.binary.length >= sent.length, { timeoutMs: 30_000, what: 'every datagram echoed', describe: () => `${link.binary.length}/${sent.length} missing ${sent.map(numberOf).filter((n) => !link.binary.some((m) => numberOf(m) === n))}` });
    assert.equal(link.binary.length, sent.length);
    const echoed = new Map(link.binary.map((m) => [numberOf(m), m]));
    for (const d of sent) assert.deepEqual(echoed.get(numberOf(d)), d, `datagram ${numberOf(d)}`);
    assert.equal(box.stats(1)!.messagesSent, sent.length);
    assert.equal(box.stats(1)!.messagesDropped, 0);
    assert.deepEqual(log.pageErrors, []);
  } finally {
    await box.stop();
    await page.close();
  }
});

test('in Chromium a datagram lost on the network stays lost while later ones arrive (no retransmission)', async () => {
  const { box, opened } = peers();
  const { page, link } = await openPage();
  let lossy = false;
  let big = 0;
  let relay: LossyUdpRelay | null = null;
  try {
    await link.next('page');
    link.send({ type: 'start' });
    const offer = String((await link.next('offer')).sdp);
    // A phone's offer carries mDNS names the box cannot use: without them
    // the box reaches Chromium only through the relay, as a peer-reflexive candidate.
    const answer = await box.answer(1, offer.split('\r\n').filter((l) => !l.startsWith('a=candidate:')).join('\r\n'));
    relay = await LossyUdpRelay.start(candidatePort(answer), (d) => lossy && d.length > 400 && ++big % 5 === 0);
    link.send({ type: 'answer', sdp: relay.rewriteAnswer(answer) });
    await waitFor(() => opened.includes(1), { timeoutMs: 30_000, what: 'the channel open through the relay' });
    const association = (box as unknown as { peers: Map<number, { pc: { sctpTransport: { sctp: { sentQueue: unknown[] } } } }> }).peers.get(1)!.pc.sctpTransport.sctp;

    lossy = true;
    const n = 100;
    for (let i = 0; i < n; i++) {
      box.send(1, datagram(i, 600));
      if (i % 4 === 3) await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => box.stats(1)!.bufferedBytes === 0, { timeoutMs: 30_000, what: 'everything handed to SCTP' });
    lossy = false;
    for (let i = n; i < n + 20; i++) box.send(1, datagram(i, 600));
    await waitFor(() => link.binary.some((m) => numberOf(m) === n + 19), { timeoutMs: 30_000, what: 'the last datagram' });
    await waitFor(() => association.sentQueue.length === 0, { timeoutMs: 30_000, what: 'nothing outstanding at the box', describe: () => `${association.sentQueue.length} chunks` });
    // What SCTP gave up is gone for good; a reliable channel would have delivered it by now.
    const got = link.binary.map(numberOf);
    assert.equal(new Set(got).size, got.length, 'no datagram twice');
    const missing = Array.from({ length: n + 20 }, (_, i) => i).filter((i) => !got.includes(i));
    assert.ok(relay.dropped > 0);
    assert.ok(missing.length > 0 && missing.length <= relay.dropped * 2, `missing ${missing.join(',')} with ${relay.dropped} datagrams dropped`);
    assert.ok(missing.every((i) => i < n), `only datagrams sent while lossy are missing: ${missing.join(',')}`);
    assert.equal(box.stats(1)!.state, 'open');
  } finally {
    relay?.close();
    await box.stop();
    await page.close();
  }
});

test('a refused offer reaches the page as a failure, and closing the page closes the box peer', async () => {
  const { box, closed, opened } = peers();
  const { page, link } = await openPage();
  try {
    await link.next('page');
    link.send({ type: 'start' });
    const offer = String((await link.next('offer')).sdp);
    const broken = offer.split('\r\n').filter((l) => !l.startsWith('a=fingerprint:')).join('\r\n');
    const err = await box.answer(1, broken).then(() => null, (e: { code: string; message: string }) => e);
    assert.equal(err?.code, 'bad-sdp');
    link.send({ type: 'error', code: err!.code, message: err!.message });
    const failed = await link.next('state', (m) => m.state === 'failed');
    assert.equal(failed.reason, 'bad-sdp: offer sdp has no "a=fingerprint" line; a data-channel offer needs a=ice-ufrag, a=ice-pwd, a=fingerprint, a=setup');
    assert.equal(box.size, 0);

    // A fresh start on the same page connects, and the page closing it ends the box's peer.
    await page.reload();
    const again = await waitFor(() => links[links.length - 1] !== link && links[links.length - 1], { timeoutMs: 30_000, what: 'the reloaded page WebSocket' });
    await again.next('page');
    again.send({ type: 'start' });
    const offer2 = await again.next('offer');
    again.send({ type: 'answer', sdp: await box.answer(2, offer2.sdp) });
    await waitFor(() => opened.includes(2), { timeoutMs: 30_000, what: 'the second channel open' });
    again.send({ type: 'close' });
    await waitFor(() => closed.length > 0, { timeoutMs: 30_000, what: 'the box sees the page close' });
    assert.deepEqual(closed, [[2, 'failed']]);
  } finally {
    await box.stop();
    await page.close();
  }
});
