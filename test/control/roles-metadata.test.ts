import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { StreamClient, firstSeqGap } from '../helpers/stream-client';
import { getStatus } from '../helpers/http-client';
import { waitFor } from '../helpers/wait';
import { FLAG_MIX, type ParsedPacket } from '../../src/protocol';
import { TEST_SIGNAL_AMPLITUDE } from '../../src/capture/test-signal-source';

/**
 * Roles, channel metadata, groups, stereo pairs, the box-wide limit and
 * presets, through the real service and its built-in test signal (every
 * channel a sine of its own frequency at TEST_SIGNAL_AMPLITUDE).
 */

const TOKEN = 'engineer-PIN-90210';
const CAPTURE = { device: 'test-signal', channels: 8, rate: 48000, periodFrames: 128 };
/** The test signal repeats every 4096 frames = 32 packets: RMS windows are multiples of it. */
const WINDOW = 32;
const TONE_RMS = TEST_SIGNAL_AMPLITUDE / Math.SQRT2;
const db = (x: number): number => 20 * Math.log10(x);

let svc: ServiceProcess;
before(async () => {
  svc = await startService({ label: 'roles', config: { capture: CAPTURE, admin: { token: TOKEN, maxFailures: 3, lockoutS: 60 } } });
});
after(() => stopAllServices());

function rms(packets: ParsedPacket[]): number[] {
  const sum = [0, 0];
  let frames = 0;
  for (const p of packets) {
    assert.equal(p.flags & FLAG_MIX, FLAG_MIX);
    const s = new Int16Array(new Uint8Array(p.payload).buffer);
    for (let i = 0; i < s.length; i++) sum[i % 2]! += (s[i]! / 32768) ** 2;
    frames += p.frames;
  }
  return sum.map((x) => Math.sqrt(x / frames));
}

/** Packets after the next "mixing" message (skipping its ramp period). */
async function packetsAfterMixing(c: StreamClient, from: number, n = 2 * WINDOW): Promise<ParsedPacket[]> {
  await c.waitForMessage('mixing', { from });
  const start = c.packets.length + 4;
  await c.waitForPackets(start + n, 10000);
  return c.packets.slice(start, start + n);
}

/** Opens a client and waits for the metadata that follows its welcome, so later waits do not catch that one. */
async function open(port: number, clientId: string): Promise<StreamClient> {
  const c = await StreamClient.open(port, clientId);
  await c.waitForMessage('metadata');
  return c;
}

async function admin(label: string): Promise<StreamClient> {
  const a = await open(svc.port, label);
  const from = a.messages.length;
  a.send({ type: 'auth', token: TOKEN });
  await a.waitForMessage('auth-ok', { from });
  return a;
}

async function setMetadata(a: StreamClient, channels: object[]): Promise<void> {
  const from = a.messages.length;
  a.send({ type: 'set-metadata', channels });
  await a.waitForMessage('metadata', { from });
}

describe('roles', () => {
  test('a musician cannot change another client\'s mix, set metadata, the output limit or list clients; nothing changes for the other', async () => {
    const victim = await open(svc.port, 'role-victim');
    const from = victim.messages.length;
    victim.send({ type: 'mix', channels: [{ ch: 0, gainDb: -6 }] });
    await victim.waitForMessage('mixing', { from });
    const musician = await open(svc.port, 'role-musician');
    for (const msg of [
      { type: 'mix', client: 'role-victim', channels: [{ ch: 1, gainDb: 10 }] },
      { type: 'set-metadata', channels: [{ ch: 0, name: 'Hacked' }] },
      { type: 'set-output-limit', maxOutputDb: -60 },
      { type: 'list-clients' },
      { type: 'get-mix', client: 'role-victim' },
    ]) {
      const err = await musician.expectError(msg);
      assert.equal(err.code, 'forbidden', `${msg.type}: ${JSON.stringify(err)}`);
      assert.match(String(err.message), /admin/);
    }
    const got = await (async () => {
      const f = victim.messages.length;
      victim.send({ type: 'get-mix' });
      return victim.waitForMessage('mix-state', { from: f });
    })();
    assert.deepEqual((got.mix as { channels: unknown[] }).channels, [{ ch: 0, gainDb: -6, pan: 0, mute: false, solo: false }]);
    assert.equal(victim.messages.slice(from).filter((m) => m.type === 'mixing').length, 1, 'the victim saw no mix change');
    assert.equal(victim.messages.slice(from).filter((m) => m.type === 'metadata').length, 0, 'no metadata change was pushed');
    victim.close();
    musician.close();
  });

  test('the admin changes a musician\'s mix: the musician hears it and is told who changed it', async () => {
    const m = await open(svc.port, 'role-helped');
    let from = m.messages.length;
    m.send({ type: 'mix', channels: [{ ch: 0, gainDb: 0, pan: -1 }] });
    const before = rms(await packetsAfterMixing(m, from));
    const a = await admin('role-admin');
    from = m.messages.length;
    const aFrom = a.messages.length;
    a.send({ type: 'mix', client: 'role-helped', channels: [{ ch: 0, gainDb: -6, pan: -1 }] });
    const afterRms = rms(await packetsAfterMixing(m, from));
    const told = m.messages.slice(from).find((x) => x.type === 'mixing')!;
    assert.equal(told.by, 'admin');
    const ack = await a.waitForMessage('mixing', { from: aFrom });
    assert.equal(ack.client, 'role-helped');
    assert.equal(ack.connected, true);
    assert.ok(Math.abs(db(afterRms[0]!) - db(before[0]!) + 6) < 0.05, `left moved ${db(afterRms[0]!) - db(before[0]!)} dB, expected -6`);
    // list-clients shows both, the admin flagged.
    const lf = a.messages.length;
    a.send({ type: 'list-clients' });
    const list = await a.waitForMessage('clients', { from: lf });
    const connected = list.connected as { clientId: string; admin: boolean; mode: string }[];
    assert.deepEqual(connected.find((c) => c.clientId === 'role-helped')?.admin, false);
    assert.equal(connected.find((c) => c.clientId === 'role-helped')?.mode, 'mix');
    assert.equal(connected.find((c) => c.clientId === 'role-admin')?.admin, true);
    m.close();
    a.close();
  });

  test('the admin can change an offline client\'s saved mix, and an unknown client is refused', async () => {
    const m = await open(svc.port, 'role-offline');
    const from = m.messages.length;
    m.send({ type: 'mix', channels: [{ ch: 1, gainDb: -3 }] });
    await m.waitForMessage('mixing', { from });
    m.close();
    await waitFor(async () => ((await getStatus(svc.port)) as unknown as { clients: { clientId: string }[] }).clients.every((c) => c.clientId !== 'role-offline'), { timeoutMs: 3000, what: 'client gone' });
    const a = await admin('role-admin-2');
    const af = a.messages.length;
    a.send({ type: 'mix', client: 'role-offline', channels: [{ ch: 1, gainDb: -12 }] });
    const ack = await a.waitForMessage('mixing', { from: af });
    assert.equal(ack.connected, false);
    const err = await a.expectError({ type: 'mix', client: 'nobody-ever', channels: [] });
    assert.equal(err.code, 'unknown-client');
    const back = await open(svc.port, 'role-offline');
    const mixing = await back.waitForMessage('mixing');
    assert.deepEqual((mixing.mix as { channels: { gainDb: number }[] }).channels[0]!.gainDb, -12);
    back.close();
    a.close();
  });
});

describe('admin credentials', () => {
  test('wrong tokens are refused, then the address is locked out even for the right one; the token never reaches a log or status', async () => {
    const own = await startService({ label: 'auth-lockout', config: { capture: CAPTURE, admin: { token: TOKEN, maxFailures: 3, lockoutS: 60 } } });
    const first = await open(own.port, 'auth-guesser');
    const e1 = await first.expectError({ type: 'auth', token: 'wrong-1' });
    assert.equal(e1.code, 'bad-credentials');
    assert.match(String(e1.message), /2 attempt\(s\) left/);
    first.close();
    // Reconnecting (a new source port) does not reset the count: it is per IP address.
    const c = await open(own.port, 'auth-guesser-2');
    const e2 = await c.expectError({ type: 'auth', token: 'wrong-2' });
    assert.match(String(e2.message), /1 attempt\(s\) left/);
    const e3 = await c.expectError({ type: 'auth', token: 'wrong-3' });
    assert.match(String(e3.message), /locked out for 60 s/);
    const e4 = await c.expectError({ type: 'auth', token: TOKEN });
    assert.equal(e4.code, 'auth-locked');
    const eType = await c.expectError({ type: 'auth', token: { secret: TOKEN } });
    assert.equal(eType.code, 'invalid-message');
    // The client is still a musician and still works.
    const forbidden = await c.expectError({ type: 'list-clients' });
    assert.equal(forbidden.code, 'forbidden');
    await c.subscribe([0], 'pcm16');
    await c.waitForPackets(5);
    const status = JSON.stringify(await getStatus(own.port));
    const replies = JSON.stringify([...first.messages, ...c.messages]);
    assert.equal(c.messages.filter((m) => m.type === 'error').length, 5);
    const stopped = await own.stop();
    assert.equal(stopped.code, 0);
    const log = JSON.stringify(own.logs) + own.stderr + readFileSync(own.configPath, 'utf8').replace(TOKEN, '');
    for (const where of [status, replies, log]) assert.ok(!where.includes(TOKEN), 'the token leaked');
    assert.ok(own.logs.some((l) => l.msg === 'admin authentication refused' && l.code === 'auth-locked'), 'refusals are logged (without the token)');
    c.close();
  });

  test('with no admin token configured, auth gets admin-disabled', async () => {
    const own = await startService({ label: 'auth-disabled', config: { capture: CAPTURE } });
    const c = await open(own.port, 'auth-nobody');
    const err = await c.expectError({ type: 'auth', token: 'anything' });
    assert.equal(err.code, 'admin-disabled');
    c.close();
    await own.stop();
  });
});

describe('channel metadata', () => {
  test('set by the admin, pushed to every client, survives a restart, and bad metadata changes nothing', async () => {
    const own = await startService({ label: 'meta-1', config: { capture: CAPTURE, admin: { token: TOKEN } } });
    const listener = await open(own.port, 'meta-listener');
    const first = await listener.waitForMessage('metadata');
    assert.deepEqual(first, { type: 'metadata', channels: [], groups: [], maxOutputDb: null }, 'metadata follows welcome');
    const a = await open(own.port, 'meta-admin');
    let f = a.messages.length;
    a.send({ type: 'auth', token: TOKEN });
    await a.waitForMessage('auth-ok', { from: f });
    const lf = listener.messages.length;
    await setMetadata(a, [
      { ch: 0, name: 'Kick', color: '#E03030', group: 'drums' },
      { ch: 1, name: 'Snare', group: 'drums' },
      { ch: 4, name: 'Keys', link: 5 },
    ]);
    const pushed = await listener.waitForMessage('metadata', { from: lf });
    assert.deepEqual(pushed.groups, ['drums']);
    assert.deepEqual(pushed.channels, [
      { ch: 0, name: 'Kick', color: '#e03030', group: 'drums' },
      { ch: 1, name: 'Snare', group: 'drums' },
      { ch: 4, name: 'Keys', link: 5 },
      { ch: 5, link: 4 },
    ]);
    for (const [bad, re] of [
      [[{ ch: 9 }], /channel 9 does not exist; the device has 8 channels/],
      [[{ ch: 2, link: 3, group: 'a' }, { ch: 3, group: 'b' }], /stereo pair but in groups/],
    ] as const) {
      const err = await a.expectError({ type: 'set-metadata', channels: bad });
      assert.equal(err.code, 'bad-metadata');
      assert.match(String(err.message), re);
    }
    const bad = await a.expectError({ type: 'set-metadata', channels: [{ ch: 0, color: 'red' }] });
    assert.equal(bad.code, 'invalid-message');
    assert.equal(listener.messages.slice(lf).filter((m) => m.type === 'metadata').length, 1, 'refused metadata is not pushed');
    await waitFor(async () => ((await getStatus(own.port)) as unknown as { state: { writes: number } }).state.writes >= 1, { timeoutMs: 5000, what: 'state written' });
    const dir = JSON.parse(readFileSync(own.configPath, 'utf8')).state.dir as string;
    await own.stop();
    listener.close();
    a.close();
    const again = await startService({ label: 'meta-2', config: { capture: CAPTURE, state: { dir } } });
    const c = await open(again.port, 'meta-late');
    const m = c.messages.find((x) => x.type === 'metadata')!;
    assert.deepEqual(m.channels, pushed.channels);
    c.close();
    await again.stop();
  });

  test('a group fader moves its members together, a stereo pair is one strip, and a metadata change re-resolves a live mix', async () => {
    const a = await admin('group-admin');
    await setMetadata(a, [
      { ch: 0, group: 'drums' },
      { ch: 1, group: 'drums' },
      { ch: 2, link: 3 },
    ]);
    const m = await open(svc.port, 'group-musician');
    let from = m.messages.length;
    // Channel 0 alone, hard left, so the left side measures it alone.
    m.send({ type: 'mix', channels: [{ ch: 0, gainDb: 0, pan: -1 }], groups: [{ name: 'drums', gainDb: 0 }] });
    const flat = rms(await packetsAfterMixing(m, from));
    assert.ok(Math.abs(db(flat[0]!) - db(TONE_RMS)) < 0.02, `channel 0 at ${db(flat[0]!)} dBFS, tone ${db(TONE_RMS)}`);
    from = m.messages.length;
    m.send({ type: 'mix', channels: [{ ch: 0, gainDb: 0, pan: -1 }], groups: [{ name: 'drums', gainDb: -6 }] });
    const down = rms(await packetsAfterMixing(m, from));
    assert.ok(Math.abs(db(down[0]!) - db(flat[0]!) + 6) < 0.02, `drums -6 moved channel 0 by ${db(down[0]!) - db(flat[0]!)} dB`);
    // The pair 2/3 through channel 2: left side = ch 2, right side = ch 3, each at the tone level.
    from = m.messages.length;
    m.send({ type: 'mix', channels: [{ ch: 2, gainDb: 0 }] });
    const pair = rms(await packetsAfterMixing(m, from));
    for (const side of pair) assert.ok(Math.abs(db(side) - db(TONE_RMS)) < 0.02, `pair side at ${db(side)} dBFS`);
    const err = await m.expectError({ type: 'mix', channels: [{ ch: 3 }] });
    assert.equal(err.code, 'bad-channel');
    const err2 = await m.expectError({ type: 'mix', channels: [], groups: [{ name: 'brass' }] });
    assert.equal(err2.code, 'bad-group');
    // Unlinking re-resolves the live mix: channel 2 alone, centred (−3.01 dB per side), channel 3 silent.
    from = m.packets.length;
    await setMetadata(a, [{ ch: 0, group: 'drums' }, { ch: 1, group: 'drums' }]);
    await m.waitForPackets(from + 8 + 2 * WINDOW, 10000);
    const unlinked = rms(m.packets.slice(from + 8, from + 8 + 2 * WINDOW));
    for (const side of unlinked) assert.ok(Math.abs(db(side) - db(TONE_RMS) + 3.0103) < 0.03, `unlinked side at ${db(side)} dBFS`);
    await setMetadata(a, []);
    m.close();
    a.close();
  });

  test('the box-wide output limit holds a loud mix at its level and is lifted again', async () => {
    const m = await open(svc.port, 'limit-musician');
    let from = m.messages.length;
    // +10 dB on a -12 dBFS tone peaks near -2 dBFS, under the client's own -1 dBFS ceiling.
    m.send({ type: 'mix', channels: [{ ch: 0, gainDb: 10, pan: -1 }] });
    const loud = await packetsAfterMixing(m, from);
    const peak = (ps: ParsedPacket[]) => Math.max(...ps.flatMap((p) => Array.from(new Int16Array(new Uint8Array(p.payload).buffer), (s) => Math.abs(s) / 32768)));
    assert.ok(db(peak(loud)) > -3, `peak ${db(peak(loud))} dBFS`);
    const a = await admin('limit-admin');
    from = m.messages.length;
    a.send({ type: 'set-output-limit', maxOutputDb: -20 });
    const told = await m.waitForMessage('metadata', { from });
    assert.equal(told.maxOutputDb, -20);
    const start = m.packets.length + 40; // the limiter's release and the new ceiling settle within a few periods
    await m.waitForPackets(start + WINDOW, 10000);
    const held = peak(m.packets.slice(start, start + WINDOW));
    assert.ok(db(held) <= -20 + 0.1, `peak ${db(held)} dBFS over the -20 dBFS box limit`);
    assert.ok(db(held) > -23, `peak ${db(held)} dBFS: the limiter should hold near the ceiling, not mute`);
    const st = (await getStatus(svc.port)) as unknown as { mixing: { maxOutputDb: number }; clients: { clientId: string; limiterReductionDb: number }[] };
    assert.equal(st.mixing.maxOutputDb, -20, 'status shows the box-wide limit');
    assert.ok(st.clients.find((c) => c.clientId === 'limit-musician')!.limiterReductionDb > 10);
    const lifted = m.messages.length;
    a.send({ type: 'set-output-limit', maxOutputDb: null });
    await m.waitForMessage('metadata', { from: lifted, pred: (x) => x.maxOutputDb === null });
    m.close();
    a.close();
  });
});

describe('presets', () => {
  test('save, change, load back, list and delete; presets survive a restart', async () => {
    const own = await startService({ label: 'presets-1', config: { capture: CAPTURE } });
    const c = await open(own.port, 'preset-phone');
    const noMix = await c.expectError({ type: 'save-preset', name: 'Ballad' });
    assert.equal(noMix.code, 'no-mix');
    let from = c.messages.length;
    const ballad = { codec: 'pcm16', output: 'stereo', masterDb: -2, channels: [{ ch: 0, gainDb: -4, pan: -0.5, mute: false, solo: false }], groups: [], limiter: { enabled: true, ceilingDb: -3 } };
    c.send({ type: 'mix', ...ballad });
    await c.waitForMessage('mixing', { from });
    from = c.messages.length;
    c.send({ type: 'save-preset', name: 'Ballad' });
    const saved = await c.waitForMessage('preset-saved', { from });
    assert.deepEqual(saved.names, ['Ballad']);
    from = c.messages.length;
    c.send({ type: 'mix', channels: [{ ch: 1, gainDb: 3 }] });
    await c.waitForMessage('mixing', { from });
    from = c.messages.length;
    c.send({ type: 'load-preset', name: 'Ballad' });
    await c.waitForMessage('preset-loaded', { from });
    const mixing = await c.waitForMessage('mixing', { from });
    assert.deepEqual(mixing.mix, ballad);
    const dir = JSON.parse(readFileSync(own.configPath, 'utf8')).state.dir as string;
    await waitFor(async () => ((await getStatus(own.port)) as unknown as { state: { writes: number } }).state.writes >= 1, { timeoutMs: 5000, what: 'state written' });
    c.close();
    await own.stop();
    const again = await startService({ label: 'presets-2', config: { capture: CAPTURE, state: { dir } } });
    const d = await open(again.port, 'preset-phone');
    from = d.messages.length;
    d.send({ type: 'list-presets' });
    assert.deepEqual((await d.waitForMessage('presets', { from })).names, ['Ballad']);
    from = d.messages.length;
    d.send({ type: 'delete-preset', name: 'Ballad' });
    assert.deepEqual((await d.waitForMessage('preset-deleted', { from })).names, []);
    const gone = await d.expectError({ type: 'load-preset', name: 'Ballad' });
    assert.equal(gone.code, 'unknown-preset');
    d.close();
    await again.stop();
  });

  test('empty, huge and path-like preset names are refused with bad-preset-name; the stream and another client carry on', async () => {
    const other = await open(svc.port, 'preset-bystander');
    await other.subscribe([0, 1], 'pcm16');
    const c = await open(svc.port, 'preset-bad');
    const from = c.messages.length;
    c.send({ type: 'mix', channels: [{ ch: 0 }] });
    await c.waitForMessage('mixing', { from });
    const startOther = other.packets.length;
    for (const name of ['', '   ', 'x'.repeat(5000), '../../../etc/passwd', 'a/b', 'C:\\mixes', '.hidden', 'bell\u0007']) {
      for (const type of ['save-preset', 'load-preset', 'delete-preset']) {
        const err = await c.expectError({ type, name });
        assert.equal(err.code, 'bad-preset-name', `${type} ${JSON.stringify(name.slice(0, 20))}: ${JSON.stringify(err)}`);
        assert.ok(String(err.message).length < 200);
      }
    }
    // Back on raw channels the client has no mix to save.
    await c.subscribe([0], 'pcm16');
    assert.equal((await c.expectError({ type: 'save-preset', name: 'Fine' })).code, 'no-mix');
    const wrongType = await c.expectError({ type: 'save-preset', name: 42 });
    assert.equal(wrongType.code, 'invalid-message');
    const lf = c.messages.length;
    c.send({ type: 'list-presets' });
    assert.deepEqual((await c.waitForMessage('presets', { from: lf })).names, []);
    const n = c.packets.length;
    await c.waitForPackets(n + 10);
    await other.waitForPackets(startOther + 40);
    assert.equal(firstSeqGap(other.packets.slice(startOther)), -1, 'the bystander has no gap');
    c.close();
    other.close();
  });
});
