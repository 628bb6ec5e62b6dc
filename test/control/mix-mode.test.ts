import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { StreamClient } from '../helpers/stream-client';
import { getStatus } from '../helpers/http-client';
import { waitFor } from '../helpers/wait';
import { FLAG_MIX, type ParsedPacket } from '../../src/protocol';
import { TEST_SIGNAL_AMPLITUDE } from '../../src/capture/test-signal-source';

/**
 * Personal mixes rendered on the box, through the real service and its
 * built-in test signal (every channel a -12 dBFS sine of its own frequency).
 */

let svc: ServiceProcess;
before(async () => {
  svc = await startService({ label: 'mix', config: { capture: { device: 'test-signal', channels: 8, rate: 48000, periodFrames: 128 } } });
});
after(() => stopAllServices());

const TONE_RMS = TEST_SIGNAL_AMPLITUDE / Math.SQRT2;
/** The test signal repeats every 4096 frames = 32 packets: RMS windows are whole multiples of it. */
const WINDOW = 32;

/** RMS per output channel (full scale 1.0) over pcm16 mix packets. */
function rms(packets: ParsedPacket[], outChannels: number): number[] {
  const sum = new Array<number>(outChannels).fill(0);
  let frames = 0;
  for (const p of packets) {
    assert.equal(p.flags & FLAG_MIX, FLAG_MIX, 'mix packets carry the mix flag');
    assert.deepEqual(p.channels, outChannels === 2 ? [0, 1] : [0]);
    const s = new Int16Array(new Uint8Array(p.payload).buffer);
    for (let i = 0; i < s.length; i++) sum[i % outChannels]! += (s[i]! / 32768) ** 2;
    frames += p.frames;
  }
  return sum.map((x) => Math.sqrt(x / frames));
}

const db = (x: number): number => 20 * Math.log10(x);

/** Sends a mix, waits for "mixing", skips the ramp period, returns the next `n` packets. */
async function mixAndCollect(c: StreamClient, mix: object, n = 4 * WINDOW): Promise<ParsedPacket[]> {
  const from = c.messages.length;
  c.send({ type: 'mix', ...mix });
  await c.waitForMessage('mixing', { from });
  const start = c.packets.length + 4;
  await c.waitForPackets(start + n, 10000);
  return c.packets.slice(start, start + n);
}

describe('personal mix mode', () => {
  test('channel 0 hard left at 0 dB comes out at the tone level on the left and silent on the right', async () => {
    const c = await StreamClient.open(svc.port, 'hard-left');
    const [l, r] = rms(await mixAndCollect(c, { channels: [{ ch: 0, gainDb: 0, pan: -1 }] }), 2);
    assert.ok(Math.abs(db(l!) - db(TONE_RMS)) < 0.01, `left ${db(l!)} dBFS, expected ${db(TONE_RMS)}`);
    assert.equal(r, 0);
    c.close();
  });

  test('-6 dB lowers the level by 6 dB within 0.01 dB, and a centred channel is -3.01 dB per side', async () => {
    const c = await StreamClient.open(svc.port, 'minus6');
    const [l] = rms(await mixAndCollect(c, { channels: [{ ch: 1, gainDb: -6, pan: -1 }] }), 2);
    assert.ok(Math.abs(db(l!) - (db(TONE_RMS) - 6)) < 0.01, `left ${db(l!)} dBFS`);
    const [cl, cr] = rms(await mixAndCollect(c, { channels: [{ ch: 1, gainDb: 0, pan: 0 }] }), 2);
    assert.ok(Math.abs(db(cl!) - (db(TONE_RMS) - 3.0103)) < 0.01, `centre left ${db(cl!)}`);
    assert.ok(Math.abs(db(cr!) - db(cl!)) < 0.001, 'centre: both sides equal');
    c.close();
  });

  test('mute silences a channel, solo leaves only the soloed one, mono output is one channel at unity', async () => {
    const c = await StreamClient.open(svc.port, 'mute-solo');
    const [ml] = rms(await mixAndCollect(c, { channels: [{ ch: 2, pan: -1, mute: true }] }), 2);
    assert.equal(ml, 0);
    const solo = await mixAndCollect(c, { channels: [{ ch: 2, pan: -1, solo: true }, { ch: 3, pan: 1 }] });
    const [sl, sr] = rms(solo, 2);
    assert.ok(Math.abs(db(sl!) - db(TONE_RMS)) < 0.01);
    assert.equal(sr, 0, 'the unsoloed channel is silent');
    const [m] = rms(await mixAndCollect(c, { output: 'mono', channels: [{ ch: 2, pan: 1 }] }), 1);
    assert.ok(Math.abs(db(m!) - db(TONE_RMS)) < 0.01, `mono ${db(m!)}`);
    c.close();
  });

  test('two clients with the same mix share one render; a different mix is a second one', async () => {
    const a = await StreamClient.open(svc.port, 'same-a');
    const b = await StreamClient.open(svc.port, 'same-b');
    const mix = { channels: [{ ch: 4, gainDb: -3, pan: 0.5 }] };
    await mixAndCollect(a, mix, 10);
    await mixAndCollect(b, mix, 10);
    const st = await getStatus(svc.port);
    const pool = (st as unknown as { pool: { mixes: number } }).pool;
    assert.equal(pool.mixes, 1, JSON.stringify(pool));
    await mixAndCollect(b, { channels: [{ ch: 4, gainDb: -4, pan: 0.5 }] }, 10);
    assert.equal((await getStatus(svc.port) as unknown as { pool: { mixes: number } }).pool.mixes, 2);
    a.close();
    b.close();
  });

  test('bad mix input gets a clear error and leaves the sender\'s and another client\'s mix unchanged', async () => {
    const other = await StreamClient.open(svc.port, 'bystander');
    const otherBefore = rms(await mixAndCollect(other, { channels: [{ ch: 5, gainDb: -2, pan: -1 }] }, 2 * WINDOW), 2)[0]!;
    const c = await StreamClient.open(svc.port, 'bad-mixer');
    await mixAndCollect(c, { channels: [{ ch: 0, gainDb: 0, pan: -1 }] }, 10);
    const cases: [string, RegExp][] = [
      ['{"type":"mix","channels":[{"ch":0,"gainDb":11}]}', /channels\.0\.gainDb: got 11; Number must be less than or equal to 10/],
      ['{"type":"mix","channels":[{"ch":0,"pan":2}]}', /channels\.0\.pan: got 2/],
      ['{"type":"mix","channels":[{"ch":0,"gainDb":1e999}]}', /channels\.0\.gainDb/],
      ['{"type":"mix","channels":[{"ch":0,"pan":-1e999}]}', /channels\.0\.pan/],
      ['{"type":"mix","masterDb":"loud","channels":[]}', /masterDb/],
      ['{"type":"mix","codec":"deflate","channels":[]}', /codec/],
    ];
    for (const [text, re] of cases) {
      const err = await c.expectError(text);
      assert.equal(err.code, 'invalid-message', text);
      assert.match(String(err.message), re);
    }
    const unknown = await c.expectError({ type: 'mix', channels: [{ ch: 9 }] });
    assert.equal(unknown.code, 'bad-channel');
    assert.match(String(unknown.message), /channel 9 does not exist; the device has 8 channels/);
    const dup = await c.expectError({ type: 'mix', channels: [{ ch: 1 }, { ch: 1 }] });
    assert.equal(dup.code, 'bad-channel');
    // The sender still hears its last good mix; the bystander's is untouched.
    const start = c.packets.length;
    await c.waitForPackets(start + 2 * WINDOW);
    assert.ok(Math.abs(db(rms(c.packets.slice(start, start + 2 * WINDOW), 2)[0]!) - db(TONE_RMS)) < 0.01);
    const os = other.packets.length;
    await other.waitForPackets(os + 2 * WINDOW);
    const otherAfter = rms(other.packets.slice(os, os + 2 * WINDOW), 2)[0]!;
    assert.ok(Math.abs(db(otherAfter) - db(otherBefore)) < 0.01, `bystander ${db(otherBefore)} -> ${db(otherAfter)} dBFS`);
    c.close();
    other.close();
  });

  test('a flood of fader moves is coalesced and the last value wins', async () => {
    const c = await StreamClient.open(svc.port, 'fader-rider');
    await mixAndCollect(c, { channels: [{ ch: 6, gainDb: 0, pan: -1 }] }, 5);
    const from = c.messages.length;
    // 60 moves at once (within the rate limit's burst), ending at -10 dB.
    for (let i = 0; i <= 60; i++) c.send({ type: 'mix', channels: [{ ch: 6, gainDb: -i / 6, pan: -1 }] });
    // The last move's answer is the last answer there can be: every move before it has been applied or merged.
    const gainOf = (m: { [k: string]: unknown }): number | undefined => (m.mix as { channels?: { gainDb?: number }[] } | undefined)?.channels?.[0]?.gainDb;
    await waitFor(() => c.messages.slice(from).some((m) => m.type === 'mixing' && gainOf(m) === -10), {
      timeoutMs: 3000,
      what: 'the last move (-10 dB) applied',
      describe: () => JSON.stringify(c.messages.slice(from).filter((m) => m.type === 'mixing').map(gainOf)),
    });
    const applied = c.messages.slice(from).filter((m) => m.type === 'mixing').length;
    assert.ok(applied <= 3, `${applied} of 61 moves applied separately; expected them coalesced`);
    assert.equal(c.messages.slice(from).filter((m) => m.type === 'error').length, 0);
    const start = c.packets.length + 2;
    await c.waitForPackets(start + 3 * WINDOW);
    const [l] = rms(c.packets.slice(start, start + 3 * WINDOW), 2);
    assert.ok(Math.abs(db(l!) - (db(TONE_RMS) - 10)) < 0.01, `after the flood: ${db(l!)} dBFS, expected the last move (-10 dB)`);
    c.close();
  });

  test('status shows a mixing client with mode "mix" and its limiter\'s gain reduction', async () => {
    const c = await StreamClient.open(svc.port, 'status-mix');
    await mixAndCollect(c, { channels: [{ ch: 7, gainDb: 10, pan: 0 }, { ch: 6, gainDb: 10, pan: 0 }, { ch: 5, gainDb: 10, pan: 0 }], limiter: { ceilingDb: -6 } }, 20);
    const me = (await getStatus(svc.port)).clients.find((x) => x.clientId === 'status-mix') as unknown as { mode: string; codec: string; limiterReductionDb: number };
    assert.equal(me.mode, 'mix');
    assert.equal(me.codec, 'pcm16');
    assert.ok(me.limiterReductionDb > 0, `three channels at +10 dB against a -6 dBFS ceiling must be limited: ${JSON.stringify(me)}`);
    // Back to raw channels.
    await c.subscribe([0, 1], 'pcm16');
    const raw = (await getStatus(svc.port)).clients.find((x) => x.clientId === 'status-mix') as unknown as { mode: string; limiterReductionDb: number | null };
    assert.equal(raw.mode, 'channels');
    assert.equal(raw.limiterReductionDb, null);
    c.close();
  });
});
