import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { measureEcho, quantile, syntheticTrace, type ProfileName } from '../../bench/jitter/network-model';

/**
 * The synthetic links give back the figures they were built from (issue #12), measured the way those figures were:
 * the office profile with a UDP echo every 20 ms for 10 minutes, the others on the stream's own packets.
 */

const PERIOD_MS = (128 * 1000) / 48000;

/** One-way delay of each arrived packet above the fastest one, ms. */
function relativeDelays(profile: ProfileName, transport: 'tcp' | 'datagram', seconds: number, seed: number): Float64Array {
  const { trace } = syntheticTrace({ profile, transport, seconds, seed });
  const d = new Float64Array(trace.seq.length);
  let min = Infinity;
  for (let i = 0; i < d.length; i++) min = Math.min(min, trace.arrivalMs[i]! - trace.captureMs[i]!);
  for (let i = 0; i < d.length; i++) d[i] = trace.arrivalMs[i]! - trace.captureMs[i]! - min;
  return d;
}

describe('network model: the profiles reproduce their figures', () => {
  for (const seed of [1, 2, 3]) {
    test(`office-wifi, seed ${seed}: a 20 ms echo for 10 min sees RTT median 4.0 ms, p95 under 8, p99 near 50.7, 0.12 % loss, about 18 stalls over 100 ms (12 over 200), a burst of 14 or more`, () => {
      const e = measureEcho('office-wifi', 600, seed);
      const p50 = quantile(e.rttMs, 0.5);
      const p95 = quantile(e.rttMs, 0.95);
      const p99 = quantile(e.rttMs, 0.99);
      assert.ok(p50 > 3.5 && p50 < 4.5, `median ${p50}`);
      assert.ok(p95 < 8, `p95 ${p95}`);
      assert.ok(p99 > 35 && p99 < 75, `p99 ${p99}`);
      const loss = e.lost / e.sent;
      assert.ok(loss > 0.0005 && loss < 0.002, `loss ${loss}`);
      assert.ok(e.stallsOver100 >= 12 && e.stallsOver100 <= 26, `${e.stallsOver100} stalls over 100 ms`);
      assert.ok(e.stallsOver200 >= 6 && e.stallsOver200 <= 20, `${e.stallsOver200} stalls over 200 ms`);
      assert.ok(e.largestRelease >= 14, `largest release ${e.largestRelease}`);
    });
  }

  test('busy-venue over datagrams: about 1 % lost, some in bursts of 2-4, per-packet delay p99 about 30 ms, a stall over 100 ms about every 20 s', () => {
    const s = syntheticTrace({ profile: 'busy-venue', transport: 'datagram', seconds: 300, seed: 4 });
    assert.ok(s.lostForGood / s.sent > 0.007 && s.lostForGood / s.sent < 0.013, `${s.lostForGood} of ${s.sent}`);
    const seqs = new Set(s.trace.seq);
    let bursts = 0;
    for (let k = 1001; k < 1000 + s.sent - 1; k++) if (!seqs.has(k) && !seqs.has(k + 1) && seqs.has(k - 1)) bursts++;
    assert.ok(bursts > 20, `${bursts} bursts of 2 or more`);
    const p99 = quantile(relativeDelays('busy-venue', 'datagram', 300, 4), 0.99);
    assert.ok(p99 > 20 && p99 < 45, `p99 ${p99}`);
    let stalls = 0;
    for (let i = 0; i < s.holds.start.length; i++) if (s.holds.end[i]! - s.holds.start[i]! >= 100) stalls++;
    assert.ok(stalls >= 10 && stalls <= 22, `${stalls} stalls in 5 min`);
  });

  test('phone-powersave: the link holds 30-100 ms every 100-300 ms', () => {
    const s = syntheticTrace({ profile: 'phone-powersave', transport: 'tcp', seconds: 60, seed: 5 });
    const h = s.holds;
    assert.ok(h.start.length >= 200 && h.start.length <= 400, `${h.start.length} holds in 60 s`);
    for (let i = 0; i < h.start.length; i++) {
      const len = h.end[i]! - h.start[i]!;
      assert.ok(len >= 30 && len <= 100, `hold ${i}: ${len} ms`);
      if (i > 0) assert.ok(h.start[i]! - h.start[i - 1]! >= 100 && h.start[i]! - h.start[i - 1]! <= 300);
    }
  });

  test('lan: nothing lost, per-packet delay p99 under 1 ms', () => {
    const s = syntheticTrace({ profile: 'lan', transport: 'datagram', seconds: 60, seed: 6 });
    assert.equal(s.lostForGood, 0);
    assert.ok(quantile(relativeDelays('lan', 'datagram', 60, 6), 0.99) < 1);
  });
});

describe('network model: transports', () => {
  test('over tcp nothing is lost: a loss arrives one retransmission later and holds up every packet behind it', () => {
    const s = syntheticTrace({ profile: 'busy-venue', transport: 'tcp', seconds: 60, seed: 7 });
    assert.ok(s.lostOnLink > 50);
    assert.equal(s.lostForGood, 0);
    assert.equal(s.trace.seq.length, s.sent);
    // In order: the i-th arrival is seq 1000 + i, captured at (i + 1) periods.
    for (let i = 0; i < s.trace.seq.length; i++) {
      assert.equal(s.trace.seq[i], 1000 + i);
      assert.ok(Math.abs(s.trace.captureMs[i]! - (i + 1) * PERIOD_MS) < 1e-9);
      if (i > 0) assert.ok(s.trace.arrivalMs[i]! > s.trace.arrivalMs[i - 1]!);
    }
    // Head-of-line blocking: on the same link, far more packets wait over 10 ms over tcp than over datagrams.
    const over10 = (transport: 'tcp' | 'datagram'): number => relativeDelays('busy-venue', transport, 60, 7).filter((d) => d > 10).length;
    assert.ok(over10('tcp') > 1.3 * over10('datagram'), `over 10 ms: tcp ${over10('tcp')}, datagram ${over10('datagram')} packets`);
  });

  test('over datagrams a loss is a seq missing from the trace', () => {
    const s = syntheticTrace({ profile: 'office-wifi', transport: 'datagram', seconds: 120, seed: 8 });
    assert.equal(s.trace.seq.length, s.sent - s.lostForGood);
    assert.equal(s.lostForGood, s.lostOnLink);
  });

  test('the same seed gives the same trace; another seed another one', () => {
    const a = syntheticTrace({ profile: 'office-wifi', transport: 'tcp', seconds: 20, seed: 9 });
    const b = syntheticTrace({ profile: 'office-wifi', transport: 'tcp', seconds: 20, seed: 9 });
    const c = syntheticTrace({ profile: 'office-wifi', transport: 'tcp', seconds: 20, seed: 10 });
    assert.deepEqual(a.trace.arrivalMs, b.trace.arrivalMs);
    assert.notDeepEqual(a.trace.arrivalMs, c.trace.arrivalMs);
  });
});
