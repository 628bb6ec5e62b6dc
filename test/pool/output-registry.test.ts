import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MixSlab } from '../../src/engine/mix-slab';
import { CODEC_IDS } from '../../src/protocol';
import { MixCapacityError, OutputRegistry, type MixRequest, type PacketSink } from '../../src/pool/output-registry';
import { balance } from '../../src/pool/shard-balancer';

const sink = (): PacketSink => ({ pushPacket: () => undefined });

function mixReq(key: string, gains: number[], codec: MixRequest['codec'] = 'pcm16'): MixRequest {
  return {
    key,
    codec,
    params: { channels: gains.map((gainDb) => ({ gainDb, pan: 0, mute: false, solo: false })), masterDb: 0, output: 'stereo' },
    limiter: { enabled: true, ceilingDb: -1 },
    opus: codec === 'opus' ? { frameMs: 5, bitrateKbps: 96 } : null,
  };
}

/** Decodes packed channel-output records [id, codec, n, ch...] back into objects. */
function records(spec: Int32Array): { id: number; codec: number; channels: number[] }[] {
  const out = [];
  for (let p = 0; p < spec.length; p += 3 + spec[p + 2]!) out.push({ id: spec[p]!, codec: spec[p + 1]!, channels: [...spec.subarray(p + 3, p + 3 + spec[p + 2]!)] });
  return out;
}

describe('output registry: encode once, send many', () => {
  test('two clients with the same channels in the same order and codec share one output; another order is another output', () => {
    const r = new OutputRegistry();
    const a = r.subscribe(sink(), 'pcm16', [3, 1]);
    const b = r.subscribe(sink(), 'pcm16', [3, 1]);
    const c = r.subscribe(sink(), 'pcm16', [1, 3]);
    const d = r.subscribe(sink(), 'pcm24', [3, 1]);
    assert.equal(a, b);
    assert.equal(a.sinks.size, 2);
    assert.notEqual(a, c);
    assert.notEqual(a, d);
    assert.equal(r.size, 3);
    assert.deepEqual(records(r.wholeSpec).map((x) => x.channels).sort(), [[1, 3], [3, 1], [3, 1]].sort());
  });

  test('the last subscriber leaving removes the output and its spec', () => {
    const r = new OutputRegistry();
    const s1 = sink();
    const s2 = sink();
    const out = r.subscribe(s1, 'pcm16', [0]);
    r.subscribe(s2, 'pcm16', [0]);
    r.unsubscribe(s1, out);
    assert.equal(r.get(out.id), out);
    r.unsubscribe(s2, out);
    assert.equal(r.get(out.id), undefined);
    assert.equal(r.size, 0);
    assert.equal(r.wholeSpec.length, 0);
    assert.equal(r.periodWork, 0);
  });

  test('work counts channels, deflate four times; shards balance it', () => {
    const r = new OutputRegistry();
    r.setShardCount(2);
    r.subscribe(sink(), 'deflate', [0, 1]); // 8
    r.subscribe(sink(), 'pcm16', [0, 1, 2, 3, 4, 5]); // 6
    r.subscribe(sink(), 'pcm24', [7]); // 1
    r.subscribe(sink(), 'pcm16', [5]); // 1
    assert.equal(r.periodWork, 16);
    const loads = r.shardSpecs.map((s) => records(s).reduce((n, o) => n + o.channels.length * (o.codec === CODEC_IDS.deflate ? 4 : 1), 0));
    assert.deepEqual(loads.sort((x, y) => x - y), [8, 8]);
  });

  test('a mix shared by two clients with the same request is rendered once', () => {
    const r = new OutputRegistry();
    const s1 = sink();
    const s2 = sink();
    const m1 = r.setMix(s1, null, mixReq('a', [0, -6]), 48000, 128);
    const m2 = r.setMix(s2, null, mixReq('a', [0, -6]), 48000, 128);
    assert.equal(m1, m2);
    assert.equal(r.mixRenders.length, 1);
  });

  test('a fader move on a mix a client has to itself changes it in place (same output, same slot), staged until the next commit', () => {
    const r = new OutputRegistry();
    const s = sink();
    const m1 = r.setMix(s, null, mixReq('a', [0, 0]), 48000, 128);
    const slot = m1.mix!.slot;
    const tgt = m1.mix!.state.tgtL[1];
    const m2 = r.setMix(s, m1, mixReq('b', [0, -20]), 48000, 128);
    assert.equal(m2, m1);
    assert.equal(m2.mix!.slot, slot);
    assert.equal(m2.mix!.state.tgtL[1], tgt, 'the render state is untouched until commitMixes');
    assert.equal(m2.mix!.dirty, true);
    r.commitMixes();
    assert.ok(m2.mix!.state.tgtL[1]! < tgt!, 'committed: channel 1 is 20 dB down');
    assert.equal(m2.mix!.dirty, false);
  });

  test('a removed mix\'s slab slot is reused only after the next commit when a pool renders from the slab', () => {
    const r = new OutputRegistry();
    r.attachMixSlab(new MixSlab(2, 128));
    const s1 = sink();
    const a = r.setMix(s1, null, mixReq('a', [0]), 48000, 128);
    const b = r.setMix(sink(), null, mixReq('b', [-3]), 48000, 128);
    assert.notEqual(a.mix!.slot, b.mix!.slot);
    r.unsubscribe(s1, a);
    assert.throws(() => r.setMix(sink(), null, mixReq('c', [-6]), 48000, 128), (e: Error) => e instanceof MixCapacityError && /already renders 2 distinct mixes/.test(e.message));
    r.commitMixes();
    const c = r.setMix(sink(), null, mixReq('c', [-6]), 48000, 128);
    assert.equal(c.mix!.slot, a.mix!.slot);
  });

  test('a mix request that cannot be set up (bad Opus bitrate) takes no slot and changes nothing', () => {
    const r = new OutputRegistry();
    r.attachMixSlab(new MixSlab(1, 128));
    const bad = mixReq('x', [0], 'opus');
    bad.opus = { frameMs: 5, bitrateKbps: 100000 };
    assert.throws(() => r.setMix(sink(), null, bad, 48000, 128));
    assert.equal(r.mixRenders.length, 0);
    r.setMix(sink(), null, mixReq('ok', [0]), 48000, 128);
    assert.equal(r.mixRenders.length, 1, 'the one slot is still free');
  });

  test('mix shards list [id, slot, codec] per mix and balance by audible channels × outputs', () => {
    const r = new OutputRegistry();
    r.setShardCount(2);
    r.setMix(sink(), null, mixReq('a', [0, 0, 0, 0]), 48000, 128); // 4 audible × 2 = 8
    r.setMix(sink(), null, mixReq('b', [0, 0]), 48000, 128); // 4
    const c = mixReq('c', [0, 0, 0]);
    c.params.channels[2]!.mute = true;
    r.setMix(sink(), null, c, 48000, 128); // 2 audible (one muted) × 2 = 4
    r.commitMixes();
    assert.equal(r.mixWork, 16);
    const shards = r.mixShardSpecs.map((s) => [...s]);
    assert.equal(shards.length, 2);
    assert.deepEqual(shards.map((s) => s.length).sort(), [3, 6]);
  });
});

describe('shard balancer', () => {
  test('heaviest first onto the least loaded shard; never more shards than items', () => {
    const b = balance([5, 3, 3, 2, 1], 2, (x) => x, (x) => [x]);
    assert.deepEqual(b.shards.map((s) => [...s]), [[5, 2], [3, 3, 1]]);
    assert.equal(b.total, 14);
    assert.equal(balance([7], 4, (x) => x, (x) => [x]).shards.length, 1);
    assert.deepEqual(balance([], 3, (x: number) => x, (x) => [x]), { shards: [], total: 0 });
  });
});
