import { test } from 'node:test';
import assert from 'node:assert/strict';
import { weriftDataChannel } from '../../src/listen/werift-data-channel';
import { audioDatagramBytes, writeAudioDatagram } from '../../src/protocol/datagram';
import { WebRtcPeers } from '../../src/transport/webrtc-peers';
import { LossyUdpRelay, candidatePort } from '../helpers/lossy-udp-relay';
import { waitFor } from '../helpers/wait';

/**
 * The Node client's half of a WebRTC data channel (`stagebox listen --transport webrtc`): werift as the receiver,
 * the box's WebRtcPeers as the sender, a lossy UDP relay between them on loopback. What the relay drops must be
 * lost and nothing else: no run of messages lost after a gap, nothing twice, nothing retransmitted.
 */

const PERIOD_MS = 128 / 48;

function datagram(n: number, size = 600): Buffer {
  const packet = Buffer.alloc(size);
  packet.writeUInt32LE(n, 0);
  for (let i = 4; i < packet.length; i++) packet[i] = (n * 7 + i) & 0xff;
  const out = Buffer.alloc(audioDatagramBytes([packet]));
  writeAudioDatagram(out, [packet]);
  return out;
}

interface Link {
  box: WebRtcPeers;
  relay: () => LossyUdpRelay;
  received: Buffer[];
  /** The channel's states as the library would see them. */
  states: string[];
  close(): Promise<void>;
}

/**
 * The box's peer and the client's werift channel, open, with the relay between them. Without the offer's candidates
 * the box reaches the client only through the relay (a peer-reflexive candidate).
 */
async function openThroughRelay(drop: (datagram: Buffer) => boolean, maxBufferedBytes?: number): Promise<Link> {
  const opened: number[] = [];
  const box = new WebRtcPeers({ hostAddresses: ['127.0.0.1'], ...(maxBufferedBytes ? { maxBufferedBytes } : {}), onOpen: (id) => opened.push(id), onClose: () => undefined });
  const received: Buffer[] = [];
  const states: string[] = [];
  let relay: LossyUdpRelay | null = null;
  const channel = weriftDataChannel(['127.0.0.1'])({
    sendOffer: async (sdp) => {
      const answer = await box.answer(1, sdp.split('\r\n').filter((l) => !l.startsWith('a=candidate:')).join('\r\n'));
      relay = await LossyUdpRelay.start(candidatePort(answer), drop);
      return relay.rewriteAnswer(answer);
    },
    onDatagram: (bytes) => received.push(Buffer.from(bytes)),
    onState: (state) => states.push(state),
  });
  const close = async (): Promise<void> => {
    channel.close();
    (relay as LossyUdpRelay | null)?.close();
    await box.stop();
  };
  try {
    await waitFor(() => opened.includes(1) && states.includes('open'), { timeoutMs: 30_000, what: 'the channel open through the relay', describe: () => JSON.stringify(states) });
  } catch (err) {
    await close();
    throw err;
  }
  return { box, relay: () => relay!, received, states, close };
}

test('werift as the receiver loses exactly the datagrams the network dropped, in runs or alone, and gets the rest intact', async () => {
  let lossy = false;
  let big = 0;
  // Audio-sized datagrams only (ICE and DTLS pass): a run of 70, a run of 3, and every 37th.
  const link = await openThroughRelay((d) => {
    if (!lossy || d.length < 400) return false;
    big++;
    return (big > 50 && big <= 120) || (big > 200 && big <= 203) || big % 37 === 0;
  }, 1 << 20);
  const { box, received } = link;
  try {
    lossy = true;
    const n = 400;
    const tail = 40;
    for (let i = 0; i < n + tail; i++) {
      if (i === n) lossy = false;
      assert.equal(box.send(1, datagram(i)), true);
      await new Promise((r) => setTimeout(r, PERIOD_MS));
    }
    await waitFor(() => received.some((m) => m.readUInt32LE(12) === n + tail - 1), { timeoutMs: 10_000, what: 'the last datagram' });
    const got = received.map((m) => m.readUInt32LE(12));
    assert.equal(new Set(got).size, got.length, 'no datagram twice');
    for (const m of received) assert.deepEqual(m, datagram(m.readUInt32LE(12)), `datagram ${m.readUInt32LE(12)} intact`);
    const missing = Array.from({ length: n + tail }, (_, i) => i).filter((i) => !got.includes(i));
    const dropped = link.relay().dropped;
    assert.ok(dropped >= 80, `the relay dropped ${dropped}`);
    assert.equal(missing.length, dropped, `missing ${missing.length} (${missing.join(',')}) where the relay dropped ${dropped}`);
    assert.ok(missing.every((i) => i < n), `only datagrams sent while lossy are missing: ${missing.join(',')}`);
    assert.deepEqual(link.states, ['open']);
  } finally {
    await link.close();
  }
});

test('a 300 ms Wi-Fi stall costs the box nothing: it keeps sending into the stalled link, as over UDP, and every datagram arrives', async () => {
  // The box's defaults (maxBufferedBytes 16 KiB), datagrams the size of a stereo pcm16 packet with one copy.
  const link = await openThroughRelay(() => false);
  const { box } = link;
  const received = (): Set<number> => new Set(link.received.map((m) => m.readUInt32LE(12)));
  try {
    const relay = link.relay();
    const n = 600;
    const stall = { from: 200, periods: Math.round(300 / PERIOD_MS) };
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      if (i === stall.from) relay.hold();
      if (i === stall.from + stall.periods) void relay.release();
      assert.equal(box.send(1, datagram(i, 1100)), true, `datagram ${i} refused by the box (bufferedAmount over maxBufferedBytes)`);
      const wait = (i + 1) * PERIOD_MS - (performance.now() - t0);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    await waitFor(() => received().has(n - 1), { timeoutMs: 10_000, what: 'the last datagram' });
    await waitFor(() => received().size === n, {
      timeoutMs: 5000,
      what: 'every datagram',
      describe: () => `missing ${Array.from({ length: n }, (_, i) => i).filter((i) => !received().has(i)).join(',')}`,
    });
    assert.equal(box.stats(1)!.messagesDropped, 0);
  } finally {
    await link.close();
  }
});
