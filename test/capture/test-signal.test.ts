import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { StreamClient } from '../helpers/stream-client';
import { decodePayload } from '../helpers/alsa-fixture';
import { testToneHz, TEST_SIGNAL_AMPLITUDE } from '../../src/capture/test-signal-source';
import type { ParsedPacket } from '../../src/protocol';

/**
 * capture.device "test-signal": S32_LE tones, a distinct frequency per channel
 * (testToneHz(ch, rate)), paced in real time. Frequencies are measured from
 * the received samples by counting upward zero crossings over at least half a
 * second of contiguous audio.
 */

const RATE = 48000;
const PERIOD = 128;
/** Half a second of audio, in periods. */
const HALF_SECOND = Math.ceil((0.5 * RATE) / PERIOD);

let svc: ServiceProcess;
before(async () => {
  svc = await startService({ label: 'test-signal', config: { capture: { device: 'test-signal', channels: 4, rate: RATE, periodFrames: PERIOD } } });
});
after(() => stopAllServices());

/** One channel's samples from the longest run of packets with contiguous samplePos. */
function contiguousChannel(packets: readonly ParsedPacket[], k: number): Int32Array {
  let best: ParsedPacket[] = [];
  let run: ParsedPacket[] = [];
  for (const p of packets) {
    const prev = run[run.length - 1];
    if (prev && p.samplePos === prev.samplePos + BigInt(prev.frames)) run.push(p);
    else run = [p];
    if (run.length > best.length) best = run;
  }
  const n = packets[0]!.channels.length;
  const out: number[] = [];
  for (const p of best) {
    const s = decodePayload('pcm16', p.payload);
    for (let i = 0; i < p.frames; i++) out.push(s[i * n + k]!);
  }
  return Int32Array.from(out);
}

/** Frequency from upward zero crossings, interpolated between samples. */
function zeroCrossingHz(x: Int32Array, rate: number): { hz: number; crossings: number } {
  const ups: number[] = [];
  for (let i = 1; i < x.length; i++) {
    const a = x[i - 1]!;
    const b = x[i]!;
    if (a < 0 && b >= 0) ups.push(i - 1 + -a / (b - a));
  }
  if (ups.length < 2) return { hz: 0, crossings: ups.length };
  return { hz: ((ups.length - 1) * rate) / (ups[ups.length - 1]! - ups[0]!), crossings: ups.length };
}

describe('test-signal source', () => {
  test('welcome describes the test signal: kind test-signal, 4 channels, S32_LE, 48000 Hz', async () => {
    const c = await StreamClient.connect(svc.port, { label: 'welcome' });
    const w = await c.hello('welcome');
    const src = w.source as Record<string, unknown>;
    assert.equal(src.kind, 'test-signal');
    assert.equal(src.channels, 4);
    assert.equal(src.format, 'S32_LE');
    assert.equal(src.rate, RATE);
    assert.equal(src.periodFrames, PERIOD);
    assert.equal(src.state, 'running');
    assert.deepEqual(w.codecs, ['pcm16', 'pcm24', 'deflate']);
    assert.equal(w.protocol, 1);
    c.close();
  });

  test('channel 2 in pcm16 is a sine at testToneHz(2, 48000) with the documented amplitude', async () => {
    const c = await StreamClient.open(svc.port, 'tone-2');
    await c.subscribe([2], 'pcm16');
    await c.waitForPackets(HALF_SECOND + 20, 10000);
    c.close();
    const p0 = c.packets[0]!;
    assert.equal(p0.rate, RATE);
    assert.equal(p0.frames, PERIOD);
    assert.deepEqual(p0.channels, [2]);
    const x = contiguousChannel(c.packets, 0);
    assert.ok(x.length >= RATE / 2, `only ${x.length} contiguous samples; need ${RATE / 2}`);
    const want = testToneHz(2, RATE);
    const { hz, crossings } = zeroCrossingHz(x, RATE);
    assert.ok(Math.abs(hz - want) / want < 0.005, `measured ${hz.toFixed(3)} Hz over ${crossings} crossings; expected ${want} Hz`);
    const peak = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const wantPeak = TEST_SIGNAL_AMPLITUDE * 32767;
    assert.ok(Math.abs(peak - wantPeak) / wantPeak < 0.02, `peak ${peak}; expected about ${wantPeak.toFixed(0)}`);
  });

  test('each of several subscribed channels carries its own tone, in the order subscribed', async () => {
    const order = [3, 0, 1];
    const c = await StreamClient.open(svc.port, 'tones');
    await c.subscribe(order, 'pcm24');
    await c.waitForPackets(HALF_SECOND + 20, 10000);
    c.close();
    order.forEach((ch, k) => {
      // pcm24 → keep the top 16 bits for the estimate.
      const packets = c.packets.map((p) => {
        const s = decodePayload('pcm24', p.payload);
        const b = Buffer.alloc(s.length * 2);
        s.forEach((v, i) => b.writeInt16LE(v >> 8, i * 2));
        return { ...p, payload: new Uint8Array(b) };
      });
      const x = contiguousChannel(packets, k);
      assert.ok(x.length >= RATE / 2, `only ${x.length} contiguous samples`);
      const want = testToneHz(ch, RATE);
      const { hz } = zeroCrossingHz(x, RATE);
      assert.ok(Math.abs(hz - want) / want < 0.005, `position ${k} (channel ${ch}): measured ${hz.toFixed(3)} Hz; expected ${want} Hz`);
    });
  });

  test('consecutive packets advance seq by one and samplePos by one period, with increasing captureNs', async () => {
    const c = await StreamClient.open(svc.port, 'pace');
    await c.subscribe([0], 'pcm16');
    await c.waitForPackets(100, 10000);
    c.close();
    for (let i = 1; i < c.packets.length; i++) {
      const a = c.packets[i - 1]!;
      const b = c.packets[i]!;
      assert.equal(b.seq, (a.seq + 1) >>> 0, `seq ${a.seq} -> ${b.seq}`);
      assert.equal(b.samplePos, a.samplePos + BigInt(PERIOD), `samplePos ${a.samplePos} -> ${b.samplePos}`);
      assert.ok(b.captureNs > a.captureNs, `captureNs must increase: ${a.captureNs} -> ${b.captureNs}`);
    }
  });
});

describe('test-signal source, other settings', () => {
  test('capture.channels "auto" gives the test signal 32 channels', async () => {
    const s2 = await startService({ label: 'test-signal auto', env: { STAGEBOX_CHANNELS: 'auto' }, config: { capture: { device: 'test-signal' } } });
    const c = await StreamClient.connect(s2.port, { label: 'auto' });
    const w = await c.hello('auto');
    assert.equal((w.source as Record<string, unknown>).channels, 32);
    await c.subscribe([31, 0], 'pcm16');
    await c.waitForPackets(5);
    assert.deepEqual(c.packets[0]!.channels, [31, 0]);
    c.close();
    await s2.stop();
  });

  test('at capture.rate 96000 packets carry rate 96000 and the tone is testToneHz(ch, 96000)', async () => {
    const s3 = await startService({ label: 'test-signal 96k', config: { capture: { device: 'test-signal', channels: 2, rate: 96000, periodFrames: 256 } } });
    const c = await StreamClient.open(s3.port, 'r96');
    await c.subscribe([1], 'pcm16');
    await c.waitForPackets(Math.ceil((0.5 * 96000) / 256) + 20, 10000);
    c.close();
    assert.equal(c.packets[0]!.rate, 96000);
    assert.equal(c.packets[0]!.frames, 256);
    const x = contiguousChannel(c.packets, 0);
    assert.ok(x.length >= 48000);
    const want = testToneHz(1, 96000);
    const { hz } = zeroCrossingHz(x, 96000);
    assert.ok(Math.abs(hz - want) / want < 0.005, `measured ${hz.toFixed(3)} Hz; expected ${want} Hz`);
    await s3.stop();
  });
});
