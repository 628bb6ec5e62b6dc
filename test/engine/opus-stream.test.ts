import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AudioRing } from '../../src/engine/audio-ring';
import { createLimiter } from '../../src/engine/limiter';
import { opusMixPackets, renderMixPackets, type MixRender } from '../../src/engine/mix-encode';
import { setMixTargets } from '../../src/engine/mix-kernel';
import { initSlabLimiter, MixSlab, slabMixState } from '../../src/engine/mix-slab';
import { OpusStream } from '../../src/engine/opus-stream';
import { entryBytes, entryOutput, resultCount } from '../../src/engine/encode-result';
import { CODEC_IDS, FLAG_DISCONTINUITY, FLAG_MIX, parsePacket } from '../../src/protocol';

const RATE = 48000;
const P = 128;

function stereoPeriod(frames: number, start: number): Int16Array {
  const out = new Int16Array(frames * 2);
  for (let i = 0; i < frames; i++) out[2 * i] = out[2 * i + 1] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * (start + i)) / RATE));
  return out;
}

/** Pushes `n` contiguous periods; returns every packet's [seq, samplePos, captureNs, flags, bytes]. */
function run(s: OpusStream, n: number, firstPos = 0, flagsOf: (k: number) => number = () => 0): [number, bigint, bigint, number, number][] {
  const out: [number, bigint, bigint, number, number][] = [];
  for (let k = 0; k < n; k++) {
    const pos = firstPos + k * P;
    s.push(stereoPeriod(P, pos), P, BigInt(pos), BigInt(pos) * 1_000_000n, flagsOf(k));
    for (let i = 0; i < s.count; i++) {
      const p = s.packets[i]!;
      out.push([p.seq, p.samplePos, p.captureNs, p.flags, p.data.length]);
    }
  }
  return out;
}

describe('OpusStream', () => {
  test('128-frame periods become 5 ms packets numbered from 0, stamped with their first sample, none flagged', () => {
    const s = new OpusStream({ channels: 2, frameMs: 5, bitrate: 96000, periodFrames: P });
    assert.equal(s.maxPackets, 1, '240-frame frames: a 128-frame period completes at most one');
    const packets = run(s, 30);
    assert.equal(packets.length, Math.floor((30 * P) / 240));
    packets.forEach(([seq, pos, ns, flags, bytes], i) => {
      assert.equal(seq, i);
      assert.equal(pos, BigInt(i * 240));
      // Period k's captureNs is k × 128 ms here; the frame's first sample is at offset pos − k×128 in it.
      const k = Math.floor((i * 240) / P);
      assert.equal(ns, BigInt(k * P) * 1_000_000n + BigInt(Math.round(((i * 240 - k * P) * 1e9) / RATE)));
      assert.equal(flags, 0);
      assert.equal(bytes, 60);
    });
  });

  test('a phase shifts every frame start by that many frames, and streams of different phases encode in different periods', () => {
    const a = new OpusStream({ channels: 2, frameMs: 5, bitrate: 96000, periodFrames: P });
    const b = new OpusStream({ channels: 2, frameMs: 5, bitrate: 96000, periodFrames: P, phase: 120 });
    const encodedIn = (s: OpusStream): number[] => {
      const periods: number[] = [];
      for (let k = 0; k < 15; k++) if (s.push(stereoPeriod(P, k * P), P, BigInt(k * P), BigInt(k * P) * 1000n, 0) > 0) periods.push(k);
      return periods;
    };
    const pa = encodedIn(a);
    const pb = encodedIn(b);
    assert.equal(a.packets[0]!.samplePos % 240n, 0n);
    assert.equal(b.packets[0]!.samplePos % 240n, 120n);
    // Frames of phase 0 end at 239, 479, … 1919; of phase 120 at 359, 599, … 1799: mostly different periods.
    assert.deepEqual(pa, [1, 3, 5, 7, 9, 11, 13, 14]);
    assert.deepEqual(pb, [2, 4, 6, 8, 10, 12, 14]);
    assert.throws(() => new OpusStream({ channels: 2, frameMs: 5, bitrate: 96000, periodFrames: P, phase: 240 }), {
      name: 'RangeError',
      message: 'opus stream: phase 240 is not allowed; allowed: integers 0–239 (frames of a 5 ms frame)',
    });
  });

  test('a 1024-frame period completes up to 9 frames of 2.5 ms, all kept until the next push', () => {
    const s = new OpusStream({ channels: 1, frameMs: 2.5, bitrate: 48000, periodFrames: 1024 });
    assert.equal(s.maxPackets, 9);
    let total = 0;
    let most = 0;
    for (let k = 0; k < 15; k++) {
      s.push(new Int16Array(1024), 1024, BigInt(k * 1024), 0n, 0);
      total += s.count;
      most = Math.max(most, s.count);
      for (let i = 0; i < s.count; i++) assert.equal(s.packets[i]!.seq, total - s.count + i);
    }
    assert.equal(total, Math.floor((15 * 1024) / 120));
    assert.equal(most, 9);
  });

  test('a period flagged as a discontinuity drops the partial frame and flags the next packet, at the next frame start', () => {
    const s = new OpusStream({ channels: 2, frameMs: 5, bitrate: 96000, periodFrames: P });
    // Periods 0-4 (640 frames) complete the frames at 0 and 240; 480-639 is partial when period 5 comes flagged.
    const packets = run(s, 10, 0, (k) => (k === 5 ? FLAG_DISCONTINUITY : 0));
    const flagged = packets.filter((p) => p[3] === FLAG_DISCONTINUITY);
    assert.equal(flagged.length, 1);
    // Frames start at multiples of 240 (phase 0): the first at or after 640 is 720.
    assert.equal(flagged[0]![1], 720n, 'the flagged frame starts at the first frame start in the flagged period');
    // Seq runs on without a gap: it counts packets, the flag says audio is missing.
    packets.forEach((p, i) => assert.equal(p[0], i));
  });

  test('a samplePos jump flags the next packet, also when it falls on a frame boundary', () => {
    for (const jumpAt of [15, 17]) {
      // 15 periods = 1920 frames = 8 whole 240-frame frames: nothing partial to drop at the jump.
      const s = new OpusStream({ channels: 2, frameMs: 5, bitrate: 96000, periodFrames: P });
      const before = run(s, jumpAt);
      const after = run(s, 10, jumpAt * P + 10 * P);
      assert.ok(before.every((p) => p[3] === 0));
      assert.equal(after[0]![3], FLAG_DISCONTINUITY, `jump after ${jumpAt} periods`);
      const resumed = jumpAt * P + 10 * P;
      assert.equal(after[0]![1], BigInt(Math.ceil(resumed / 240) * 240), 'the first frame start at or after the jump');
      assert.ok(after.slice(1).every((p) => p[3] === 0));
    }
  });

  test('opus mixes leave the pcm result to the pcm mixes and get a result of their own: several entries of one id, in order', () => {
    const frames = 1024;
    const ring = new AudioRing({ channels: 2, periodFrames: frames, rate: RATE, slotCount: 4 });
    for (let i = 0; i < ring.samples.length; i++) ring.samples[i] = Math.round(Math.sin(i / 7) * 2 ** 28);
    const slab = new MixSlab(4, frames);
    const mk = (id: number, codec: 'pcm16' | 'opus'): MixRender => {
      const slot = id;
      slab.clear(slot);
      const state = slabMixState(slab, slot);
      setMixTargets(state, { channels: [{ gainDb: 0, pan: 0, mute: false, solo: false }], masterDb: 0, output: 'stereo' });
      return {
        id,
        slot,
        codecId: CODEC_IDS[codec],
        state,
        limiter: initSlabLimiter(slab, slot, createLimiter(RATE)),
        buf: new Float32Array(frames * 2),
        pcm: slab.pcm(slot),
        opus: codec === 'opus' ? new OpusStream({ channels: 2, frameMs: 2.5, bitrate: 96000, periodFrames: frames }) : null,
      };
    };
    const mixes = [mk(1, 'pcm16'), mk(2, 'opus'), mk(3, 'pcm16')];
    const entries = (ab: ArrayBuffer): { id: number; p: ReturnType<typeof parsePacket> }[] => {
      const v = new DataView(ab);
      return Array.from({ length: resultCount(v) }, (_, i) => ({
        id: entryOutput(v, i),
        p: parsePacket(entryBytes(ab, i)),
      }));
    };
    const perPeriod: number[] = [];
    let opusSeq = 0;
    for (let seq = 0; seq < 3; seq++) {
      const slot = ring.slotOf(seq);
      ring.writeHeader(slot, seq, BigInt(seq * frames), 0n, 0);
      const pcm = entries(renderMixPackets(ring, slot, mixes));
      assert.deepEqual(pcm.map((e) => e.id), [1, 3]);
      for (const e of pcm) {
        assert.equal(e.p.codec, 'pcm16');
        assert.equal(e.p.seq, seq);
        assert.equal(e.p.flags & FLAG_MIX, FLAG_MIX);
      }
      const opus = entries(opusMixPackets(ring, slot, mixes)!);
      for (const e of opus) {
        assert.equal(e.id, 2);
        assert.equal(e.p.codec, 'opus');
        assert.equal(e.p.flags & FLAG_MIX, FLAG_MIX);
        assert.equal(e.p.frames, 120);
        assert.equal(e.p.seq, opusSeq++);
        assert.equal(e.p.samplePos, BigInt(e.p.seq * 120));
        assert.equal(e.p.payload.length, 30);
      }
      perPeriod.push(opus.length);
    }
    // 1024 frames complete 8 frames (64 left over); 64 + 1024 complete 9 (8 left); 8 + 1024 complete 8.
    assert.deepEqual(perPeriod, [8, 9, 8]);
  });
});
