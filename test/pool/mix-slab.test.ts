import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MixSlab, slabLimiter, slabMixState } from '../../src/engine/mix-slab';
import { MixCapacityError, OutputRegistry, type MixRequest, type PacketSink } from '../../src/pool/output-registry';

const sink = (): PacketSink => ({ pushPacket: () => undefined });

function req(gainDb: number, ceilingDb = -1): MixRequest {
  return {
    key: `g${gainDb}:c${ceilingDb}`,
    codec: 'pcm16',
    params: { channels: [{ gainDb, pan: 0, mute: false, solo: false }], masterDb: 0, output: 'stereo' },
    limiter: { enabled: true, ceilingDb },
    opus: null,
  };
}

describe('mix slab and staged mix changes', () => {
  test('a worker-side view of a slot sees the main thread\'s state, scalars included', () => {
    const slab = new MixSlab(2, 128);
    slab.clear(1);
    const a = slabMixState(slab, 1);
    const b = slabMixState(new MixSlab(2, 128, slab.sab), 1);
    a.curL[3] = 0.5;
    a.outChannels = 1;
    assert.equal(b.curL[3], 0.5);
    assert.equal(b.outChannels, 1);
    const la = slabLimiter(slab, 1);
    la.gain = 0.25;
    la.enabled = true;
    assert.equal(slabLimiter(new MixSlab(2, 128, slab.sab), 1).gain, 0.25);
    assert.equal(slabLimiter(slab, 0).gain, 0, 'slots do not overlap');
  });

  test('bad slab sizes are RangeErrors naming the value and what is allowed', () => {
    assert.throws(() => new MixSlab(0, 128), { name: 'RangeError', message: 'mix slab capacity 0 is not allowed; allowed: integers ≥ 1' });
    assert.throws(() => new MixSlab(4, 128, new SharedArrayBuffer(100)), { name: 'RangeError', message: /^mix slab buffer is 100 bytes; 4 slots of \d+ need \d+$/ });
  });

  test('a fader move is staged and reaches the render state only at commitMixes', () => {
    const reg = new OutputRegistry();
    reg.attachMixSlab(new MixSlab(4, 128));
    const s = sink();
    const out = reg.setMix(s, null, req(0), 48000, 128);
    const mix = out.mix!;
    assert.equal(mix.state.tgtL[0], Math.fround(Math.SQRT1_2), 'a new mix is committed at once');
    const same = reg.setMix(s, out, req(-6, -3), 48000, 128);
    assert.equal(same, out, 'changed in place');
    assert.ok(Math.abs(mix.state.tgtL[0]! - Math.SQRT1_2) < 1e-7, 'not yet in the render state');
    assert.equal(mix.limiter.ceilingDb, -1);
    reg.commitMixes();
    assert.ok(Math.abs(mix.state.tgtL[0]! - Math.SQRT1_2 * 10 ** (-6 / 20)) < 1e-7);
    assert.equal(mix.limiter.ceilingDb, -3);
  });

  test('when every slot is taken a new mix is refused with the limit, and a freed slot returns only after the next commit', () => {
    const reg = new OutputRegistry();
    reg.attachMixSlab(new MixSlab(2, 128));
    const [a, b, c] = [sink(), sink(), sink()];
    const oa = reg.setMix(a, null, req(0), 48000, 128);
    reg.setMix(b, null, req(-1), 48000, 128);
    assert.throws(
      () => reg.setMix(c, null, req(-2), 48000, 128),
      (err: unknown) =>
        err instanceof MixCapacityError && err.message === 'the box already renders 2 distinct mixes, its most; share a mix or use raw channels',
    );
    assert.equal(reg.mixRenders.length, 2, 'the refused mix left nothing behind');
    // Sharing an existing mix needs no slot.
    assert.equal(reg.setMix(c, null, req(-1), 48000, 128).sinks.size, 2);
    reg.unsubscribe(a, oa);
    // A worker may still be rendering a's slot until the pool commits again.
    assert.throws(() => reg.setMix(a, null, req(-3), 48000, 128), /already renders 2 distinct mixes/);
    reg.commitMixes();
    const again = reg.setMix(a, null, req(-3), 48000, 128);
    assert.equal(again.mix!.slot, oa.mix!.slot);
  });
});
