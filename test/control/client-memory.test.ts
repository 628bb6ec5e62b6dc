import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { StreamClient } from '../helpers/stream-client';
import { getStatus } from '../helpers/http-client';
import { waitFor } from '../helpers/wait';
import { FLAG_MIX } from '../../src/protocol';
import { decodeState } from '../../src/state/state-store';

/**
 * "RF mode": a client's channels or mix come back when the same clientId says
 * hello again — after a reconnect, a service restart, or a SIGKILL.
 */

after(() => stopAllServices());

const CAPTURE = { device: 'test-signal', channels: 8, rate: 48000, periodFrames: 128 };
const MIX = { type: 'mix', codec: 'pcm24', output: 'stereo', channels: [{ ch: 2, gainDb: -4, pan: 0.25 }, { ch: 5, gainDb: null, pan: 0, mute: true }] };

function newStateDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'stagebox-memory-'));
}

async function start(label: string, stateDir: string): Promise<ServiceProcess> {
  return startService({ label, config: { capture: CAPTURE, state: { dir: stateDir } } });
}

function welcomeOf(c: StreamClient): Record<string, unknown> {
  const w = c.messages.find((m) => m.type === 'welcome');
  assert.ok(w, 'no welcome');
  return w as Record<string, unknown>;
}

/** Waits until the service has written its state at least `n` times. */
async function waitForWrites(svc: ServiceProcess, n: number): Promise<void> {
  let last: unknown;
  await waitFor(
    async () => {
      const st = (await getStatus(svc.port)) as unknown as { state: { writes: number } };
      last = st.state;
      return st.state.writes >= n;
    },
    { timeoutMs: 5000, what: `${n} state write(s)`, describe: () => JSON.stringify(last) },
  );
}

describe('client state restored on reconnect', () => {
  test('a client that reconnects with its clientId gets its channels and codec back without asking', async () => {
    const svc = await start('memory-reconnect', newStateDir());
    const a = await StreamClient.open(svc.port, 'phone-anna');
    const asked = await a.subscribe([3, 1], 'pcm24');
    assert.equal(asked.restored, undefined, 'an answer to a subscribe is not marked restored');
    assert.equal(welcomeOf(a).restored, null, 'a new client has nothing to restore');
    a.close();
    await a.waitForClose();
    const b = await StreamClient.open(svc.port, 'phone-anna');
    assert.deepEqual(welcomeOf(b).restored, { mode: 'channels', codec: 'pcm24' });
    const sub = await b.waitForMessage('subscribed');
    assert.deepEqual(sub.channels, [3, 1]);
    assert.equal(sub.restored, true, 'the box says it answers no request');
    await b.waitForPackets(5);
    assert.deepEqual(b.packets[4]!.channels, [3, 1]);
    assert.equal(b.packets[4]!.codec, 'pcm24');
    b.close();
  });

  test('a mix survives a service restart', async () => {
    const dir = newStateDir();
    const svc = await start('memory-restart-1', dir);
    const a = await StreamClient.open(svc.port, 'phone-ben');
    a.send(MIX);
    assert.equal((await a.waitForMessage('mixing')).restored, undefined, 'an answer to a mix is not marked restored');
    await waitForWrites(svc, 1);
    const r = await svc.stop();
    assert.equal(r.code, 0);
    const svc2 = await start('memory-restart-2', dir);
    const b = await StreamClient.open(svc2.port, 'phone-ben');
    assert.deepEqual(welcomeOf(b).restored, { mode: 'mix', codec: 'pcm24' });
    const mixing = await b.waitForMessage('mixing');
    assert.equal(mixing.codec, 'pcm24');
    assert.equal(mixing.restored, true);
    await b.waitForPackets(5);
    const p = b.packets[4]!;
    assert.equal(p.flags & FLAG_MIX, FLAG_MIX);
    assert.equal(p.codec, 'pcm24');
    // Not just the first sample: the tone crosses zero exactly on every 1024th frame.
    const payload = Buffer.from(p.payload);
    let peak = 0;
    for (let i = 0; i + 3 <= payload.length; i += 3) peak = Math.max(peak, Math.abs(payload.readIntLE(i, 3)));
    assert.ok(peak > 1 << 16, `the restored mix is audible (peak ${peak} of 2^23)`);
    b.close();
  });

  test('a fader move still in the 50 ms coalescing window when the phone drops is the mix restored on its next hello', async () => {
    const dir = newStateDir();
    const svc = await start('memory-coalesced-drop', dir);
    const a = await StreamClient.open(svc.port, 'phone-dora');
    const mix = (gainDb: number): object => ({ type: 'mix', codec: 'pcm16', output: 'mono', channels: [{ ch: 1, gainDb }] });
    // The first is applied at once; the second waits for the window, and the close frame right behind it on the
    // same TCP stream arrives long before the window ends.
    a.send(mix(-30));
    a.send(mix(-6));
    a.close();
    await a.waitForClose();
    // When the window ends the box keeps the pending move for the phone that left; its state file shows it.
    // (A hello before then would find a connection-less pending mix and, rightly, not let it override.)
    let saved: unknown;
    await waitFor(
      () => {
        const file = path.join(dir, 'state.json');
        const decoded = existsSync(file) ? decodeState(readFileSync(file)) : null;
        saved = decoded?.ok ? decoded.doc.clients['phone-dora']?.mix?.channels['1']?.gainDb : decoded;
        return saved === -6;
      },
      { timeoutMs: 5000, what: 'the coalesced move (-6 dB) saved for phone-dora', describe: () => JSON.stringify(saved) },
    );
    const b = await StreamClient.open(svc.port, 'phone-dora');
    const restored = await b.waitForMessage('mixing');
    assert.equal(restored.restored, true);
    assert.equal((restored.mix as { channels: { gainDb: number }[] }).channels[0]!.gainDb, -6, 'the last fader move, not the last one answered');
    b.close();
  });

  test('a mix saved just before a SIGKILL is there after the restart', async () => {
    const dir = newStateDir();
    const svc = await start('memory-kill-1', dir);
    const a = await StreamClient.open(svc.port, 'phone-cleo');
    a.send({ ...MIX, codec: 'pcm16' });
    await a.waitForMessage('mixing');
    await waitForWrites(svc, 1);
    svc.proc.kill('SIGKILL');
    await svc.waitForExit(5000);
    const svc2 = await start('memory-kill-2', dir);
    const b = await StreamClient.open(svc2.port, 'phone-cleo');
    assert.deepEqual(welcomeOf(b).restored, { mode: 'mix', codec: 'pcm16' });
    b.close();
  });

  test('a saved Opus mix after a restart at 44.1 kHz is reported as bad-codec, not restored, and the service keeps running', async () => {
    const dir = newStateDir();
    const svc = await start('memory-opus-1', dir);
    const a = await StreamClient.open(svc.port, 'phone-opus');
    a.send({ type: 'mix', codec: 'opus', opus: { frameMs: 5 }, channels: [{ ch: 0 }] });
    await a.waitForMessage('mixing');
    await waitForWrites(svc, 1);
    await svc.stop();
    const svc2 = await startService({ label: 'memory-opus-2', config: { capture: { ...CAPTURE, rate: 44100 }, state: { dir } } });
    const b = await StreamClient.open(svc2.port, 'phone-opus');
    const err = await b.waitForMessage('error');
    assert.equal(err.code, 'bad-codec');
    assert.match(String(err.message), /^saved mix not restored: codec "opus" needs a capture rate of 48000 Hz/);
    // The client can still choose something that works.
    await b.subscribe([0], 'pcm16');
    await b.waitForPackets(5);
    b.close();
  });

  test('a corrupt state file is moved aside, logged, and the service starts with defaults', async () => {
    const dir = newStateDir();
    writeFileSync(path.join(dir, 'state.json'), '{"sha256":"00","body":"{\\"version\\":1');
    const svc = await start('memory-corrupt', dir);
    assert.ok(
      readdirSync(dir).some((f) => f.startsWith('state.json.corrupt-')),
      `no state.json.corrupt-* in ${JSON.stringify(readdirSync(dir))}`,
    );
    assert.ok(svc.logs.some((l) => /corrupt|moved aside|set aside/i.test(String(l.msg))), `no log line about the corrupt file: ${svc.describe()}`);
    const c = await StreamClient.open(svc.port, 'after-corruption');
    assert.equal(welcomeOf(c).restored, null);
    await c.subscribe([0], 'pcm16');
    await c.waitForPackets(5);
    c.close();
  });

  test('an unusable state dir is logged and the service streams on without saving', async () => {
    const file = path.join(newStateDir(), 'not-a-dir');
    writeFileSync(file, 'x');
    const svc = await start('memory-unusable', path.join(file, 'state'));
    assert.ok(svc.logs.some((l) => /state dir unusable/.test(String(l.msg))), svc.describe());
    const st = (await getStatus(svc.port)) as unknown as { state: { saving: boolean; error: string; failure: unknown } };
    assert.equal(st.state.saving, false);
    assert.match(st.state.error, /ENOTDIR/, 'the errno');
    assert.ok(st.state.error.includes(file), `the path: ${st.state.error}`);
    assert.equal(st.state.failure, null, 'no write was attempted');
    const c = await StreamClient.open(svc.port, 'no-memory');
    await c.subscribe([1], 'pcm16');
    await c.waitForPackets(5);
    c.close();
  });
});
