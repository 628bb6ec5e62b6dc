import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { OpusEncoder as NativeOpus } from '@discordjs/opus';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { getStatus } from '../helpers/http-client';
import { StreamClient } from '../helpers/stream-client';
import { FLAG_DISCONTINUITY, FLAG_MIX, type ParsedPacket } from '../../src/protocol';
import { TEST_SIGNAL_AMPLITUDE, TEST_SIGNAL_TABLE_FRAMES, testToneBin, testToneHz } from '../../src/capture/test-signal-source';
import { OPUS_LOOKAHEAD_FRAMES } from '../../src/engine/opus-encoder';

/**
 * Opus personal mixes through the real service and its built-in test signal
 * (every channel a -12 dBFS sine of its own frequency), decoded with libopus
 * (@discordjs/opus) as a phone would.
 */

const RATE = 48000;
/** Channel 5: bin 23 of the 4096-frame table, 269.5 Hz. */
const CH = 5;
const TONE_RMS = TEST_SIGNAL_AMPLITUDE / Math.SQRT2;
const db = (x: number): number => 20 * Math.log10(x);

let svc: ServiceProcess;
before(async () => {
  svc = await startService({ label: 'mix-opus', config: { capture: { device: 'test-signal', channels: 8, rate: RATE, periodFrames: 128 } } });
});
after(() => stopAllServices());

/** Sends a mix, waits for its "mixing" reply; returns the index of the first packet sent after it. */
async function sendMix(c: StreamClient, mix: object): Promise<number> {
  const from = c.messages.length;
  c.send({ type: 'mix', ...mix });
  const m = await c.waitForMessage('mixing', { from });
  return c.packetsBeforeMessage[c.messages.indexOf(m)]!;
}

/** Collects `n` packets of `codec` from index `start` on, skipping packets of the previous codec still in flight. */
async function collect(c: StreamClient, start: number, codec: string, n: number): Promise<ParsedPacket[]> {
  await c.waitForPackets(start + 2, 5000);
  let first = start;
  while (c.packets[first] && c.packets[first]!.codec !== codec) {
    first++;
    await c.waitForPackets(first + 1, 5000);
  }
  await c.waitForPackets(first + n, 10000);
  return c.packets.slice(first, first + n);
}

/** The service's count of capture xruns (0 for the test signal: its pacer plays on later when held up, losing no sample). */
async function xruns(port = svc.port): Promise<number> {
  return (await getStatus(port)).capture.xruns;
}

/**
 * Every packet is an opus mix packet of `frameFrames` frames, stereo, 48 kHz; seq runs without gaps, and so does
 * samplePos, except where the source itself lost audio (an xrun; the test signal has none since its pacer plays on
 * later when the loop is held up). Such a gap must carry FLAG_DISCONTINUITY, and there can be no more of them than
 * `sourceXruns`, the xruns the service reported while the packets were collected. Returns the gaps seen.
 */
function assertContinuousOpus(packets: ParsedPacket[], frameFrames: number, sourceXruns: number): number {
  let gaps = 0;
  for (let i = 0; i < packets.length; i++) {
    const p = packets[i]!;
    assert.equal(p.codec, 'opus', `packet ${i}`);
    assert.equal(p.frames, frameFrames, `packet ${i} frames`);
    assert.equal(p.rate, RATE);
    assert.deepEqual(p.channels, [0, 1]);
    assert.equal(p.flags & FLAG_MIX, FLAG_MIX);
    if (i === 0) continue;
    const prev = packets[i - 1]!;
    assert.equal(p.seq, (prev.seq + 1) >>> 0, `seq after packet ${i - 1}`);
    if (p.samplePos === prev.samplePos + BigInt(frameFrames)) {
      assert.equal(p.flags & FLAG_DISCONTINUITY, 0, `packet ${i} flagged as a discontinuity`);
      continue;
    }
    gaps++;
    const what = `samplePos of packet ${i}: ${p.samplePos} after ${prev.samplePos} (+${frameFrames} expected)`;
    assert.ok(p.samplePos > prev.samplePos, `${what}: an overlap`);
    assert.equal(p.flags & FLAG_DISCONTINUITY, FLAG_DISCONTINUITY, `${what}: a gap not flagged as a discontinuity`);
    assert.ok(gaps <= sourceXruns, `${what}: a gap, and the source reported ${sourceXruns} xrun(s) meanwhile`);
  }
  return gaps;
}

/** Decodes the packets in order with libopus; interleaved stereo Int16. */
function decode(packets: ParsedPacket[]): Int16Array {
  const dec = new NativeOpus(RATE, 2);
  const parts = packets.map((p) => {
    const b = dec.decode(Buffer.from(p.payload));
    return new Int16Array(b.buffer, b.byteOffset, b.length / 2);
  });
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

interface ToneFit {
  /** RMS of the channel, full scale 1.0. */
  rms: number;
  /** Power of the best-fitting sine at the tone's frequency over the rest (noise, distortion, other tones), dB. */
  snrDb: number;
}

/**
 * Fits a sine at table bin `bin` to one channel over `frames` frames from
 * frame `from` (a whole number of table lengths, so sine and cosine are
 * orthogonal over it and the fit is exact); what the fit leaves is the error.
 */
function fitTone(pcm: Int16Array, channel: number, from: number, frames: number, bin: number): ToneFit {
  let s = 0;
  let c = 0;
  let total = 0;
  for (let f = 0; f < frames; f++) {
    const x = pcm[2 * (from + f) + channel]! / 32768;
    const ph = (2 * Math.PI * bin * f) / TEST_SIGNAL_TABLE_FRAMES;
    s += x * Math.sin(ph);
    c += x * Math.cos(ph);
    total += x * x;
  }
  const a = (2 * s) / frames;
  const b = (2 * c) / frames;
  const tonePower = ((a * a + b * b) / 2) * frames;
  return { rms: Math.sqrt(total / frames), snrDb: 10 * Math.log10(tonePower / Math.max(total - tonePower, 1e-30)) };
}

function rmsOf(pcm: Int16Array, channel: number, from: number, frames: number): number {
  let t = 0;
  for (let f = 0; f < frames; f++) t += (pcm[2 * (from + f) + channel]! / 32768) ** 2;
  return Math.sqrt(t / frames);
}

/** Two table lengths (8192 frames, 171 ms) after 50 ms of encoder start-up and the mix's fade-in. */
const SKIP = 2400;
const WINDOW = 2 * TEST_SIGNAL_TABLE_FRAMES;

describe('opus personal mixes', () => {
  // Minimum SNR per frame size: measured 30.5-31.1, 43.3-44.1 and 45.0-46.6 dB over four runs (libopus 1.3.1, x86-64, 96 kb/s, one
  // 270 Hz tone hard left); each bound leaves ~6 dB for libopus versions and CPU paths. Shorter frames
  // mean fewer bits per frame and coarser band energies, hence the lower figure for 2.5 ms. A broken
  // path (a frame dropped, reordered or decoded at the wrong size, a wrong rate or frequency) leaves
  // under 10 dB.
  for (const [frameMs, frameFrames, bytes, minSnrDb] of [
    [2.5, 120, 30, 24],
    [5, 240, 60, 37],
    [10, 480, 120, 39],
  ] as const) {
    test(`${frameMs} ms: packets of codec 4 and ${frameFrames} frames run without gaps and decode to the tone at its level`, async (t) => {
      const c = await StreamClient.open(svc.port, `opus-${frameMs}`);
      let start = await sendMix(c, { codec: 'opus', opus: { frameMs }, channels: [{ ch: CH, gainDb: 0, pan: -1 }] });
      const need = Math.ceil((SKIP + WINDOW + OPUS_LOOKAHEAD_FRAMES) / frameFrames) + 1;
      // The tone fit needs an unbroken window. If the source had an xrun during one (the machine held the
      // service up), that window is measured again, at most 4 times; any other gap fails at once.
      let packets: ParsedPacket[] = [];
      for (let attempt = 1; ; attempt++) {
        const x0 = await xruns();
        packets = await collect(c, start, 'opus', need);
        const gaps = assertContinuousOpus(packets, frameFrames, (await xruns()) - x0);
        if (gaps === 0) break;
        assert.ok(attempt < 4, `the source had xruns in each of ${attempt} windows; the machine is too loaded to measure`);
        t.diagnostic(`window ${attempt}: ${gaps} gap(s) after a source xrun; measuring a fresh window`);
        start = c.packets.length;
      }
      // Box default 96 kb/s, hard CBR: every packet is bitrate × frame / 8 bytes.
      for (const p of packets) assert.equal(p.payload.length, bytes, `payload of seq ${p.seq}`);
      const pcm = decode(packets);
      assert.equal(pcm.length, need * frameFrames * 2, 'each packet decodes to one whole frame');
      const left = fitTone(pcm, 0, SKIP, WINDOW, testToneBin(CH));
      const right = rmsOf(pcm, 1, SKIP, WINDOW);
      t.diagnostic(
        `${frameMs} ms, ${testToneHz(CH, RATE)} Hz hard left: L ${db(left.rms).toFixed(2)} dBFS (tone ${db(TONE_RMS).toFixed(2)}), SNR ${left.snrDb.toFixed(1)} dB; R ${db(right).toFixed(1)} dBFS`,
      );
      // Level within 0.5 dB: CELT codes each band's energy explicitly (and the pcm16 mix of the same
      // channel is exact to 0.01 dB, mix-mode.test.ts), so the level is what survives best; a wrong
      // gain, pan law, channel or rate is off by 3 dB or more.
      assert.ok(Math.abs(db(left.rms) - db(TONE_RMS)) < 0.5, `left ${db(left.rms).toFixed(2)} dBFS, expected ${db(TONE_RMS).toFixed(2)} ± 0.5`);
      assert.ok(left.snrDb >= minSnrDb, `SNR ${left.snrDb.toFixed(1)} dB < ${minSnrDb} dB`);
      // The right side was silent in the mix; CELT keeps it near digital silence.
      assert.ok(db(right) <= -50, `right ${db(right).toFixed(1)} dBFS, expected silence`);
      c.close();
    });
  }

  test('a given bitrate sets the packet size, and two clients with the same opus mix share one stream', async () => {
    const a = await StreamClient.open(svc.port, 'opus-128-a');
    const b = await StreamClient.open(svc.port, 'opus-128-b');
    const mix = { codec: 'opus', opus: { frameMs: 5, bitrateKbps: 128 }, channels: [{ ch: 2, gainDb: -6, pan: 0.3 }] };
    const sa = await sendMix(a, mix);
    const sb = await sendMix(b, mix);
    const pa = await collect(a, sa, 'opus', 20);
    const pb = await collect(b, sb, 'opus', 20);
    for (const p of pa) assert.equal(p.payload.length, 80, '128 kb/s × 5 ms / 8');
    // One shared stream: the same frame counter and positions in both.
    const common = pb.find((p) => p.seq === pa[pa.length - 1]!.seq) ?? pa.find((p) => p.seq === pb[0]!.seq);
    assert.ok(common, `no seq in common between a (${pa[0]!.seq}…) and b (${pb[0]!.seq}…)`);
    const inA = pa.find((p) => p.seq === common.seq)!;
    const inB = pb.find((p) => p.seq === common.seq)!;
    assert.equal(inA.samplePos, inB.samplePos);
    assert.deepEqual(inA.payload, inB.payload);
    a.close();
    b.close();
  });

  test('switching pcm16 → opus → pcm16 changes the stream each time, and the "mixing" reply names the codec', async () => {
    const c = await StreamClient.open(svc.port, 'codec-switcher');
    const channels = [{ ch: 3, gainDb: 0, pan: -1 }];
    const s1 = await sendMix(c, { codec: 'pcm16', channels });
    const pcmA = await collect(c, s1, 'pcm16', 10);
    assert.ok(pcmA.every((p) => p.frames === 128));
    const m1 = c.messages.length;
    const x0 = await xruns();
    const s2 = await sendMix(c, { codec: 'opus', channels });
    assert.equal(c.messages.slice(m1).find((m) => m.type === 'mixing')!.codec, 'opus');
    const opus = await collect(c, s2, 'opus', 20);
    assertContinuousOpus(opus, 240, (await xruns()) - x0);
    const s3 = await sendMix(c, { codec: 'pcm16', channels });
    const pcmB = await collect(c, s3, 'pcm16', 10);
    // Once the stream is opus, no pcm16 packet comes until the switch back, and after it no opus packet.
    const firstOpus = c.packets.findIndex((p) => p.codec === 'opus');
    const backIdx = c.packets.indexOf(pcmB[0]!);
    assert.ok(c.packets.slice(firstOpus, c.packets.indexOf(opus[opus.length - 1]!)).every((p) => p.codec === 'opus'));
    assert.ok(c.packets.slice(backIdx).every((p) => p.codec === 'pcm16'), 'an opus packet after the switch back');
    // The pcm16 mix is exact again: the tone at its level to 0.01 dB over whole table lengths.
    const more = await collect(c, backIdx + 4, 'pcm16', 64);
    let sum = 0;
    let n = 0;
    for (const p of more) {
      const s = new Int16Array(new Uint8Array(p.payload).buffer);
      for (let i = 0; i < s.length; i += 2, n++) sum += (s[i]! / 32768) ** 2;
    }
    assert.ok(Math.abs(db(Math.sqrt(sum / n)) - db(TONE_RMS)) < 0.01);
    c.close();
  });

  test('an opus mix comes back with its frame and bitrate when the client reconnects with the same clientId', async () => {
    const a = await StreamClient.open(svc.port, 'opus-returner');
    const sa = await sendMix(a, { codec: 'opus', opus: { frameMs: 2.5, bitrateKbps: 64 }, channels: [{ ch: 4, gainDb: -3, pan: 0 }] });
    await collect(a, sa, 'opus', 5);
    a.close();
    await a.waitForClose();
    const b = await StreamClient.connect(svc.port, { label: 'opus-returner-again' });
    const welcome = await b.hello('opus-returner');
    assert.deepEqual(welcome.restored, { mode: 'mix', codec: 'opus' });
    const x0 = await xruns();
    await b.waitForMessage('mixing');
    const packets = await collect(b, 0, 'opus', 10);
    assertContinuousOpus(packets, 120, (await xruns()) - x0);
    for (const p of packets) assert.equal(p.payload.length, 20, '64 kb/s × 2.5 ms / 8');
    b.close();
  });

  test('bad opus settings get a clear error naming the value and what is allowed; the sender keeps its mix and a bystander\'s stream has no gap', async () => {
    const x0 = await xruns();
    const bystander = await StreamClient.open(svc.port, 'opus-bystander');
    const bs = await sendMix(bystander, { codec: 'opus', channels: [{ ch: 1, gainDb: 0, pan: -1 }] });
    await collect(bystander, bs, 'opus', 5);
    const c = await StreamClient.open(svc.port, 'opus-bad-input');
    const cs = await sendMix(c, { codec: 'opus', opus: { frameMs: 10 }, channels: [{ ch: 0, gainDb: 0, pan: -1 }] });
    await collect(c, cs, 'opus', 3);
    const cases: [string, RegExp][] = [
      ['{"type":"mix","codec":"opus","opus":{"frameMs":3},"channels":[]}', /^mix: opus\.frameMs: got 3; allowed: 2\.5, 5 or 10 \(ms\)$/],
      ['{"type":"mix","codec":"opus","opus":{"bitrateKbps":0},"channels":[]}', /^mix: opus\.bitrateKbps: got 0; Number must be greater than or equal to 6$/],
      ['{"type":"mix","codec":"opus","opus":{"bitrateKbps":1000},"channels":[]}', /^mix: opus\.bitrateKbps: got 1000; Number must be less than or equal to 510$/],
      ['{"type":"mix","codec":"opus","opus":{"bitrateKbps":"96"},"channels":[]}', /^mix: opus\.bitrateKbps: got "96"; Expected number, received string$/],
      ['{"type":"mix","codec":"opus","opus":{"bitrateKbps":96.5},"channels":[]}', /^mix: opus\.bitrateKbps: got 96\.5; Expected integer, received float$/],
      ['{"type":"mix","codec":"opus","opus":{"frameMs":5,"complexity":3},"channels":[]}', /^mix: unknown field\(s\) "complexity"$/],
      ['{"type":"mix","codec":"pcm16","opus":{"frameMs":5},"channels":[]}', /^mix: opus: got \{"frameMs":5\}; an "opus" block needs codec "opus"; codec is "pcm16"$/],
      ['{"type":"mix","opus":{},"channels":[]}', /an "opus" block needs codec "opus"; codec is "pcm16"/],
      ['{"type":"mix","codec":"vorbis","channels":[]}', /^mix: codec: got "vorbis"; Invalid enum value\. Expected 'pcm16' \| 'pcm24' \| 'opus'/],
    ];
    const from = c.messages.length;
    for (const [text, re] of cases) {
      const err = await c.expectError(text);
      assert.equal(err.code, 'invalid-message', text);
      assert.equal(err.ref, 'mix', text);
      assert.match(String(err.message), re, text);
    }
    assert.equal(c.messages.slice(from).filter((m) => m.type === 'mixing').length, 0, 'no bad mix was applied');
    // The sender still gets its last good mix (10 ms frames), without a gap across the errors.
    const after = c.packets.length;
    await c.waitForPackets(after + 20, 5000);
    // The bystander's stream ran on through all of it.
    await bystander.waitForPackets(bystander.packets.length + 20, 5000);
    const sourceXruns = (await xruns()) - x0;
    assertContinuousOpus(c.packets.slice(cs).filter((p) => p.codec === 'opus'), 480, sourceXruns);
    assertContinuousOpus(bystander.packets.slice(bs).filter((p) => p.codec === 'opus'), 240, sourceXruns);
    assert.deepEqual(c.badPackets, []);
    assert.deepEqual(bystander.badPackets, []);
    c.close();
    bystander.close();
  });
});

describe('opus at a capture rate other than 48 kHz', () => {
  let svc441: ServiceProcess;
  before(async () => {
    svc441 = await startService({ label: 'mix-opus-44k1', config: { capture: { device: 'test-signal', channels: 4, rate: 44100, periodFrames: 128 } } });
  });

  test('an opus mix at 44.1 kHz is refused with bad-codec naming the rate, the client can still mix pcm16, and a bystander has no gap', async () => {
    const bystander = await StreamClient.open(svc441.port, 'pcm-bystander');
    const bs = await sendMix(bystander, { codec: 'pcm16', channels: [{ ch: 1, gainDb: 0, pan: 0 }] });
    await collect(bystander, bs, 'pcm16', 5);
    const c = await StreamClient.open(svc441.port, 'opus-at-44k1');
    const err = await c.expectError({ type: 'mix', codec: 'opus', opus: { frameMs: 5 }, channels: [{ ch: 0 }] });
    assert.equal(err.code, 'bad-codec');
    assert.equal(err.ref, 'mix');
    assert.equal(
      err.message,
      'codec "opus" needs a capture rate of 48000 Hz; the box captures at 44100 Hz and does not resample; allowed at this rate: "pcm16" or "pcm24"',
    );
    assert.equal(c.packetCount, 0, 'nothing streamed for the refused mix');
    const s = await sendMix(c, { codec: 'pcm16', channels: [{ ch: 0, gainDb: 0, pan: 0 }] });
    const pcm = await collect(c, s, 'pcm16', 10);
    assert.ok(pcm.every((p) => p.rate === 44100 && p.frames === 128));
    await bystander.waitForPackets(bystander.packets.length + 10, 5000);
    const bp = bystander.packets.slice(bs);
    for (let i = 1; i < bp.length; i++) {
      assert.equal(bp[i]!.seq, (bp[i - 1]!.seq + 1) >>> 0, `bystander seq gap at ${i}`);
      assert.equal(bp[i]!.samplePos, bp[i - 1]!.samplePos + 128n);
    }
    c.close();
    bystander.close();
  });
});
