import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DatagramLink, type DatagramSocketLike } from '../../src/client/datagram-link';
import { CODEC_IDS } from '../../src/protocol/codecs';
import { audioDatagramBytes, writeAudioDatagram } from '../../src/protocol/datagram';
import { FLAG_MIX, headerBytesFor, writeHeader } from '../../src/protocol/packet-header';

/**
 * The receiving half of a datagram route, fed AUDIO datagrams built with the
 * protocol module's own writer: duplicates, repairs, loss bursts, and a new
 * stream that numbers its packets afresh. The socket is a plain object: the
 * link only reads what it is handed (test/transport/udp-audio.test.ts runs it
 * on real sockets against the service).
 */

function packet(seq: number, codec: 'pcm16' | 'opus' = 'pcm16', frames = 128): Uint8Array {
  const channels = [0, 1];
  const out = new Uint8Array(headerBytesFor(channels.length) + 8);
  writeHeader(new DataView(out.buffer), 0, { codec: CODEC_IDS[codec], frames, seq, rate: 48000, samplePos: 0n, captureNs: 0n, flags: FLAG_MIX, channels });
  return out;
}

function datagram(...packets: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(audioDatagramBytes(packets));
  writeAudioDatagram(out, packets);
  return out;
}

function link(): { feed(d: Uint8Array): void; got: [number, boolean][]; bursts: number[]; l: DatagramLink } {
  const socket: DatagramSocketLike = { onmessage: null, send: () => undefined, close: () => undefined };
  const got: [number, boolean][] = [];
  const bursts: number[] = [];
  const l = new DatagramLink({
    socket,
    token: null,
    now: () => 0,
    onPacket: (bytes, recovered) => got.push([new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true), recovered]),
    onState: () => undefined,
    onLossBurst: (n) => bursts.push(n),
  });
  l.start();
  return { feed: (d) => socket.onmessage!(d), got, bursts, l };
}

describe('DatagramLink', () => {
  test('copies of packets already seen are counted as duplicates; a copy of a lost one is handed on as recovered, before the packet that carried it', () => {
    const k = link();
    k.feed(datagram(packet(10)));
    k.feed(datagram(packet(11), packet(10)));
    // 12 lost; 13 carries its copy.
    k.feed(datagram(packet(13), packet(12)));
    assert.deepEqual(k.got, [
      [10, false],
      [11, false],
      [12, true],
      [13, false],
    ]);
    assert.equal(k.l.stats.duplicates, 1);
    assert.equal(k.l.stats.recovered, 1);
    assert.deepEqual(k.bursts, [1], 'one datagram lost');
  });

  test('a burst of three lost datagrams is reported as 3', () => {
    const k = link();
    k.feed(datagram(packet(100)));
    k.feed(datagram(packet(104), packet(101)));
    assert.deepEqual(k.bursts, [3]);
  });

  test('another stream (pcm16 then Opus, numbered from 0) is accepted at once, not taken for old copies', () => {
    const k = link();
    for (let s = 5000; s < 5010; s++) k.feed(datagram(packet(s)));
    k.feed(datagram(packet(0, 'opus', 240)));
    k.feed(datagram(packet(1, 'opus', 240), packet(0, 'opus', 240)));
    assert.deepEqual(k.got.slice(-2), [
      [0, false],
      [1, false],
    ]);
    assert.equal(k.l.stats.duplicates, 1, 'the copy of 0 in the next datagram is still a duplicate');
  });

  test('the same kind of stream numbered afresh (far behind the last seq) starts over instead of being dropped', () => {
    const k = link();
    for (let s = 9000; s < 9005; s++) k.feed(datagram(packet(s, 'opus', 240)));
    k.feed(datagram(packet(3, 'opus', 240)));
    k.feed(datagram(packet(4, 'opus', 240), packet(3, 'opus', 240)));
    assert.deepEqual(k.got.slice(-2), [
      [3, false],
      [4, false],
    ]);
  });

  test('a datagram that is not one sends nothing on and is counted', () => {
    const k = link();
    k.feed(new Uint8Array([1, 2, 3]));
    k.feed(new Uint8Array(0));
    assert.equal(k.l.stats.badDatagrams, 2);
    assert.deepEqual(k.got, []);
  });
});
