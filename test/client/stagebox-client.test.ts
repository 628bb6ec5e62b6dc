import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { StageboxClient, type AudioEvent, type ClientError, type StageboxClientOptions, type StateEvent } from '../../src/client/index';
import { NodeWebSocket, createNodeOpusDecoder, nodeInflateRaw } from '../../src/listen/node-platform';
import { TEST_SIGNAL_AMPLITUDE } from '../../src/capture/test-signal-source';
import { startService, stopAllServices, writeTempFile, type ServiceProcess } from '../helpers/service-process';
import { getStatus } from '../helpers/http-client';
import { StreamClient } from '../helpers/stream-client';
import type { PendingRequests } from '../../src/client/pending-requests';
import { waitFor, withTimeout } from '../helpers/wait';

/**
 * The client library against the real service (its built-in test signal:
 * 8 channels, each a -12 dBFS sine of its own frequency, 48 kHz, 128-frame
 * periods), over real loopback WebSockets (`ws`), with zlib and libopus.
 */

const CAPTURE = { capture: { device: 'test-signal', channels: 8, rate: 48000, periodFrames: 128 } };
const clients: StageboxClient[] = [];
let svc: ServiceProcess;

before(async () => {
  svc = await startService({ label: 'client-lib', config: CAPTURE });
});
after(async () => {
  for (const c of clients) c.close();
  await stopAllServices();
});

function makeClient(clientId: string, opts: Partial<StageboxClientOptions> = {}, port = svc.port): StageboxClient {
  const c = new StageboxClient({
    url: `ws://127.0.0.1:${port}/`,
    clientId,
    name: `test ${clientId}`,
    WebSocket: NodeWebSocket,
    inflateRaw: nodeInflateRaw,
    createOpusDecoder: createNodeOpusDecoder,
    ...opts,
  });
  clients.push(c);
  return c;
}

/** Records a client's events. */
function record(c: StageboxClient): { audio: AudioEvent[]; errors: ClientError[]; states: StateEvent[]; welcomes: number } {
  const r = { audio: [] as AudioEvent[], errors: [] as ClientError[], states: [] as StateEvent[], welcomes: 0 };
  c.on('audio', (a) => r.audio.push(a));
  c.on('error', (e) => r.errors.push(e));
  c.on('state', (s) => r.states.push(s));
  c.on('welcome', () => r.welcomes++);
  return r;
}

const rms = (x: Float32Array, ch: number, c: number): number => {
  let s = 0;
  for (let i = c; i < x.length; i += ch) s += x[i]! * x[i]!;
  return Math.sqrt(s / (x.length / ch));
};
const db = (x: number): number => 20 * Math.log10(x);
const TONE_DB = db(TEST_SIGNAL_AMPLITUDE / Math.SQRT2);

function concat(events: AudioEvent[]): Float32Array {
  const out = new Float32Array(events.reduce((n, e) => n + e.samples.length, 0));
  let o = 0;
  for (const e of events) {
    out.set(e.samples, o);
    o += e.samples.length;
  }
  return out;
}

async function audioAfter(r: { audio: AudioEvent[] }, pred: (a: AudioEvent) => boolean, n: number, what: string): Promise<AudioEvent[]> {
  return waitFor(
    () => {
      const got = r.audio.filter(pred);
      return got.length >= n ? got.slice(0, n) : undefined;
    },
    { timeoutMs: 15000, what, describe: () => `${r.audio.length} audio events, last ${JSON.stringify(r.audio.at(-1)?.header.channels)} ${r.audio.at(-1)?.header.codec}` },
  );
}

describe('StageboxClient: hello, subscribe and decode against the real service', () => {
  test('connect says hello with the clientId; welcome, metadata and the open state follow', async () => {
    const c = makeClient('lib-hello');
    const r = record(c);
    const metadata = c.once('metadata');
    const w = await withTimeout(c.connect(), 10000, 'welcome');
    assert.equal(w.clientId, 'lib-hello');
    assert.equal(w.protocol, 1);
    assert.equal(w.source.channels, 8);
    assert.equal(w.restored, null);
    await withTimeout(metadata, 5000, 'metadata');
    assert.deepEqual(
      r.states.map((s) => s.state),
      ['connecting', 'open'],
    );
    assert.equal(c.source?.rate, 48000);
    const st = await getStatus(svc.port);
    assert.equal(st.clients.find((x) => x.clientId === 'lib-hello')?.name, 'test lib-hello');
    c.close();
    assert.equal(r.errors.length, 0, JSON.stringify(r.errors));
  });

  for (const codec of ['pcm16', 'pcm24', 'deflate'] as const) {
    test(`subscribe ${codec} to channels [6, 1]: packets decode to both tones at -12 dBFS, in the asked order`, async () => {
      const c = makeClient(`lib-${codec}`);
      const r = record(c);
      await c.connect();
      const sub = await withTimeout(c.subscribe({ channels: [6, 1], codec }), 10000, 'subscribed');
      assert.deepEqual(sub.channels, [6, 1]);
      const got = await audioAfter(r, (a) => a.header.codec === codec, 200, `200 ${codec} packets`);
      for (const a of got) {
        assert.deepEqual(a.header.channels, [6, 1]);
        assert.equal(a.channels, 2);
        assert.equal(a.frames, 128);
        assert.equal(a.rate, 48000);
      }
      for (let i = 1; i < got.length; i++) assert.equal(got[i]!.seq, (got[i - 1]!.seq + 1) >>> 0, 'no packet lost on loopback');
      const all = concat(got);
      for (const ch of [0, 1]) assert.ok(Math.abs(db(rms(all, 2, ch)) - TONE_DB) < 0.2, `channel ${ch}: ${db(rms(all, 2, ch)).toFixed(2)} dBFS`);
      assert.equal(r.errors.length, 0, JSON.stringify(r.errors));
      c.close();
    });
  }

  test('deflate decodes to exactly the samples pcm16 carries, packet by packet', async () => {
    const a = makeClient('lib-cmp-pcm16');
    const b = makeClient('lib-cmp-deflate');
    const ra = record(a);
    const rb = record(b);
    await Promise.all([a.connect(), b.connect()]);
    await Promise.all([a.subscribe({ channels: [3, 4], codec: 'pcm16' }), b.subscribe({ channels: [3, 4], codec: 'deflate' })]);
    await audioAfter(rb, () => true, 100, 'deflate packets');
    const bySeq = new Map(ra.audio.map((x) => [x.seq, x]));
    let compared = 0;
    for (const x of rb.audio) {
      const y = bySeq.get(x.seq);
      if (!y) continue;
      assert.deepEqual([...x.samples], [...y.samples], `seq ${x.seq}`);
      compared++;
    }
    assert.ok(compared >= 50, `compared ${compared} packets`);
    a.close();
    b.close();
  });

  test('an opus mix of channel 5 decodes through libopus to a stereo tone at -12 dBFS - 3 dB (centre pan)', async () => {
    const c = makeClient('lib-opus');
    const r = record(c);
    await c.connect();
    const m = await withTimeout(c.mix({ codec: 'opus', channels: [{ ch: 5 }], opus: { frameMs: 5 } }), 10000, 'mixing');
    assert.equal(m.codec, 'opus');
    const got = await audioAfter(r, (a) => a.header.codec === 'opus', 120, '120 opus packets');
    for (const a of got) {
      assert.equal(a.header.mix, true);
      assert.equal(a.frames, 240);
      assert.equal(a.channels, 2);
    }
    const all = concat(got.slice(20));
    for (const ch of [0, 1]) {
      const level = db(rms(all, 2, ch));
      assert.ok(Math.abs(level - (TONE_DB - 3.01)) < 0.5, `opus channel ${ch}: ${level.toFixed(2)} dBFS`);
    }
    assert.equal(r.errors.length, 0, JSON.stringify(r.errors));
    c.close();
  });
});

describe('StageboxClient: round trip, clock offset and report', () => {
  test('pings give an RTT and the clock offset; packets get a capture-to-arrival latency; the report reaches /api/status', async () => {
    const c = makeClient('lib-report', { jitter: { targetMs: 20 }, pingIntervalMs: 200, reportIntervalMs: 200 });
    const r = record(c);
    const stats: unknown[] = [];
    c.on('stats', (s) => stats.push(s));
    await c.connect();
    await c.subscribe({ channels: [0, 1] });
    // A player: pulls what the elapsed time asks for, as an audio callback would.
    const out = new Float32Array(128 * 2);
    let played = 0;
    const t0 = performance.now();
    const player = setInterval(() => {
      const due = Math.floor(((performance.now() - t0) * 48000) / 1000 / 128);
      for (; played < due; played++) c.pull(out);
    }, 5);
    try {
      const me = await waitFor(
        async () => {
          const s = (await getStatus(svc.port)).clients.find((x) => x.clientId === 'lib-report');
          return s && s.playbackBufferMs !== null && s.playbackBufferMs > 0 ? s : undefined;
        },
        { timeoutMs: 15000, what: 'a report in /api/status' },
      );
      assert.equal(typeof me.underruns, 'number');
      assert.ok(me.playbackBufferMs! <= 200, `playbackBufferMs ${me.playbackBufferMs}`);
      const s = c.stats();
      assert.ok(s.rttMs !== null && s.rttMs >= 0 && s.rttMs < 2000, `rttMs ${s.rttMs}`);
      assert.ok(s.minRttMs !== null && s.minRttMs <= s.rttMs!);
      assert.ok(s.clockOffsetMs !== null);
      // On one machine the capture-to-arrival time is the box's period plus its processing: well under a second.
      const lat = r.audio.at(-1)!.networkLatencyMs;
      assert.ok(lat !== null && lat > -5 && lat < 1000, `networkLatencyMs ${lat}`);
      assert.ok(s.jitter && s.jitter.targetMs >= 2.5, JSON.stringify(s.jitter));
      await waitFor(() => stats.length >= 2, { timeoutMs: 5000, what: 'two stats events' });
    } finally {
      clearInterval(player);
      c.close();
    }
  });

  test('setPlaybackStats reports the app\'s own buffer when the jitter buffer lives elsewhere', async () => {
    const c = makeClient('lib-report-app', { reportIntervalMs: 100 });
    await c.connect();
    c.setPlaybackStats({ bufferMs: 17.5, underruns: 4 });
    const me = await waitFor(
      async () => {
        const s = (await getStatus(svc.port)).clients.find((x) => x.clientId === 'lib-report-app');
        return s && s.playbackBufferMs === 17.5 ? s : undefined;
      },
      { timeoutMs: 10000, what: 'the app report in /api/status' },
    );
    assert.equal(me.underruns, 4);
    c.close();
  });

  test('setPlaybackStats: underruns are reported per connection, counted from the welcome', async () => {
    const c = makeClient('lib-report-base', { reportIntervalMs: 100 });
    // The app's count since it started, before this connection: not this connection's underruns.
    c.setPlaybackStats({ bufferMs: 11, underruns: 6 });
    await c.connect();
    const first = await waitFor(
      async () => {
        const s = (await getStatus(svc.port)).clients.find((x) => x.clientId === 'lib-report-base');
        return s && s.playbackBufferMs === 11 ? s : undefined;
      },
      { timeoutMs: 10000, what: 'the first app report in /api/status' },
    );
    assert.equal(first.underruns, 0);
    c.setPlaybackStats({ bufferMs: 12, underruns: 9 });
    const later = await waitFor(
      async () => {
        const s = (await getStatus(svc.port)).clients.find((x) => x.clientId === 'lib-report-base');
        return s && s.playbackBufferMs === 12 ? s : undefined;
      },
      { timeoutMs: 10000, what: 'the second app report in /api/status' },
    );
    assert.equal(later.underruns, 3);
    c.close();
  });
});

describe('StageboxClient: choices made in a welcome listener', () => {
  test("a mix() from a 'welcome' listener goes to the box once, not again as the restored choice", async () => {
    const sent: string[] = [];
    // The real `ws` socket, with its sends recorded: the box coalesces two identical mixes, so its answers cannot tell.
    class RecordingWebSocket extends (NodeWebSocket as unknown as new (url: string) => { send(d: string): void }) {
      override send(d: string): void {
        sent.push(d);
        super.send(d);
      }
    }
    const c = makeClient('lib-welcome-mix', { WebSocket: RecordingWebSocket as unknown as StageboxClientOptions['WebSocket'] });
    let answered: Promise<unknown> | null = null;
    c.on('welcome', () => {
      answered = c.mix({ codec: 'pcm16', output: 'mono', channels: [{ ch: 1, gainDb: -6 }] });
    });
    await c.connect();
    assert.ok(answered, 'the welcome listener ran');
    // The library sends a choice only from its handlers (the welcome's, then the answer's), which have both run
    // by the time the answer resolved: nothing is left that could send the mix again.
    await withTimeout(answered!, 5000, 'the mixing answer');
    const mixes = sent.map((d) => JSON.parse(d) as { type: string }).filter((m) => m.type === 'mix');
    assert.equal(mixes.length, 1, `mix messages sent: ${JSON.stringify(mixes)}`);
    c.close();
  });
});

describe('StageboxClient: mixes the box coalesces', () => {
  test('five mix() calls in a burst (a fader being dragged) all resolve, the last with the mix the box kept, and nothing stays pending', async () => {
    const c = makeClient('lib-mix-burst');
    await c.connect();
    // The box applies the first at once and coalesces the other four into one answer (the last).
    const answers = [-30, -24, -18, -12, -6].map((g) => c.mix({ codec: 'pcm16', output: 'mono', channels: [{ ch: 2, gainDb: g }] }));
    const got = (await withTimeout(Promise.all(answers), 5000, 'every mix() answered')) as { mix?: { channels?: { gainDb?: number }[] } }[];
    assert.equal(got[0]!.mix?.channels?.[0]?.gainDb, -30, 'the first is answered by itself');
    for (const m of got.slice(1)) assert.equal(m.mix?.channels?.[0]?.gainDb, -6, 'the merged ones by the mix the box kept: the last one');
    assert.equal((c as unknown as { pending: PendingRequests }).pending.choicePending(), false, 'no request left waiting');
    c.close();
  });
});

describe('StageboxClient: reconnect', () => {
  test('the service restarts on the same port: backoff, hello with the same clientId, the subscription sent again (fresh state) and audio resumes', async () => {
    const own = await startService({ label: 'client-lib-restart', config: CAPTURE });
    const port = own.port;
    const c = makeClient('lib-reconnect', { reconnect: { initialMs: 100, maxMs: 400 } }, port);
    const r = record(c);
    await c.connect();
    await c.subscribe({ channels: [7, 2], codec: 'pcm24' });
    await audioAfter(r, () => true, 10, 'audio before the restart');
    await own.stop();
    await waitFor(() => r.states.some((s) => s.state === 'closed' && s.retryInMs !== null), { timeoutMs: 5000, what: 'closed with a retry' });
    const closed = r.states.find((s) => s.state === 'closed')!;
    assert.equal(closed.closeCode, 1001, 'the stopping service closes with 1001');
    const before = r.audio.length;
    // A fresh state dir: the box does not remember the client, so the client must subscribe again by itself.
    const again = await startService({ label: 'client-lib-restarted', config: { ...CAPTURE, server: { host: '127.0.0.1', port } } });
    try {
      await waitFor(() => r.welcomes >= 2, { timeoutMs: 15000, what: 'a second welcome' });
      const resumed = await audioAfter(r, (a) => r.audio.indexOf(a) >= before, 20, 'audio after the restart');
      for (const a of resumed) {
        assert.deepEqual(a.header.channels, [7, 2]);
        assert.equal(a.header.codec, 'pcm24');
      }
      const st = (await getStatus(again.port)).clients.find((x) => x.clientId === 'lib-reconnect');
      assert.ok(st, 'the box knows the client by the same clientId');
      assert.deepEqual(st.channels, [7, 2]);
      const retries = r.states.filter((s) => s.state === 'closed' && s.retryInMs !== null).map((s) => s.retryInMs!);
      for (let i = 1; i < retries.length; i++) assert.ok(retries[i]! >= retries[i - 1]!, `backoff grows: ${retries.join(', ')}`);
      assert.ok(retries.every((d) => d <= 400), `backoff capped at maxMs: ${retries.join(', ')}`);
    } finally {
      c.close();
      await again.stop();
    }
  });

  test('the service restarts with its state: the box restores the mix itself, audio resumes as that mix', async () => {
    const stateDir = path.dirname(writeTempFile('.keep', ''));
    const own = await startService({ label: 'client-lib-mix-restart', config: { ...CAPTURE, state: { dir: stateDir } } });
    const port = own.port;
    const c = makeClient('lib-reconnect-mix', { reconnect: { initialMs: 100, maxMs: 400 } }, port);
    const r = record(c);
    const welcomes: { restored: unknown }[] = [];
    c.on('welcome', (w) => welcomes.push(w));
    await c.connect();
    await c.mix({ codec: 'pcm16', output: 'mono', channels: [{ ch: 3, gainDb: -6 }] });
    await audioAfter(r, (a) => a.header.mix, 10, 'mix audio before the restart');
    await own.stop();
    const before = r.audio.length;
    const again = await startService({ label: 'client-lib-mix-restarted', config: { ...CAPTURE, state: { dir: stateDir }, server: { host: '127.0.0.1', port } } });
    try {
      const resumed = await audioAfter(r, (a) => r.audio.indexOf(a) >= before, 20, 'mix audio after the restart');
      assert.deepEqual(welcomes[1]?.restored, { mode: 'mix', codec: 'pcm16' });
      for (const a of resumed) {
        assert.equal(a.header.mix, true);
        assert.deepEqual(a.header.channels, [0], 'mono');
      }
    } finally {
      c.close();
      await again.stop();
    }
  });

  test('the connection drops while a newer mix() is unanswered: the reconnect sends the newer mix, not the one the box last answered', async () => {
    const sent: { type: string; channels?: { gainDb?: number }[] }[] = [];
    const sockets: { close(): void }[] = [];
    // The real `ws` socket, with its sends recorded and a handle to drop it, as a phone leaving Wi-Fi would.
    class RecordingWebSocket extends (NodeWebSocket as unknown as new (url: string) => { send(d: string): void; close(): void }) {
      constructor(url: string) {
        super(url);
        sockets.push(this);
      }
      override send(d: string): void {
        sent.push(JSON.parse(d) as (typeof sent)[number]);
        super.send(d);
      }
    }
    const c = makeClient('lib-reconnect-newer-mix', { WebSocket: RecordingWebSocket as unknown as StageboxClientOptions['WebSocket'], reconnect: { initialMs: 50, maxMs: 200 } });
    const r = record(c);
    await c.connect();
    const older = { codec: 'pcm16' as const, output: 'mono' as const, channels: [{ ch: 4, gainDb: -30 }] };
    const newer = { codec: 'pcm16' as const, output: 'mono' as const, channels: [{ ch: 4, gainDb: -6 }] };
    // The box answers the first mix at once and holds the second for its 50 ms coalescing window; the socket
    // is dropped the moment the first answer arrives, so the second is never answered on this connection.
    c.on('mixing', (m) => {
      if ((m.mix as { channels?: { gainDb?: number }[] } | undefined)?.channels?.[0]?.gainDb === -30 && sockets.length === 1) sockets[0]!.close();
    });
    void c.mix(older);
    const answered = c.mix(newer);
    await waitFor(() => r.welcomes >= 2, { timeoutMs: 10000, what: 'a second welcome after the drop' });
    const got = (await withTimeout(answered, 5000, 'the newer mix answered after the reconnect')) as { mix?: { channels?: { gainDb?: number }[] } };
    assert.equal(got.mix?.channels?.[0]?.gainDb, -6, 'the box answers with the newer mix: the one it now keeps');
    const firstAfterDrop = sent.slice(sent.findIndex((m) => m.type === 'hello' && sent.indexOf(m) > 0)).find((m) => m.type === 'mix');
    assert.equal(firstAfterDrop?.channels?.[0]?.gainDb, -6, `mix messages sent: ${JSON.stringify(sent.filter((m) => m.type === 'mix'))}`);
    c.close();
  });

  test('a client that stalls: it reads the box\'s 4008 when it reads again and reconnects with backoff; stalled for good, it finds a reset (1006) and reconnects too', async () => {
    // 64 channels of pcm24 (9 MB/s) fill the socket buffers of a stalled client within a second or two.
    const own = await startService({ label: 'client-lib-stall', config: { capture: { device: 'test-signal', channels: 64, rate: 48000, periodFrames: 128 }, stream: { stallTimeoutMs: 1000 } } });
    const sockets: { _socket: { pause(): void; resume(): void } }[] = [];
    // The real `ws` socket, with a handle on its TCP socket to stop reading, as a phone whose app hangs.
    class TapWebSocket extends (NodeWebSocket as unknown as new (url: string) => object) {
      constructor(url: string) {
        super(url);
        sockets.push(this as unknown as (typeof sockets)[number]);
      }
    }
    const c = makeClient('lib-stall', { WebSocket: TapWebSocket as unknown as StageboxClientOptions['WebSocket'], reconnect: { initialMs: 100, maxMs: 400 } }, own.port);
    const r = record(c);
    try {
      await c.connect();
      await c.subscribe({ channels: Array.from({ length: 64 }, (_, i) => i), codec: 'pcm24' });
      await audioAfter(r, () => true, 5, 'audio before the stall');
      const stallAndResume = async (n: number, boxLine: string): Promise<StateEvent> => {
        const seen = r.states.length;
        sockets[n]!._socket.pause();
        await own.waitForLog((l) => l.clientId === 'lib-stall' && typeof l.msg === 'string' && l.msg.startsWith(boxLine), 30000, `"${boxLine}" for lib-stall`);
        sockets[n]!._socket.resume();
        return waitFor(() => r.states.slice(seen).find((s) => s.state === 'closed'), { timeoutMs: 10000, what: `closed after stall ${n + 1}` });
      };
      const first = await stallAndResume(0, 'client closed by box');
      assert.equal(first.closeCode, 4008);
      assert.ok(first.retryInMs !== null, 'a reconnect is scheduled');
      await waitFor(() => r.welcomes >= 2, { timeoutMs: 10000, what: 'a second welcome after the 4008' });
      // Stalled past the box's patience for the close frame: the box drops the socket, the client reads a reset.
      const second = await stallAndResume(1, 'stalled client dropped');
      assert.equal(second.closeCode, 1006);
      assert.ok(second.retryInMs !== null, 'a reconnect is scheduled');
      await waitFor(() => r.welcomes >= 3, { timeoutMs: 10000, what: 'a third welcome after the reset' });
      assert.ok(!r.errors.some((e) => e.code === 'closed' || e.code === 'gave-up'), `errors: ${JSON.stringify(r.errors)}`);
    } finally {
      c.close();
      await own.stop();
    }
  });

  test('replaced by another connection with the same clientId (4010): an error, closed, no reconnect', async (t) => {
    const c = makeClient('lib-replaced', { reconnect: { initialMs: 50 } });
    const r = record(c);
    await c.connect();
    // From here the library's timeouts are mocked: any reconnect it scheduled would be in the mock's queue.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const other = await StreamClient.open(svc.port, 'lib-replaced');
    await waitFor(() => r.states.some((s) => s.state === 'closed'), { timeoutMs: 5000, what: 'closed' });
    const closed = r.states.find((s) => s.state === 'closed')!;
    assert.equal(closed.closeCode, 4010);
    assert.equal(closed.retryInMs, null);
    const e = r.errors.find((x) => x.code === 'closed');
    assert.match(e?.message ?? '', /closed the connection with 4010: another connection with the same clientId took over; not reconnecting/);
    // Runs out every timeout scheduled since: a reconnect would start (state "connecting") right here.
    t.mock.timers.runAll();
    assert.equal(r.states.filter((s) => s.state === 'connecting').length, 1, 'no second attempt');
    other.ws.close();
  });
});

describe('StageboxClient: bad input', () => {
  test('an unreachable url: an error naming the url and the reason, bounded backoff retries, then gave-up and connect() rejects', async () => {
    const c = makeClient('lib-unreachable', { reconnect: { initialMs: 50, factor: 2, maxAttempts: 3 } }, 1);
    const r = record(c);
    await assert.rejects(withTimeout(c.connect(), 10000, 'connect to give up'), /no welcome from ws:\/\/127\.0\.0\.1:1\/: the connection closed/);
    const fails = r.errors.filter((e) => e.code === 'connect-failed');
    assert.equal(fails.length, 3);
    assert.equal(fails[0]!.url, 'ws://127.0.0.1:1/');
    assert.match(fails[0]!.message, /connection to ws:\/\/127\.0\.0\.1:1\/ failed: .*ECONNREFUSED/);
    assert.match(r.errors.at(-1)!.message, /gave up on ws:\/\/127\.0\.0\.1:1\/ after 3 attempts/);
    assert.deepEqual(
      r.states.filter((s) => s.state === 'closed').map((s) => s.retryInMs),
      [50, 100, null],
    );
    assert.equal(c.connectionState, 'closed');
  });

  test("a box error (a mix naming a group that does not exist) is an 'error' event and rejects mix(); the stream goes on", async () => {
    const c = makeClient('lib-box-error');
    const r = record(c);
    await c.connect();
    await c.subscribe({ channels: [0] });
    await assert.rejects(c.mix({ channels: [{ ch: 0 }], groups: [{ name: 'horns' }] }), /bad-group: group "horns" does not exist/);
    const e = r.errors.find((x) => x.code === 'bad-group');
    assert.equal(e?.ref, 'mix');
    const n = r.audio.length;
    const more = await audioAfter(r, (a) => r.audio.indexOf(a) >= n, 20, 'audio after the error');
    assert.ok(more.every((a) => !a.header.mix && a.header.channels[0] === 0), 'the subscription is unchanged');
    c.close();
  });

  test('codecs and channels the client cannot use are refused before anything is sent', async () => {
    const plain = makeClient('lib-refuse', { inflateRaw: undefined, createOpusDecoder: undefined });
    const r = record(plain);
    await plain.connect();
    await plain.subscribe({ channels: [1] });
    assert.throws(() => plain.subscribe({ channels: [1], codec: 'opus' as never }), /codec "opus" is not a channel codec of this box; allowed: "pcm16", "pcm24", "deflate"/);
    assert.throws(() => plain.subscribe({ channels: [1], codec: 'deflate' }), /codec "deflate" needs an inflateRaw function/);
    assert.throws(() => plain.mix({ codec: 'opus', channels: [{ ch: 1 }] }), /codec "opus" needs a createOpusDecoder function/);
    assert.throws(() => plain.mix({ codec: 'deflate' as never, channels: [{ ch: 1 }] }), /codec "deflate" is not a mix codec of this box; allowed: "pcm16", "pcm24", "opus"/);
    assert.throws(() => plain.subscribe({ channels: [8] }), /channel 8 does not exist; allowed: 0-7 \(the device has 8 channels\)/);
    assert.throws(() => plain.subscribe({ channels: [2, 2] }), /channel 2 is listed twice/);
    assert.throws(() => plain.subscribe({ channels: [] }), /channels must be a list of 1-64 channel numbers/);
    const n = r.audio.length;
    const more = await audioAfter(r, (a) => r.audio.indexOf(a) >= n, 20, 'audio after the refusals');
    assert.ok(more.every((a) => a.header.codec === 'pcm16' && a.header.channels.length === 1 && a.header.channels[0] === 1));
    assert.equal(r.errors.length, 0, `nothing reached the box: ${JSON.stringify(r.errors)}`);
    plain.close();
  });

  test('bad options are refused by the constructor, naming the value and what is allowed', () => {
    const base = { url: 'ws://127.0.0.1:5100/', clientId: 'x', WebSocket: NodeWebSocket };
    assert.throws(() => new StageboxClient({ ...base, url: 'http://127.0.0.1:5100/' }), /url is "http:\/\/127.0.0.1:5100\/"; allowed: a ws:\/\/ or wss:\/\/ URL/);
    assert.throws(() => new StageboxClient({ ...base, clientId: 'has space' }), /clientId is "has space"; allowed: 1-64 characters from A-Z a-z 0-9 \. _ : -/);
    assert.throws(() => new StageboxClient({ ...base, name: 'n'.repeat(65) }), /name is 65 characters long; allowed: at most 64/);
    assert.throws(() => new StageboxClient({ ...base, reconnect: { initialMs: 0 } }), /reconnect.initialMs is 0; allowed: a finite number of ms above 0/);
    assert.throws(() => new StageboxClient({ ...base, WebSocket: undefined }), /needs a WebSocket: this platform has no globalThis.WebSocket/);
  });
});
