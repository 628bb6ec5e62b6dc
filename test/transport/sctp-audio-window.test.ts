import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RTCPeerConnection } from 'werift';
import { holdCongestionWindow } from '../../src/transport/sctp-audio-window';

/**
 * The congestion-window floor on werift's own SCTP association (what
 * src/transport/webrtc-peers.ts applies to every audio peer). What it does for
 * the audio across an impaired link is measured by the `wifi` bench.
 */

async function realAssociation(): Promise<{ assoc: { cwnd: number }; close(): Promise<void> }> {
  const pc = new RTCPeerConnection({ iceServers: [] });
  pc.createDataChannel('audio');
  await pc.setLocalDescription(await pc.createOffer());
  const assoc = pc.sctpTransport?.sctp as unknown as { cwnd: number } | undefined;
  assert.ok(assoc, 'werift made an SCTP association for the offer');
  return { assoc, close: () => pc.close() };
}

test("werift's window is raised to the floor and never falls below it: a loss's halving and a timeout's reset stop there", async () => {
  const { assoc, close } = await realAssociation();
  try {
    assert.ok(assoc.cwnd < 65536, `werift starts at ${assoc.cwnd} bytes`);
    holdCongestionWindow(assoc, 65536);
    assert.equal(assoc.cwnd, 65536);
    assoc.cwnd = Math.floor(assoc.cwnd / 2); // fast recovery
    assert.equal(assoc.cwnd, 65536);
    assoc.cwnd = 1200; // T3 expiry
    assert.equal(assoc.cwnd, 65536);
    assoc.cwnd = 100_000; // growth above the floor is kept
    assert.equal(assoc.cwnd, 100_000);
    holdCongestionWindow(assoc, 65536);
    assert.equal(assoc.cwnd, 100_000, 'applying it twice changes nothing');
  } finally {
    await close();
  }
});

test('an association without a numeric cwnd (another werift) and a floor that is not a positive integer are refused, naming them', () => {
  assert.throws(() => holdCongestionWindow({}, 65536), { name: 'TypeError', message: /no numeric cwnd.*sctp-audio-window\.ts/ });
  assert.throws(() => holdCongestionWindow({ cwnd: 3600 }, 0), { name: 'RangeError', message: 'cwnd floor is 0; allowed: a positive integer of bytes' });
  assert.throws(() => holdCongestionWindow({ cwnd: 3600 }, 1.5), { name: 'RangeError', message: 'cwnd floor is 1.5; allowed: a positive integer of bytes' });
});
