import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { StreamClient, describeSeqGaps, firstSeqGap, type BoxMessage } from '../helpers/stream-client';
import { getStatus } from '../helpers/http-client';
import { OPCODE, RawWsClient } from '../helpers/raw-ws';
import { waitFor } from '../helpers/wait';

/**
 * Whatever one client sends, the box answers that client only (an error
 * message or a close with the documented code) and every other client keeps
 * streaming: each test runs the bad input from one client while a watcher
 * client stays subscribed, then checks the watcher's packets around it have
 * consecutive seq numbers and the service still runs.
 */

const DEVICE_CHANNELS = 8;
/** Watcher packets required after the bad input: the stream demonstrably went on. */
const AFTER_PACKETS = 40;

after(() => stopAllServices());

async function startTestSignal(stream: Record<string, unknown> = {}, label = 'bad-input'): Promise<ServiceProcess> {
  return startService({
    label,
    config: { capture: { device: 'test-signal', channels: DEVICE_CHANNELS, rate: 48000, periodFrames: 128 }, stream },
  });
}

async function openWatcher(svc: ServiceProcess, id: string): Promise<StreamClient> {
  const w = await StreamClient.open(svc.port, id);
  await w.subscribe([1], 'pcm16');
  await w.waitForPackets(5, 5000);
  return w;
}

/** Waits for AFTER_PACKETS more watcher packets, then asserts no seq gap since `from` and that the service runs. */
async function assertOthersUndisturbed(svc: ServiceProcess, watcher: StreamClient, from: number): Promise<void> {
  await watcher.waitForPackets(watcher.packetCount + AFTER_PACKETS, 10000);
  const seen = watcher.packetsFrom(from);
  assert.equal(watcher.closeInfo, null, `the watcher was closed: ${JSON.stringify(watcher.closeInfo)}`);
  assert.equal(firstSeqGap(seen), -1, `watcher seq gaps during the test: ${describeSeqGaps(seen)}`);
  assert.equal(svc.exit, null, `the service exited: ${svc.describe()}`);
  const status = await getStatus(svc.port);
  assert.equal(status.capture.state, 'running', `capture state after the bad input: ${JSON.stringify(status.capture)}`);
  const w = status.clients.find((c) => c.clientId === watcher.label);
  assert.ok(w, `the watcher is missing from /api/status clients: ${JSON.stringify(status.clients)}`);
  assert.equal(w.drops, 0, `the watcher had drops: ${JSON.stringify(w)}`);
}

function assertError(m: BoxMessage, code: string, mentions: (string | RegExp)[] = []): void {
  assert.equal(m.type, 'error');
  assert.equal(m.code, code, `error code: ${JSON.stringify(m)}`);
  assert.equal(typeof m.message, 'string', `error message: ${JSON.stringify(m)}`);
  for (const x of mentions) {
    if (typeof x === 'string') assert.ok((m.message as string).includes(x), `error message should mention ${JSON.stringify(x)}: ${JSON.stringify(m)}`);
    else assert.match(m.message as string, x, `error message: ${JSON.stringify(m)}`);
  }
}

/** The offending connection is still open and answering. */
async function assertStillOpen(c: StreamClient, id: number): Promise<void> {
  const pong = await c.ping(id);
  assert.equal(pong.id, id);
  assert.equal(c.closeInfo, null);
}

describe('malformed control messages get an error and the connection stays open', () => {
  let svc: ServiceProcess;
  let watcher: StreamClient;
  before(async () => {
    svc = await startTestSignal();
    watcher = await openWatcher(svc, 'watcher-a');
  });

  test('text that is not JSON gets error bad-json and the connection stays open', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.open(svc.port, 'bad-json');
    assertError(await c.expectError('{"type": "ping", "id": '), 'bad-json');
    assertError(await c.expectError('hello there'), 'bad-json');
    await assertStillOpen(c, 1);
    await assertOthersUndisturbed(svc, watcher, from);
    c.close();
  });

  test('a JSON array or a JSON number gets error not-an-object', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.open(svc.port, 'not-object');
    assertError(await c.expectError('[{"type":"ping","id":1}]'), 'not-an-object');
    assertError(await c.expectError('42'), 'not-an-object');
    assertError(await c.expectError('null'), 'not-an-object');
    assertError(await c.expectError('"subscribe"'), 'not-an-object');
    await assertStillOpen(c, 2);
    await assertOthersUndisturbed(svc, watcher, from);
    c.close();
  });

  test('an unknown message type gets error unknown-type naming the type', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.open(svc.port, 'unknown-type');
    assertError(await c.expectError({ type: 'launch', target: 'moon' }), 'unknown-type', ['launch']);
    assertError(await c.expectError({ id: 3 }), 'unknown-type');
    await assertStillOpen(c, 3);
    await assertOthersUndisturbed(svc, watcher, from);
    c.close();
  });

  test('a hello without clientId gets error invalid-message naming the field', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.connect(svc.port, { label: 'missing-field' });
    assertError(await c.expectError({ type: 'hello', protocol: 1 }), 'invalid-message', ['clientId']);
    // Still usable: a correct hello afterwards is welcomed.
    const welcome = await c.hello('missing-field');
    assert.equal(welcome.clientId, 'missing-field');
    await assertOthersUndisturbed(svc, watcher, from);
    c.close();
  });

  test('a subscribe with a missing or wrongly typed field gets error invalid-message naming the field', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.open(svc.port, 'wrong-type');
    assertError(await c.expectError({ type: 'subscribe', codec: 'pcm16' }), 'invalid-message', ['channels']);
    assertError(await c.expectError({ type: 'subscribe', channels: '0,1', codec: 'pcm16' }), 'invalid-message', ['channels']);
    assertError(await c.expectError({ type: 'subscribe', channels: [0, 1.5], codec: 'pcm16' }), 'invalid-message', ['channels']);
    assertError(await c.expectError({ type: 'ping', id: 'seven' }), 'invalid-message', ['id']);
    assertError(await c.expectError({ type: 'hello', protocol: '1', clientId: 'x' }), 'invalid-message', ['protocol']);
    await assertStillOpen(c, 4);
    assert.equal(c.packetCount, 0, 'no audio for a client whose subscribe was refused');
    await assertOthersUndisturbed(svc, watcher, from);
    c.close();
  });

  test('an invalid clientId in hello gets error invalid-message naming clientId', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.connect(svc.port, { label: 'bad-client-id' });
    assertError(await c.expectError({ type: 'hello', protocol: 1, clientId: 'has space/slash' }), 'invalid-message', ['clientId']);
    assertError(await c.expectError({ type: 'hello', protocol: 1, clientId: 'x'.repeat(65) }), 'invalid-message', ['clientId']);
    await assertOthersUndisturbed(svc, watcher, from);
    c.close();
  });

  test('subscribe before hello gets error hello-required and no audio', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.connect(svc.port, { label: 'no-hello' });
    assertError(await c.expectError({ type: 'subscribe', channels: [0], codec: 'pcm16' }), 'hello-required');
    assertError(await c.expectError({ type: 'ping', id: 5 }), 'hello-required');
    await assertOthersUndisturbed(svc, watcher, from);
    assert.equal(c.packetCount, 0, 'a client that never said hello must get no audio');
    c.close();
  });

  test('before hello, a message is checked like any other first: bad-json, unknown-type, invalid-message; only a valid one gets hello-required', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.connect(svc.port, { label: 'errors-before-hello' });
    assertError(await c.expectError('{"type": "subscribe"'), 'bad-json');
    assertError(await c.expectError([1, 2]), 'not-an-object');
    assertError(await c.expectError({ type: 'launch' }), 'unknown-type', ['launch']);
    assertError(await c.expectError({ type: 'subscribe', channels: [64], codec: 'pcm16' }), 'invalid-message', ['channels']);
    assertError(await c.expectError({ type: 'subscribe', channels: [0], codec: 'pcm16' }), 'hello-required');
    await c.hello('errors-before-hello');
    await assertStillOpen(c, 11);
    await assertOthersUndisturbed(svc, watcher, from);
    c.close();
  });

  test('a channel above 63 is invalid-message (outside the protocol\'s range); one the device lacks within 0-63 is bad-channel', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.open(svc.port, 'channel-range');
    assertError(await c.expectError({ type: 'subscribe', channels: [64], codec: 'pcm16' }), 'invalid-message', ['channels']);
    assertError(await c.expectError({ type: 'mix', channels: [{ ch: 99 }] }), 'invalid-message', ['ch']);
    assertError(await c.expectError({ type: 'subscribe', channels: [63], codec: 'pcm16' }), 'bad-channel', [/\b63\b/]);
    assertError(await c.expectError({ type: 'mix', channels: [{ ch: DEVICE_CHANNELS }] }), 'bad-channel', [new RegExp(`\\b${DEVICE_CHANNELS}\\b`)]);
    await assertStillOpen(c, 12);
    await assertOthersUndisturbed(svc, watcher, from);
    c.close();
  });

  test('a second hello on the same connection gets error already-hello', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.open(svc.port, 'twice-hello');
    assertError(await c.expectError({ type: 'hello', protocol: 1, clientId: 'twice-hello-2' }), 'already-hello');
    await assertStillOpen(c, 6);
    await assertOthersUndisturbed(svc, watcher, from);
    c.close();
  });

  test('subscribing to a channel the device does not have gets error bad-channel naming the channel and the channel count', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.open(svc.port, 'bad-channel');
    const err = await c.expectError({ type: 'subscribe', channels: [2, 12], codec: 'pcm16' });
    assertError(err, 'bad-channel', [/\b12\b/, new RegExp(`\\b${DEVICE_CHANNELS}\\b`)]);
    await assertStillOpen(c, 7);
    assert.equal(c.packetCount, 0, 'a refused subscribe must not start any audio');
    assert.ok(!c.messages.some((m) => m.type === 'subscribed'), 'no "subscribed" for a refused subscribe');
    await assertOthersUndisturbed(svc, watcher, from);
    c.close();
  });

  test('subscribing to the same channel twice is refused with an error naming the channel, and nothing is subscribed', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.open(svc.port, 'duplicate');
    const err = await c.expectError({ type: 'subscribe', channels: [3, 1, 3], codec: 'pcm16' });
    assert.ok(err.code === 'bad-channel' || err.code === 'invalid-message', `duplicate channels: ${JSON.stringify(err)}`);
    assert.match(err.message as string, /\b3\b/, `the message should name channel 3: ${JSON.stringify(err)}`);
    await assertStillOpen(c, 8);
    assert.equal(c.packetCount, 0);
    assert.ok(!c.messages.some((m) => m.type === 'subscribed'));
    await assertOthersUndisturbed(svc, watcher, from);
    c.close();
  });

  test('an unsupported codec gets error invalid-message naming the codec field', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.open(svc.port, 'bad-codec');
    assertError(await c.expectError({ type: 'subscribe', channels: [0], codec: 'opus' }), 'invalid-message', ['codec']);
    await assertStillOpen(c, 9);
    assert.equal(c.packetCount, 0);
    await assertOthersUndisturbed(svc, watcher, from);
    c.close();
  });

  test('a client whose bad input was refused can still subscribe and gets audio', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.open(svc.port, 'recovers');
    await c.expectError('not json');
    await c.expectError({ type: 'subscribe', channels: [99], codec: 'pcm16' });
    await c.subscribe([4, 2], 'pcm16');
    await c.waitForPackets(20, 5000);
    assert.deepEqual(c.packets[0]!.channels, [4, 2]);
    assert.equal(firstSeqGap(c.packets), -1, describeSeqGaps(c.packets));
    await assertOthersUndisturbed(svc, watcher, from);
    c.close();
  });
});

describe('protocol violations close only the offending connection, with the documented code', () => {
  let svc: ServiceProcess;
  let watcher: StreamClient;
  before(async () => {
    svc = await startTestSignal();
    watcher = await openWatcher(svc, 'watcher-b');
  });

  test('hello with an unsupported protocol version is closed with 4002', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.connect(svc.port, { label: 'protocol-2' });
    c.send({ type: 'hello', protocol: 2, clientId: 'protocol-2' });
    const close = await c.waitForClose(5000);
    assert.equal(close.code, 4002, `close: ${JSON.stringify(close)}; messages: ${JSON.stringify(c.messages)}`);
    assert.ok(!c.messages.some((m) => m.type === 'welcome'), 'no welcome for an unsupported protocol');
    await assertOthersUndisturbed(svc, watcher, from);
  });

  test('a text frame over 16384 bytes is closed with 1009', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.open(svc.port, 'oversized');
    c.send({ type: 'ping', id: 1, pad: 'x'.repeat(20000) });
    const close = await c.waitForClose(5000);
    assert.equal(close.code, 1009, `close: ${JSON.stringify(close)}`);
    await assertOthersUndisturbed(svc, watcher, from);
  });

  test('a frame just under the limit is not closed (it gets an ordinary error)', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.open(svc.port, 'just-under');
    const text = JSON.stringify({ type: 'ping', id: 1, pad: '' });
    const padded = text.replace('"pad":""', `"pad":"${'y'.repeat(16000 - text.length)}"`);
    assert.ok(padded.length <= 16384);
    assertError(await c.expectError(padded), 'invalid-message', ['pad']);
    await assertStillOpen(c, 2);
    await assertOthersUndisturbed(svc, watcher, from);
    c.close();
  });

  test('a text frame that is not valid UTF-8 is closed with 1007 (by the WebSocket library)', async () => {
    const from = watcher.packets.length;
    const c = await RawWsClient.connect(svc.port);
    c.sendText({ type: 'hello', protocol: 1, clientId: 'utf8' });
    await c.until(() => c.texts().find((m) => m.type === 'welcome'), 5000, 'welcome');
    // 0xC3 starts a two-byte sequence that 0x28 does not continue.
    c.sendFrame(OPCODE.text, Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]));
    const close = await c.waitForCloseFrame(5000);
    assert.equal(close.code, 1007, `close: ${JSON.stringify(close)}`);
    c.destroy();
    await assertOthersUndisturbed(svc, watcher, from);
  });

  test('a binary frame from a client is closed with 1003', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.open(svc.port, 'binary');
    c.ws.send(Buffer.from([0x53, 0x42, 1, 1, 0, 0]), { binary: true });
    const close = await c.waitForClose(5000);
    assert.equal(close.code, 1003, `close: ${JSON.stringify(close)}`);
    await assertOthersUndisturbed(svc, watcher, from);
  });

  test('a flood of 2000 pings at once gets rate-limited errors and then close 4029, while others stream on', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.open(svc.port, 'flood');
    // The watcher's own control channel must be unaffected by another client's flood.
    for (let i = 0; i < 2000; i++) c.send({ type: 'ping', id: i });
    const close = await c.waitForClose(10000);
    assert.equal(close.code, 4029, `close: ${JSON.stringify(close)}`);
    const pongs = c.messages.filter((m) => m.type === 'pong').length;
    const limited = c.messages.filter((m) => m.type === 'error' && m.code === 'rate-limited');
    assert.ok(pongs > 0, 'pings within the burst allowance are answered');
    assert.ok(pongs < 2000, `${pongs} pongs: the flood was not limited`);
    assert.ok(limited.length >= 1, `expected at least one rate-limited error before the close; messages: ${c.summary()}`);
    const wpong = await watcher.ping(4242);
    assert.equal(wpong.id, 4242);
    await assertOthersUndisturbed(svc, watcher, from);
  });

  test('a paced flood (5000 pings/s, 50 every 10 ms, for at most 3 s) is closed with 4029, while others stream on', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.open(svc.port, 'paced-flood');
    const sent = await pace(c, 5000, 3000);
    const close = await c.waitForClose(5000);
    assert.deepEqual(close, { code: 4029, reason: 'control message flood: more than 100 messages dropped within 1000 ms' });
    assert.ok(sent < 15000, `the box let ${sent} paced messages in before closing`);
    assert.ok(c.messages.some((m) => m.type === 'error' && m.code === 'rate-limited'), `rate-limited before the close: ${c.summary()}`);
    await assertOthersUndisturbed(svc, watcher, from);
  });

  test('a client just under the rate (45 pings/s for 3 s) is answered every time and never limited or closed', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.open(svc.port, 'polite-rate');
    const sent = await pace(c, 45, 3000);
    await c.waitForMessage('pong', { pred: (m) => m.id === sent - 1, timeoutMs: 5000 });
    assert.equal(c.messages.filter((m) => m.type === 'pong').length, sent);
    assert.ok(!c.messages.some((m) => m.type === 'error'), `errors: ${c.summary()}`);
    assert.equal(c.closeInfo, null);
    await assertOthersUndisturbed(svc, watcher, from);
    c.close();
  });

  test('a client at twice the rate (100 pings/s for 3 s) is rate-limited but not closed: it is not far over the rate', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.open(svc.port, 'double-rate');
    await pace(c, 100, 3000);
    await c.waitForMessage('error', { pred: (m) => m.code === 'rate-limited', timeoutMs: 5000 });
    await pingUntilAnswered(c);
    await assertOthersUndisturbed(svc, watcher, from);
    c.close();
  });

  test('a burst just over the allowance gets rate-limited errors but the connection stays open', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.open(svc.port, 'burst');
    // Default controlBurst 100: 150 at once is over it but far from a flood.
    for (let i = 0; i < 150; i++) c.send({ type: 'ping', id: i });
    await c.waitForMessage('error', { pred: (m) => m.code === 'rate-limited', timeoutMs: 5000 });
    await pingUntilAnswered(c);
    await assertOthersUndisturbed(svc, watcher, from);
    c.close();
  });

  test('a second connection with the same clientId replaces the first: the older is closed with 4010, the newer streams', async () => {
    const from = watcher.packets.length;
    const older = await StreamClient.open(svc.port, 'same-id');
    await older.subscribe([0], 'pcm16');
    await older.waitForPackets(5);
    const newer = await StreamClient.open(svc.port, 'same-id');
    const close = await older.waitForClose(5000);
    assert.equal(close.code, 4010, `older close: ${JSON.stringify(close)}`);
    await newer.subscribe([0, 5], 'pcm16');
    await newer.waitForPackets(20, 5000);
    assert.equal(newer.closeInfo, null);
    const status = await getStatus(svc.port);
    const same = status.clients.filter((x) => x.clientId === 'same-id');
    assert.equal(same.length, 1, `exactly one client with clientId same-id in status: ${JSON.stringify(status.clients)}`);
    assert.deepEqual(same[0]!.channels, [0, 5]);
    await assertOthersUndisturbed(svc, watcher, from);
    newer.close();
  });
});

describe('connection limits', () => {
  let svc: ServiceProcess;
  let watcher: StreamClient;
  before(async () => {
    svc = await startTestSignal({ helloTimeoutMs: 300, maxClients: 3 }, 'limits');
    watcher = await openWatcher(svc, 'watcher-c');
  });

  test('a client that connects and sends nothing is closed with 4001 after stream.helloTimeoutMs', async () => {
    const from = watcher.packets.length;
    const c = await StreamClient.connect(svc.port, { label: 'silent' });
    const close = await c.waitForClose(5000);
    assert.equal(close.code, 4001, `close: ${JSON.stringify(close)}`);
    await assertOthersUndisturbed(svc, watcher, from);
  });

  test('a client that said hello is not closed by the hello timeout', async () => {
    const c = await StreamClient.open(svc.port, 'polite');
    // A client that connects after it and says nothing is closed by the timeout: by then the polite one has been
    // connected longer than helloTimeoutMs too. Its pong, written after that sweep, shows it was left open.
    const silent = await StreamClient.connect(svc.port, { label: 'silent-after-polite' });
    assert.equal((await silent.waitForClose(5000)).code, 4001);
    await assertStillOpen(c, 1);
    c.close();
    await c.waitForClose(5000);
  });

  test('with stream.maxClients 3 reached, the next hello is answered by close 1013 and the others stay', async () => {
    const from = watcher.packets.length;
    // The watcher is client 1.
    await waitClients(svc, 1);
    const second = await StreamClient.open(svc.port, 'second');
    await second.subscribe([3], 'pcm16');
    const third = await StreamClient.open(svc.port, 'third');
    // Connecting is not refused (a connection without hello does not count); the hello is.
    const fourth = await StreamClient.connect(svc.port, { label: 'fourth' });
    fourth.send({ type: 'hello', protocol: 1, clientId: 'fourth' });
    const close = await fourth.waitForClose(5000);
    assert.deepEqual(close, { code: 1013, reason: 'server full: 3 clients' });
    assert.ok(!fourth.messages.some((m) => m.type === 'welcome'), `no welcome for a refused hello: ${fourth.summary()}`);
    await second.waitForPackets(20, 5000);
    assert.equal(second.closeInfo, null);
    await assertStillOpen(third, 3);
    await assertOthersUndisturbed(svc, watcher, from);
    // A place frees up: a new client is accepted again.
    second.close();
    await second.waitForClose(5000);
    await waitClients(svc, 2);
    const fifth = await StreamClient.open(svc.port, 'fifth');
    await assertStillOpen(fifth, 5);
    fifth.close();
    third.close();
  });

  test('with stream.maxClients reached, a hello with the clientId of a connected client is admitted and replaces it (4010)', async () => {
    const from = watcher.packets.length;
    await waitClients(svc, 1);
    const phone = await StreamClient.open(svc.port, 'phone');
    await phone.subscribe([2], 'pcm16');
    const filler = await StreamClient.open(svc.port, 'filler');
    // The box is full (watcher, phone, filler); the phone comes back on a new connection before the old one is noticed dead.
    const back = await StreamClient.open(svc.port, 'phone');
    assert.equal((await phone.waitForClose(5000)).code, 4010);
    const restored = await back.waitForMessage('subscribed', { pred: (m) => m.restored === true });
    assert.deepEqual(restored.channels, [2]);
    await back.waitForPackets(20, 5000);
    await assertOthersUndisturbed(svc, watcher, from);
    back.close();
    filler.close();
    await back.waitForClose(5000);
  });
});

/** Once the bucket refills (50/s) the client is served again: pings until one is answered (bounded), and it is still open. */
async function pingUntilAnswered(c: StreamClient): Promise<void> {
  let pong: BoxMessage | null = null;
  for (let id = 100000; id < 100040 && pong === null; id++) {
    pong = await c.ping(id, 250).catch(() => null);
  }
  assert.ok(pong, `no pong within 40 pings after the burst: ${c.summary()}`);
  assert.ok(pong.type === 'pong');
  assert.equal(c.closeInfo, null, `closed: ${JSON.stringify(c.closeInfo)}`);
}

/**
 * Sends pings (ids 0, 1, ...) at `perSecond`, in batches every 10 ms (timers are not finer), for `ms` or until the
 * connection closes; resolves with how many were sent. A late timer sends the batches it missed, so the pace holds.
 */
function pace(c: StreamClient, perSecond: number, ms: number): Promise<number> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let sent = 0;
    const timer = setInterval(() => {
      const elapsed = Math.min(ms, performance.now() - t0);
      const due = Math.floor((elapsed * perSecond) / 1000);
      while (sent < due && c.ws.readyState === c.ws.OPEN) c.send({ type: 'ping', id: sent++ });
      if (elapsed >= ms || c.ws.readyState !== c.ws.OPEN) {
        clearInterval(timer);
        resolve(sent);
      }
    }, 10);
  });
}

async function waitClients(svc: ServiceProcess, n: number): Promise<void> {
  let last = -1;
  await waitFor(
    async () => {
      last = (await getStatus(svc.port)).clients.length;
      return last === n;
    },
    { timeoutMs: 5000, what: `${n} client(s) in /api/status`, describe: () => `${last}` },
  );
}
