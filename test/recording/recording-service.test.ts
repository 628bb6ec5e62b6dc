import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ParsedPacket } from '../../src/protocol/index';
import { buildWav } from '../../src/capture/wav-file';
import { checkPackets, decodePayload, expectedWire, frameFromTop16 } from '../helpers/alsa-fixture';
import { removeFixtures, startOnFixture } from '../helpers/alsa-service';
import { ffprobe, soxInfo, soxSamples } from '../helpers/audio-tools';
import { api } from '../helpers/recording-api';
import { stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { describeSeqGaps, firstSeqGap, StreamClient } from '../helpers/stream-client';
import { httpRequest } from '../helpers/http-client';
import { waitFor } from '../helpers/wait';

/**
 * Recording and virtual soundcheck on the real service, capturing a real
 * alsa-lib `file` device fed the fixture's self-identifying pattern: a take
 * is compared sample for sample with what the device delivered (read back by
 * sox), played back and compared bit for bit with itself as the phones
 * receive it, and every bad request is refused with its reason while
 * nothing changes.
 */

const TOKEN = 'sesame-4711';
const CH = 8;
const PF = 128;
const root = mkdtempSync(path.join(os.tmpdir(), 'rec-svc-'));
let svc: ServiceProcess;
let takesDir: string;

before(async () => {
  ({ svc } = await startOnFixture({
    format: 'S24_3LE',
    channels: CH,
    periodFrames: PF,
    pcmName: 'recsvc',
    label: 'recording',
    // Back to live reopens the device: alsa-capture then sometimes sees 48001 Hz (src/engine/opus-encoder.ts) and retries.
    capture: { retryInitialMs: 100, retryMaxMs: 400 },
    config: {
      admin: { token: TOKEN },
      // No real mounts count: takes go to state.dir/recordings.
      recording: { drives: [path.join(root, 'drives')], syncIntervalMs: 200 },
    },
  }));
  const status = (await api(svc.port, 'GET', '/api/recordings', { token: TOKEN })).json<{ recording: { drive: { mount: string } } }>();
  takesDir = status.recording.drive.mount;
});

after(async () => {
  await stopAllServices();
  removeFixtures();
  rmSync(root, { recursive: true, force: true });
});

interface TakeView {
  id: string;
  name: string;
  state: string;
  seconds: number;
  dir: string;
  channels: { ch: number; name: string }[];
  files: string[] | { name: string; bytes: number; url: string }[];
  markers: { seconds: number; label: string; kind: string }[];
  endReason: string | null;
  error: string | null;
}

async function admin(label: string): Promise<StreamClient> {
  const c = await StreamClient.open(svc.port, `${label}-${Date.now()}`, { label });
  c.send({ type: 'auth', token: TOKEN });
  await c.waitForMessage('auth-ok');
  return c;
}

/** A mono take file holds channel `ch` of the pattern from some frame on, every sample; returns that frame (mod the pattern). */
function checkMonoFile(file: string, ch: number): { f0: number; frames: number } {
  const s = soxSamples(file, 24);
  assert.ok(s.length > 0, `${file} holds audio`);
  const f0 = frameFromTop16((s[0]! >> 8) & 0xffff, ch);
  for (let i = 0; i < s.length; i++) {
    const want = expectedWire('S24_3LE', 'pcm24', f0 + i, ch);
    if (s[i] !== want) assert.fail(`${path.basename(file)} sample ${i}: ${s[i]}, the device delivered ${want}`);
  }
  return { f0, frames: s.length };
}

describe('recording a show', () => {
  let take: TakeView;

  test('without the admin token: 401, and nothing starts', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-token' }, { authorization: 'Basic c2VzYW1lOjQ3MTE=' }] as Record<string, string>[]) {
      const r = await api(svc.port, 'POST', '/api/recordings', { headers, body: {} });
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.equal(r.headers['www-authenticate'], 'Bearer realm="stagebox"');
      assert.ok(!r.body.toString().includes(TOKEN));
    }
    assert.equal((await api(svc.port, 'GET', '/api/recordings')).status, 401);
    const st = JSON.parse((await httpRequest(svc.port, 'GET', '/api/status')).body) as { recording: { state: string } };
    assert.equal(st.recording.state, 'idle');
    assert.equal(existsSync(takesDir) ? readdirSync(takesDir).length : 0, 0);
  });

  test('a take of three inputs, with the engineer\'s names and a marker: each file is the device\'s audio, sample for sample, read back by sox and ffprobe', async () => {
    const a = await admin('namer');
    a.send({ type: 'set-metadata', channels: [{ ch: 0, name: 'Kick' }, { ch: 3, name: 'Bass DI' }] });
    await a.waitForMessage('metadata');
    a.close();
    const start = await api(svc.port, 'POST', '/api/recordings', { token: TOKEN, body: { channels: [7, 0, 3], name: 'Soundcheck' } });
    assert.equal(start.status, 201, start.body.toString());
    const started = start.json<{ take: TakeView }>().take;
    assert.match(started.id, /^\d{4}-\d\d-\d\d_\d{6}_Soundcheck$/);
    assert.deepEqual(started.channels, [{ ch: 0, name: 'Kick' }, { ch: 3, name: 'Bass DI' }, { ch: 7, name: 'Input 8' }]);
    assert.deepEqual(started.files, ['01 Kick.wav', '04 Bass DI.wav', '08.wav']);
    // The marker lands inside the take, not at its first frame.
    await waitFor(async () => (await api(svc.port, 'GET', '/api/recordings', { token: TOKEN })).json<{ recording: { take: TakeView } }>().recording.take.seconds >= 0.3, { timeoutMs: 10_000, what: '0.3 s recorded' });
    const mk = await api(svc.port, 'POST', '/api/recordings/markers', { token: TOKEN, body: { label: 'song 1' } });
    assert.equal(mk.status, 201);
    assert.equal(mk.json<{ marker: { label: string } }>().marker.label, 'song 1');
    await waitFor(async () => (await api(svc.port, 'GET', '/api/recordings', { token: TOKEN })).json<{ recording: { take: TakeView } }>().recording.take.seconds >= 1, { timeoutMs: 10_000, what: '1 s recorded' });
    const stop = await api(svc.port, 'POST', '/api/recordings/stop', { token: TOKEN });
    assert.equal(stop.status, 200);
    take = stop.json<{ take: TakeView }>().take;
    assert.equal(take.state, 'done');
    assert.equal(take.endReason, 'stopped');
    assert.ok(take.seconds >= 1, `${take.seconds} s`);
    assert.deepEqual(take.markers.map((m) => [m.label, m.kind]), [['song 1', 'marker']]);

    const got = (['01 Kick.wav', '04 Bass DI.wav', '08.wav'] as const).map((name, i) => {
      const file = path.join(take.dir, name);
      const info = soxInfo(file);
      assert.deepEqual([info.channels, info.rate, info.bits], [1, 48000, 24]);
      const probe = ffprobe(file);
      assert.equal(probe.streams[0]!.codec_name, 'pcm_s24le');
      assert.equal(probe.format.tags?.title, `Soundcheck - ${['Kick', 'Bass DI', 'Input 8'][i]}`);
      assert.equal(probe.chapters[0]?.tags?.title, 'song 1');
      return checkMonoFile(file, [0, 3, 7][i]!);
    });
    // The three files start at the same frame of the device and are equally long.
    assert.equal(new Set(got.map((g) => `${g.f0}/${g.frames}`)).size, 1, JSON.stringify(got));
    // take.seconds is rounded to the millisecond (48 frames).
    assert.ok(Math.abs(got[0]!.frames - take.seconds * 48000) <= 24, `${got[0]!.frames} frames for ${take.seconds} s`);
  });

  test('GET /api/recordings lists the take with a download URL per file; the URL gives the file with the token, 401 without', async () => {
    const list = (await api(svc.port, 'GET', '/api/recordings', { token: TOKEN })).json<{ takes: TakeView[]; recording: { state: string } }>();
    assert.equal(list.recording.state, 'idle');
    const t = list.takes.find((x) => x.id === take.id)!;
    const files = t.files as { name: string; bytes: number; url: string; link: string }[];
    assert.deepEqual(files.map((f) => f.name), ['01 Kick.wav', '04 Bass DI.wav', '08.wav']);
    for (const f of files) {
      assert.equal(f.url, `/api/recordings/${encodeURIComponent(take.id)}/files/${encodeURIComponent(f.name)}`);
      const r = await api(svc.port, 'GET', f.url, { token: TOKEN });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'audio/wav');
      assert.ok(r.body.equals(readFileSync(path.join(take.dir, f.name))), `${f.name}: the download is the file`);
      assert.equal(r.body.length, f.bytes);
      assert.equal((await api(svc.port, 'GET', f.url)).status, 401);
      // The signed link (for a browser, which cannot send the header) opens this file without the token...
      assert.ok(f.link.startsWith(`${f.url}?expires=`), f.link);
      const linked = await api(svc.port, 'GET', f.link);
      assert.equal(linked.status, 200);
      assert.ok(linked.body.equals(r.body));
    }
    // ...and nothing else: another file, a changed signature, another request.
    const link = new URL(files[0]!.link, 'http://box');
    const other = await api(svc.port, 'GET', `${files[1]!.url}${link.search}`);
    assert.deepEqual([other.status, other.json<{ code: string }>().code], [403, 'bad-link']);
    const forged = await api(svc.port, 'GET', `${files[0]!.url}?expires=${link.searchParams.get('expires')}&sig=${'0'.repeat(64)}`);
    assert.equal(forged.status, 403);
    assert.equal((await api(svc.port, 'DELETE', `/api/recordings/${encodeURIComponent(take.id)}${link.search}`)).status, 403);
    assert.equal((await api(svc.port, 'POST', `/api/recordings${link.search}`, { body: {} })).status, 403);
    const ranged = await api(svc.port, 'GET', files[0]!.url, { token: TOKEN, headers: { range: 'bytes=100-199' } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers['content-range'], `bytes 100-199/${files[0]!.bytes}`);
    assert.ok(ranged.body.equals(readFileSync(path.join(take.dir, files[0]!.name)).subarray(100, 200)));
  });

  test('state in /api/status, /metrics and the health snapshot while a take runs; phones are told with a "source" message', async () => {
    const phone = await StreamClient.open(svc.port, 'rec-phone', { label: 'phone' });
    const welcome = await phone.waitForMessage('welcome');
    assert.equal((welcome.source as { recording: boolean }).recording, false);
    const start = await api(svc.port, 'POST', '/api/recordings', { token: TOKEN, body: { name: 'Status' } });
    assert.equal(start.status, 201);
    const told = await phone.waitForMessage('source', { pred: (m) => m.recording === true });
    assert.equal(told.kind, 'alsa');
    await waitFor(async () => (JSON.parse((await httpRequest(svc.port, 'GET', '/api/status')).body) as { recording: { take: { seconds: number } } }).recording.take.seconds > 0.3, { timeoutMs: 10_000, what: 'the take running' });
    const st = JSON.parse((await httpRequest(svc.port, 'GET', '/api/status')).body) as {
      recording: { state: string; take: TakeView; freeBytes: number; secondsLeft: number; bytesPerSecond: number; buffer: { seconds: number; bytes: number } };
      health: { recording: { active: boolean; take: string; seconds: number; freeBytes: number; secondsLeft: number; writeErrors: number } };
    };
    assert.equal(st.recording.state, 'recording');
    assert.equal(st.recording.bytesPerSecond, 48000 * 3 * CH);
    assert.equal(st.recording.buffer.bytes, Math.ceil((4 * 48000) / PF) * PF * CH * 3);
    assert.ok(st.recording.freeBytes > 0 && st.recording.secondsLeft > 0);
    assert.equal(st.health.recording.active, true);
    assert.equal(st.health.recording.take, st.recording.take.id);
    assert.equal(st.health.recording.writeErrors, 0);
    const metrics = (await httpRequest(svc.port, 'GET', '/metrics')).body;
    assert.match(metrics, /^stagebox_recording 1$/m);
    assert.match(metrics, /^stagebox_recording_seconds [0-9.]+$/m);
    assert.match(metrics, /^stagebox_recording_free_bytes \d+$/m);
    assert.match(metrics, /^stagebox_recording_write_errors_total 0$/m);
    assert.match(metrics, /^stagebox_playback 0$/m);
    const stop = await api(svc.port, 'POST', '/api/recordings/stop', { token: TOKEN });
    assert.equal(stop.status, 200);
    await phone.waitForMessage('source', { pred: (m) => m.recording === false });
    // A scrape reuses the snapshot of one within 50 ms: poll.
    await waitFor(async () => /^stagebox_recording 0$/m.test((await httpRequest(svc.port, 'GET', '/metrics')).body), { timeoutMs: 5000, what: 'stagebox_recording 0 after the stop' });
    const events = (JSON.parse((await httpRequest(svc.port, 'GET', '/api/status')).body) as { events: { kind: string; fields: Record<string, unknown> }[] }).events;
    assert.ok(events.some((e) => e.kind === 'recording-started' && e.fields.take === st.recording.take.id));
    assert.ok(events.some((e) => e.kind === 'recording-stopped' && e.fields.take === st.recording.take.id && e.fields.reason === 'stopped'));
    assert.equal(phone.closeInfo, null);
    phone.close();
    assert.equal((await api(svc.port, 'DELETE', `/api/recordings/${encodeURIComponent(st.recording.take.id)}`, { token: TOKEN })).status, 200);
  });

  test('the WebSocket admin protocol: start, marker, list, stop, delete; refused before auth', async () => {
    const stranger = await StreamClient.open(svc.port, 'rec-stranger', { label: 'stranger' });
    const refused = await stranger.expectError({ type: 'record-start' });
    assert.deepEqual([refused.code, refused.ref], ['forbidden', 'record-start']);
    stranger.close();
    const a = await admin('ws-admin');
    a.send({ type: 'record-start', name: 'Over WS', channels: [1, 2] });
    const started = await a.waitForMessage('recording-started');
    const id = (started.take as TakeView).id;
    await waitFor(async () => (await api(svc.port, 'GET', '/api/recordings', { token: TOKEN })).json<{ recording: { take: TakeView } }>().recording.take.seconds >= 0.3, { timeoutMs: 10_000, what: '0.3 s recorded' });
    a.send({ type: 'record-marker', label: 'here' });
    const mk = await a.waitForMessage('marker-added');
    assert.equal(mk.take, id);
    assert.equal(mk.label, 'here');
    a.send({ type: 'record-start' });
    const twice = await a.waitForMessage('error', { pred: (m) => m.ref === 'record-start' });
    assert.equal(twice.code, 'already-recording');
    a.send({ type: 'record-stop' });
    const stopped = await a.waitForMessage('recording-stopped');
    assert.equal((stopped.take as TakeView).state, 'done');
    a.send({ type: 'list-takes' });
    const list = await a.waitForMessage('takes');
    const listed = (list.takes as TakeView[]).find((t) => t.id === id)!;
    assert.deepEqual((listed.files as { name: string }[]).map((f) => f.name), ['02.wav', '03.wav']);
    a.send({ type: 'delete-take', take: id });
    assert.equal((await a.waitForMessage('take-deleted')).take, id);
    assert.equal(existsSync((started.take as TakeView).dir), false);
    a.close();
  });

  test('bad requests get their reason and change nothing', async () => {
    const count = (): number => readdirSync(takesDir).length;
    const before = count();
    const cases: [string, string, object | string | undefined, number, string, RegExp][] = [
      ['POST', '/api/recordings', { name: 'a/b' }, 400, 'bad-take-name', /^take name "a\/b" looks like a path; allowed: no "\/", "\\" or "\.\.", not starting with "\."$/],
      ['POST', '/api/recordings', { name: '..' }, 400, 'bad-take-name', /looks like a path/],
      ['POST', '/api/recordings', { name: 'x'.repeat(65) }, 400, 'bad-take-name', /has 65 characters; allowed: 1-64/],
      ['POST', '/api/recordings', { channels: [8] }, 400, 'bad-channel', /^channel 8 does not exist; the device has 8 channels \(0-7\)$/],
      ['POST', '/api/recordings', { channels: [1, 1] }, 400, 'bad-channel', /^channel 1 appears more than once$/],
      ['POST', '/api/recordings', { drive: '/etc' }, 400, 'bad-drive', /^drive "\/etc" is not a recording drive; allowed: /],
      ['POST', '/api/recordings', { drive: `${root}/drives/../../etc` }, 400, 'bad-drive', /is not a recording drive/],
      ['POST', '/api/recordings', { channels: 'all' }, 400, 'invalid-message', /^POST \/api\/recordings: channels: got "all"; Expected array, received string$/],
      ['POST', '/api/recordings', { gain: 3 }, 400, 'invalid-message', /unknown field\(s\) "gain"/],
      ['POST', '/api/recordings', '{"name":', 400, 'bad-json', /^request body is not valid JSON/],
      ['POST', '/api/recordings', '[1]', 400, 'invalid-message', /the body is a JSON object; got an array/],
      ['POST', '/api/recordings/stop', undefined, 409, 'not-recording', /^nothing is recording$/],
      ['POST', '/api/recordings/markers', {}, 409, 'not-recording', /^nothing is recording: a marker needs a running take$/],
      ['DELETE', '/api/recordings/2026-01-01_000000_nope', undefined, 404, 'unknown-take', /^no take "2026-01-01_000000_nope" on the recording drives/],
      ['DELETE', '/api/recordings/..%2F..%2Fetc', undefined, 404, 'unknown-take', /^no take "..\/..\/etc"/],
      ['GET', `/api/recordings/${encodeURIComponent(take.id)}/files/..%2Ftake.json`, undefined, 404, 'unknown-take', /has no file "..\/take.json"; its files: 01 Kick.wav, 04 Bass DI.wav, 08.wav$/],
      ['GET', '/api/recordings/%E0%A4%A', undefined, 400, 'bad-path', /malformed percent-encoding/],
      ['PUT', '/api/recordings', {}, 405, 'method-not-allowed', /^method PUT not allowed here; allowed: GET, POST$/],
      ['POST', '/api/playback', { action: 'seek' }, 400, 'invalid-message', /positionS: got nothing; action "seek" needs "positionS"/],
      ['POST', '/api/playback', { action: 'pause' }, 409, 'not-playing', /^nothing to pause: the box is capturing live, no take is playing$/],
      ['POST', '/api/playback', { action: 'play' }, 409, 'not-playing', /^no take is selected for playback; name one with "take"$/],
      ['POST', '/api/playback', { action: 'play', take: 'nope' }, 404, 'unknown-take', /^no take "nope"/],
      ['POST', '/api/playback', { action: 'play', take: take.id, positionS: 99 }, 400, 'bad-seek', new RegExp(`^position 99 s is past the end of take ${take.id} \\(${take.seconds} s\\)`)],
    ];
    for (const [method, p, body, status, code, message] of cases) {
      const r = await api(svc.port, method, p, { token: TOKEN, ...(body !== undefined ? { body } : {}) });
      const what = `${method} ${p} ${JSON.stringify(body)}`;
      assert.equal(r.status, status, `${what}: ${r.body.toString()}`);
      const j = r.json<{ code: string; error: string }>();
      assert.equal(j.code, code, what);
      assert.match(j.error, message, what);
    }
    // A second start while one runs: refused, and the first runs on.
    const first = await api(svc.port, 'POST', '/api/recordings', { token: TOKEN, body: { name: 'First' } });
    assert.equal(first.status, 201);
    const second = await api(svc.port, 'POST', '/api/recordings', { token: TOKEN, body: { name: 'Second' } });
    assert.equal(second.status, 409);
    assert.equal(second.json<{ code: string }>().code, 'already-recording');
    const running = first.json<{ take: TakeView }>().take.id;
    const busy = await api(svc.port, 'DELETE', `/api/recordings/${encodeURIComponent(running)}`, { token: TOKEN });
    assert.deepEqual([busy.status, busy.json<{ code: string }>().code], [409, 'take-busy']);
    const playing = await api(svc.port, 'POST', '/api/playback', { token: TOKEN, body: { action: 'play', take: take.id } });
    assert.deepEqual([playing.status, playing.json<{ code: string }>().code], [409, 'already-recording']);
    const st = (await api(svc.port, 'GET', '/api/recordings', { token: TOKEN })).json<{ recording: { state: string; take: TakeView }; playback: { active: boolean } }>();
    assert.deepEqual([st.recording.state, st.recording.take.id, st.playback.active], ['recording', running, false]);
    await api(svc.port, 'POST', '/api/recordings/stop', { token: TOKEN });
    assert.equal((await api(svc.port, 'DELETE', `/api/recordings/${encodeURIComponent(running)}`, { token: TOKEN })).status, 200);
    assert.equal(count(), before);
  });

  test('markers: a label too long or with a control character is refused; a take keeps at most 1000', async () => {
    const start = await api(svc.port, 'POST', '/api/recordings', { token: TOKEN, body: { name: 'Markers' } });
    assert.equal(start.status, 201);
    const id = start.json<{ take: TakeView }>().take.id;
    for (const [label, message] of [
      ['x'.repeat(65), /^marker label has 65 characters; allowed: 0-64$/],
      ['a\u0007b', /^marker label "a\\u0007b" contains a control character; allowed: printable characters$/],
    ] as const) {
      const r = await api(svc.port, 'POST', '/api/recordings/markers', { token: TOKEN, body: { label } });
      assert.equal(r.status, 400);
      assert.equal(r.json<{ code: string }>().code, 'bad-marker');
      assert.match(r.json<{ error: string }>().error, message);
    }
    for (let i = 0; i < 1000; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, () => api(svc.port, 'POST', '/api/recordings/markers', { token: TOKEN, body: {} })));
      assert.ok(batch.every((r) => r.status === 201), `markers ${i}..${i + 49}`);
    }
    const over = await api(svc.port, 'POST', '/api/recordings/markers', { token: TOKEN, body: { label: 'one more' } });
    assert.deepEqual([over.status, over.json()], [400, { code: 'bad-marker', error: `take ${id} has 1000 markers, the most a take keeps` }]);
    const stop = await api(svc.port, 'POST', '/api/recordings/stop', { token: TOKEN });
    const markers = stop.json<{ take: TakeView }>().take.markers.filter((m) => m.kind === 'marker');
    assert.equal(markers.length, 1000);
    assert.deepEqual([markers[0]!.label, markers[999]!.label], ['Marker 1', 'Marker 1000']);
    assert.equal((await api(svc.port, 'DELETE', `/api/recordings/${encodeURIComponent(id)}`, { token: TOKEN })).status, 200);
  });

  describe('virtual soundcheck', () => {
    let listener: StreamClient;
    /** ch0 sample → positions in the take, for placing a received packet. */
    let take0: Int32Array[];
    let index: Map<number, number[]>;

    before(async () => {
      take0 = [0, 3, 7].map((ch) => soxSamples(path.join(take.dir, ['01 Kick.wav', '04 Bass DI.wav', '08.wav'][[0, 3, 7].indexOf(ch)]!), 24));
      index = new Map();
      take0[0]!.forEach((v, i) => index.set(v, [...(index.get(v) ?? []), i]));
      listener = await admin('listener');
      await listener.subscribe([0, 1, 2, 3, 4, 5, 6, 7], 'pcm24');
      await listener.waitForPackets(20, 10_000);
    });
    after(() => listener.close());

    /** Where in the take a packet starts, or null when it is not the take (silence, live audio). Fails if it is the take but not bit for bit. */
    function placeInTake(p: ParsedPacket): number | null {
      const s = decodePayload('pcm24', p.payload);
      const candidates = index.get(s[0]!) ?? [];
      for (const at of candidates) {
        if (at + p.frames > take0[0]!.length) continue;
        let same = true;
        for (let i = 0; i < p.frames && same; i++) {
          for (let c = 0; c < CH; c++) {
            const k = [0, 3, 7].indexOf(c);
            const want = k < 0 ? 0 : take0[k]![at + i]!;
            if (s[i * CH + c] !== want) {
              same = false;
              break;
            }
          }
        }
        if (same) return at;
      }
      return null;
    }

    async function playback(body: object): Promise<Record<string, unknown>> {
      const from = listener.messages.length;
      listener.send({ type: 'playback', ...body });
      const reply = await listener.waitForMessage('playback-state', { from, timeoutMs: 10_000 });
      return { ...reply, packetsBefore: listener.packetsBeforeMessage[listener.messages.indexOf(reply)] };
    }

    test('a take played as the capture: every client hears it bit for bit, recorded inputs on their numbers, the others silent', async () => {
      const from = listener.messages.length;
      const st = await playback({ action: 'play', take: take.id });
      assert.deepEqual([st.active, st.take, st.state], [true, take.id, 'playing']);
      const src = await listener.waitForMessage('source', { from, pred: (m) => m.kind === 'take' });
      assert.deepEqual([src.device, src.channels, src.format, src.rate, src.state], [`take:${take.id}`, CH, 'S24_3LE', 48000, 'running']);
      const mark = st.packetsBefore as number;
      await listener.waitForPackets(mark + 200, 10_000);
      const after = listener.packetsFrom(mark);
      const placed = after.map(placeInTake);
      const first = placed.findIndex((x) => x !== null);
      assert.ok(first >= 0 && first < 20, `the take is heard within 20 packets of the answer (first at ${first})`);
      assert.equal(placed[first], 0, 'play starts at the beginning');
      // From there on, every packet is the take, in order, without a gap (or a flagged silent period if the drive was late).
      let pos = 0;
      for (let i = first; i < after.length; i++) {
        const at = placed[i];
        if (at === null) {
          assert.ok((after[i]!.flags & 1) === 1 && decodePayload('pcm24', after[i]!.payload).every((v) => v === 0), `packet ${i} is neither the take nor flagged silence`);
          continue;
        }
        assert.equal(at, pos, `packet ${i} plays frame ${at}; ${pos} was next`);
        pos += PF;
      }
      assert.equal(firstSeqGap(after), -1, describeSeqGaps(after));
      assert.equal(listener.closeInfo, null);
    });

    test('seek, loop, pause, and back to live without dropping a client', async () => {
      let st = await playback({ action: 'seek', positionS: 0.5 });
      assert.equal(st.positionS, 0.5);
      let mark = st.packetsBefore as number;
      await listener.waitForPackets(mark + 40, 10_000);
      assert.ok(listener.packetsFrom(mark).map(placeInTake).includes(24000), 'a packet after the seek starts at 0.5 s');

      st = await playback({ action: 'loop', loop: true, startS: 0.2, endS: 0.4 });
      assert.deepEqual(st.loop, { startS: 0.2, endS: 0.4 });
      mark = st.packetsBefore as number;
      await listener.waitForPackets(mark + 400, 10_000);
      const looped = listener.packetsFrom(mark + 40).map(placeInTake).filter((x): x is number => x !== null);
      assert.ok(looped.length > 300, `${looped.length} packets of the take`);
      assert.ok(looped.every((at) => at >= 9600 && at < 19200), 'every packet is inside the loop');
      assert.ok(looped.some((at, i) => i > 0 && at < looped[i - 1]!), 'the loop went round');

      st = await playback({ action: 'pause' });
      assert.equal(st.state, 'paused');
      mark = st.packetsBefore as number;
      await listener.waitForPackets(mark + 60, 10_000);
      const paused = listener.packetsFrom(mark + 20);
      assert.ok(paused.every((p) => decodePayload('pcm24', p.payload).every((v) => v === 0)), 'paused: silence');

      let from = listener.messages.length;
      listener.send({ type: 'playback', action: 'seek', positionS: take.seconds + 1 });
      const err = await listener.waitForMessage('error', { from });
      assert.deepEqual([err.code, err.ref], ['bad-seek', 'playback']);
      assert.match(err.message as string, new RegExp(`^position ${take.seconds + 1} s is past the end of take ${take.id}`));

      from = listener.messages.length;
      st = await playback({ action: 'live' });
      assert.deepEqual([st.active, st.state], [false, 'live']);
      await listener.waitForMessage('source', { from, timeoutMs: 20_000, pred: (m) => m.kind === 'alsa' && m.state === 'running' });
      mark = listener.packets.length;
      await listener.waitForPackets(mark + 100, 10_000);
      const check = checkPackets(listener.packetsFrom(mark + 10), 'S24_3LE', 'pcm24', [0, 1, 2, 3, 4, 5, 6, 7], PF);
      assert.deepEqual(check.problems, [], 'live again: the device, sample for sample');
      assert.equal(listener.closeInfo, null, 'the client stayed connected through it all');
      const events = (JSON.parse((await httpRequest(svc.port, 'GET', '/api/status')).body) as { events: { kind: string; fields: Record<string, unknown> }[] }).events;
      assert.ok(events.some((e) => e.kind === 'playback-started' && e.fields.take === take.id));
      assert.ok(events.some((e) => e.kind === 'playback-stopped' && e.fields.take === take.id && e.fields.reason === 'back to live'));
    });

    test('a corrupt or foreign file chosen for playback: refused with the file and the problem, the stage plays on', async () => {
      const variants: [string, (dir: string) => void, RegExp][] = [
        [
          'foreign',
          (dir) => writeFileSync(path.join(dir, '01 Kick.wav'), buildWav('S16_LE', 1, 44100, Buffer.alloc(4410))),
          /cannot be played: 01 Kick\.wav is 1 ch S16_LE 44100 Hz; its take\.json says 1 ch S24_3LE 48000 Hz$/,
        ],
        ['corrupt', (dir) => writeFileSync(path.join(dir, '04 Bass DI.wav'), Buffer.from('this is not audio at all, just bytes')), /cannot be played: 04 Bass DI\.wav: not a RIFF\/WAVE or RF64 file$/],
        ['gone', (dir) => rmSync(path.join(dir, '08.wav')), /cannot be played: ENOENT/],
        ['bad index', (dir) => writeFileSync(path.join(dir, 'take.json'), '{"version":1,'), /cannot be played: .*take\.json: not valid JSON/],
      ];
      for (const [what, damage, message] of variants) {
        const dir = path.join(takesDir, `${path.basename(take.dir)}-${what.replace(' ', '-')}`);
        cpSync(take.dir, dir, { recursive: true });
        damage(dir);
        const from = listener.messages.length;
        const mark = listener.packets.length;
        const r = await api(svc.port, 'POST', '/api/playback', { token: TOKEN, body: { action: 'play', take: path.basename(dir) } });
        assert.equal(r.status, 422, `${what}: ${r.body.toString()}`);
        assert.equal(r.json<{ code: string }>().code, 'bad-take');
        assert.match(r.json<{ error: string }>().error, message, what);
        const st = (await api(svc.port, 'GET', '/api/playback', { token: TOKEN })).json<{ active: boolean }>();
        assert.equal(st.active, false, what);
        await listener.waitForPackets(mark + 30, 10_000);
        assert.deepEqual(checkPackets(listener.packetsFrom(mark), 'S24_3LE', 'pcm24', [0, 1, 2, 3, 4, 5, 6, 7], PF).problems, [], `${what}: the stage plays on`);
        assert.ok(!listener.messages.slice(from).some((m) => m.type === 'source'), `${what}: the capture did not change`);
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
