import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FLAG_DISCONTINUITY } from '../../src/protocol';
import { StreamVerifier } from '../../bench/stream-verifier';
import { getStatus } from '../helpers/http-client';
import { removeFixtures, startOnFixture } from '../helpers/alsa-service';
import { stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { StreamClient } from '../helpers/stream-client';
import { sleep, waitFor } from '../helpers/wait';

/**
 * Overload through the real service, with the real alsa-lib path: the
 * device (the `file` plugin on a FIFO fed in real time with a
 * self-identifying pattern) keeps capturing while the whole service is held
 * (SIGSTOP: the event loop, the pool workers and the reader thread alike,
 * as a long stall of the box would). When it resumes, the reader hands
 * over everything the FIFO buffered at once: a burst of far more than a
 * ring of periods into a send pool forced to use its workers. The box must
 * drop whole periods, flag them, and never send reordered, repeated or
 * mislabelled audio to any client.
 */

const CHANNELS = 2;
const PERIOD = 128;
const HOLD_MS = 300;
/** A 2-channel S16 period is 512 bytes: the 64 KiB FIFO holds 128 periods (341 ms), so a 300 ms hold bursts ~112. */
const HOLDS = 3;

after(async () => {
  await stopAllServices();
  removeFixtures();
});

function hold(svc: ServiceProcess, ms: number): Promise<void> {
  process.kill(svc.proc.pid!, 'SIGSTOP');
  return new Promise((resolve) =>
    setTimeout(() => {
      process.kill(svc.proc.pid!, 'SIGCONT');
      resolve();
    }, ms),
  );
}

describe('overload by a burst of periods: whole periods dropped and flagged, never reordered, repeated or mislabelled', () => {
  test('three clients (pcm16, pcm24, a personal mix) across three bursts of ~110 periods into a pool forced to its workers', async () => {
    const { svc } = await startOnFixture({
      format: 'S16_LE',
      channels: CHANNELS,
      periodFrames: PERIOD,
      pcmName: 'sb_overload_burst',
      label: 'overload burst',
      config: { pool: { size: 1, inlineBudgetPct: 0 }, stream: { sendQueuePackets: 8 } },
    });
    const a = await StreamClient.open(svc.port, 'burst-a', { keepRaw: true });
    const b = await StreamClient.open(svc.port, 'burst-b', { keepRaw: true });
    const m = await StreamClient.open(svc.port, 'burst-mix');
    await a.subscribe([1, 0], 'pcm16');
    await b.subscribe([0], 'pcm24');
    m.send({ type: 'mix', codec: 'pcm16', channels: [{ ch: 0, gainDb: -6 }, { ch: 1, gainDb: -6 }] });
    await Promise.all([a.waitForPackets(100, 10_000), b.waitForPackets(100, 10_000), m.waitForPackets(100, 10_000)]);
    const before = await getStatus(svc.port);
    for (let i = 0; i < HOLDS; i++) {
      await hold(svc, HOLD_MS);
      const n = a.packetCount;
      await a.waitForPackets(n + 150, 10_000);
    }
    const after = await getStatus(svc.port);
    for (const c of [a, b, m]) c.close();
    await sleep(0);

    const skipped = (after.pool as { skippedPeriods: number }).skippedPeriods - (before.pool as { skippedPeriods: number }).skippedPeriods;
    assert.ok(skipped > 0, `the bursts must overload the pool (skipped ${skipped} periods); otherwise this proves nothing`);

    for (const [c, channels] of [
      [a, [1, 0]],
      [b, [0]],
    ] as const) {
      const v = new StreamVerifier(c.label, channels);
      for (const raw of c.rawPackets) v.check(raw);
      assert.deepEqual(v.examples, [], `${c.label}: ${JSON.stringify(v.counts.anomalies)}`);
      assert.ok(v.counts.checked > 400, `${c.label}: only ${v.counts.checked} packets checked`);
      const flagged = c.packets.filter((p) => (p.flags & FLAG_DISCONTINUITY) !== 0).length;
      assert.ok(flagged >= HOLDS, `${c.label}: every burst leaves a flagged packet (got ${flagged})`);
    }
    // The mix: the same order and labels (its payload is a mix, so the order and flags are what is checked).
    let prev: { seq: number; samplePos: bigint } | null = null;
    for (const p of m.packets) {
      if (prev) {
        const step = (p.seq - prev.seq) >>> 0;
        assert.ok(step >= 1 && step < 0x8000_0000, `mix: seq ${p.seq} after ${prev.seq}`);
        if (step > 1) assert.ok(p.flags & FLAG_DISCONTINUITY, `mix: seq ${p.seq} follows ${prev.seq} without the flag`);
        else assert.ok((p.flags & FLAG_DISCONTINUITY) !== 0 || p.samplePos === prev.samplePos + BigInt(PERIOD), `mix: seq ${p.seq} is not the period after ${prev.seq}`);
      }
      prev = { seq: p.seq, samplePos: p.samplePos };
    }
    await waitFor(async () => (await getStatus(svc.port)).clients.length === 0, { timeoutMs: 5000, what: 'the clients to leave' });
  });
});
