import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { StreamClient, describeSeqGaps, firstSeqGap } from '../helpers/stream-client';
import { withTimeout } from '../helpers/wait';

/** The well-formed control conversation: hello/welcome, subscribe, unsubscribe, ping/pong. */

let svc: ServiceProcess;
before(async () => {
  svc = await startService({ label: 'messages', config: { capture: { device: 'test-signal', channels: 6, rate: 48000, periodFrames: 128 } } });
});
after(() => stopAllServices());

const DECIMAL = /^[0-9]+$/;

describe('control messages', () => {
  test('welcome carries protocol 1, the version, the clientId, the source, the codecs and a decimal boxNs', async () => {
    const c = await StreamClient.connect(svc.port, { label: 'welcome' });
    const w = await c.hello('phone-1.left:A_b', 'Drummer IEM');
    assert.equal(w.protocol, 1);
    assert.equal(w.version, '0.1.0');
    assert.equal(w.clientId, 'phone-1.left:A_b');
    assert.deepEqual(w.codecs, ['pcm16', 'pcm24', 'deflate']);
    assert.match(String(w.boxNs), DECIMAL, `boxNs ${JSON.stringify(w.boxNs)}`);
    assert.equal(typeof w.boxNs, 'string');
    const src = w.source as Record<string, unknown>;
    for (const k of ['state', 'kind', 'device', 'channels', 'rate', 'periodFrames', 'format']) assert.ok(k in src, `source.${k} missing: ${JSON.stringify(src)}`);
    assert.equal(src.channels, 6);
    assert.equal(src.periodFrames, 128);
    c.close();
  });

  test('the WebSocket is accepted on any path', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${svc.port}/some/other/path?x=1`, { perMessageDeflate: false });
    await withTimeout(new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    }), 5000, 'open on /some/other/path');
    ws.close();
  });

  test('ping is answered with pong echoing id and t, plus a decimal boxNs', async () => {
    const c = await StreamClient.open(svc.port, 'pinger');
    c.send({ type: 'ping', id: 77, t: 1234.5 });
    const p = await c.waitForMessage('pong', { pred: (m) => m.id === 77 });
    assert.equal(p.t, 1234.5);
    assert.match(String(p.boxNs), DECIMAL);
    c.send({ type: 'ping', id: 78 });
    const q = await c.waitForMessage('pong', { pred: (m) => m.id === 78 });
    assert.equal('t' in q, false, `no t was sent, none must come back: ${JSON.stringify(q)}`);
    assert.ok(BigInt(q.boxNs as string) >= BigInt(p.boxNs as string), 'boxNs is monotonic');
    c.close();
  });

  test('subscribe without a codec defaults to pcm16 and the reply echoes the channels in the requested order', async () => {
    const c = await StreamClient.open(svc.port, 'default-codec');
    c.send({ type: 'subscribe', channels: [4, 1, 5] });
    const s = await c.waitForMessage('subscribed');
    assert.deepEqual(s.channels, [4, 1, 5]);
    assert.equal(s.codec, 'pcm16');
    await c.waitForPackets(10);
    for (const p of c.packets) {
      assert.equal(p.codec, 'pcm16');
      assert.deepEqual(p.channels, [4, 1, 5]);
      assert.equal(p.payload.length, p.frames * 3 * 2);
    }
    assert.deepEqual(c.badPackets, []);
    c.close();
  });

  test('unsubscribe is confirmed and no packet follows the confirmation', async () => {
    const other = await StreamClient.open(svc.port, 'unsub-other');
    await other.subscribe([0], 'pcm16');
    const c = await StreamClient.open(svc.port, 'unsub');
    await c.subscribe([2], 'pcm24');
    await c.waitForPackets(10);
    c.send({ type: 'unsubscribe' });
    const u = await c.waitForMessage('unsubscribed');
    const atConfirm = c.packetsBeforeMessage[c.messages.indexOf(u)]!;
    // Let plenty of periods go by (as seen by another client), then check.
    await other.waitForPackets(other.packetCount + 60, 5000);
    await c.ping(1);
    assert.equal(c.packetCount, atConfirm, `${c.packetCount - atConfirm} packet(s) arrived after "unsubscribed"`);
    c.close();
    other.close();
  });

  test('subscribing again replaces the subscription: after the confirmation every packet has the new channels and codec, with no seq gap', async () => {
    const c = await StreamClient.open(svc.port, 'resub');
    await c.subscribe([0, 1], 'pcm16');
    await c.waitForPackets(10);
    c.send({ type: 'subscribe', channels: [5, 3], codec: 'pcm24' });
    const s = await c.waitForMessage('subscribed', { pred: (m) => m.codec === 'pcm24' });
    const at = c.packetsBeforeMessage[c.messages.indexOf(s)]!;
    await c.waitForPackets(at + 20, 5000);
    const before = c.packets.slice(0, at);
    const afterIt = c.packets.slice(at);
    for (const p of before) assert.deepEqual([p.codec, p.channels], ['pcm16', [0, 1]], `packet seq ${p.seq} before the new "subscribed"`);
    for (const p of afterIt) assert.deepEqual([p.codec, p.channels], ['pcm24', [5, 3]], `packet seq ${p.seq} after the new "subscribed"`);
    assert.equal(firstSeqGap(afterIt), -1, describeSeqGaps(afterIt));
    c.close();
  });

  test('a name longer than 64 characters gets error invalid-message naming the field', async () => {
    const c = await StreamClient.connect(svc.port, { label: 'long-name' });
    const e = await c.expectError({ type: 'hello', protocol: 1, clientId: 'long-name', name: 'n'.repeat(65) });
    assert.equal(e.code, 'invalid-message');
    assert.match(e.message as string, /name/);
    c.close();
  });
});
